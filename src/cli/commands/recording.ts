/**
 * `keyframe record` (the camera's own pipeline: signed, encrypted CMAF fragments and their signed records on the
 * "SD card") and `keyframe export` (a signed evidence bundle of a recording or a time range of it).
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { UsageError } from '../../errors.js';
import { recordSession } from '../../camera/record.js';
import { openDevice } from '../../pki/device.js';
import { exportBundle } from '../../recording/bundle.js';
import { println } from '../context.js';
import type { CliContext } from '../context.js';
import { parseIsoTime } from '../options.js';
import { hex16 } from './media.js';

export function registerRecordingCommands(program: Command, ctx: CliContext): void {
  program
    .command('record')
    .description("run the camera's recording pipeline: capture (a looped Annex-B file, paced in real time) → sign in the device → encrypt → CMAF fragments + signed records in DIR")
    .requiredOption('--device <DEV>', 'device directory (key, chain.pem, counter.json)')
    .requiredOption('--source <IN.h264>', 'Annex-B H.264 file, looped as live capture (it must start with an IDR picture)')
    .requiredOption('--duration <S>', 'seconds of video to record')
    .requiredOption('--out <DIR>', 'recording directory (created; must be new or empty)')
    .option('--scheme <cbcs|cenc>', 'Common Encryption scheme (with --key)', 'cbcs')
    .option('--key <HEX>', 'AES-128 content key, 32 hex digits (without: clear CMAF, still signed)')
    .option('--kid <HEX>', 'key ID, 32 hex digits (with --key)')
    .option('--keystore <SPEC>', 'device key store, overriding device.json')
    .option('--start <ISO>', 'capture time of the first frame (default now)')
    .option('--fps <N>', 'frame rate when the SPS carries none (default 25)')
    .option('--fast', 'do not pace capture in real time (tests, batch)')
    .action(async (o: { device: string; source: string; duration: string; out: string; scheme: string; key?: string; kid?: string; keystore?: string; start?: string; fps?: string; fast?: boolean }) => {
      const seconds = Number(o.duration);
      if (!(Number.isFinite(seconds) && seconds > 0 && seconds <= 7 * 86400)) throw new UsageError('--duration must be a number of seconds, above 0 and at most a week');
      if (o.scheme !== 'cbcs' && o.scheme !== 'cenc') throw new UsageError('--scheme must be cbcs or cenc');
      if ((o.key === undefined) !== (o.kid === undefined)) throw new UsageError('--key and --kid go together');
      const key = o.key !== undefined && o.kid !== undefined ? { key: hex16(o.key, '--key'), kid: hex16(o.kid, '--kid') } : undefined;
      const start = o.start !== undefined ? parseIsoTime(o.start, '--start') : undefined;
      const fps = o.fps !== undefined ? Number(o.fps) : undefined;
      if (fps !== undefined && !(fps > 0 && fps <= 1000)) throw new UsageError('--fps must be a number between 0 and 1000');
      const device = await openDevice(resolve(o.device), o.keystore);
      const abort = new AbortController();
      const stop = (): void => abort.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const r = await recordSession({
          device,
          source: resolve(o.source),
          seconds,
          out: resolve(o.out),
          ...(key !== undefined ? { key, scheme: o.scheme } : {}),
          ...(start !== undefined ? { start } : {}),
          ...(fps !== undefined ? { fps } : {}),
          realTime: o.fast !== true,
          signal: abort.signal,
        });
        println(ctx.stdout, `recorded ${r.seconds.toFixed(3)} s (${r.frames} frames, ${r.fragments} fragments) as ${r.serial}, session ${r.session} → ${resolve(o.out)}`);
        println(ctx.stdout, `  ${r.scheme === 'none' ? 'clear (signed, not encrypted)' : `encrypted ${r.scheme}, KID ${r.kid ?? ''}`}; ${r.seiBytes} bytes of signing SEIs; closed with a signed end record`);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
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
    .action(async (dir: string, o: { out: string; exporter: string; reason: string; from?: string; to?: string; keystore?: string }) => {
      const from = o.from !== undefined ? parseIsoTime(o.from, '--from') : undefined;
      const to = o.to !== undefined ? parseIsoTime(o.to, '--to') : undefined;
      const exporter = await openDevice(resolve(o.exporter), o.keystore);
      try {
        const m = await exportBundle({ recording: resolve(dir), out: resolve(o.out), exporter, reason: o.reason, ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) });
        println(ctx.stdout, `exported ${m.exported.from} – ${m.exported.to} (fragments ${m.exported.firstSeq}–${m.exported.lastSeq}) of ${m.source.serial} session ${m.source.session} → ${resolve(o.out)}`);
        println(ctx.stdout, `  ${m.files.length} files, signed by ${m.exporter.subject}`);
        if (m.exported.note !== undefined) println(ctx.stdout, `  note: ${m.exported.note}`);
      } finally {
        await exporter.close();
      }
    });
}
