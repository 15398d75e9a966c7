/**
 * What the KMS's route modules share: who the peer is (a camera's serial, an administrator's audit name — any
 * other peer is refused), and the reading of query strings and JSON bodies, a malformed one answered 400 with
 * what is wrong.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GroupKeyRefusal } from '../../errors.js';

/** A route under /v1/groups/:g. */
export type G = { Params: { g: string }; Querystring: Record<string, string | undefined> };
/** An administrator's route under /v1/admin/groups/:g, with a JSON body. */
export type A = { Params: { g: string; serial: string }; Body: Record<string, unknown> | undefined };

/** The camera on the connection: its serial. */
export function camera(req: FastifyRequest): string {
  const p = req.peer;
  if (p?.kind !== 'camera') throw new GroupKeyRefusal('not a camera');
  return p.serial;
}

/** The administrator on the connection, as audited: admin:NAME. */
export function admin(req: FastifyRequest): string {
  const p = req.peer;
  if (p?.kind !== 'admin') throw new GroupKeyRefusal('not an administrator');
  return `admin:${p.name}`;
}

export function octets(reply: FastifyReply, b: Uint8Array): FastifyReply {
  return reply.type('application/octet-stream').send(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** The long-poll wait asked for (?wait=ms), at most maxWaitMs. */
export function wait(q: Record<string, string | undefined>, maxWaitMs: number): number {
  const w = Number(q['wait'] ?? 0);
  return Number.isFinite(w) && w > 0 ? Math.min(w, maxWaitMs) : 0;
}

export function nonNegative(v: string | undefined, name: string): number {
  const n = Number(v ?? 0);
  if (!Number.isSafeInteger(n) || n < 0) throw Object.assign(new Error(name), { statusCode: 400 });
  return n;
}

/** Aborted when the client goes away (ends a long poll). */
export function abortOnClose(reply: FastifyReply): AbortSignal {
  const c = new AbortController();
  reply.raw.on('close', () => c.abort());
  return c.signal;
}

export function body(req: FastifyRequest): Record<string, unknown> {
  const b = req.body;
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw Object.assign(new Error('the body must be a JSON object'), { statusCode: 400 });
  return b as Record<string, unknown>;
}

export function optString(b: Record<string, unknown>, k: string): string | undefined {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '') throw Object.assign(new Error(`${k} must be a non-empty string`), { statusCode: 400 });
  return v;
}

export function optInt(b: Record<string, unknown>, k: string): number | undefined {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw Object.assign(new Error(`${k} must be an integer`), { statusCode: 400 });
  return v;
}

/** A JSON body's `serial`, required. */
export function requiredSerial(req: FastifyRequest): string {
  const serial = optString(body(req), 'serial');
  if (serial === undefined) throw Object.assign(new Error('serial is required'), { statusCode: 400 });
  return serial;
}
