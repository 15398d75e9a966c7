/**
 * The NVR's configuration file (JSON), `keyframe nvr serve --config nvr.json`. Relative paths are resolved
 * against the file's directory.
 *
 *   {
 *     "listen": { "host": "127.0.0.1", "port": 8444 },
 *     "identity": "nvr",                     site directory (operator CA, TLS server): site.json, chain.pem, keys
 *     "keystore": "file:…",                  optional: overrides the identity's key store spec
 *     "trust": { "root": "ca/root.pem",      the manufacturer root device chains must lead to
 *                "factory": "ca/factory.pem", optional: further CRL issuers (the factory CA; the
 *                "operator": "ca/operator.pem"  operator CA, whose CRL `keyframe ca crl` writes in the same file)
 *                "crls": ["ca/crl.pem"] },  CRL files, reloaded when they change (a revoked camera is refused
 *                                          within crlCheck, without a restart)
 *     "store": "store",                      the segment store directory
 *     "database": "nvr.sqlite",              the index
 *     "freeSpaceFloor": 1073741824,          bytes kept free on the store's file system: below, ingest answers 507
 *     "objectLimits": { "chain": 65536, "init": 1048576, "seg": 67108864, "rec": 65536 },
 *     "limits": { "maxConnections": 2048, "requestTimeout": "60s", … }   src/server/limits.ts
 *     "crlCheck": "5s",
 *     "tsa": "tsa",                          optional: the NVR's TSA identity (operator CA, EKU timeStamping): with it
 *     "tsaKeystore": "file:…",               the NVR time-stamps each camera's record-chain head (stamping.ts);
 *     "stampInterval": "5s",                 overrides its key store; how often it stamps
 *     "freeSpaceTarget": …, "retention": { … }, "admins": [ … ]   src/nvr/ops-config.ts
 *     "viewer": { "host": "127.0.0.1", "port": 8446 },   the viewers' listener (viewer.ts; TLS, no client certificate,
 *                                          KMS access tokens); absent: none. It needs "kms":
 *     "kms": { "chain": "kms/chain.pem",    the KMS's certificate chain (checked against trust.operator at start)
 *              "name": "nvr",             this NVR's name: the audience of the tokens it takes
 *              "licence": "https://kms:8444/v1/licence",    the licence URL written into manifests
 *              "revocations": "https://kms:8444/v1/revoked" }  the KMS's list of ended sessions (default: beside the
 *                                          licence URL); false: tokens are honoured until they expire (weaker)
 *     "exporter": "exporter",               optional: the NVR's exporter identity (operator CA, evidence-export EKU;
 *     "exporterKeystore": "file:…",          keyframe ca exporter-cert): viewers with the export right get bundles
 *     "exports": "exports"                   signed by it (exports.ts), kept here (default: beside the database)
 *   }
 */
import { dirname, resolve } from 'node:path';
import { parseCrlFiles, parseKeystoreSpec, parseListen, parseServiceObject, pathResolver, readServiceConfig, settingString } from '../server/service-config.js';
import { InputError } from '../errors.js';
import { DEFAULT_LIMITS, parseLimits } from '../server/limits.js';
import type { ServerLimits } from '../server/limits.js';
import { parseDuration } from '../util/duration.js';
import { DEFAULT_OBJECT_LIMITS } from './ingest.js';
import type { ObjectLimits } from './ingest.js';
import { DEFAULT_STAMP_INTERVAL_MS } from './stamping.js';
import { parseAdmins, parseFreeSpaceTarget, parseRetentionConfig } from './ops-config.js';
import type { RetentionConfig } from './ops-config.js';

export interface NvrConfig {
  readonly listen: { readonly host: string; readonly port: number };
  readonly identity: string;
  readonly keystore?: string;
  readonly trust: { readonly root: string; readonly factory?: string; readonly operator?: string; readonly crls?: readonly string[] };
  readonly store: string;
  readonly database: string;
  readonly freeSpaceFloor: number;
  readonly objectLimits: ObjectLimits;
  readonly limits: ServerLimits;
  readonly crlCheckMs: number;
  /** The NVR's time-stamping authority (stamping.ts), when configured. */
  readonly tsa?: { readonly dir: string; readonly keystore?: string; readonly intervalMs: number };
  /** Retention and administration (ops-config.ts). */
  readonly freeSpaceTarget: number;
  readonly retention: RetentionConfig;
  readonly admins: readonly string[];
  /** The viewers' listener and the KMS whose access tokens it takes (viewer.ts). */
  readonly viewer?: { readonly host: string; readonly port: number };
  readonly kms?: { readonly chain: string; readonly name: string; readonly licence: string; readonly revocations: string | false };
  /** The exporter identity of exports through the viewers' listener, its key store, and where exports are kept. */
  readonly exporter?: { readonly identity: string; readonly keystore?: string; readonly dir: string };
}

export const NVR_DEFAULTS = { host: '127.0.0.1', port: 8444, freeSpaceFloor: 1024 * 1024 * 1024, crlCheckMs: 5_000 } as const;

/** A segment may take a GOP to arrive when streamed as it is produced: a minute per request. */
export const NVR_LIMITS: ServerLimits = { ...DEFAULT_LIMITS, requestTimeoutMs: 60_000, maxBodyBytes: DEFAULT_OBJECT_LIMITS.seg };

export function parseNvrConfig(text: string, baseDir: string, source = 'NVR config'): NvrConfig {
  const o = parseServiceObject(text, source, ['listen', 'identity', 'keystore', 'trust', 'store', 'database', 'freeSpaceFloor', 'objectLimits', 'limits', 'crlCheck', 'tsa', 'tsaKeystore', 'stampInterval', 'freeSpaceTarget', 'retention', 'admins', 'viewer', 'kms', 'exporter', 'exporterKeystore', 'exports']);
  const path = pathResolver(baseDir);
  const { host, port } = parseListen(o['listen'], source, NVR_DEFAULTS);
  const trustRaw = o['trust'];
  if (typeof trustRaw !== 'object' || trustRaw === null || Array.isArray(trustRaw)) throw new InputError(`${source}: "trust" must name the manufacturer root certificate file`);
  const t = trustRaw as Record<string, unknown>;
  const crls = parseCrlFiles(t, source);
  const factory = t['factory'];
  if (factory !== undefined && (typeof factory !== 'string' || factory === '')) throw new InputError(`${source}: trust.factory must be a certificate file name`);
  const operator = t['operator'];
  if (operator !== undefined && (typeof operator !== 'string' || operator === '')) throw new InputError(`${source}: trust.operator must be a certificate file name`);
  const keystore = parseKeystoreSpec(o, 'keystore', source);
  const floor = o['freeSpaceFloor'] ?? NVR_DEFAULTS.freeSpaceFloor;
  if (typeof floor !== 'number' || !Number.isSafeInteger(floor) || floor < 0) throw new InputError(`${source}: freeSpaceFloor must be a number of bytes ≥ 0`);
  const olRaw = o['objectLimits'] ?? {};
  if (typeof olRaw !== 'object' || olRaw === null || Array.isArray(olRaw)) throw new InputError(`${source}: "objectLimits" must be an object`);
  const objectLimits: Record<string, number> = { ...DEFAULT_OBJECT_LIMITS };
  for (const [k, v] of Object.entries(olRaw as Record<string, unknown>)) {
    if (!(k in DEFAULT_OBJECT_LIMITS)) throw new InputError(`${source}: unknown object limit "${k}" (known: chain, init, seg, rec)`);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new InputError(`${source}: objectLimits.${k} must be a number of bytes ≥ 1`);
    objectLimits[k] = v;
  }
  const ol = objectLimits as unknown as ObjectLimits;
  const tsaDir = o['tsa'] === undefined ? undefined : settingString(o, 'tsa', source);
  const tsaKeystore = o['tsaKeystore'] === undefined ? undefined : settingString(o, 'tsaKeystore', source);
  if (tsaDir === undefined && (tsaKeystore !== undefined || o['stampInterval'] !== undefined)) throw new InputError(`${source}: "tsaKeystore" and "stampInterval" need "tsa"`);
  const stampMs = o['stampInterval'] === undefined ? DEFAULT_STAMP_INTERVAL_MS : parseDuration(o['stampInterval'], `${source}: stampInterval`);
  const limits = parseLimits(o['limits'], source, { ...NVR_LIMITS, maxBodyBytes: Math.max(ol.chain, ol.init, ol.seg, ol.rec) });
  const viewer = o['viewer'] === undefined ? undefined : parseListen(o['viewer'], `${source}: viewer`, { host, port: 8446 });
  let kms: NvrConfig['kms'];
  if (o['kms'] !== undefined) {
    const k = o['kms'];
    if (typeof k !== 'object' || k === null || Array.isArray(k)) throw new InputError(`${source}: "kms" must name the KMS's chain, this NVR's name and the licence URL`);
    const kk = k as Record<string, unknown>;
    for (const key of Object.keys(kk)) if (!['chain', 'name', 'licence', 'revocations'].includes(key)) throw new InputError(`${source}: kms.${key} is not a setting (chain, name, licence, revocations)`);
    const name = settingString(kk, 'name', `${source}: kms`);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) throw new InputError(`${source}: kms.name must be 1–64 letters, digits or ._-`);
    const licence = settingString(kk, 'licence', `${source}: kms`);
    if (!/^https:\/\/[^\s]+$/.test(licence)) throw new InputError(`${source}: kms.licence must be an https URL`);
    let revocations: string | false = new URL('/v1/revoked', licence).href;
    if (kk['revocations'] === false) revocations = false;
    else if (kk['revocations'] !== undefined) {
      const r = settingString(kk, 'revocations', `${source}: kms`);
      if (!/^https:\/\/[^\s]+$/.test(r)) throw new InputError(`${source}: kms.revocations must be an https URL, or false`);
      revocations = r;
    }
    kms = { chain: path(settingString(kk, 'chain', `${source}: kms`)), name, licence, revocations };
  }
  if (viewer !== undefined && (kms === undefined || operator === undefined)) throw new InputError(`${source}: "viewer" needs "kms" (whose access tokens it takes) and trust.operator (the KMS's CA)`);
  let exporter: NvrConfig['exporter'];
  if (o['exporter'] !== undefined) {
    if (viewer === undefined) throw new InputError(`${source}: "exporter" makes exports for the viewers' listener: it needs "viewer"`);
    const ks = parseKeystoreSpec(o, 'exporterKeystore', source);
    const database = path(o['database'] === undefined ? 'nvr.sqlite' : settingString(o, 'database', source));
    exporter = { identity: path(settingString(o, 'exporter', source)), ...(ks !== undefined ? { keystore: ks } : {}), dir: o['exports'] === undefined ? resolve(dirname(database), 'exports') : path(settingString(o, 'exports', source)) };
  } else if (o['exports'] !== undefined || o['exporterKeystore'] !== undefined) throw new InputError(`${source}: "exports" and "exporterKeystore" need "exporter"`);
  return {
    ...(exporter !== undefined ? { exporter } : {}),
    ...(viewer !== undefined ? { viewer } : {}),
    ...(kms !== undefined ? { kms } : {}),
    listen: { host, port },
    identity: path(settingString(o, 'identity', source)),
    ...(keystore !== undefined ? { keystore: keystore } : {}),
    trust: { root: path(settingString(t, 'root', `${source}: trust`)), ...(factory !== undefined ? { factory: path(factory) } : {}), ...(operator !== undefined ? { operator: path(operator) } : {}), ...(crls !== undefined ? { crls: crls.map(path) } : {}) },
    store: path(o['store'] === undefined ? 'store' : settingString(o, 'store', source)),
    database: path(o['database'] === undefined ? 'nvr.sqlite' : settingString(o, 'database', source)),
    freeSpaceFloor: floor,
    objectLimits: ol,
    limits,
    crlCheckMs: o['crlCheck'] === undefined ? NVR_DEFAULTS.crlCheckMs : parseDuration(o['crlCheck'], `${source}: crlCheck`),
    ...(tsaDir !== undefined ? { tsa: { dir: path(tsaDir), ...(tsaKeystore !== undefined ? { keystore: tsaKeystore } : {}), intervalMs: stampMs } } : {}),
    freeSpaceTarget: parseFreeSpaceTarget(o['freeSpaceTarget'], floor, source),
    retention: parseRetentionConfig(o['retention'], source),
    admins: parseAdmins(o['admins'], source),
  };
}

export function loadNvrConfig(file: string): NvrConfig {
  return parseNvrConfig(readServiceConfig(file, 'NVR config'), dirname(resolve(file)), file);
}
