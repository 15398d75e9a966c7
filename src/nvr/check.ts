/**
 * `keyframe nvr check`: the index against the files, with the NVR stopped (the store's lock is held).
 *
 * Problems: an indexed object whose file is missing, or whose size or SHA-256 differs from its row; a file in a
 * session directory without a row; a quarantined object whose file is gone; temporaries left in STORE/.tmp by a
 * crash. `repair` fixes only what is safe: temporaries are removed (nothing in them was ever acknowledged), and a
 * complete file whose row is missing is indexed again when a record held in the index verifies it (a segment whose
 * fragment record signs its hash; an init segment the session record signs; a chain whose leaf verifies the session
 * record). A segment file retention expired (its row deleted, its range recorded as expired) whose unlink a crash
 * interrupted is listed in the retention journal: reported as an expired file and removed by repair, never
 * re-indexed. Everything else is reported, not touched; nothing under an evidence lock is ever removed (retention
 * journals only what it deleted with the locks checked in the same transaction).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseCertificates } from '../pki/pem.js';
import { fingerprintSha256, publicKeyObject } from '../pki/verify.js';
import { parseChainRecord } from '../recording/chain.js';
import { CHAIN_FILE, INIT_FILE, segmentSeq } from '../recording/layout.js';
import { recordSignatureValid } from '../recording/records.js';
import type { FragmentRecord, SessionRecord } from '../recording/records.js';
import type { NvrIndex } from './db.js';
import { finishRetentionJournal, retentionJournal } from './retention-service.js';
import { QUARANTINE_DIR, TMP_DIR } from './store.js';
import type { SegmentStore } from './store.js';

export type CheckProblemKind = 'expired-file' | 'missing-file' | 'size-mismatch' | 'hash-mismatch' | 'file-without-row' | 'temporary' | 'quarantine-missing';

export interface CheckProblem {
  readonly kind: CheckProblemKind;
  /** Path relative to the store. */
  readonly path: string;
  readonly detail: string;
  readonly repaired: boolean;
}

export interface CheckReport {
  readonly checked: { readonly sessions: number; readonly segments: number; readonly files: number };
  readonly problems: readonly CheckProblem[];
  /** Problems left after repair. */
  readonly unrepaired: number;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

async function dirNames(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

export async function checkStore(index: NvrIndex, store: SegmentStore, options: { readonly repair?: boolean } = {}): Promise<CheckReport> {
  const repair = options.repair === true;
  const problems: CheckProblem[] = [];
  const rel = (p: string): string => relative(store.root, p);
  let files = 0;
  const problem = (kind: CheckProblemKind, path: string, detail: string, repaired = false): void => {
    problems.push({ kind, path: rel(path), detail, repaired });
  };
  /** An indexed file: present, of its size, with its hash. */
  const indexed = async (path: string, size: number | null, sha256: string, what: string): Promise<void> => {
    const got = await sizeOf(path);
    if (got === undefined) return problem('missing-file', path, `${what} is indexed but its file is missing`);
    if (size !== null && got !== size) return problem('size-mismatch', path, `${what}: ${got} bytes on disk, ${size} indexed`);
    if ((await sha256File(path)) !== sha256) problem('hash-mismatch', path, `${what}: the file's SHA-256 is not the indexed one`);
  };

  // 1. every row against its file
  const sessions = index.allSessions();
  const segments = index.allSegments();
  for (const s of sessions) {
    if (s.chain_sha256 !== null) await indexed(store.path(s.serial, s.session, 'chain'), null, s.chain_sha256, `${s.serial}/${s.session} chain`);
    if (s.init_sha256 !== null) await indexed(store.path(s.serial, s.session, 'init'), s.init_size, s.init_sha256, `${s.serial}/${s.session} init`);
  }
  for (const g of segments) {
    if (g.state === 'quarantined') continue;
    await indexed(store.path(g.serial, g.session, 'seg', g.seq), g.size, g.sha256, `${g.serial}/${g.session} segment ${g.seq}`);
  }
  for (const q of index.quarantined()) {
    if ((await sizeOf(join(store.root, q.path))) === undefined) problem('quarantine-missing', join(store.root, q.path), `quarantined ${q.kind} of ${q.serial}/${q.session} is flagged but its file is missing`);
  }

  // 2. every file against the index
  const bySession = new Map(sessions.map((s) => [`${s.serial}/${s.session}`, s]));
  const segKeys = new Set(segments.map((g) => `${g.serial}/${g.session}/${g.seq}`));
  // files retention expired (rows gone, recorded as expired) whose unlink a crash interrupted: never re-indexed
  const journal = retentionJournal(index);
  for (const serial of await dirNames(store.root)) {
    if (serial === TMP_DIR || serial === QUARANTINE_DIR || serial.startsWith('.')) continue;
    for (const session of await dirNames(join(store.root, serial))) {
      const dir = join(store.root, serial, session);
      const s = bySession.get(`${serial}/${session}`);
      const sessionRecord = s?.verified === 1 ? (JSON.parse(index.record(serial, session, 0)?.json ?? 'null') as SessionRecord | null) : null;
      for (const name of await dirNames(dir)) {
        files++;
        const path = join(dir, name);
        const seq = segmentSeq(name);
        if (name === CHAIN_FILE) {
          if (s?.chain_sha256 !== null && s?.chain_sha256 !== undefined) continue;
          let fixed = false;
          if (repair && s !== undefined && sessionRecord !== null) {
            const pem = await readFile(path);
            const leaf = parseCertificates(pem, path)[0];
            if (leaf !== undefined && recordSignatureValid(sessionRecord, publicKeyObject(leaf))) {
              index.setChain(serial, session, createHash('sha256').update(pem).digest('hex'), fingerprintSha256(leaf));
              fixed = true;
            }
          }
          problem('file-without-row', path, fixed ? 're-indexed: its leaf verifies the session record' : 'the chain is not indexed', fixed);
        } else if (name === INIT_FILE) {
          if (s?.init_sha256 !== null && s?.init_sha256 !== undefined) continue;
          let fixed = false;
          if (repair && sessionRecord !== null) {
            const h = await sha256File(path);
            if (h === sessionRecord.init) {
              index.setInit(serial, session, h, (await sizeOf(path)) ?? 0);
              fixed = true;
            }
          }
          problem('file-without-row', path, fixed ? 're-indexed: the session record signs it' : 'the init segment is not indexed (no session record verifies it)', fixed);
        } else if (seq !== undefined && journal.has(rel(path))) {
          if (repair) await rm(path, { force: true });
          problem('expired-file', path, repair ? 'removed: expired by retention (its unlink was interrupted)' : 'expired by retention, its unlink interrupted (--repair removes it; serve does too)', repair);
        } else if (seq !== undefined) {
          if (segKeys.has(`${serial}/${session}/${seq}`)) continue;
          let fixed = false;
          if (repair && sessionRecord !== null) {
            const rec = index.records(serial, session).find((r) => r.kind === 'fragment' && r.state === 'ok' && r.verified === 1 && (parseChainRecord(r.json) as FragmentRecord).seq === seq);
            const f = rec !== undefined ? (parseChainRecord(rec.json) as FragmentRecord) : undefined;
            const h = await sha256File(path);
            if (f !== undefined && f.sha256 === h) {
              const startMs = Date.parse(sessionRecord.start);
              const at = (await stat(path)).mtimeMs;
              index.putSegment({ serial, session, seq, size: (await sizeOf(path)) ?? 0, sha256: h, state: 'verified', media_start: f.start, media_end: f.end, wall_start: Math.round(startMs + f.start * 1000), wall_end: Math.round(startMs + f.end * 1000), kid: f.kid ?? sessionRecord.kid, received: Math.round(at), skew_ms: null });
              fixed = true;
            }
          }
          problem('file-without-row', path, fixed ? 're-indexed: its signed fragment record verifies it' : `segment ${seq} is not indexed (never acknowledged; no held record verifies it)`, fixed);
        } else {
          problem('file-without-row', path, 'a file that is no part of a session');
        }
      }
    }
  }

  if (repair) await finishRetentionJournal(index, store);

  // 3. temporaries of interrupted uploads (never acknowledged)
  for (const name of await dirNames(store.tmpDir)) {
    const path = join(store.tmpDir, name);
    if (repair) await rm(path, { force: true });
    problem('temporary', path, repair ? 'removed (an upload interrupted before it was acknowledged)' : 'left by an interrupted upload (never acknowledged)', repair);
  }
  return { checked: { sessions: sessions.length, segments: segments.length, files }, problems, unrepaired: problems.filter((p) => !p.repaired).length };
}

/** Removes the temporaries of interrupted uploads (nvr serve does this at start, holding the store's lock). */
export async function removeTemporaries(store: SegmentStore): Promise<number> {
  const names = await dirNames(store.tmpDir);
  for (const n of names) await rm(join(store.tmpDir, n), { force: true });
  return names.length;
}
