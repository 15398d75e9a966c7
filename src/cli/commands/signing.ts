/** `keyframe sign` and `keyframe verify`: signed video (docs/signed-video.md), the SEI layer over Annex-B H.264. */
import type { Command } from 'commander';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ErrorCodes, KeyframeError, MediaError, NotFoundError, UsageError, errnoCode } from '../../errors.js';
import { AnnexBSplitter } from '../../media/h264/index.js';
import { openDevice } from '../../pki/device.js';
import { parseCertificates, parseCrls } from '../../pki/pem.js';
import type { X509Crl } from '../../pki/x509.js';
import { signAnnexB } from '../../signing/device.js';
import { formatReport } from '../../signing/report.js';
import { StreamVerifier } from '../../signing/verifier.js';
import { readFileOrThrow, writeFileAtomic } from '../../util/fs.js';
import { println } from '../context.js';
import type { CliContext } from '../context.js';
import { collect, parseIsoTime } from '../options.js';

async function assertFile(path: string): Promise<void> {
  try {
    if (!(await stat(path)).isFile()) throw new KeyframeError(ErrorCodes.INPUT, `input stream is not a file: ${path}`);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`input stream not found: ${path}`);
    throw e;
  }
}

export function registerSigningCommands(program: Command, ctx: CliContext): void {
  program
    .command('sign')
    .description('sign an Annex-B H.264 stream as the camera would: one session, a signed SEI per unit (≤ 1 s), an end marker')
    .argument('<IN.h264>', 'Annex-B H.264 stream')
    .requiredOption('--device <DEV>', 'device directory (key, chain.pem, counter.json)')
    .requiredOption('--out <OUT.h264>', 'signed output stream')
    .option('--keystore <SPEC>', 'device key store, overriding device.json')
    .option('--start <ISO>', 'capture time of the first frame (default now)')
    .option('--fps <N>', 'frame rate when the SPS carries none (default 25)')
    .action(async (inPath: string, o: { device: string; out: string; keystore?: string; start?: string; fps?: string }) => {
      const start = o.start !== undefined ? parseIsoTime(o.start, '--start') : undefined;
      const fps = o.fps !== undefined ? Number(o.fps) : undefined;
      if (fps !== undefined && !(fps > 0 && fps <= 1000)) throw new UsageError('--fps must be a number between 0 and 1000');
      const data = await readFileOrThrow(resolve(inPath), 'input stream');
      const device = await openDevice(resolve(o.device), o.keystore);
      try {
        const { output, stats } = await signAnnexB(device, data, { ...(start !== undefined ? { start } : {}), ...(fps !== undefined ? { fps } : {}) });
        await writeFileAtomic(resolve(o.out), output);
        println(ctx.stdout, `signed ${stats.frames} frames in ${stats.units} units as ${device.config.serial} → ${resolve(o.out)}`);
        println(ctx.stdout, `  ${stats.seiBytes} bytes of signing SEIs`);
      } finally {
        await device.close();
      }
    });

  program
    .command('verify')
    .description('verify a signed Annex-B H.264 stream offline: exit 0 only for AUTHENTIC, 1 for any other verdict, 2 for unusable input')
    .argument('<PATH>', 'Annex-B H.264 stream')
    .requiredOption('--root <ROOT.pem>', 'trust anchor(s): the manufacturer root')
    .option('--crl <CRL>', 'CRL (PEM or DER), repeatable; with any, revocation is checked', collect, [])
    .option('--json', 'JSON report')
    .action(async (path: string, o: { root: string; crl: string[]; json?: boolean }) => {
      const roots = parseCertificates(await readFileOrThrow(resolve(o.root), 'root certificate'), o.root);
      if (roots.length === 0) throw new UsageError('--root holds no certificate');
      const crls: X509Crl[] = [];
      for (const c of o.crl) crls.push(...parseCrls(await readFileOrThrow(resolve(c), 'CRL'), c));
      await assertFile(resolve(path));
      const verifier = new StreamVerifier({ roots, ...(o.crl.length > 0 ? { crls } : {}) });
      const splitter = new AnnexBSplitter();
      for await (const chunk of createReadStream(resolve(path), { highWaterMark: 1 << 20 })) {
        for (const nal of splitter.push(chunk as Buffer)) await verifier.push(nal);
      }
      for (const nal of splitter.flush()) await verifier.push(nal);
      const report = await verifier.finish();
      if (report.frames === 0) throw new MediaError(`${path}: no pictures in the input`);
      if (o.json === true) println(ctx.stdout, JSON.stringify(report, null, 2));
      else ctx.stdout.write(formatReport(report));
      if (report.verdict !== 'AUTHENTIC') ctx.setExitCode(1);
    });
}
