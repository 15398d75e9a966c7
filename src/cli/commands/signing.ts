/** `keyframe sign` and `keyframe verify`: signed video (docs/signed-video.md), the SEI layer over Annex-B H.264. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { UsageError } from '../../errors.js';
import { openDevice } from '../../pki/device.js';
import { signAnnexB } from '../../signing/device.js';
import { DEFAULT_MAX_SKEW_MS } from '../../signing/time.js';
import { formatReport } from '../../signing/report.js';
import { verifyEvidence } from '../../recording/evidence.js';
import { formatEvidence } from '../../recording/report.js';
import { parseKeys } from './media.js';
import { checkOutput, readFileOrThrow, writeFileAtomic } from '../../util/fs.js';
import { println } from '../context.js';
import type { CliContext } from '../context.js';
import { collect, parseIsoTime } from '../options.js';
import { readCrls, readRoots } from '../tsa.js';

export function registerSigningCommands(program: Command, ctx: CliContext): void {
  program
    .command('sign')
    .description('sign an Annex-B H.264 stream as the camera would: ONVIF Media Signing SEIs (certificate SEI, one per GOP) and keyframe\'s extension SEIs (session, one per unit ≤ 1 s, an end marker)')
    .argument('<IN.h264>', 'Annex-B H.264 stream')
    .requiredOption('--device <DEV>', 'device directory (key, chain.pem, counter.json)')
    .requiredOption('--out <OUT.h264>', 'signed output stream')
    .option('--keystore <SPEC>', 'device key store, overriding device.json')
    .option('--start <ISO>', 'capture time of the first frame (default now)')
    .option('--fps <N>', 'frame rate when the SPS carries none (default 25)')
    .option('--onvif-mode <MODE>', "ONVIF Media Signing mode: hash-list (a 32-byte hash per slice, so ONVIF validators localise) or low-bitrate (the GOP hash alone)", 'hash-list')
    .option('--max-unit <S>', "longest keyframe unit in seconds (one unit SEI each, per-frame hashes whatever its length; a unit also ends at every IDR): 1 verifies live within a second, the GOP length (e.g. 2) halves keyframe's signature bytes", '1')
    .option('--force', 'replace OUT if it exists (never the input)')
    .action(async (inPath: string, o: { device: string; out: string; keystore?: string; start?: string; fps?: string; onvifMode: string; maxUnit: string; force?: boolean }) => {
      if (o.onvifMode !== 'hash-list' && o.onvifMode !== 'low-bitrate') throw new UsageError('--onvif-mode must be hash-list or low-bitrate');
      const onvifMode: 'hash-list' | 'low-bitrate' = o.onvifMode;
      const maxUnitSeconds = Number(o.maxUnit);
      if (!(maxUnitSeconds >= 0.04 && maxUnitSeconds <= 10)) throw new UsageError(`--max-unit must be a number of seconds between 0.04 and 10, got ${o.maxUnit}`);
      const start = o.start !== undefined ? parseIsoTime(o.start, '--start') : undefined;
      const fps = o.fps !== undefined ? Number(o.fps) : undefined;
      if (fps !== undefined && !(fps > 0 && fps <= 1000)) throw new UsageError('--fps must be a number between 0 and 1000');
      const out = await checkOutput(o.out, { kind: 'file', inputs: [inPath], force: o.force === true });
      const data = await readFileOrThrow(resolve(inPath), 'input stream');
      const device = await openDevice(resolve(o.device), o.keystore);
      try {
        const { output, stats } = await signAnnexB(device, data, { onvifMode, maxUnitSeconds, ...(start !== undefined ? { start } : {}), ...(fps !== undefined ? { fps } : {}) });
        await writeFileAtomic(out.path, output);
        println(ctx.stdout, `signed ${stats.frames} frames in ${stats.units} units as ${device.config.serial} → ${out.path}`);
        const b = stats.bytes;
        println(ctx.stdout, `  ${stats.seiBytes} bytes of signing SEIs: ONVIF ${b.certificate} (certificate SEI) + ${b.onvifUnits} (${stats.onvifUnits} GOP SEIs, ${onvifMode}), keyframe ${b.session} (session SEI) + ${b.keyframeUnits} (unit SEIs)`);
      } finally {
        await device.close();
      }
    });

  program
    .command('verify')
    .description('verify evidence offline — an Annex-B stream, an MP4, a recording directory, an evidence bundle or an ONVIF export file (every seal) — with its claimed times against their proofs: exit 0 only for AUTHENTIC, 1 for any other verdict (AUTHENTIC_WITH_GAPS, UNPROVEN_TIME, NOT_AUTHENTIC, UNTRUSTED_SIGNER, UNSIGNED), 2 for unusable input')
    .argument('<PATH>', 'Annex-B H.264 stream, MP4, recording directory, evidence bundle, or ONVIF export file')
    .requiredOption('--root <ROOT.pem>', 'trust anchor(s) for cameras: the manufacturer root')
    .option('--crl <CRL>', 'CRL (PEM or DER), repeatable; with any, revocation is checked', collect, [])
    .option('--key <HEX|KID:HEX>', 'content key(s) to check the signed video inside encrypted evidence (the fragment records need none)', collect, [])
    .option('--exporter-root <ROOT.pem>', "trust anchor(s) for the exporter of a bundle or an ONVIF export (and its later seals): the operator CA (no default: without it no exporter is trusted)")
    .option('--tsa-root <ROOT.pem>', 'trust anchor(s) for RFC 3161 time-stamps (default: --exporter-root, the operator CA whose recorder is the TSA)')
    .option('--max-skew <S>', 'seconds a claimed time may lead the verification time', String(DEFAULT_MAX_SKEW_MS / 1000))
    .option('--json', 'JSON report')
    .action(async (path: string, o: { root: string; crl: string[]; key: string[]; exporterRoot?: string; tsaRoot?: string; maxSkew: string; json?: boolean }) => {
      const maxSkew = Number(o.maxSkew);
      if (!/^\d+(\.\d+)?$/.test(o.maxSkew) || !(maxSkew <= 86_400)) throw new UsageError('--max-skew must be a number of seconds from 0 to 86400');
      const roots = await readRoots(o.root, '--root');
      const exporterRoots = o.exporterRoot !== undefined ? await readRoots(o.exporterRoot, '--exporter-root') : undefined;
      const tsaRoots = o.tsaRoot !== undefined ? await readRoots(o.tsaRoot, '--tsa-root') : undefined;
      const crls = await readCrls(o.crl);
      const report = await verifyEvidence(resolve(path), {
        roots,
        maxSkewMs: maxSkew * 1000,
        ...(crls !== undefined ? { crls } : {}),
        ...(o.key.length > 0 ? { keys: parseKeys(o.key) } : {}),
        ...(exporterRoots !== undefined ? { exporterRoots } : {}),
        ...(tsaRoots !== undefined ? { tsaRoots } : {}),
      });
      if (o.json === true) println(ctx.stdout, JSON.stringify(report, null, 2));
      else ctx.stdout.write(report.input === 'annexb' ? formatReport(report) : formatEvidence(report));
      if (report.verdict !== 'AUTHENTIC') ctx.setExitCode(1);
    });
}
