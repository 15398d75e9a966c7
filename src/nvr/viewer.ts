/**
 * The NVR's listener for viewers (issue 13 §5): TLS 1.3 with the NVR's server certificate and no client
 * certificate; every request carries a KMS access token (`Authorization: Bearer …`), checked offline against the
 * KMS certificate (its chain checked against the operator CA at start), and is allowed by the token's ACL alone
 * (access/acl.ts) — the NVR has no accounts. Any failure of the token is one answer, 401; a right the token does
 * not give, 403.
 *
 *   GET /v1/cameras                                   the cameras the token gives any right on
 *   GET /v1/cameras/:serial/timeline?from&to          recorded / verified / missing / on-camera / lost / expired /
 *                                                     locked ranges (playback over the range)
 *   GET /v1/cameras/:serial/manifest.mpd?from&to      DASH for the range: a Period per session and key epoch
 *                                                     (mpd.ts; playback over the range)
 *   GET /v1/media/:serial/:session/init.mp4           a session's init segment (playback on the camera)
 *   GET /v1/media/:serial/:session/NNNNNN.m4s         a verified segment (playback over its time); Range requests,
 *                                                     ETag = its SHA-256, immutable
 *   GET /v1/media/:serial/:session/records            the session's signed records as the camera wrote them (JSON
 *   GET /v1/media/:serial/:session/chain.pem          lines) and its certificate chain (playback on the camera):
 *   GET /v1/trust/root.pem                            with the manufacturer root, what a viewer needs to check each
 *                                                     fragment itself, not on the NVR's word
 *   GET|POST /v1/cameras/:serial/locks               evidence locks (lock over the range; audited with the token's
 *   DELETE /v1/cameras/:serial/locks/:case           user in the NVR's lock chain, locks.ts)
 *   POST /v1/cameras/:serial/exports {from,to,case,reason}   an evidence bundle of the range, made in the
 *                                                     background (exports.ts; export over the range) → 202 job
 *   GET /v1/exports, /v1/exports/:id, /v1/exports/:id/bundle.tar   the user's own jobs and bundles
 *   WSS /v1/cameras/:serial/live                      the init segment and each CMAF chunk as it arrives (live-ws.ts;
 *                                                     live on the camera; the token as a subprotocol)
 *   GET /, /app.js, /app.css, /config.json            the viewer web app (web-app.ts): no token, as a login page
 *                                                     cannot have one; everything under /v1/ needs one
 *
 * Video stays as the camera encrypted it: the NVR serves ciphertext; the keys come from the KMS's licence.
 */
import type { KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { TlsOptions } from 'node:tls';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { aclAllows, aclCameras } from '../access/acl.js';
import type { AclEntry } from '../access/acl.js';
import { TokenRefused, verifyAccessToken } from '../access/token.js';
import type { AccessClaims } from '../access/token.js';
import { InputError, NotFoundError } from '../errors.js';
import { segmentSeq } from '../recording/layout.js';
import { createSecureServer } from '../server/kit.js';
import type { SecureServer } from '../server/kit.js';
import type { ServerLimits } from '../server/limits.js';
import type { Logger } from '../server/log.js';
import type { Right } from '../access/roles.js';
import type { NvrIndex } from './db.js';
import { parseIsoTime } from './locks.js';
import { buildMpd } from './mpd.js';
import { initTrack } from './init-track.js';
import { DEFAULT_WEB_DIR, registerWebApp } from './web-app.js';
import { ManifestRows } from './mpd-rows.js';
import type { MpdTrack } from './mpd.js';
import type { NvrOps } from './ops.js';
import type { ExportService } from './exports.js';
import { timelineView } from './admin.js';
import type { SegmentStore } from './store.js';
import type { LiveFeed } from './live.js';
import { LiveSockets } from './live-ws.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

export interface ViewerOptions {
  readonly tls: TlsOptions;
  readonly limits: ServerLimits;
  readonly log: Logger;
  readonly index: NvrIndex;
  readonly store: SegmentStore;
  readonly ops: NvrOps;
  /** The ingest's live feed (live view over a WebSocket, live-ws.ts). */
  readonly feed: LiveFeed;
  /** The KMS: its public key, the issuer name its tokens carry, this NVR's name (their audience), the licence URL. */
  readonly kms: { readonly publicKey: KeyObject; readonly issuer: string; readonly audience: string; readonly licence: string };
  /** Exports for viewers with the export right (exports.ts); absent: the export routes answer 503. */
  readonly exports?: ExportService;
  /** The KMS's list of ended sessions (revocations.ts); absent: tokens are honoured until they expire. */
  readonly revocations?: { problem(sid: string): string | undefined };
  /** The built viewer web app served at / (web-app.ts; default dist/web). */
  readonly web?: string;
  /** The manufacturer root(s), PEM: what the viewer checks camera chains against (GET /v1/trust/root.pem). */
  readonly rootPem?: string;
}

const UNAUTHORISED = { error: 'authentication failed' } as const;
const FORBIDDEN = { error: 'forbidden' } as const;
const SERIAL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SESSION = /^[0-9a-f]{32}$/;

interface SegmentRow {
  session: string;
  seq: number;
  size: number;
  sha256: string;
  media_start: number;
  media_end: number;
  wall_start: number;
  wall_end: number;
  kid: string | null;
}

function range(q: Record<string, string | undefined>): { from: number; to: number } {
  const now = Date.now();
  const to = q['to'] !== undefined ? parseIsoTime(q['to'], 'to') : now;
  const from = q['from'] !== undefined ? parseIsoTime(q['from'], 'from') : to - 3_600_000;
  if (!(to > from)) throw new InputError('"to" must be after "from"');
  if (to - from > 7 * 86_400_000) throw new InputError('a manifest or timeline covers at most 7 days');
  return { from, to };
}

export function buildViewerServer(o: ViewerOptions): SecureServer & { readonly live: LiveSockets } {
  const server = createSecureServer({ name: 'nvr-viewer', tls: o.tls, limits: o.limits, log: o.log, isAuthenticated: () => false });
  const app = server.app;
  // a token is the KMS's, for this NVR, unexpired, and of a session the KMS has not ended
  const verify = async (token: string): Promise<AccessClaims> => {
    const claims = await verifyAccessToken(token, o.kms.publicKey, { issuer: o.kms.issuer, audience: o.kms.audience });
    const problem = o.revocations?.problem(claims.sid);
    if (problem !== undefined) throw new TokenRefused(problem);
    return claims;
  };
  // a session's capture clock at media time 0, from any verified segment of it (the camera's signed records)
  const offsets = new Map<string, number>();
  const offsetOf = o.index.sqlite.prepare<[string, string], { offset: number }>("SELECT wall_start - media_start * 1000 AS offset FROM segments WHERE serial = ? AND session = ? AND state = 'verified' AND wall_start IS NOT NULL AND media_start IS NOT NULL LIMIT 1");
  const wallOffset = (serial: string, session: string): number | undefined => {
    const key = `${serial}/${session}`;
    let v = offsets.get(key);
    if (v === undefined) {
      v = offsetOf.get(serial, session)?.offset;
      if (v !== undefined) {
        if (offsets.size >= 4096) offsets.clear();
        offsets.set(key, Math.round(v));
      }
    }
    return v === undefined ? undefined : Math.round(v);
  };
  const live = new LiveSockets({ feed: o.feed, store: o.store, log: o.log, verify, wallOffset });
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    live.upgrade(req, socket, head).catch((e: unknown) => {
      o.log.warn({ event: 'live-upgrade-failed', error: (e as Error).message }, 'live upgrade failed');
      socket.destroy();
    });
  });
  // before the server closes: an upgraded socket would hold its close open
  app.addHook('preClose', async () => live.close());
  const db = o.index.sqlite;
  const tracks = new Map<string, MpdTrack>();
  // the segments wholly inside [from, to), whole hours kept between manifests (mpd-rows.ts)
  const manifestRows = new ManifestRows(db);
  const segmentAt = db.prepare<[string, string, number], SegmentRow>("SELECT session, seq, size, sha256, media_start, media_end, wall_start, wall_end, kid FROM segments WHERE serial = ? AND session = ? AND seq = ? AND state = 'verified'");

  const recordsOf = db.prepare<[string, string], { json: string }>('SELECT json FROM records WHERE serial = ? AND session = ? ORDER BY idx');
  const claimsOf = new WeakMap<FastifyRequest, AccessClaims>();
  registerWebApp(app, { dir: o.web ?? DEFAULT_WEB_DIR, kmsOrigin: new URL(o.kms.licence).origin, audience: o.kms.audience });
  app.addHook('onRequest', async (req, reply) => {
    void reply.header('cache-control', 'no-store');
    if (!req.url.startsWith('/v1/')) return undefined; // the web app (web-app.ts); any other path is a 404
    const h = req.headers.authorization;
    const token = h?.startsWith('Bearer ') === true ? h.slice(7).trim() : undefined;
    if (token === undefined) return reply.code(401).header('www-authenticate', 'Bearer').send(UNAUTHORISED);
    try {
      claimsOf.set(req, await verify(token));
    } catch (e) {
      o.log.warn({ event: 'token-refused', reason: (e as { reason?: string }).reason ?? 'unknown' }, 'access token refused');
      return reply.code(401).header('www-authenticate', 'Bearer error="invalid_token"').send(UNAUTHORISED);
    }
    return undefined;
  });
  const acl = (req: FastifyRequest): readonly AclEntry[] => claimsOf.get(req)?.acl ?? [];
  const allowed = (req: FastifyRequest, reply: FastifyReply, serial: string, right: Right, r?: { from: number; to: number }): boolean => {
    if (SERIAL.test(serial) && aclAllows(acl(req), serial, right, r)) return true;
    void reply.code(403).send(FORBIDDEN);
    return false;
  };

  type Q = { Querystring: Record<string, string | undefined>; Params: Record<string, string> };
  app.get('/v1/trust/root.pem', async (_req, reply) => (o.rootPem === undefined ? reply.code(404).send({ error: 'no manufacturer root configured' }) : reply.type('application/x-pem-file').send(o.rootPem)));
  app.get('/v1/cameras', async (req) => {
    const mine = new Set(['live', 'playback', 'export', 'lock'].flatMap((r) => aclCameras(acl(req), r as Right)));
    return { cameras: o.ops.cameras().filter((c) => mine.has(c.serial)) };
  });
  app.get<Q>('/v1/cameras/:serial/timeline', async (req, reply) => {
    const serial = req.params['serial'] as string;
    const r = range(req.query);
    if (!allowed(req, reply, serial, 'playback', r)) return reply;
    return timelineView(o.ops, serial, r.from, r.to);
  });
  app.get<Q>('/v1/cameras/:serial/manifest.mpd', async (req, reply) => {
    const serial = req.params['serial'] as string;
    const r = range(req.query);
    if (!allowed(req, reply, serial, 'playback', r)) return reply;
    const segments = manifestRows.segments(serial, r.from, r.to);
    const byTrack = new Map<string, MpdTrack>();
    for (const session of new Set(segments.map((s) => s.session))) {
      const key = `${serial}/${session}`;
      let t = tracks.get(key);
      if (t === undefined) {
        try {
          t = initTrack(await readFile(o.store.path(serial, session, 'init')));
          tracks.set(key, t);
        } catch (e) {
          o.log.warn({ event: 'init-unreadable', serial, session, error: (e as Error).message }, 'init segment unreadable: session left out of the manifest');
          continue;
        }
      }
      byTrack.set(session, t);
    }
    const xml = buildMpd({ serial, from: r.from, to: r.to, segments, tracks: byTrack, mediaBase: '/v1/media/', licenceUrl: o.kms.licence });
    return reply.type('application/dash+xml').send(xml);
  });
  // evidence locks: the lock right over the range; the actor is the token's user (audited in the NVR's lock chain)
  const actor = (req: FastifyRequest): string => `user:${claimsOf.get(req)?.sub ?? '?'} (token ${claimsOf.get(req)?.jti ?? '?'})`;
  const text = (b: unknown, k: string): string => {
    const v = typeof b === 'object' && b !== null ? (b as Record<string, unknown>)[k] : undefined;
    if (typeof v !== 'string' || v === '') throw new InputError(`"${k}" is required`);
    return v;
  };
  app.get<Q>('/v1/cameras/:serial/locks', async (req, reply) => {
    const serial = req.params['serial'] as string;
    if (!SERIAL.test(serial) || !aclCameras(acl(req), 'lock').concat(aclCameras(acl(req), 'playback')).includes(serial)) return reply.code(403).send(FORBIDDEN);
    return { locks: o.ops.locks.active(serial) };
  });
  app.post<Q & { Body: unknown }>('/v1/cameras/:serial/locks', async (req, reply) => {
    const serial = req.params['serial'] as string;
    const from = parseIsoTime(text(req.body, 'from'), 'from');
    const to = parseIsoTime(text(req.body, 'to'), 'to');
    if (!allowed(req, reply, serial, 'lock', { from, to })) return reply;
    const r = o.ops.locks.lock({ serial, from, to, caseId: text(req.body, 'case'), reason: text(req.body, 'reason'), actor: actor(req) });
    await o.ops.index.durable();
    o.log.info({ event: 'lock', case: r.lock.case_id, camera: serial, actor: r.lock.created_by, audit: r.audit.seq }, `evidence lock ${r.lock.id} (case ${r.lock.case_id}) on ${serial} by ${r.lock.created_by}`);
    return reply.code(201).send(r);
  });
  app.delete<Q & { Body: unknown }>('/v1/cameras/:serial/locks/:case', async (req, reply) => {
    const serial = req.params['serial'] as string;
    const caseId = req.params['case'] as string;
    const held = o.ops.locks.active(serial).filter((l) => l.case_id === caseId);
    // releasing needs the lock right over every range released
    if (held.some((l) => !aclAllows(acl(req), serial, 'lock', { from: l.start_ms, to: l.end_ms })) || !SERIAL.test(serial)) return reply.code(403).send(FORBIDDEN);
    const r = o.ops.locks.unlock({ caseId, serial, reason: text(req.body, 'reason'), actor: actor(req) });
    await o.ops.index.durable();
    o.log.info({ event: 'unlock', case: caseId, camera: serial, actor: actor(req), audit: r.audit.seq }, `evidence unlock of case ${caseId} on ${serial} by ${actor(req)}`);
    const run = await o.ops.retention?.run('unlock');
    return { ...r, ...(run !== undefined ? { retention: run } : {}) };
  });
  app.get<Q>('/v1/media/:serial/:session/:name', async (req, reply) => {
    const { serial, session, name } = req.params as { serial: string; session: string; name: string };
    if (!SERIAL.test(serial) || !SESSION.test(session)) return reply.code(404).send({ error: 'no such media' });
    let path: string;
    let etag: string | undefined;
    if (name === 'init.mp4' || name === 'chain.pem' || name === 'records') {
      if (!aclCameras(acl(req), 'playback').includes(serial)) return reply.code(403).send(FORBIDDEN);
      if (name === 'records') {
        // the JSON the camera signed, in chain order: session, fragments (and lost/end records) as they arrived
        const rows = recordsOf.all(serial, session);
        if (rows.length === 0) return reply.code(404).send({ error: 'no such media' });
        return reply.type('application/x-ndjson').send(rows.map((r) => r.json).join('\n') + '\n');
      }
      path = o.store.path(serial, session, name === 'init.mp4' ? 'init' : 'chain');
      if (name === 'chain.pem') {
        void reply.type('application/x-pem-file');
        return reply.send(await readFile(path).catch(() => {
          throw new NotFoundError('no such media');
        }));
      }
    } else {
      const seq = segmentSeq(name);
      if (seq === undefined) return reply.code(404).send({ error: 'no such media' });
      const seg = segmentAt.get(serial, session, seq);
      // an unknown segment and a forbidden one look the same
      if (seg === undefined || !aclAllows(acl(req), serial, 'playback', { from: seg.wall_start, to: seg.wall_end })) return reply.code(seg === undefined ? 404 : 403).send(seg === undefined ? { error: 'no such media' } : FORBIDDEN);
      path = o.store.path(serial, session, 'seg', seq);
      etag = `"${seg.sha256}"`;
    }
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch {
      throw new NotFoundError('no such media');
    }
    void reply.header('content-type', 'video/mp4').header('accept-ranges', 'bytes').header('cache-control', 'private, max-age=31536000, immutable');
    if (etag !== undefined) void reply.header('etag', etag);
    if (etag !== undefined && req.headers['if-none-match'] === etag) return reply.code(304).send();
    const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (req.headers.range !== undefined) {
      const start = m?.[1] !== undefined && m[1] !== '' ? Number(m[1]) : m?.[2] !== undefined && m[2] !== '' ? Math.max(0, size - Number(m[2])) : NaN;
      const end = m?.[1] !== undefined && m[1] !== '' && m[2] !== undefined && m[2] !== '' ? Math.min(size - 1, Number(m[2])) : size - 1;
      if (m === null || !Number.isSafeInteger(start) || start > end || start >= size) return reply.code(416).header('content-range', `bytes */${size}`).send();
      return reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`).header('content-length', String(end - start + 1)).send(createReadStream(path, { start, end }));
    }
    return reply.header('content-length', String(size)).send(createReadStream(path));
  });
  // exports (exports.ts): the export right over the range; a job and its bundle are its user's alone
  const exports = o.exports;
  const userOf = (req: FastifyRequest): string => claimsOf.get(req)?.sub ?? '?';
  const noExporter = { error: 'this NVR has no exporter identity: exports are made with keyframe nvr export' } as const;
  app.post<Q & { Body: unknown }>('/v1/cameras/:serial/exports', async (req, reply) => {
    const serial = req.params['serial'] as string;
    const from = parseIsoTime(text(req.body, 'from'), 'from');
    const to = parseIsoTime(text(req.body, 'to'), 'to');
    if (!allowed(req, reply, serial, 'export', { from, to })) return reply;
    if (exports === undefined) return reply.code(503).send(noExporter);
    const job = await exports.request({ user: userOf(req), camera: serial, from, to, caseId: text(req.body, 'case'), reason: text(req.body, 'reason') });
    return reply.code(202).header('location', `/v1/exports/${job.id}`).send(job);
  });
  app.get('/v1/exports', async (req) => ({ exports: exports?.jobsOf(userOf(req)) ?? [] }));
  app.get<Q>('/v1/exports/:id', async (req, reply) => {
    const job = exports?.job(req.params['id'] as string, userOf(req));
    return job === undefined ? reply.code(404).send({ error: 'no such export' }) : job;
  });
  app.get<Q>('/v1/exports/:id/bundle.tar', async (req, reply) => {
    const job = exports?.job(req.params['id'] as string, userOf(req));
    if (exports === undefined || job === undefined) return reply.code(404).send({ error: 'no such export' });
    // the right is checked again: a grant revoked since the request stops the download
    if (!allowed(req, reply, job.camera, 'export', { from: Date.parse(job.from), to: Date.parse(job.to) })) return reply;
    if (job.state !== 'done') return reply.code(409).send({ error: `the export is ${job.state}${job.error !== undefined ? `: ${job.error}` : ''}` });
    return reply
      .type('application/x-tar')
      .header('content-length', String(job.bytes))
      .header('content-disposition', `attachment; filename="${job.camera}-${job.case.replace(/[^A-Za-z0-9._-]/g, '_')}-${job.id.slice(0, 8)}.tar"`)
      .header('digest', `sha-256=${Buffer.from(job.sha256 as string, 'hex').toString('base64')}`)
      .send(exports.bundle(job));
  });
  return Object.assign(server, { live });
}
