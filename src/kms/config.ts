/**
 * The KMS service's configuration file (JSON), `keyframe kms serve --config FILE`. Relative paths are resolved
 * against the file's directory. Everything but the identity, trust and database has an embedded default.
 *
 *   {
 *     "listen": { "host": "127.0.0.1", "port": 8443 },
 *     "identity": "kms",                     site directory (site.json, chain.pem, keys): TLS + signing + ECDH
 *     "keystore": "file:kms/keys;pin-env=…", optional: overrides the identity's key store spec
 *     "trust": { "root": "ca/root.pem", "factory": "ca/factory.pem", "operator": "ca/operator.pem",
 *                "crls": ["ca/crl.pem"] },   CRL files (a list; one name alone is taken too), reloaded when they
 *                                          change; when given every peer is checked against them
 *     "database": "kms.sqlite",
 *     "admins": ["ops-console"],             common names of operator-CA client certificates that administer
 *     "refreshPeriod": "1h", "batchWindow": "2s", "maxWait": "25s",
 *     "limits": { "maxConnections": 2048, "requestTimeout": "30s", … }   src/server/limits.ts, docs/security.md
 *     "crlCheck": "5s",                      how often the CRL files are looked at for a change
 *     "browser": { "host": "127.0.0.1", "port": 8444 },   the browser-facing listener (logins, licences); absent: none
 *     "viewerOrigins": ["https://nvr.example:8446"],     pages allowed to call it with credentials (CORS)
 *     "nvrs": ["nvr"],                       the NVR names access tokens are issued for (their audience)
 *     "totp": false,                         true: administrators must log in with a TOTP second factor
 *     "session": { "idle": "30m", "max": "12h" }
 *   }
 */
import { dirname, resolve } from 'node:path';
import { parseCrlFiles, parseKeystoreSpec, parseListen, parseServiceObject, pathResolver, readServiceConfig, settingString } from '../server/service-config.js';
import { InputError } from '../errors.js';
import { parseDuration } from '../util/duration.js';
import { DEFAULT_LIMITS, parseLimits } from '../server/limits.js';
import type { ServerLimits } from '../server/limits.js';

export interface KmsConfig {
  readonly listen: { readonly host: string; readonly port: number };
  readonly identity: string;
  readonly keystore?: string;
  /** Certificate files; `crls`: CRL files (each may hold several CRLs), reloaded when they change. */
  readonly trust: { readonly root: string; readonly factory: string; readonly operator: string; readonly crls?: readonly string[] };
  readonly database: string;
  readonly admins: readonly string[];
  /** A group's epoch secret is refreshed when it has been in use this long (ms). */
  readonly refreshPeriodMs: number;
  /** Membership changes requested within this window are applied as one rekey (ms). */
  readonly batchWindowMs: number;
  /** The longest a camera's long poll is held open (ms). */
  readonly maxWaitMs: number;
  /** Connections, timeouts and body size (src/server/limits.ts); the idle timeout always exceeds maxWait. */
  readonly limits: ServerLimits;
  /** How often the CRL files are looked at for a change (ms). */
  readonly crlCheckMs: number;
  /** The browser-facing listener (undefined: none). */
  readonly browser?: { readonly host: string; readonly port: number };
  readonly viewerOrigins: readonly string[];
  readonly nvrs: readonly string[];
  readonly totpRequiredForAdmins: boolean;
  readonly sessionIdleMs: number;
  readonly sessionMaxMs: number;
  /** How long after a rotation a live viewer still gets the previous epoch's key (ms). */
  readonly liveGraceMs: number;
}

/** The KMS's messages are small: a relayed message is at most 1 MiB (the paper's KeyDelivery at n = 10,000 is 0.6 MB). */
export const KMS_LIMITS: ServerLimits = { ...DEFAULT_LIMITS, maxBodyBytes: 1024 * 1024 + 4096 };

export const KMS_DEFAULTS = {
  host: '127.0.0.1',
  port: 8443,
  refreshPeriodMs: 60 * 60 * 1000,
  batchWindowMs: 2_000,
  maxWaitMs: 25_000,
  crlCheckMs: 5_000,
  browserPort: 8444,
  sessionIdleMs: 30 * 60_000,
  sessionMaxMs: 12 * 3600_000,
} as const;

function stringList(v: unknown, what: string, check: (s: string) => boolean): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || !check(x))) throw new InputError(what);
  return v as string[];
}

export function parseKmsConfig(text: string, baseDir: string, source = 'KMS config'): KmsConfig {
  const o = parseServiceObject(text, source, ['listen', 'identity', 'keystore', 'trust', 'database', 'admins', 'refreshPeriod', 'batchWindow', 'maxWait', 'limits', 'crlCheck', 'browser', 'viewerOrigins', 'nvrs', 'totp', 'session', 'liveGrace']);
  const path = pathResolver(baseDir);
  const { host, port } = parseListen(o['listen'], source, KMS_DEFAULTS);
  const trustRaw = o['trust'];
  if (typeof trustRaw !== 'object' || trustRaw === null || Array.isArray(trustRaw)) throw new InputError(`${source}: "trust" must name root, factory and operator certificate files`);
  const t = trustRaw as Record<string, unknown>;
  const admins = o['admins'] ?? [];
  if (!Array.isArray(admins) || admins.some((a) => typeof a !== 'string' || a === '')) throw new InputError(`${source}: "admins" must be a list of certificate common names`);
  const keystore = parseKeystoreSpec(o, 'keystore', source);
  const crls = parseCrlFiles(t, source);
  const maxWaitMs = o['maxWait'] === undefined ? KMS_DEFAULTS.maxWaitMs : parseDuration(o['maxWait'], `${source}: maxWait`);
  const refreshPeriodMs = o['refreshPeriod'] === undefined ? KMS_DEFAULTS.refreshPeriodMs : parseDuration(o['refreshPeriod'], `${source}: refreshPeriod`);
  if (refreshPeriodMs < 1_000) throw new InputError(`${source}: refreshPeriod must be at least 1s`);
  const limits = parseLimits(o['limits'], source, KMS_LIMITS);
  if (limits.idleTimeoutMs <= maxWaitMs) throw new InputError(`${source}: limits.idleTimeout must exceed maxWait (a long poll is idle that long)`);
  const browser = o['browser'] === undefined || o['browser'] === false ? undefined : parseListen(o['browser'], `${source}: browser`, { host, port: KMS_DEFAULTS.browserPort });
  if (browser !== undefined && browser.port === port && browser.port !== 0) throw new InputError(`${source}: browser.port must differ from listen.port`);
  const viewerOrigins = o['viewerOrigins'] === undefined ? [] : stringList(o['viewerOrigins'], `${source}: "viewerOrigins" must be a list of https origins (https://host:port)`, (x) => /^https:\/\/[^/\s]+$/.test(x));
  const nvrs = o['nvrs'] === undefined ? ['nvr'] : stringList(o['nvrs'], `${source}: "nvrs" must be a list of NVR names`, (x) => /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(x));
  if (o['totp'] !== undefined && typeof o['totp'] !== 'boolean') throw new InputError(`${source}: "totp" must be true or false`);
  const sessionRaw = o['session'] ?? {};
  if (typeof sessionRaw !== 'object' || sessionRaw === null || Array.isArray(sessionRaw)) throw new InputError(`${source}: "session" must be an object with idle and max durations`);
  const sess = sessionRaw as Record<string, unknown>;
  for (const k of Object.keys(sess)) if (k !== 'idle' && k !== 'max') throw new InputError(`${source}: session.${k} is not a setting (idle, max)`);
  const sessionIdleMs = sess['idle'] === undefined ? KMS_DEFAULTS.sessionIdleMs : parseDuration(sess['idle'], `${source}: session.idle`);
  const sessionMaxMs = sess['max'] === undefined ? KMS_DEFAULTS.sessionMaxMs : parseDuration(sess['max'], `${source}: session.max`);
  return {
    ...(browser !== undefined ? { browser } : {}),
    viewerOrigins,
    nvrs,
    totpRequiredForAdmins: o['totp'] === true,
    sessionIdleMs,
    sessionMaxMs,
    liveGraceMs: o['liveGrace'] === undefined ? 2 * 60_000 : parseDuration(o['liveGrace'], `${source}: liveGrace`),
    listen: { host, port },
    identity: path(settingString(o, 'identity', source)),
    ...(keystore !== undefined ? { keystore: keystore } : {}),
    trust: {
      root: path(settingString(t, 'root', `${source}: trust`)),
      factory: path(settingString(t, 'factory', `${source}: trust`)),
      operator: path(settingString(t, 'operator', `${source}: trust`)),
      ...(crls !== undefined ? { crls: crls.map(path) } : {}),
    },
    database: path(settingString(o, 'database', source)),
    admins: admins as string[],
    refreshPeriodMs,
    batchWindowMs: o['batchWindow'] === undefined ? KMS_DEFAULTS.batchWindowMs : parseDuration(o['batchWindow'], `${source}: batchWindow`),
    maxWaitMs,
    limits,
    crlCheckMs: o['crlCheck'] === undefined ? KMS_DEFAULTS.crlCheckMs : parseDuration(o['crlCheck'], `${source}: crlCheck`),
  };
}

export function loadKmsConfig(file: string): KmsConfig {
  return parseKmsConfig(readServiceConfig(file, 'KMS config'), dirname(resolve(file)), file);
}
