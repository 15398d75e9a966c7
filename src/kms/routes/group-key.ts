/**
 * The camera-facing group-key routes: a camera's groups (/v1/me), and per group the hardened protocol (welcome,
 * missed bundles by long poll, evidence of divergence, challenge, aggregate, blame) and a paper group's setup.
 * Only a camera reaches them; the service checks that it is a member. A list of bundles is framed as
 * (u32 length ‖ bundle)* (unframeBundles reads it at the camera).
 */
import type { SecureServer } from '../../server/kit.js';
import { GroupKeyRefusal } from '../../errors.js';
import type { KmsHttpOptions } from '../http.js';
import { abortOnClose, camera, nonNegative, octets, wait } from './common.js';
import type { G } from './common.js';

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

export function groupKeyRoutes(server: SecureServer, o: KmsHttpOptions): void {
  const app = server.app;
  const s = o.service;
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
  app.get<G>('/v1/groups/:g/paper', async (req) => {
    const r = s.paperSetup(req.params.g, camera(req));
    return { ...r, GK1: r.GK1 === null ? null : r.GK1.toString('base64') };
  });
}
