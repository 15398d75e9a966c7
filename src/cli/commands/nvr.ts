/**
 * `keyframe nvr …`: the recorder.
 *
 *   nvr init     an NVR identity (operator CA, TLS server), nvr.json, the index and the store, from the CA
 *   nvr serve    ingest over HTTPS with mutual TLS until SIGINT / SIGTERM (in-flight uploads finish first)
 *   nvr status   cameras, sessions, segments, quarantine, conflicts, last seen (reads the index; the NVR may run)
 *   nvr check    the index against the files; --repair fixes what is safe (the NVR must be stopped)
 *   nvr export   a camera and a time range, across sessions, as a bundle or ONVIF export file (nvr-export.ts)
 *   nvr lock     an evidence lock on a camera's range for a case (never deleted while locked), audited
 *   nvr unlock   releases a case's locks (of one camera or all), audited; nvr locks lists them
 */
import type { Command } from 'commander';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { UsageError } from '../../errors.js';
import { checkStore } from '../../nvr/check.js';
import { NVR_DEFAULTS, loadNvrConfig } from '../../nvr/config.js';
import { NvrIndex } from '../../nvr/db.js';
import { initNvr } from '../../nvr/init.js';
import { stampingSummary } from '../../nvr/stamping.js';
import { LockStore, osActor, parseIsoTime, verifyAuditChain } from '../../nvr/locks.js';
import { startNvr } from '../../nvr/server.js';
import { SegmentStore } from '../../nvr/store.js';
import { fingerprintSha256, subjectOf } from '../../pki/verify.js';
import { createLogger } from '../../server/log.js';
import { onInterrupt } from '../../util/cleanup.js';
import { withDirLock } from '../../util/fs.js';
import { println } from '../context.js';
import type { CliContext } from '../context.js';
import { collect, parsePositiveInt } from '../options.js';
import { withCa } from './ca.js';
import { registerNvrExport } from './nvr-export.js';

/** A session start claimed this far ahead of its receipt is flagged, as ingest's skew alarm (a late upload is not). */
const SKEW_FLAG_MS = 5 * 60_000;

/** A claimed start in the future is the camera's clock; one far in the past may be its clock or a late upload. */
const skewNote = (ms: number | null): string => (ms !== null && ms < -SKEW_FLAG_MS ? " CLOCK AHEAD (the camera's clock: it claims a start after it was received)" : '');

const iso = (ms: number | null | undefined): string => (ms === null || ms === undefined ? '-' : new Date(ms).toISOString());

export function registerNvrCommands(program: Command, ctx: CliContext): void {
  const nvr = program.command('nvr').description('the recorder (NVR): ingest from cameras over mutual TLS, store, index, check');

  nvr
    .command('init')
    .description('create an NVR: TLS server identity from the operator CA, DIR/nvr.json, the index and the store')
    .requiredOption('--dir <DIR>', 'directory for nvr/, nvr.json, nvr.sqlite and store/')
    .requiredOption('--ca <DIR>', 'CA directory (its operator CA issues the NVR identity)')
    .option('--factory-root <PEM>', 'the manufacturer root camera certificates chain to (default CADIR/root.pem)')
    .option('--name <NAME>', 'NVR host name (certificate CN and DNS name)', 'localhost')
    .option('--ip <ADDR>', 'IP subjectAltName of the NVR (repeatable; default 127.0.0.1)', collect, [])
    .option('--port <N>', 'port to listen on', String(NVR_DEFAULTS.port))
    .option('--free-space-floor <BYTES>', 'bytes kept free on the store file system (below: 507)', String(NVR_DEFAULTS.freeSpaceFloor))
    .option('--keystore <SPEC>', 'key store for the NVR key (default file:DIR/nvr/keys)')
    .option('--tsa-keystore <SPEC>', "key store for the NVR's time-stamping key (default file:DIR/tsa/keys)")
    .option('--ca-keystore <SPEC>', 'CA key store, overriding the one recorded at init')
    .option('--crl <FILE>', 'CRL file every camera is checked against (default CADIR/crl.pem, issued now if missing)')
    .option('--force', 'replace an existing identity and config (an existing index and store are kept)', false)
    .action(async (o: { dir: string; ca: string; factoryRoot?: string; name: string; ip: string[]; port: string; freeSpaceFloor: string; keystore?: string; tsaKeystore?: string; caKeystore?: string; crl?: string; force: boolean }) => {
      const dir = resolve(o.dir);
      const port = parsePositiveInt(o.port, '--port', 65535);
      if (!/^\d{1,16}$/.test(o.freeSpaceFloor)) throw new UsageError(`--free-space-floor must be a number of bytes, not ${JSON.stringify(o.freeSpaceFloor)}`);
      for (const ip of o.ip) if (isIP(ip) === 0) throw new UsageError(`--ip ${JSON.stringify(ip)} is not an IPv4 or IPv6 address (a host name goes in --name)`);
      await withCa(resolve(o.ca), o.caKeystore, async (ca, caKeyStore) => {
        const r = await initNvr({
          dir,
          ca,
          caKeyStore,
          name: o.name,
          ips: o.ip.length > 0 ? o.ip : ['127.0.0.1'],
          port,
          freeSpaceFloor: Number(o.freeSpaceFloor),
          force: o.force,
          ...(o.factoryRoot !== undefined ? { factoryRoot: resolve(o.factoryRoot) } : {}),
          ...(o.keystore !== undefined ? { keystore: o.keystore } : {}),
          ...(o.tsaKeystore !== undefined ? { tsaKeystore: o.tsaKeystore } : {}),
          ...(o.crl !== undefined ? { crlFile: resolve(o.crl) } : {}),
        });
        println(ctx.stdout, `NVR identity ${subjectOf(r.nvr)} (SHA-256 ${fingerprintSha256(r.nvr)}) in ${join(dir, 'nvr')}`);
        println(ctx.stdout, `TSA ${subjectOf(r.tsa)} (EKU timeStamping, SHA-256 ${fingerprintSha256(r.tsa)}) in ${r.tsaDir}: time-stamps each camera's record chain`);
        println(ctx.stdout, `CRLs ${r.crlFile}${r.crlIssued ? ` (issued now, valid 7 days: renew with keyframe ca crl --ca ${resolve(o.ca)} --out ${r.crlFile}; the NVR reloads it)` : ''}`);
        println(ctx.stdout, `index ${r.database}${r.keptIndex ? ' (kept: it exists)' : ''}, store ${r.store}`);
        println(ctx.stdout, `config ${r.configPath}: keyframe nvr serve --config ${r.configPath}`);
      });
    });

  nvr
    .command('serve')
    .description('run the NVR until SIGINT or SIGTERM (HTTPS with mutual TLS; JSON log lines on stdout)')
    .requiredOption('--config <FILE>', 'NVR config (JSON)')
    .action(async (o: { config: string }) => {
      const config = loadNvrConfig(resolve(o.config));
      const logger = createLogger('nvr');
      let stop!: () => void;
      const stopped = new Promise<void>((r) => (stop = r));
      const release = onInterrupt(() => stop());
      try {
        const running = await startNvr(config, { logger });
        logger.info({ event: 'listening', url: running.url, store: config.store, limits: config.limits, objectLimits: config.objectLimits }, `listening on ${running.url}`);
        await stopped;
        logger.info({ event: 'stopping' }, 'stopping: new requests refused, finishing uploads in flight');
        await running.close();
        logger.info({ event: 'stopped' }, 'stopped');
      } finally {
        release();
      }
    });

  nvr
    .command('status')
    .description('cameras, sessions, segments, quarantine, conflicts and last seen, from the index (the NVR may be running)')
    .requiredOption('--config <FILE>', 'NVR config (JSON)')
    .option('--json', 'JSON output', false)
    .action((o: { config: string; json: boolean }) => {
      const config = loadNvrConfig(resolve(o.config));
      const index = NvrIndex.openReadOnly(config.database);
      try {
        const counts = index.counts();
        const cameras = index.cameraSummaries();
        const alarms = index.alarms().slice(-10);
        const quarantined = index.quarantined().slice(-10);
        // the storage alarm raised by retention (full of locked evidence: ingest answers 507) and not yet cleared
        const storage = index.alarms().filter((a) => a.kind === 'storage-full' || a.kind === 'storage-full-cleared').at(-1);
        const storageFull = storage?.kind === 'storage-full' ? storage : undefined;
        const stamping = stampingSummary(index);
        const stamps = new Map((stamping?.cameras ?? []).map((c) => [c.serial, c]));
        const skewed = (ms: number | null): boolean => ms !== null && ms < -SKEW_FLAG_MS;
        if (o.json) {
          println(
            ctx.stdout,
            JSON.stringify(
              {
                storageFull: storageFull === undefined ? null : { since: iso(storageFull.at), detail: storageFull.detail },
                counts,
                cameras: cameras.map((c) => ({ ...c, last_seen: iso(c.last_seen), clockSkewFlagged: skewed(c.skew_ms), tokens: stamps.get(c.serial)?.tokens ?? 0, lastTokenGenTime: iso(stamps.get(c.serial)?.lastGenTime) })),
                lost: index.lost(),
                recentAlarms: alarms,
                recentQuarantine: quarantined,
                ...(stamping !== undefined ? { stamping: { tokens: stamping.tokens, failing: stamping.failing, failures: stamping.failures, ...(stamping.lastError !== undefined ? { lastError: { ...stamping.lastError, at: iso(stamping.lastError.at) } } : {}) } } : {}),
              },
              null,
              2,
            ),
          );
          return;
        }
        const lines = [
          `NVR index ${config.database}, store ${config.store}`,
          ...(storageFull !== undefined ? [`  STORAGE FULL since ${iso(storageFull.at)}: ${storageFull.detail}`] : []),
          `  cameras ${counts.cameras}, sessions ${counts.sessions}, segments ${counts.segments} (verified ${counts.verified}, awaiting their record ${counts.pending}), records ${counts.records}`,
          `  quarantined ${counts.quarantined}, conflicts ${counts.conflicts}, alarms ${counts.alarms}, lost ranges ${counts.lostRanges}`,
          ...(stamping !== undefined
            ? [`  time-stamps ${stamping.tokens}, failed attempts ${stamping.failures}, sessions failing ${stamping.failing}${stamping.lastError !== undefined ? ` (last: ${iso(stamping.lastError.at)} ${stamping.lastError.serial}/${stamping.lastError.session}: ${stamping.lastError.error})` : ''}`]
            : []),
          ...cameras.map(
            (c) =>
              `  ${c.serial}  last seen ${iso(c.last_seen)}  sessions ${c.sessions}  segments ${c.segments}  bytes ${c.bytes}  quarantined ${c.quarantined}  skew ${c.skew_ms === null ? '-' : `${Math.round(c.skew_ms / 1000)} s`}${skewNote(c.skew_ms)}  tokens ${stamps.get(c.serial)?.tokens ?? 0} (last ${iso(stamps.get(c.serial)?.lastGenTime)})`,
          ),
          ...alarms.map((a) => `  ALARM ${iso(a.at)} ${a.serial}${a.session !== null ? `/${a.session}` : ''} ${a.kind}: ${a.detail}`),
          ...quarantined.map((q) => `  QUARANTINED ${iso(q.received)} ${q.serial}/${q.session} ${q.kind}${q.idx !== null ? ` ${q.idx}` : ''}: ${q.reason} (${q.path})`),
        ];
        println(ctx.stdout, lines.join('\n'));
      } finally {
        index.close();
      }
    });

  nvr
    .command('lock')
    .description('lock a camera\'s recorded range as evidence for a case: nothing in it is deleted (retention, disk watermark, check) until unlocked')
    .requiredOption('--config <FILE>', 'NVR config (JSON)')
    .requiredOption('--camera <SERIAL>', 'camera serial')
    .requiredOption('--from <ISO>', 'start, ISO 8601 with zone (e.g. 2026-12-07T03:00:00Z)')
    .requiredOption('--to <ISO>', 'end, ISO 8601 with zone')
    .requiredOption('--case <ID>', 'case id')
    .requiredOption('--reason <TEXT>', 'why (audited)')
    .action((o: { config: string; camera: string; from: string; to: string; case: string; reason: string }) => {
      const from = parseIsoTime(o.from, '--from');
      const to = parseIsoTime(o.to, '--to');
      if (!(to > from)) throw new UsageError('--to must be after --from');
      const config = loadNvrConfig(resolve(o.config));
      const index = NvrIndex.open(config.database);
      try {
        const r = new LockStore(index).lock({ serial: o.camera, from, to, caseId: o.case, reason: o.reason, actor: osActor() });
        println(ctx.stdout, `locked ${o.camera} ${iso(from)} … ${iso(to)} for case ${o.case} (lock ${r.lock.id}, by ${r.lock.created_by}; audit entry ${r.audit.seq}, chain head ${r.audit.hash})`);
        if (r.alreadyExpired > 0) println(ctx.stdout, `note: ${r.alreadyExpired} range(s) of it had already expired by retention before the lock`);
      } finally {
        index.close();
      }
    });

  nvr
    .command('unlock')
    .description('release the evidence locks of a case (of one camera with --camera), audited')
    .requiredOption('--config <FILE>', 'NVR config (JSON)')
    .requiredOption('--case <ID>', 'case id')
    .option('--camera <SERIAL>', 'only this camera\'s locks of the case')
    .requiredOption('--reason <TEXT>', 'why (audited)')
    .action((o: { config: string; case: string; camera?: string; reason: string }) => {
      const config = loadNvrConfig(resolve(o.config));
      const index = NvrIndex.open(config.database);
      try {
        const r = new LockStore(index).unlock({ caseId: o.case, ...(o.camera !== undefined ? { serial: o.camera } : {}), reason: o.reason, actor: osActor() });
        for (const l of r.released) println(ctx.stdout, `unlocked lock ${l.id}: ${l.serial} ${iso(l.start_ms)} … ${iso(l.end_ms)} of case ${l.case_id} (by ${l.released_by ?? '-'}; audit entry ${r.audit.seq})`);
      } finally {
        index.close();
      }
    });

  nvr
    .command('locks')
    .description('list evidence locks (--all: released ones too) and check the lock audit chain')
    .requiredOption('--config <FILE>', 'NVR config (JSON)')
    .option('--all', 'released locks too', false)
    .option('--json', 'JSON output', false)
    .action((o: { config: string; all: boolean; json: boolean }) => {
      const config = loadNvrConfig(resolve(o.config));
      const index = NvrIndex.openReadOnly(config.database);
      try {
        const store = new LockStore(index);
        const locks = o.all ? store.all() : store.active();
        const chain = verifyAuditChain(store.auditLog());
        if (o.json) {
          println(ctx.stdout, JSON.stringify({ locks, audit: chain }, null, 2));
        } else {
          for (const l of locks) println(ctx.stdout, `${l.id}  case ${l.case_id}  ${l.serial}  ${iso(l.start_ms)} … ${iso(l.end_ms)}  by ${l.created_by} at ${iso(l.created_at)}: ${l.reason}${l.released_at !== null ? `  RELEASED ${iso(l.released_at)} by ${l.released_by ?? '-'}: ${l.release_reason ?? ''}` : ''}`);
          println(ctx.stdout, chain.ok ? `audit chain: ${chain.entries} entries, head ${chain.head}` : `AUDIT CHAIN BROKEN at entry ${chain.seq}: ${chain.problem}`);
        }
        if (!chain.ok) ctx.setExitCode(1);
      } finally {
        index.close();
      }
    });

  nvr
    .command('check')
    .description('compare the index with the files (the NVR must be stopped); exit 1 when problems are left')
    .requiredOption('--config <FILE>', 'NVR config (JSON)')
    .option('--repair', 'remove temporaries of interrupted uploads; re-index complete files a held record verifies', false)
    .option('--json', 'JSON output', false)
    .action(async (o: { config: string; repair: boolean; json: boolean }) => {
      const config = loadNvrConfig(resolve(o.config));
      const store = new SegmentStore(config.store);
      const report = await withDirLock(
        config.store,
        async () => {
        const index = NvrIndex.open(config.database);
        try {
          return await checkStore(index, store, { repair: o.repair });
        } finally {
          index.close();
        }
      }, { waitMs: 1_000 }); // a lock left by a killed NVR is taken over on the second attempt
      if (o.json) println(ctx.stdout, JSON.stringify(report, null, 2));
      else {
        println(ctx.stdout, `checked ${report.checked.sessions} sessions, ${report.checked.segments} segments, ${report.checked.files} files in ${config.store}`);
        for (const p of report.problems) println(ctx.stdout, `  ${p.repaired ? 'repaired' : 'PROBLEM'} ${p.kind} ${p.path}: ${p.detail}`);
        println(ctx.stdout, report.unrepaired === 0 ? (report.problems.length === 0 ? 'index and files agree' : 'index and files agree after repair') : `${report.unrepaired} problem(s) left${o.repair ? '' : ' (--repair fixes what is safe)'}`);
      }
      if (report.unrepaired > 0) ctx.setExitCode(1);
    });

  registerNvrExport(nvr, ctx);
}
