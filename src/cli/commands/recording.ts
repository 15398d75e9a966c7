/**
 * `keyframe record` (the camera's own pipeline: signed, encrypted CMAF fragments and their signed records on the
 * "SD card"), `keyframe timestamp` (an RFC 3161 token over the head of a recording's record chain) and `keyframe
 * export` (a signed evidence bundle of a recording or a time range of it, by an operator-CA exporter identity).
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../../errors.js';
import { recordSession } from '../../camera/record.js';
import { openDevice } from '../../pki/device.js';
import { openOperatorIdentity } from '../../pki/operator-identity.js';
import { exportBundle } from '../../recording/bundle.js';
import { exportOnvif } from '../../recording/onvif-export.js';
import { addSeal } from '../../recording/onvif-seal.js';
import { RECORDS_FILE } from '../../recording/layout.js';
import { statInput } from '../../packager/input.js';
import { onInterrupt } from '../../util/cleanup.js';
import { checkOutput } from '../../util/fs.js';
import { TIMESTAMPS_FILE } from '../../recording/timestamps.js';
import { timestampRecording } from '../../recording/token-log.js';
import type { Stamper } from '../../tsp/stamper.js';
import { println } from '../context.js';
import type { CliContext } from '../context.js';
import { collect, parseIsoTime } from '../options.js';
import { openStamper, readCrls, readRoots } from '../tsa.js';
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
    .option('--tsa <DIR>', `time-stamp every record as it is written with this TSA identity (keyframe ca tsa-cert): tokens in OUT/${TIMESTAMPS_FILE}`)
    .action(async (o: { device: string; source: string; duration?: string; out: string; scheme: string; key?: string; kid?: string; keystore?: string; start?: string; fps?: string; fast?: boolean; force?: boolean; tsa?: string }) => {
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
      const stamper = await openStamper({ ...(o.tsa !== undefined ? { tsa: o.tsa } : {}) }, { tsa: '--tsa', url: '--tsa-url' });
      const device = await openDevice(resolve(o.device), o.keystore).catch(async (e: unknown) => {
        await stamper?.close();
        throw e;
      });
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
          ...(stamper !== undefined ? { stamper } : {}),
        });
        if (progress) ctx.stderr.write('\n');
        const how = r.scheme === 'none' ? 'clear (signed, not encrypted)' : `encrypted ${r.scheme}, KID ${r.kid ?? ''}`;
        println(ctx.stdout, `recorded ${r.seconds.toFixed(3)} s (${r.frames} frames, ${r.fragments} fragments) as ${r.serial}, session ${r.session}: ${how}; ${r.bytes} bytes with ${r.seiBytes} of signing SEIs; closed with a signed end record → ${out.path}`);
        if (stamper !== undefined) println(ctx.stdout, `  ${r.timestamped} records time-stamped by ${stamper.description} → ${TIMESTAMPS_FILE}${r.timestampFailures.length > 0 ? `; ${r.timestampFailures.length} failed (first: ${r.timestampFailures[0] ?? ''})` : ''}`);
      } finally {
        release();
        await device.close();
        await stamper?.close();
      }
    });

  program
    .command('timestamp')
    .description(`time-stamp a recording (RFC 3161): a token over the hash of the last record of its record chain, proving the whole chain up to it existed then; appended to DIR/${TIMESTAMPS_FILE}`)
    .argument('<DIR>', 'recording directory (finished, or still being recorded)')
    .option('--tsa <DIR>', "keyframe's own TSA: an identity made by keyframe ca tsa-cert (key in its key store)")
    .option('--url <URL>', 'an RFC 3161 TSA over HTTP (POST application/timestamp-query); needs --tsa-root')
    .option('--tsa-root <ROOT.pem>', 'trust anchor(s) of the TSA; every token is verified before it is stored (default with --tsa: the operator CA in its chain.pem)')
    .option('--crl <CRL>', "CRL (PEM or DER), repeatable: the TSA's chain is checked for revocation", collect, [])
    .action(async (dir: string, o: { tsa?: string; url?: string; tsaRoot?: string; crl: string[] }) => {
      if (o.tsa === undefined && o.url === undefined) throw new UsageError('name the time-stamping authority: --tsa DIR or --url URL');
      const crls = await readCrls(o.crl);
      const stamper = (await openStamper({ ...o, ...(crls !== undefined ? { crls } : {}) }, { tsa: '--tsa', url: '--url' })) as Stamper;
      try {
        const h = await timestampRecording(resolve(dir), stamper);
        const what = h.kind === 'fragment' ? `fragment record ${h.seq ?? '?'}` : h.kind === 'end' ? 'the end record (the whole recording)' : h.kind === 'lost' ? 'a lost record' : 'the session record';
        println(ctx.stdout, `time-stamped ${what} (line ${h.record + 1}, SHA-256 ${h.sha256}) of ${resolve(dir)}`);
        println(ctx.stdout, `  genTime ${h.info.genTime} by ${h.info.tsa?.subject ?? stamper.description}, serial ${h.info.serialNumber} → ${join(resolve(dir), TIMESTAMPS_FILE)}`);
      } finally {
        await stamper.close();
      }
    });

  program
    .command('export')
    .description('export a recording, or a time range of it, as one evidence bundle (ustar, the default) or one ONVIF export file (--format onvif: an MP4 that players play, sealed by the exporter); `keyframe verify` checks either offline')
    .argument('<DIR>', 'recording directory')
    .requiredOption('--out <FILE>', 'evidence bundle (e.g. case-42.kfe.tar) or, with --format onvif, export MP4 (e.g. case-42.mp4) to write')
    .option('--format <bundle|onvif>', 'bundle: ustar evidence bundle; onvif: ONVIF Export File Format MP4', 'bundle')
    .option('--unit <NAME>', 'with --format onvif: the exporting unit named in the file (suep ExportUnitName)', 'keyframe')
    .requiredOption('--exporter <DIR>', 'exporter identity (keyframe ca exporter-cert): an operator-CA certificate for evidence export and its key store')
    .requiredOption('--reason <TEXT>', 'why the evidence is exported (case number, request)')
    .option('--from <ISO>', 'start of the range (moved back to the IDR picture of its GOP)')
    .option('--to <ISO>', 'end of the range (extended to the end of its GOP)')
    .option('--keystore <SPEC>', "exporter's key store, overriding identity.json")
    .option('--force', 'replace BUNDLE if it exists')
    .option('--exporter-root <ROOT.pem>', "trust anchor for the exporter's certificate (default: the operator CA at the end of its chain.pem)")
    .option('--crl <CRL>', 'CRL (PEM or DER), repeatable: a revoked exporter (or TSA) is refused', collect, [])
    .option('--tsa <DIR>', "time-stamp the exporter's signature with keyframe's own TSA (manifest.tst)")
    .option('--tsa-url <URL>', "time-stamp the exporter's signature with an RFC 3161 TSA over HTTP (needs --tsa-root)")
    .option('--tsa-root <ROOT.pem>', 'trust anchor(s) of the TSA')
    .action(async (dir: string, o: { out: string; format: string; unit: string; exporter: string; reason: string; from?: string; to?: string; keystore?: string; force?: boolean; exporterRoot?: string; crl: string[]; tsa?: string; tsaUrl?: string; tsaRoot?: string }) => {
      if (o.format !== 'bundle' && o.format !== 'onvif') throw new UsageError('--format must be bundle or onvif');
      if (o.format === 'onvif' && (o.tsa !== undefined || o.tsaUrl !== undefined)) throw new UsageError('--tsa and --tsa-url time-stamp a bundle\'s manifest; the ONVIF export file has no place for a token (time-stamp the recording instead: keyframe timestamp)');
      const from = o.from !== undefined ? parseIsoTime(o.from, '--from') : undefined;
      const to = o.to !== undefined ? parseIsoTime(o.to, '--to') : undefined;
      const out = await checkOutput(o.out, { kind: 'file', inputs: [dir], directoryInputs: true, force: o.force === true });
      const crls = await readCrls(o.crl);
      const roots = o.exporterRoot !== undefined ? await readRoots(o.exporterRoot, '--exporter-root') : undefined;
      const exporter = await openOperatorIdentity(resolve(o.exporter), 'exporter', {
        ...(o.keystore !== undefined ? { keystore: o.keystore } : {}),
        ...(roots !== undefined ? { roots } : {}),
        ...(crls !== undefined ? { crls } : {}),
      });
      if (o.format === 'onvif') {
        try {
          const r = await exportOnvif({
            recording: resolve(dir),
            out: out.path,
            exporter,
            reason: o.reason,
            unitName: o.unit,
            ...(from !== undefined ? { from } : {}),
            ...(to !== undefined ? { to } : {}),
          });
          const x = r.info.exported;
          println(ctx.stdout, `exported ${x.from} – ${x.to} (fragments ${x.firstSeq}–${x.lastSeq}) of ${r.info.source.serial} session ${r.info.source.session} as an ONVIF export file → ${out.path}`);
          println(ctx.stdout, `  ${r.bytes} bytes, capture start ${r.startTime}, sealed by ${r.exporter.subject} (issuer ${r.exporter.issuer}) with ${r.algorithm}`);
          if (x.note !== undefined) println(ctx.stdout, `  note: ${x.note}`);
        } finally {
          await exporter.close();
        }
        return;
      }
      let stamper: Stamper | undefined;
      try {
        stamper = await openStamper(
          { ...(o.tsa !== undefined ? { tsa: o.tsa } : {}), ...(o.tsaUrl !== undefined ? { url: o.tsaUrl } : {}), ...(o.tsaRoot !== undefined ? { tsaRoot: o.tsaRoot } : {}), ...(crls !== undefined ? { crls } : {}) },
          { tsa: '--tsa', url: '--tsa-url' },
        );
        const { manifest: m, timestamp } = await exportBundle({
          recording: resolve(dir),
          out: out.path,
          exporter,
          reason: o.reason,
          ...(from !== undefined ? { from } : {}),
          ...(to !== undefined ? { to } : {}),
          ...(stamper !== undefined ? { stamper } : {}),
        });
        println(ctx.stdout, `exported ${m.exported.from} – ${m.exported.to} (fragments ${m.exported.firstSeq}–${m.exported.lastSeq}) of ${m.source.serial} session ${m.source.session} → ${out.path}`);
        println(ctx.stdout, `  ${m.files.length} files, signed by ${m.exporter.subject} (issuer ${m.exporter.issuer})`);
        if (timestamp !== undefined) println(ctx.stdout, `  signature time-stamped: genTime ${timestamp.genTime} by ${timestamp.tsa?.subject ?? stamper?.description ?? ''}`);
        if (m.exported.note !== undefined) println(ctx.stdout, `  note: ${m.exported.note}`);
      } finally {
        await stamper?.close();
        await exporter.close();
      }
    });

  program
    .command('seal')
    .description('repeated signing of an ONVIF export file (keyframe export --format onvif): writes a copy with one more seal (a ProtectionSchemeInfoBox at the foot of ipro) over the whole file and every earlier seal, by an operator-CA identity; `keyframe verify` checks every seal')
    .argument('<FILE>', 'sealed ONVIF export file')
    .requiredOption('--out <FILE>', 'the copy to write')
    .requiredOption('--exporter <DIR>', 'identity that seals (keyframe ca exporter-cert): an operator-CA certificate for evidence export and its key store')
    .option('--note <TEXT>', 'why this seal (the AdditionalUserInformationBox), e.g. "received by the court registry, case 42"')
    .option('--keystore <SPEC>', "the identity's key store, overriding identity.json")
    .option('--force', 'replace FILE given as --out if it exists')
    .option('--exporter-root <ROOT.pem>', "trust anchor for the identity's certificate (default: the operator CA at the end of its chain.pem)")
    .option('--crl <CRL>', 'CRL (PEM or DER), repeatable: a revoked identity is refused', collect, [])
    .action(async (file: string, o: { out: string; exporter: string; note?: string; keystore?: string; force?: boolean; exporterRoot?: string; crl: string[] }) => {
      const out = await checkOutput(o.out, { kind: 'file', inputs: [file], force: o.force === true });
      const crls = await readCrls(o.crl);
      const roots = o.exporterRoot !== undefined ? await readRoots(o.exporterRoot, '--exporter-root') : undefined;
      const sealer = await openOperatorIdentity(resolve(o.exporter), 'exporter', {
        ...(o.keystore !== undefined ? { keystore: o.keystore } : {}),
        ...(roots !== undefined ? { roots } : {}),
        ...(crls !== undefined ? { crls } : {}),
      });
      try {
        const r = await addSeal({ input: resolve(file), out: out.path, sealer, ...(o.note !== undefined ? { userInformation: o.note } : {}) });
        println(ctx.stdout, `added seal ${r.index} by ${r.signer.subject} (issuer ${r.signer.issuer}) with ${r.algorithm} → ${out.path} (${r.bytes} bytes)`);
      } finally {
        await sealer.close();
      }
    });
}
