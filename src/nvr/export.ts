/**
 * Export from the NVR's store (issue 12 §2): a camera and a time range, across sessions, as an evidence bundle or
 * an ONVIF export file — `keyframe nvr export`.
 *
 * For each verified session of the camera with verified segments overlapping [from, to), in start order, the
 * session is materialised as a recording directory (src/recording/layout.ts) in a temporary directory beside the
 * output: chain.pem, init.mp4, the segment files of the range (hard links into the store where the file system
 * allows, copies otherwise; segment 0 too, whose certificate SEI a range not starting with it carries), records.jsonl
 * — every record in chain order, as the camera signed it (materialiseRecords) — and timestamps.jsonl: the tokens the
 * NVR's TSA issued over the session's record-chain heads (stamping.ts), each with the position of its record.
 * Then the existing writers take over: one session → the v 1 bundle (bundle.ts) or the ONVIF export file; several
 * sessions → a v 2 bundle (sessions-bundle.ts). An ONVIF export file holds one init segment, so one session: an
 * ONVIF export of several sessions is a directory of one file per session (session-01.mp4 …), each sealing the list
 * of the set's sessions (OnvifExportInfo.set), which `verify` on the directory checks.
 * The temporary directory is removed at the end, and on SIGINT/SIGTERM (src/util/cleanup.ts).
 *
 * The index is opened read-only: the NVR may be running. Only verified sessions and segments are exported; what is
 * quarantined or still awaiting its record is not evidence yet. Such a fragment inside the range is a gap in the
 * export, named in absent.json with the NVR's reason (quarantined, never received), so that verify reports it
 * missing with that explanation instead of the export being refused.
 */
import { copyFile, link, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ErrorCodes, InputError, KeyframeError, ioError } from '../errors.js';
import { exportBundle, type Exporter } from '../recording/bundle.js';
import { ABSENT_FILE, CHAIN_FILE, EXPIRED_FILE, INIT_FILE, RECORDS_FILE, segmentName, type AbsentInfo } from '../recording/layout.js';
import type { FragmentRecord } from '../recording/records.js';
import { exportOnvif, type OnvifExportResult, type OnvifExporter } from '../recording/onvif-export.js';
import { exportSessionsBundle, type SessionsManifest } from '../recording/sessions-bundle.js';
import { TIMESTAMPS_FILE, formatTokenEntry } from '../recording/timestamps.js';
import type { BundleManifest } from '../recording/bundle.js';
import type { Stamper } from '../tsp/stamper.js';
import type { TimeStampInfo } from '../tsp/token.js';
import { buildDirAtomic, makeTrackedTempDir } from '../util/fs.js';
import type { NvrConfig } from './config.js';
import { NvrIndex } from './db.js';
import { expiredInfo } from './retention-service.js';
import { sessionTokens } from './stamping.js';
import { SegmentStore } from './store.js';

export interface NvrExportOptions {
  readonly config: NvrConfig;
  readonly camera: string;
  readonly from?: Date;
  readonly to?: Date;
  readonly out: string;
  readonly format: 'bundle' | 'onvif';
  readonly exporter: Exporter & OnvifExporter;
  readonly reason: string;
  readonly unitName?: string;
  /** Time-stamps the exporter's signature of a bundle (manifest.tst). */
  readonly stamper?: Stamper;
  readonly now?: Date;
  /** An ONVIF export of several sessions (a directory): replace an existing `out` (the caller checked --force). */
  readonly replace?: boolean;
}

export interface ExportedSession {
  readonly session: string;
  readonly start: string;
  readonly segments: number;
  readonly tokens: number;
}

export type NvrExportResult =
  | { readonly format: 'bundle'; readonly sessions: readonly ExportedSession[]; readonly manifest: BundleManifest | SessionsManifest; readonly timestamp?: TimeStampInfo }
  /** One ONVIF export file (`out`), or for several sessions a directory `out` with one file per session (`files`). */
  | { readonly format: 'onvif'; readonly sessions: readonly ExportedSession[]; readonly onvif: readonly OnvifExportResult[]; readonly files?: readonly string[] };

/** The file of part `i` (from 0) of an ONVIF export of several sessions, inside the output directory. */
export const onvifPartName = (i: number): string => `session-${String(i + 1).padStart(2, '0')}.mp4`;

interface ChosenSession {
  readonly session: string;
  readonly start: string;
  readonly seqs: number[];
}

/** The verified sessions of `camera` with verified segments in [from, to), in start order, with those segments. */
function chooseSessions(index: NvrIndex, camera: string, from: number, to: number): ChosenSession[] {
  const sessions = index.sql
    .prepare<[string], { session: string; start: string; start_ms: number }>('SELECT session, start, start_ms FROM sessions WHERE serial = ? AND verified = 1 AND init_sha256 IS NOT NULL ORDER BY start_ms, session')
    .all(camera);
  return sessions
    .map((s) => ({ session: s.session, start: s.start, seqs: index.segments(camera, s.session).filter((g) => g.state === 'verified' && g.wall_start !== null && g.wall_end !== null && g.wall_end > from && g.wall_start < to).map((g) => g.seq) }))
    .filter((s) => s.seqs.length > 0);
}

/** How many sessions an export of this range would hold (0: none): an ONVIF export of several is a directory. */
export function countExportSessions(config: NvrConfig, camera: string, from?: Date, to?: Date): number {
  const index = NvrIndex.openReadOnly(config.database);
  try {
    return chooseSessions(index, camera, from?.getTime() ?? -Infinity, to?.getTime() ?? Infinity).length;
  } finally {
    index.close();
  }
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch {
    try {
      await copyFile(from, to);
    } catch (e) {
      throw ioError(e, from, 'read') ?? e;
    }
  }
}

/** Writes one session of the store as a recording directory in `dir`; the segments `seqs` (and 0) only. */
async function materialise(index: NvrIndex, store: SegmentStore, serial: string, session: string, seqs: readonly number[], dir: string): Promise<number> {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(dir, { mode: 0o700 });
  await linkOrCopy(store.path(serial, session, 'chain'), join(dir, CHAIN_FILE));
  await linkOrCopy(store.path(serial, session, 'init'), join(dir, INIT_FILE));
  for (const seq of new Set([...(index.segment(serial, session, 0)?.state === 'verified' ? [0] : []), ...seqs])) await linkOrCopy(store.path(serial, session, 'seg', seq), join(dir, segmentName(seq)));
  const rows = index.records(serial, session).filter((r) => r.state === 'ok');
  await writeFile(join(dir, RECORDS_FILE), rows.map((r) => `${r.json}\n`).join(''));
  const position = new Map(rows.map((r, i) => [r.idx, i]));
  const tokens = sessionTokens(index, serial, session);
  const lines = tokens.flatMap((t) => {
    const record = position.get(t.record_idx);
    return record === undefined ? [] : [formatTokenEntry({ v: 1, record, sha256: t.sha256, token: Buffer.from(t.token).toString('base64') })];
  });
  if (lines.length > 0) await writeFile(join(dir, TIMESTAMPS_FILE), lines.join(''));
  // what retention deleted of the session: verify says "expired by retention", not "missing"
  const expired = expiredInfo(index, serial, session);
  if (expired !== undefined) await writeFile(join(dir, EXPIRED_FILE), `${JSON.stringify(expired)}\n`);
  // what else of the session's signed fragments the NVR holds no verified copy of, and why: verify says it
  const isExpired = (seq: number): boolean => expired?.ranges.some((x) => x.from <= seq && seq < x.to) ?? false;
  const absent = rows
    .filter((r) => r.kind === 'fragment')
    .map((r) => (JSON.parse(r.json) as FragmentRecord).seq)
    .filter((seq) => !isExpired(seq) && index.segment(serial, session, seq)?.state !== 'verified')
    .map((seq) => ({ seq, why: absentWhy(index, serial, session, seq) }));
  if (absent.length > 0) await writeFile(join(dir, ABSENT_FILE), `${JSON.stringify({ v: 1, fragments: absent } satisfies AbsentInfo)}\n`);
  return lines.length;
}

/** Why the NVR holds no verified copy of a fragment it has the signed record of. */
function absentWhy(index: NvrIndex, serial: string, session: string, seq: number): string {
  const row = index.segment(serial, session, seq);
  if (row?.state === 'quarantined') {
    const q = index.sql
      .prepare<[string, string, number], { reason: string; received: number }>("SELECT reason, received FROM quarantine WHERE serial = ? AND session = ? AND kind = 'seg' AND idx = ? ORDER BY id DESC LIMIT 1")
      .get(serial, session, seq);
    return `quarantined by the recorder${q !== undefined ? ` at ${new Date(q.received).toISOString()} (${q.reason})` : ''}: the bytes it received failed verification; the camera may still hold the genuine fragment`;
  }
  if (row?.state === 'pending-record') return 'received by the recorder but not yet verified';
  return 'never received by the recorder';
}

export async function exportFromNvr(o: NvrExportOptions): Promise<NvrExportResult> {
  if (o.reason.trim() === '') throw new InputError('an export needs a reason (--reason)');
  if (o.from !== undefined && o.to !== undefined && o.to.getTime() <= o.from.getTime()) throw new InputError('--to must be after --from');
  const from = o.from?.getTime() ?? -Infinity;
  const to = o.to?.getTime() ?? Infinity;
  const index = NvrIndex.openReadOnly(o.config.database);
  const store = new SegmentStore(o.config.store);
  let tmp: string | undefined;
  let untrack: (() => void) | undefined;
  try {
    const chosen = chooseSessions(index, o.camera, from, to);
    if (chosen.length === 0) {
      const known = index.cameras().some((c) => c.serial === o.camera);
      throw new KeyframeError(ErrorCodes.NOT_FOUND, known ? `no verified video of ${o.camera} between ${o.from?.toISOString() ?? 'the start'} and ${o.to?.toISOString() ?? 'the end'} in ${o.config.store}` : `the NVR holds no camera ${o.camera}`);
    }
    try {
      ({ path: tmp, untrack } = await makeTrackedTempDir(join(dirname(o.out), `.${basename(o.out)}.nvr-export-`)));
    } catch (e) {
      throw ioError(e, dirname(o.out), 'create directory') ?? e;
    }
    const dirs: string[] = [];
    const exported: ExportedSession[] = [];
    for (const [i, s] of chosen.entries()) {
      const dir = join(tmp, String(i));
      const tokens = await materialise(index, store, o.camera, s.session, s.seqs, dir);
      dirs.push(dir);
      exported.push({ session: s.session, start: s.start, segments: s.seqs.length, tokens });
    }
    // a fragment of the range the NVR holds no verified copy of is a gap in the export, named there (absent.json)
    const range = { gaps: true, ...(o.from !== undefined ? { from: o.from } : {}), ...(o.to !== undefined ? { to: o.to } : {}), ...(o.now !== undefined ? { now: o.now } : {}) };
    if (o.format === 'onvif') {
      const unit = o.unitName !== undefined ? { unitName: o.unitName } : {};
      if (dirs.length === 1) {
        const onvif = await exportOnvif({ recording: dirs[0] as string, out: o.out, exporter: o.exporter, reason: o.reason, ...range, ...unit });
        return { format: 'onvif', sessions: exported, onvif: [onvif] };
      }
      // an ONVIF export file holds one init segment, so one session: a directory of one sealed file per session, each
      // naming the whole set; the range's start bounds the first session only, its end the last one
      const sessions = chosen.map((s) => s.session);
      const onvif = await buildDirAtomic(
        o.out,
        async (outDir) => {
          const made: OnvifExportResult[] = [];
          for (const [i, dir] of dirs.entries()) {
            const part = {
              ...(i === 0 && o.from !== undefined ? { from: o.from } : {}),
              ...(i === dirs.length - 1 && o.to !== undefined ? { to: o.to } : {}),
              ...(o.now !== undefined ? { now: o.now } : {}),
            };
            made.push(await exportOnvif({ recording: dir, out: join(outDir, onvifPartName(i)), exporter: o.exporter, reason: o.reason, gaps: true, ...part, ...unit, set: { part: i + 1, sessions } }));
          }
          return made;
        },
        { replace: o.replace === true },
      );
      return { format: 'onvif', sessions: exported, onvif, files: dirs.map((_, i) => join(o.out, onvifPartName(i))) };
    }
    const common = { out: o.out, exporter: o.exporter, reason: o.reason, ...range, ...(o.stamper !== undefined ? { stamper: o.stamper } : {}) };
    const r = dirs.length === 1 ? await exportBundle({ recording: dirs[0] as string, ...common }) : await exportSessionsBundle({ recordings: dirs, ...common });
    return { format: 'bundle', sessions: exported, manifest: r.manifest, ...(r.timestamp !== undefined ? { timestamp: r.timestamp } : {}) };
  } finally {
    index.close();
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
    untrack?.();
  }
}
