/**
 * `keyframe nvr export`: a camera and a time range from the NVR's store, across sessions, as an evidence bundle
 * (with the NVR's RFC 3161 tokens over each session's record chain) or an ONVIF export file (src/nvr/export.ts).
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { UsageError } from '../../errors.js';
import { loadNvrConfig } from '../../nvr/config.js';
import { countExportSessions, exportFromNvr, onvifPartName } from '../../nvr/export.js';
import { dirHolding } from './ca.js';
import { openOperatorIdentity } from '../../pki/operator-identity.js';
import type { Stamper } from '../../tsp/stamper.js';
import { checkOutput } from '../../util/fs.js';
import { println } from '../context.js';
import type { CliContext } from '../context.js';
import { collect, parseIsoTime } from '../options.js';
import { openStamper, readCrls, readRoots } from '../tsa.js';

export function registerNvrExport(nvr: Command, ctx: CliContext): void {
  nvr
    .command('export')
    .description("export a camera's video in a time range from the NVR's store, across sessions: an evidence bundle (the default; the NVR's time-stamps included, one folder per session) or an ONVIF export file (one session); `keyframe verify` checks either offline")
    .requiredOption('--config <FILE>', 'NVR config (JSON); the NVR may be running')
    .requiredOption('--camera <SERIAL>', 'camera serial')
    .option('--from <ISO>', 'start of the range (moved back to the IDR picture of its GOP)')
    .option('--to <ISO>', 'end of the range (extended to the end of its GOP)')
    .requiredOption('--out <FILE>', 'bundle (e.g. case-42.kfe.tar) or, with --format onvif, MP4 to write (a directory of one MP4 per session when the range spans several)')
    .option('--format <bundle|onvif>', 'bundle: ustar evidence bundle; onvif: ONVIF Export File Format MP4', 'bundle')
    .option('--unit <NAME>', 'with --format onvif: the exporting unit named in the file', 'keyframe NVR')
    .requiredOption('--exporter <DIR>', 'exporter identity (keyframe ca exporter-cert)')
    .requiredOption('--reason <TEXT>', 'why the evidence is exported (case number, request)')
    .option('--keystore <SPEC>', "exporter's key store, overriding identity.json")
    .option('--exporter-root <ROOT.pem>', "trust anchor for the exporter's certificate (default: the operator CA at the end of its chain.pem)")
    .option('--crl <CRL>', 'CRL (PEM or DER), repeatable: a revoked exporter (or TSA) is refused', collect, [])
    .option('--tsa <DIR>', "time-stamp the exporter's signature of a bundle (manifest.tst) with this TSA identity (e.g. the NVR's DIR/tsa)")
    .option('--force', 'replace FILE if it exists')
    .action(async (o: { config: string; camera: string; from?: string; to?: string; out: string; format: string; unit: string; exporter: string; reason: string; keystore?: string; exporterRoot?: string; crl: string[]; tsa?: string; force?: boolean }) => {
      if (o.format !== 'bundle' && o.format !== 'onvif') throw new UsageError('--format must be bundle or onvif');
      if (o.format === 'onvif' && o.tsa !== undefined) throw new UsageError("--tsa time-stamps a bundle's manifest; the ONVIF export file has no place for a token");
      const from = o.from !== undefined ? parseIsoTime(o.from, '--from') : undefined;
      const to = o.to !== undefined ? parseIsoTime(o.to, '--to') : undefined;
      const config = loadNvrConfig(resolve(o.config));
      // an ONVIF export of several sessions is a directory of one file per session
      const several = o.format === 'onvif' && countExportSessions(config, o.camera, from, to) > 1;
      const out = await checkOutput(o.out, {
        kind: several ? 'dir' : 'file',
        inputs: [config.store, config.database],
        directoryInputs: true,
        force: o.force === true,
        ...(several ? { sameKind: dirHolding(onvifPartName(0), 'an ONVIF export of several sessions') } : {}),
      });
      const crls = await readCrls(o.crl);
      const roots = o.exporterRoot !== undefined ? await readRoots(o.exporterRoot, '--exporter-root') : undefined;
      const exporter = await openOperatorIdentity(resolve(o.exporter), 'exporter', { ...(o.keystore !== undefined ? { keystore: o.keystore } : {}), ...(roots !== undefined ? { roots } : {}), ...(crls !== undefined ? { crls } : {}) });
      let stamper: Stamper | undefined;
      try {
        stamper = await openStamper({ ...(o.tsa !== undefined ? { tsa: o.tsa } : {}), ...(crls !== undefined ? { crls } : {}) }, { tsa: '--tsa', url: '--tsa-url' });
        const r = await exportFromNvr({
          config,
          camera: o.camera,
          ...(from !== undefined ? { from } : {}),
          ...(to !== undefined ? { to } : {}),
          out: out.path,
          format: o.format,
          exporter,
          reason: o.reason,
          unitName: o.unit,
          replace: out.replace,
          ...(stamper !== undefined ? { stamper } : {}),
        });
        const what = r.format === 'onvif' ? (r.files !== undefined ? `${r.files.length} ONVIF export files, one per session` : 'an ONVIF export file') : r.sessions.length > 1 ? `an evidence bundle of ${r.sessions.length} sessions` : 'an evidence bundle';
        println(ctx.stdout, `exported ${o.camera} ${from?.toISOString() ?? 'start'} – ${to?.toISOString() ?? 'end'} as ${what} → ${out.path}`);
        for (const s of r.sessions) println(ctx.stdout, `  session ${s.session} (start ${s.start}): ${s.segments} fragments, ${s.tokens} NVR time-stamps`);
        if (r.format === 'bundle') {
          println(ctx.stdout, `  signed by ${r.manifest.exporter.subject} (issuer ${r.manifest.exporter.issuer})`);
          if (r.timestamp !== undefined) println(ctx.stdout, `  signature time-stamped: genTime ${r.timestamp.genTime}`);
        } else {
          for (const [i, f] of r.onvif.entries()) println(ctx.stdout, `  ${r.files?.[i] ?? out.path}: ${f.bytes} bytes, sealed by ${f.exporter.subject} with ${f.algorithm}`);
        }
      } finally {
        await stamper?.close();
        await exporter.close();
      }
    });
}
