/**
 * The NVR config's settings for retention and administration (config.ts hands these keys here):
 *
 *   "freeSpaceTarget": 2147483648,         below freeSpaceFloor, retention frees space up to this (default 1.25 × floor)
 *   "retention": {
 *     "interval": "60s",                   how often retention runs (also: whenever ingest finds the disk under the floor)
 *     "batch": 1000,                       segments considered per camera and pass (bounded memory)
 *     "default": { "maxAge": "30d", "maxBytes": 1000000000000 },
 *     "policies": { "lobby": { "maxAge": "7d" } },      named policies (a group of cameras)
 *     "cameras": { "CAM-1": "lobby", "CAM-2": { "maxBytes": 5000000000 } }   camera → policy name or policy
 *   },
 *   "admins": ["ops-console"]              common names of operator-CA client certificates that reach /v1/admin/…
 */
import { InputError } from '../errors.js';
import { parseDuration } from '../util/duration.js';
import type { RetentionPolicy } from './retention.js';

export interface RetentionConfig {
  readonly intervalMs: number;
  readonly batch: number;
  readonly default: RetentionPolicy;
  readonly cameras: ReadonlyMap<string, RetentionPolicy>;
}

export const RETENTION_DEFAULTS: RetentionConfig = { intervalMs: 60_000, batch: 1000, default: {}, cameras: new Map() };

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InputError(`${what} must be an object`);
  return v as Record<string, unknown>;
}

function policy(v: unknown, what: string): RetentionPolicy {
  const o = obj(v, what);
  for (const k of Object.keys(o)) if (k !== 'maxAge' && k !== 'maxBytes') throw new InputError(`${what}: unknown setting "${k}" (known: maxAge, maxBytes)`);
  const maxBytes = o['maxBytes'];
  if (maxBytes !== undefined && (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes < 0)) throw new InputError(`${what}.maxBytes must be a number of bytes ≥ 0`);
  return { ...(o['maxAge'] !== undefined ? { maxAgeMs: parseDuration(o['maxAge'], `${what}.maxAge`) } : {}), ...(maxBytes !== undefined ? { maxBytes } : {}) };
}

export function parseRetentionConfig(v: unknown, source: string): RetentionConfig {
  if (v === undefined) return RETENTION_DEFAULTS;
  const where = `${source}: retention`;
  const o = obj(v, where);
  for (const k of Object.keys(o)) if (!['interval', 'batch', 'default', 'policies', 'cameras'].includes(k)) throw new InputError(`${where}: unknown setting "${k}"`);
  const batch = o['batch'] ?? RETENTION_DEFAULTS.batch;
  if (typeof batch !== 'number' || !Number.isSafeInteger(batch) || batch < 1 || batch > 100_000) throw new InputError(`${where}.batch must be 1–100000`);
  const intervalMs = o['interval'] === undefined ? RETENTION_DEFAULTS.intervalMs : parseDuration(o['interval'], `${where}.interval`);
  if (intervalMs < 100) throw new InputError(`${where}.interval must be at least 100ms`);
  const policies = new Map<string, RetentionPolicy>();
  for (const [name, p] of Object.entries(obj(o['policies'] ?? {}, `${where}.policies`))) policies.set(name, policy(p, `${where}.policies.${name}`));
  const cameras = new Map<string, RetentionPolicy>();
  for (const [serial, p] of Object.entries(obj(o['cameras'] ?? {}, `${where}.cameras`))) {
    if (typeof p === 'string') {
      const named = policies.get(p);
      if (named === undefined) throw new InputError(`${where}.cameras.${serial}: no policy named "${p}"`);
      cameras.set(serial, named);
    } else cameras.set(serial, policy(p, `${where}.cameras.${serial}`));
  }
  return { intervalMs, batch, default: o['default'] === undefined ? {} : policy(o['default'], `${where}.default`), cameras };
}

export function parseFreeSpaceTarget(v: unknown, floor: number, source: string): number {
  if (v === undefined) return Math.ceil(floor * 1.25);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < floor) throw new InputError(`${source}: freeSpaceTarget must be a number of bytes ≥ freeSpaceFloor`);
  return v;
}

export function parseAdmins(v: unknown, source: string): readonly string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((a) => typeof a !== 'string' || a === '')) throw new InputError(`${source}: "admins" must be a list of certificate common names`);
  return v as string[];
}
