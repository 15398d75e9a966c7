/**
 * An audit log as a file (JSON Lines), for offline verification (`keyframe audit export | verify | show`):
 *
 *   {"format":"keyframe-audit-log","version":1,"origin":…,"chain":[PEM…],"size":N,"head":…,"exportedAt":…}
 *   {"seq":1,"entry":"…canonical JSON…","leaf":…,"prev":…,"hash":…}          one line per entry, in order
 *   {"checkpoint":{"size":…,"head":…,"at":…,"body":…,"signature":…}}          one line per signed checkpoint
 *
 * Verification trusts nothing in the file: the signer's certificate (chain[0]) must chain to the operator CA the
 * verifier names, the origin must be that certificate's, and then the chain and every checkpoint are checked
 * (chain.ts), naming the first broken entry. The same check runs on a KMS database file (read-only; the KMS must be
 * stopped: it holds its database exclusively), given the KMS's certificate chain.
 */
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { InputError, NotFoundError, errnoCode } from '../errors.js';
import { parseCertificates } from '../pki/pem.js';
import { publicKeyObject, subjectOf, verifyCertificate } from '../pki/verify.js';
import type { X509Certificate } from '../pki/x509.js';
import { verifyLog } from './chain.js';
import type { ChainRow, Checkpoint, LogCheck } from './chain.js';

export const AUDIT_EXPORT_FORMAT = 'keyframe-audit-log';

/** The name a KMS signs its checkpoints (and access tokens) as: its certificate's subject. */
export function auditOrigin(identity: X509Certificate): string {
  return `keyframe-kms ${identity.subject}`;
}

export interface AuditExport {
  readonly origin: string;
  /** The signer's certificate chain, PEM, leaf first. */
  readonly chain: readonly string[];
  readonly rows: ChainRow[];
  readonly checkpoints: Checkpoint[];
}

export function formatAuditExport(e: AuditExport, exportedAt = new Date()): string {
  const head = e.rows.at(-1)?.hash ?? '0'.repeat(64);
  const lines = [JSON.stringify({ format: AUDIT_EXPORT_FORMAT, version: 1, origin: e.origin, chain: e.chain, size: e.rows.length, head, exportedAt: exportedAt.toISOString() })];
  for (const r of e.rows) lines.push(JSON.stringify({ seq: r.seq, entry: r.entry, leaf: r.leaf, prev: r.prev, hash: r.hash }));
  for (const c of e.checkpoints) lines.push(JSON.stringify({ checkpoint: { size: c.size, head: c.head, at: c.at, body: c.body, signature: c.signature } }));
  return `${lines.join('\n')}\n`;
}

function str(o: Record<string, unknown>, k: string, where: string): string {
  const v = o[k];
  if (typeof v !== 'string') throw new InputError(`${where}: "${k}" must be a string`);
  return v;
}
function int(o: Record<string, unknown>, k: string, where: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new InputError(`${where}: "${k}" must be an integer`);
  return v;
}

/** Parses an export; InputError naming the line for anything malformed (a verifier then names broken entries). */
export function parseAuditExport(text: string, source: string): AuditExport {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const parsed = lines.map((l, i) => {
    try {
      const v: unknown = JSON.parse(l);
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
      return v as Record<string, unknown>;
    } catch {
      throw new InputError(`${source}:${i + 1}: not a JSON object`);
    }
  });
  const header = parsed[0];
  if (header?.['format'] !== AUDIT_EXPORT_FORMAT || header['version'] !== 1) throw new InputError(`${source} is not a keyframe audit log export (first line: format ${AUDIT_EXPORT_FORMAT}, version 1)`);
  const chain = header['chain'];
  if (!Array.isArray(chain) || chain.length === 0 || chain.some((c) => typeof c !== 'string')) throw new InputError(`${source}:1: "chain" must list the signer's certificates (PEM)`);
  const rows: ChainRow[] = [];
  const checkpoints: Checkpoint[] = [];
  parsed.slice(1).forEach((o, i) => {
    const where = `${source}:${i + 2}`;
    const c = o['checkpoint'];
    if (c !== undefined) {
      if (typeof c !== 'object' || c === null) throw new InputError(`${where}: "checkpoint" must be an object`);
      const cp = c as Record<string, unknown>;
      checkpoints.push({ size: int(cp, 'size', where), head: str(cp, 'head', where), at: int(cp, 'at', where), body: str(cp, 'body', where), signature: str(cp, 'signature', where) });
    } else {
      rows.push({ seq: int(o, 'seq', where), entry: str(o, 'entry', where), leaf: str(o, 'leaf', where), prev: str(o, 'prev', where), hash: str(o, 'hash', where) });
    }
  });
  return { origin: str(header, 'origin', `${source}:1`), chain: chain as string[], rows, checkpoints };
}

/** Reads an export file, or a KMS database file (with the KMS's chain from `kmsChainFile`). */
export function readAuditLog(file: string, kmsChainFile?: string): AuditExport {
  let head: Buffer;
  try {
    head = readFileSync(file);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`audit log not found: ${file}`);
    throw e;
  }
  if (head.subarray(0, 16).toString('latin1') !== 'SQLite format 3\0') return parseAuditExport(head.toString('utf8'), file);
  if (kmsChainFile === undefined) throw new InputError(`${file} is a database: name the KMS's certificate chain (its identity's chain.pem) with --kms-chain`);
  const chainPem = (() => {
    try {
      return readFileSync(kmsChainFile, 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`KMS certificate chain not found: ${kmsChainFile}`);
      throw e;
    }
  })();
  const certs = parseCertificates(Buffer.from(chainPem), kmsChainFile);
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: 100 });
  } catch (e) {
    throw new InputError(`${file}: ${(e as Error).message}`);
  }
  try {
    const rows = db.prepare<[], ChainRow>('SELECT seq, entry, leaf, prev, hash FROM audit ORDER BY seq').all();
    const checkpoints = db.prepare<[], Checkpoint>('SELECT size, head, at, body, signature FROM audit_checkpoints ORDER BY size').all();
    return { origin: auditOrigin(certs[0] as X509Certificate), chain: certs.map((c) => c.toString('pem')), rows, checkpoints };
  } catch (e) {
    const m = (e as Error).message;
    if (/locked|busy/i.test(m)) throw new InputError(`${file} is in use by a running KMS: export its log with keyframe audit export, or stop the KMS`);
    if (/no such (table|column)/.test(m)) throw new InputError(`${file} has no audit chain (a KMS database before schema 3: start the KMS once to upgrade it)`);
    throw new InputError(`${file}: ${m}`);
  } finally {
    db.close();
  }
}

export interface AuditVerification extends LogCheck {
  readonly signer: string;
  /** Why the signer is not trusted, when it is not. */
  readonly signerProblem?: string;
}

/** Verifies an audit log against the operator CA (module comment). */
export async function verifyAuditExport(e: AuditExport, operatorCa: X509Certificate, at = new Date()): Promise<AuditVerification> {
  const certs = parseCertificates(Buffer.from(e.chain.join('\n')), 'the log\'s signer chain');
  const leaf = certs[0] as X509Certificate;
  const signer = subjectOf(leaf);
  const trust = await verifyCertificate(leaf, { roots: [operatorCa], intermediates: certs.slice(1), purpose: 'tls-server', at });
  const empty = { ok: false, entries: e.rows.length, head: '', checkpoints: e.checkpoints.length, covered: 0, uncovered: e.rows.length };
  if (!trust.valid) return { ...empty, signer, signerProblem: `the signer ${signer} does not chain to the operator CA: ${trust.reason ?? trust.code ?? 'invalid'}`, problem: { message: `the signer ${signer} is not trusted` } };
  const origin = auditOrigin(leaf);
  if (e.origin !== origin) return { ...empty, signer, problem: { message: `the log says it is ${JSON.stringify(e.origin)}, but its certificate is ${JSON.stringify(origin)}` } };
  return { ...verifyLog(e.rows, e.checkpoints, publicKeyObject(leaf), origin), signer };
}
