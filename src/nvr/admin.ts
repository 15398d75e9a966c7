/**
 * The NVR's admin API (issue 12 §2) on the NVR's own listener, mutual TLS, as the KMS authenticates its
 * administrators (src/kms/http.ts, peers.ts — the same PeerClassifier): an administrator is an operator-CA client
 * certificate whose common name is in the config's "admins"; a camera is a device certificate issued by the factory
 * CA. Only administrators reach /v1/admin/…, and only cameras reach /ingest/…: any other combination is 403
 * {"error":"forbidden"}, the reason logged, never told. (The operator CA is added to the handshake's trusted roots
 * only when admins are configured; until then the NVR accepts device certificates alone, as before.)
 *
 *   GET    /v1/admin/status                                   storage (free, floor, full of locked data?), counts, alarms
 *   GET    /v1/admin/cameras                                  CameraInfo[] (ops.ts)
 *   GET    /v1/admin/cameras/{serial}/timeline?from=&to=      ISO times (default: the last 24 hours): ranges + locks
 *   GET    /v1/admin/locks?camera=&case=&all=1                active locks (all=1: released ones too)
 *   POST   /v1/admin/locks        {"camera","from","to","case","reason"}     201 {lock, audit}
 *   DELETE /v1/admin/locks/{case}?camera=C   {"reason"}                      200 {released, audit}
 *   GET    /v1/admin/audit                                    the lock audit chain and whether it verifies
 *
 * The actor of a lock or unlock made here is the administrator's certificate: `cert:CN=<name> sha256:<fp>`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import { InputError } from '../errors.js';
import type { Peer, PeerClassifier } from '../kms/peers.js';
import { FORBIDDEN } from '../server/kit.js';
import type { Logger } from '../server/log.js';
import { parseIsoTime, verifyAuditChain } from './locks.js';
import type { NvrOps } from './ops.js';
import { INGEST_PREFIX } from './protocol.js';

export const ADMIN_PREFIX = '/v1/admin/';

/** Reads a streamed body (the NVR passes bodies through as streams) up to `limit` bytes. */
export async function readBody(body: unknown, limit: number): Promise<string> {
  if (body === undefined || body === null) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body as AsyncIterable<Uint8Array>) {
    size += c.length;
    if (size > limit) throw new InputError(`body larger than ${limit} bytes`);
    chunks.push(Buffer.from(c));
  }
  return Buffer.concat(chunks).toString('utf8');
}

function json(text: string): Record<string, unknown> {
  if (text === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new InputError('the body is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InputError('the body is a JSON object');
  return v as Record<string, unknown>;
}

function str(o: Record<string, unknown>, k: string): string {
  const v = o[k];
  if (typeof v !== 'string' || v === '') throw new InputError(`"${k}" is required (a string)`);
  return v;
}

export interface AdminOptions {
  readonly ops: NvrOps;
  readonly peers: PeerClassifier;
  readonly log: Logger;
}

/** Guards every route by peer kind and registers the admin routes. */
export function registerAdmin(app: FastifyInstance, o: AdminOptions): void {
  const { ops, log } = o;
  const peerOf = new WeakMap<FastifyRequest, Peer>();
  app.addHook('onRequest', async (req, reply) => {
    const peer = await o.peers.classify(req.raw.socket as TLSSocket);
    const wantsAdmin = req.url.startsWith(ADMIN_PREFIX);
    const wantsIngest = req.url.startsWith(`${INGEST_PREFIX}/`);
    const ok = peer !== undefined && (wantsAdmin ? peer.kind === 'admin' : wantsIngest ? peer.kind === 'camera' : false);
    if (!ok) {
      log.warn({ event: 'forbidden', url: req.url.split('?')[0], peer: peer === undefined ? 'unknown' : peer.kind }, 'forbidden');
      return reply.code(403).header('connection', 'close').send(FORBIDDEN);
    }
    peerOf.set(req, peer);
    return undefined;
  });
  const actor = (req: FastifyRequest): string => {
    const p = peerOf.get(req);
    if (p?.kind !== 'admin') throw new Error('not an administrator'); // the hook let nobody else through
    return `cert:CN=${p.name} sha256:${p.fingerprint}`;
  };
  type Q = { Querystring: Record<string, string | undefined>; Params: Record<string, string> };

  app.get(`${ADMIN_PREFIX}status`, async () => ops.status());
  app.get(`${ADMIN_PREFIX}cameras`, async () => ({ cameras: ops.cameras() }));
  app.get<Q>(`${ADMIN_PREFIX}cameras/:serial/timeline`, async (req) => {
    const now = Date.now();
    const to = req.query['to'] !== undefined ? parseIsoTime(req.query['to'], 'to') : now;
    const from = req.query['from'] !== undefined ? parseIsoTime(req.query['from'], 'from') : to - 86_400_000;
    if (!(to > from)) throw new InputError('"to" must be after "from"');
    if (to - from > 366 * 86_400_000) throw new InputError('a timeline covers at most a year');
    return timelineView(ops, req.params['serial'] as string, from, to);
  });
  app.get<Q>(`${ADMIN_PREFIX}locks`, async (req) => {
    let rows = req.query['all'] === '1' ? ops.locks.all() : ops.locks.active(req.query['camera']);
    if (req.query['camera'] !== undefined) rows = rows.filter((l) => l.serial === req.query['camera']);
    if (req.query['case'] !== undefined) rows = rows.filter((l) => l.case_id === req.query['case']);
    return { locks: rows };
  });
  app.post(`${ADMIN_PREFIX}locks`, async (req, reply) => {
    const b = json(await readBody(req.body, 64 * 1024));
    const r = ops.locks.lock({ serial: str(b, 'camera'), from: parseIsoTime(str(b, 'from'), 'from'), to: parseIsoTime(str(b, 'to'), 'to'), caseId: str(b, 'case'), reason: str(b, 'reason'), actor: actor(req) });
    await ops.index.durable();
    log.info({ event: 'lock', case: r.lock.case_id, camera: r.lock.serial, actor: r.lock.created_by, audit: r.audit.seq }, `evidence lock ${r.lock.id} (case ${r.lock.case_id}) on ${r.lock.serial} by ${r.lock.created_by}`);
    return reply.code(201).send(r);
  });
  app.delete<Q>(`${ADMIN_PREFIX}locks/:case`, async (req) => {
    const b = json(await readBody(req.body, 64 * 1024));
    const reason = typeof b['reason'] === 'string' ? b['reason'] : req.query['reason'];
    if (reason === undefined || reason === '') throw new InputError('"reason" is required');
    const camera = req.query['camera'];
    const r = ops.locks.unlock({ caseId: req.params['case'] as string, ...(camera !== undefined ? { serial: camera } : {}), reason, actor: actor(req) });
    await ops.index.durable();
    log.info({ event: 'unlock', case: req.params['case'], camera, actor: actor(req), audit: r.audit.seq }, `evidence unlock of case ${req.params['case'] as string} by ${actor(req)}`);
    // released data may be what retention needs to resume ingest
    const run = await ops.retention?.run('unlock');
    return { ...r, ...(run !== undefined ? { retention: run } : {}) };
  });
  app.get(`${ADMIN_PREFIX}audit`, async () => {
    const rows = ops.locks.auditLog();
    return { verification: verifyAuditChain(rows), entries: rows.map((r) => ({ ...r, entry: JSON.parse(r.entry) as unknown })) };
  });
}

/** A camera's timeline as both APIs answer it (the admin API and the viewers' listener): ISO times. */
export function timelineView(ops: NvrOps, serial: string, from: number, to: number): Record<string, unknown> {
  const t = ops.timeline(serial, from, to);
  const iso = (ms: number): string => new Date(ms).toISOString();
  return {
    serial,
    from: iso(t.from),
    to: iso(t.to),
    ranges: t.ranges.map((r) => ({ state: r.state, from: iso(r.start), to: iso(r.end) })),
    locks: t.locks.map((l) => ({ case: l.caseId, from: iso(l.start), to: iso(l.end) })),
    totals: t.totals,
  };
}
