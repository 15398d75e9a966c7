/**
 * The limits every keyframe server runs under (docs/security.md): how many connections it holds, how long a TLS
 * handshake, the request headers and a whole request may take to arrive, how long a connection may sit idle, and
 * how large a body may be. One set of defaults, overridable per service from its config file's "limits" object:
 *
 *   "limits": { "maxConnections": 2048, "handshakeTimeout": "10s", "headersTimeout": "10s",
 *               "requestTimeout": "30s", "idleTimeout": "90s", "keepAliveTimeout": "5s",
 *               "maxBodyBytes": 1048576, "maxRequestsPerSocket": 0 }
 */
import { InputError } from '../errors.js';
import { parseDuration } from '../util/duration.js';

export interface ServerLimits {
  /** Open connections, authenticated or not; at the cap the oldest unauthenticated one is shed for a new one. */
  readonly maxConnections: number;
  /** A TLS handshake must complete within this time (a silent or half-open socket is closed). */
  readonly handshakeTimeoutMs: number;
  /** A request's headers must arrive within this time. */
  readonly headersTimeoutMs: number;
  /** A whole request (headers and body) must arrive within this time: a body trickled byte by byte is cut off. */
  readonly requestTimeoutMs: number;
  /** A connection with no traffic either way for this long is closed (must exceed the longest long poll). */
  readonly idleTimeoutMs: number;
  /** How long a connection is kept open between requests. */
  readonly keepAliveTimeoutMs: number;
  /** The largest request body, in bytes. */
  readonly maxBodyBytes: number;
  /** Requests on one connection before it is closed (0: no limit). */
  readonly maxRequestsPerSocket: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxConnections: 2048,
  handshakeTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 90_000,
  keepAliveTimeoutMs: 5_000,
  maxBodyBytes: 1024 * 1024,
  maxRequestsPerSocket: 0,
};

const DURATIONS = ['handshakeTimeout', 'headersTimeout', 'requestTimeout', 'idleTimeout', 'keepAliveTimeout'] as const;
const COUNTS = ['maxConnections', 'maxBodyBytes', 'maxRequestsPerSocket'] as const;

/** The "limits" object of a config file over `base`; unknown keys and bad values are named. */
export function parseLimits(raw: unknown, where: string, base: ServerLimits = DEFAULT_LIMITS): ServerLimits {
  if (raw === undefined) return base;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InputError(`${where}: "limits" must be an object`);
  const o = raw as Record<string, unknown>;
  const known = new Set<string>([...DURATIONS, ...COUNTS]);
  for (const k of Object.keys(o)) if (!known.has(k)) throw new InputError(`${where}: unknown limit "${k}" (known: ${[...known].join(', ')})`);
  const out: Record<string, number> = { ...base };
  for (const k of DURATIONS) {
    if (o[k] === undefined) continue;
    const ms = parseDuration(o[k], `${where}: limits.${k}`);
    if (ms < 100) throw new InputError(`${where}: limits.${k} must be at least 100ms`);
    out[`${k}Ms`] = ms;
  }
  for (const k of COUNTS) {
    const v = o[k];
    if (v === undefined) continue;
    const min = k === 'maxRequestsPerSocket' ? 0 : 1;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new InputError(`${where}: limits.${k} must be an integer ≥ ${min}`);
    out[k] = v;
  }
  const limits = out as unknown as ServerLimits;
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) throw new InputError(`${where}: limits.headersTimeout must not exceed limits.requestTimeout`);
  return limits;
}
