/**
 * The KMS over HTTPS (fastify 5): TLS 1.3 with a client certificate required on every connection, no route
 * without one. Cameras (device certificates under the factory CA) reach /v1/enrol, /v1/me and /v1/groups/…;
 * administrators (operator-CA client certificates named in the config) reach /v1/admin/…. Any authentication or
 * authorisation failure is one answer: 403 {"error":"forbidden"}; a refused protocol message is one answer too:
 * 403 {"error":"group-key message refused"} — details go to the audit log, never to the peer.
 *
 * Binary bodies are application/octet-stream. A list of bundles is framed as (u32 length ‖ bundle)*.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TLSSocket, TlsOptions } from 'node:tls';
import { GroupKeyRefusal } from '../errors.js';
import { createSecureServer, FORBIDDEN } from '../server/kit.js';
import type { SecureServer } from '../server/kit.js';
import type { ServerLimits } from '../server/limits.js';
import type { Logger } from '../server/log.js';
import type { CrlStatus } from '../server/crl-watch.js';
import type { Peer, PeerClassifier } from './peers.js';
import type { KmsService } from './service.js';

declare module 'fastify' {
  interface FastifyRequest {
    peer: Peer | undefined;
  }
}

export function frameBundles(bundles: readonly Uint8Array[]): Buffer {
  const parts: Buffer[] = [];
  for (const b of bundles) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    parts.push(len, Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }
  return Buffer.concat(parts);
}

export function unframeBundles(body: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  let at = 0;
  while (at < b.length) {
    if (at + 4 > b.length) throw new GroupKeyRefusal('bundle list: truncated');
    const n = b.readUInt32BE(at);
    if (at + 4 + n > b.length) throw new GroupKeyRefusal('bundle list: truncated');
    out.push(new Uint8Array(b.subarray(at + 4, at + 4 + n)));
    at += 4 + n;
  }
  return out;
}

function wait(q: Record<string, string | undefined>, maxWaitMs: number): number {
  const w = Number(q['wait'] ?? 0);
  return Number.isFinite(w) && w > 0 ? Math.min(w, maxWaitMs) : 0;
}

function nonNegative(v: string | undefined, name: string): number {
  const n = Number(v ?? 0);
  if (!Number.isSafeInteger(n) || n < 0) throw Object.assign(new Error(name), { statusCode: 400 });
  return n;
}

function abortOnClose(reply: FastifyReply): AbortSignal {
  const c = new AbortController();
  reply.raw.on('close', () => c.abort());
  return c.signal;
}

export interface KmsHttpOptions {
  readonly service: KmsService;
  readonly peers: PeerClassifier;
  readonly tls: TlsOptions;
  readonly limits: ServerLimits;
  readonly maxWaitMs: number;
  readonly log: Logger;
  /** The CRLs in force and their state (src/server/crl-watch.ts). */
  readonly crlStatus?: () => readonly CrlStatus[];
}

export function buildKmsServer(o: KmsHttpOptions): SecureServer {
  const server = createSecureServer({ name: 'kms', tls: o.tls, limits: o.limits, log: o.log });
  const app = server.app;
  const s = o.service;
  app.decorateRequest('peer', undefined);
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: o.limits.maxBodyBytes }, (_req, body, done) => done(null, body));
  app.addHook('onRequest', async (req, reply) => {
    const peer = await o.peers.classify(req.raw.socket as TLSSocket);
    const wantsAdmin = req.url.startsWith('/v1/admin/');
    if (peer === undefined || (peer.kind === 'admin') !== wantsAdmin) {
      o.log.warn({ event: 'forbidden', url: req.url.split('?')[0], peer: peer === undefined ? 'unknown' : peer.kind }, 'forbidden');
      return reply.code(403).send(FORBIDDEN);
    }
    req.peer = peer;
    return undefined;
  });

  const camera = (req: FastifyRequest): string => {
    const p = req.peer;
    if (p?.kind !== 'camera') throw new GroupKeyRefusal('not a camera');
    return p.serial;
  };
  const admin = (req: FastifyRequest): string => {
    const p = req.peer;
    if (p?.kind !== 'admin') throw new GroupKeyRefusal('not an administrator');
    return `admin:${p.name}`;
  };
  type G = { Params: { g: string }; Querystring: Record<string, string | undefined> };
  const octets = (reply: FastifyReply, b: Uint8Array): FastifyReply => reply.type('application/octet-stream').send(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

  // ── cameras ──
  app.post('/v1/enrol', async (req) => {
    const p = req.peer;
    if (p?.kind !== 'camera') throw new GroupKeyRefusal('not a camera');
    const r = await s.enrol(p.serial, p.cert);
    return { serial: p.serial, generation: r.generation, blob: r.blob.toString('base64'), confirmation: r.confirmation.toString('base64'), kmsChain: r.kmsChainPem };
  });
  app.get('/v1/me', async (req) => {
    const serial = camera(req);
    return { serial, groups: s.groupsOf(serial) };
  });
  app.get<G>('/v1/groups/:g/welcome', async (req, reply) => octets(reply, await s.welcome(req.params.g, camera(req))));
  app.get<G>('/v1/groups/:g/bundles', async (req, reply) => {
    const after = nonNegative(req.query['after'], 'after must be a non-negative integer');
    const hash = req.query['hash'];
    if (hash !== undefined && !/^[0-9a-fA-F]{64}$/.test(hash)) throw Object.assign(new Error('hash must be 64 hex digits'), { statusCode: 400 });
    const list = await s.bundlesSince(req.params.g, camera(req), after, wait(req.query, o.maxWaitMs), abortOnClose(reply), hash);
    if (list.length === 0) return reply.code(204).send();
    return octets(reply, frameBundles(list));
  });
  app.post<G & { Body: Buffer }>('/v1/groups/:g/evidence', async (req) => {
    const a = s.reportDivergence(req.params.g, camera(req), req.body);
    return { alarm: a.kind };
  });
  app.get<G>('/v1/groups/:g/challenge', async (req, reply) => octets(reply, await s.challenge(req.params.g, camera(req))));
  app.post<G & { Body: Buffer }>('/v1/groups/:g/aggregate', async (req) => s.aggregate(req.params.g, camera(req), req.body));
  app.post<G & { Body: Buffer }>('/v1/groups/:g/blame', async (req) => s.blame(req.params.g, camera(req), req.body));
  const recipients = (req: FastifyRequest<G>): string[] => (req.query['to'] ?? '').split(',').filter((t) => t !== '');
  app.post<G & { Body: Buffer }>(
    '/v1/groups/:g/messages',
    {
      // the relay's quotas are checked on the declared length before the body is read; a refusal closes the
      // connection, so that the rest of a refused body is not read either
      onRequest: async (req, reply) => {
        const length = Number(req.headers['content-length'] ?? Number.NaN);
        if (!Number.isSafeInteger(length) || length < 0) return;
        try {
          s.admitPost(req.params.g, camera(req), recipients(req), length);
        } catch (e) {
          void reply.header('connection', 'close');
          throw e;
        }
      },
    },
    async (req, reply) => {
      await s.post(req.params.g, camera(req), recipients(req), req.body);
      return reply.code(204).send();
    },
  );
  app.get<G>('/v1/groups/:g/inbox', async (req, reply) => {
    const after = nonNegative(req.query['after'], 'after must be a non-negative integer');
    const page = await s.inbox(req.params.g, camera(req), after, wait(req.query, o.maxWaitMs), abortOnClose(reply));
    return { items: page.items.map((m) => ({ seq: m.seq, from: m.from, body: m.body.toString('base64') })), more: page.more };
  });
  app.get<G>('/v1/groups/:g/paper', async (req) => {
    const r = s.paperSetup(req.params.g, camera(req));
    return { ...r, GK1: r.GK1 === null ? null : r.GK1.toString('base64') };
  });

  // ── administrators ──
  type A = { Params: { g: string; serial: string }; Body: Record<string, unknown> | undefined };
  const body = (req: FastifyRequest): Record<string, unknown> => {
    const b = req.body;
    if (b === undefined || b === null) return {};
    if (typeof b !== 'object' || Array.isArray(b)) throw Object.assign(new Error('the body must be a JSON object'), { statusCode: 400 });
    return b as Record<string, unknown>;
  };
  const optString = (b: Record<string, unknown>, k: string): string | undefined => {
    const v = b[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v === '') throw Object.assign(new Error(`${k} must be a non-empty string`), { statusCode: 400 });
    return v;
  };
  const optInt = (b: Record<string, unknown>, k: string): number | undefined => {
    const v = b[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw Object.assign(new Error(`${k} must be an integer`), { statusCode: 400 });
    return v;
  };
  app.get('/v1/admin/status', async (req) => {
    admin(req);
    return { ...s.status(), connections: server.connections.stats(), relay: { bytes: s.mailbox.usage().total, limits: s.mailbox.limits }, crls: o.crlStatus?.() ?? [] };
  });
  app.get('/v1/admin/cameras', async (req) => {
    admin(req);
    return { cameras: s.cameras() };
  });
  app.get('/v1/admin/groups', async (req) => {
    admin(req);
    return { groups: s.groupIds().map((id) => s.show(id)) };
  });
  app.post<A>('/v1/admin/groups', async (req, reply) => {
    const actor = admin(req);
    const b = body(req);
    const members = b['members'] ?? [];
    if (!Array.isArray(members) || members.some((m) => typeof m !== 'string')) throw Object.assign(new Error('members must be a list of camera serials'), { statusCode: 400 });
    const mode = optString(b, 'mode');
    const view = await s.createGroup(
      {
        id: optString(b, 'id') ?? '',
        members: members as string[],
        ...(mode !== undefined ? { mode: mode as never } : {}),
        ...(optInt(b, 'degree') !== undefined ? { degree: optInt(b, 'degree') as number } : {}),
        ...(optString(b, 'leader') !== undefined ? { leader: optString(b, 'leader') as string } : {}),
        ...(optInt(b, 'refreshPeriodMs') !== undefined ? { refreshPeriodMs: optInt(b, 'refreshPeriodMs') as number } : {}),
        ...(optInt(b, 'batchWindowMs') !== undefined ? { batchWindowMs: optInt(b, 'batchWindowMs') as number } : {}),
      },
      actor,
    );
    return reply.code(201).send(view);
  });
  app.get<A>('/v1/admin/groups/:g', async (req) => {
    admin(req);
    return s.show(req.params.g);
  });
  app.post<A>('/v1/admin/groups/:g/members', async (req) => {
    const actor = admin(req);
    const serial = optString(body(req), 'serial');
    if (serial === undefined) throw Object.assign(new Error('serial is required'), { statusCode: 400 });
    return s.requestChange(req.params.g, serial, 'join', actor);
  });
  app.delete<A>('/v1/admin/groups/:g/members/:serial', async (req) => s.requestChange(req.params.g, req.params.serial, 'leave', admin(req)));
  app.put<A>('/v1/admin/groups/:g/leader', async (req) => {
    const actor = admin(req);
    const serial = optString(body(req), 'serial');
    if (serial === undefined) throw Object.assign(new Error('serial is required'), { statusCode: 400 });
    return s.setLeader(req.params.g, serial, actor);
  });
  app.post<A>('/v1/admin/groups/:g/refresh', async (req) => {
    const actor = admin(req);
    const scope = optString(body(req), 'scope') ?? 'root';
    if (scope !== 'root' && scope !== 'tree') throw Object.assign(new Error('scope must be root or tree'), { statusCode: 400 });
    return { group: req.params.g, epoch: await s.refresh(req.params.g, scope, actor) };
  });
  app.post<A>('/v1/admin/groups/:g/rebase', async (req) => s.rebase(req.params.g, admin(req)));
  app.post<A>('/v1/admin/content-key', async (req) => {
    const actor = admin(req);
    const kid = optString(body(req), 'kid');
    if (kid === undefined || !/^[0-9a-fA-F]{32}$/.test(kid)) throw Object.assign(new Error('kid must be 32 hex digits'), { statusCode: 400 });
    // audited before anything is answered; no audit row, no key (the error is a 500 with nothing in it)
    const k = s.releaseContentKey(Buffer.from(kid, 'hex'), actor);
    if (k === undefined) throw Object.assign(new Error('no content key for that KID'), { statusCode: 404 });
    o.log.info({ event: 'content-key', actor, kid: kid.toLowerCase(), camera: k.cameraId, epoch: k.epoch }, 'content key released');
    return { kid: kid.toLowerCase(), group: k.groupId, camera: k.cameraId, epoch: k.epoch, key: k.key.toString('hex') };
  });
  return server;
}
