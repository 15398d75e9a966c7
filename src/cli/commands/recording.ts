/**
 * `keyframe record` (the camera's own pipeline: signed, encrypted CMAF fragments and their signed records on the
 * "SD card") and `keyframe export` (a signed evidence bundle of a recording or a time range of it).
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../../errors.js';
import { recordSession } from '../../camera/record.js';
import { openDevice } from '../../pki/device.js';
import { exportBundle } from '../../recording/bundle.js';
import { RECORDS_FILE } from '../../recording/layout.js';
import { statInput } from '../../packager/input.js';
import { onInterrupt } from '../../util/cleanup.js';
import { checkOutput } from '../../util/fs.js';
import { println } from '../context.js';
import type { CliContext } from '../context.js';
import { parseIsoTime } from '../options.js';
import { hex16 } from './media.js';

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

export function registerRecordingCommands(program: Command, ctx: CliContext): void {
  program
    .command('record')
    .description("run the camera's recording pipeline: capture (a looped Annex-B file, paced in real time) → sign in the device → encrypt → CMAF fragments + signed records in DIR")
    .requiredOption('--device <DEV>', 'device directory (key, chain.pem, counter.json)')
    .requiredOption('--source <IN.h264>', 'Annex-B H.264 file, looped as live capture (it must start with an IDR picture)')
    .option('--duration <S>', 'seconds of video to record (default: until stopped with Ctrl-C or SIGTERM)')
    .requiredOption('--out <DIR>', 'recording directory (created; must be new or empty)')
    .option('--scheme <cbcs|cenc>', 'Common Encryption scheme (with --key)', 'cbcs')
    .option('--key <HEX>', 'AES-128 content key, 32 hex digits (without: clear CMAF, still signed)')
    .option('--kid <HEX>', 'key ID, 32 hex digits (with --key)')
    .option('--keystore <SPEC>', 'device key store, overriding device.json')
    .option('--start <ISO>', 'capture time of the first frame (default now)')
    .option('--fps <N>', 'frame rate when the SPS carries none (default 25)')
    .option('--fast', 'do not pace capture in real time (tests, batch)')
    .option('--force', 'replace an existing recording in DIR (it is removed when recording starts)')
    .action(async (o: { device: string; source: string; duration?: string; out: string; scheme: string; key?: string; kid?: string; keystore?: string; start?: string; fps?: string; fast?: boolean; force?: boolean }) => {
      const seconds = o.duration !== undefined ? Number(o.duration) : undefined;
      if (seconds !== undefined && !(Number.isFinite(seconds) && seconds > 0 && seconds <= 7 * 86400)) throw new UsageError('--duration must be a number of seconds, above 0 and at most a week');
      if (seconds === undefined && o.fast === true) throw new UsageError('--fast needs --duration (an unpaced recording without an end would fill the disk)');
      if (o.scheme !== 'cbcs' && o.scheme !== 'cenc') throw new UsageError('--scheme must be cbcs or cenc');
      if ((o.key === undefined) !== (o.kid === undefined)) throw new UsageError('--key and --kid go together');
      const key = o.key !== undefined && o.kid !== undefined ? { key: hex16(o.key, '--key'), kid: hex16(o.kid, '--kid') } : undefined;
      const start = o.start !== undefined ? parseIsoTime(o.start, '--start') : undefined;
      const fps = o.fps !== undefined ? Number(o.fps) : undefined;
      if (fps !== undefined && !(fps > 0 && fps <= 1000)) throw new UsageError('--fps must be a number between 0 and 1000');
      const out = await checkOutput(o.out, {
        kind: 'dir',
        inputs: [o.source],
        force: o.force === true,
        emptyDirIsNew: true,
        sameKind: { what: 'a keyframe recording', test: async (dir) => existsSync(join(dir, RECORDS_FILE)) },
      });
      await statInput(resolve(o.source), 'source');
      const device = await openDevice(resolve(o.device), o.keystore);
      const abort = new AbortController();
      const release = onInterrupt(() => abort.abort());
      const progress = (ctx.stderr as { isTTY?: boolean }).isTTY === true;
      if (progress) ctx.stderr.write(`recording ${device.config.serial} → ${out.path}${seconds === undefined ? ' (Ctrl-C stops)' : ''}\n`);
      try {
        const r = await recordSession({
          device,
          source: resolve(o.source),
          ...(seconds !== undefined ? { seconds } : {}),
          out: out.path,
          replace: out.replace,
          ...(key !== undefined ? { key, scheme: o.scheme } : {}),
          ...(start !== undefined ? { start } : {}),
          ...(fps !== undefined ? { fps } : {}),
          realTime: o.fast !== true,
          signal: abort.signal,
          ...(progress ? { onFragment: (seq: number, s: number, bytes: number) => void ctx.stderr.write(`\r  ${seq + 1} fragments, ${s.toFixed(1)} s, ${formatBytes(bytes)}\x1b[K`) } : {}),
        });
        if (progress) ctx.stderr.write('\n');
        const how = r.scheme === 'none' ? 'clear (signed, not encrypted)' : `encrypted ${r.scheme}, KID ${r.kid ?? ''}`;
        println(ctx.stdout, `recorded ${r.seconds.toFixed(3)} s (${r.frames} frames, ${r.fragments} fragments) as ${r.serial}, session ${r.session}: ${how}; ${r.bytes} bytes with ${r.seiBytes} of signing SEIs; closed with a signed end record → ${out.path}`);
      } finally {
        release();
        await device.close();
      }
    });

  program
    .command('export')
    .description('export a recording, or a time range of it, as one evidence bundle (ustar) signed by the exporter; `keyframe verify` checks it offline')
    .argument('<DIR>', 'recording directory')
    .requiredOption('--out <BUNDLE>', 'evidence bundle to write (e.g. case-42.kfe.tar)')
    .requiredOption('--exporter <DEV>', 'identity directory of who exports (key store and chain.pem)')
    .requiredOption('--reason <TEXT>', 'why the evidence is exported (case number, request)')
    .option('--from <ISO>', 'start of the range (moved back to the IDR picture of its GOP)')
    .option('--to <ISO>', 'end of the range (extended to the end of its GOP)')
    .option('--keystore <SPEC>', "exporter's key store, overriding device.json")
    .option('--force', 'replace BUNDLE if it exists')
    .action(async (dir: string, o: { out: string; exporter: string; reason: string; from?: string; to?: string; keystore?: string; force?: boolean }) => {
      const from = o.from !== undefined ? parseIsoTime(o.from, '--from') : undefined;
      const to = o.to !== undefined ? parseIsoTime(o.to, '--to') : undefined;
      const out = await checkOutput(o.out, { kind: 'file', inputs: [dir], directoryInputs: true, force: o.force === true });
      const exporter = await openDevice(resolve(o.exporter), o.keystore);
      try {
        const m = await exportBundle({ recording: resolve(dir), out: out.path, exporter, reason: o.reason, ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) });
        println(ctx.stdout, `exported ${m.exported.from} – ${m.exported.to} (fragments ${m.exported.firstSeq}–${m.exported.lastSeq}) of ${m.source.serial} session ${m.source.session} → ${out.path}`);
        println(ctx.stdout, `  ${m.files.length} files, signed by ${m.exporter.subject}`);
        if (m.exported.note !== undefined) println(ctx.stdout, `  note: ${m.exported.note}`);
      } finally {
        await exporter.close();
      }
    });
}
