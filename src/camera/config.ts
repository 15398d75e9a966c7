/**
 * camera.json, the camera agent's configuration. Paths are relative to the file's directory. Every error names
 * the field: `camera.json: "ring.cap" must be …`.
 *
 *   {
 *     "device": "cam1",                          device directory (chain, device.json, key store)
 *     "keystore": "pkcs11:…",                    optional: another key store for the device key
 *     "source": { "kind": "file", "path": "clip.h264", "fps": 25 },
 *     "kms": { "url": "https://kms:8443", "root": "ca/operator.pem", "group": "lobby", "state": "cam1/kms", "alarmAfter": "60s" },
 *     "nvr": { "url": "https://nvr:8444", "root": "ca/operator.pem" },
 *     "ring": { "dir": "ring", "cap": 2147483648 },
 *     "scheme": "cbcs",
 *     "backfillRate": 2000000,                   bytes per second
 *     "drainTimeout": "5s",                      at SIGINT/SIGTERM, how long to go on uploading what is left
 *     "chunkMs": 200,                            CMAF chunk duration: the segment being recorded is streamed to the
 *                                                NVR chunk by chunk (0: whole segments only, once each GOP closes)
 *     "status": "ring/status.json",              default: RING/status.json
 *     "logLevel": "info"
 *   }
 *
 * Without "kms" the camera refuses to start unless the file says "clear": true — then it records signed but
 * unencrypted video and says so in its log and status; without "nvr" it only records to its ring.
 * "source" is a source spec (src/camera/sources/spec.ts: "pattern:…", "rtsp://…", "file:…", "v4l2:…", or an object
 * with a "type"), or { "kind": "file", "path", "fps" } for a looped Annex-B file read without ffmpeg.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { InputError, NotFoundError, errnoCode } from '../errors.js';
import { parseDuration } from '../util/duration.js';
import { parseSourceSpec } from './sources/spec.js';
import type { SourceSpec } from './sources/spec.js';

export interface FileSourceSpec {
  readonly kind: 'file';
  readonly path: string;
  readonly fps?: number;
}

export interface CameraConfig {
  readonly path: string;
  readonly device: string;
  readonly keystore?: string;
  readonly source: FileSourceSpec | { readonly kind: 'spec'; readonly spec: SourceSpec };
  readonly kms?: { readonly url: string; readonly root: string; readonly group: string; readonly state: string; readonly alarmAfterMs: number };
  readonly nvr?: { readonly url: string; readonly root: string };
  readonly ring: { readonly dir: string; readonly cap: number };
  readonly scheme: 'cbcs' | 'cenc';
  readonly backfillBytesPerSecond: number;
  /** CMAF chunk duration, ms (0: one chunk per segment, nothing streamed before its GOP closes). */
  readonly chunkMs: number;
  /** At SIGINT/SIGTERM: how long the uploader goes on sending what is left (the end record) before exiting. */
  readonly drainMs: number;
  readonly statusFile: string;
  readonly logLevel: string;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadCameraConfig(path: string): CameraConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`camera config not found: ${path}`);
    throw e;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${path} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  return parseCameraConfig(raw, path);
}

export function parseCameraConfig(raw: unknown, path: string): CameraConfig {
  const base = dirname(resolve(path));
  const name = path.split('/').pop() ?? path;
  const fail = (field: string, what: string): never => {
    throw new InputError(`${name}: "${field}" ${what}`);
  };
  const obj = (v: unknown, field: string): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : fail(field, 'must be an object'));
  const str = (v: unknown, field: string): string => (typeof v === 'string' && v !== '' ? v : fail(field, 'must be a non-empty string'));
  const file = (v: unknown, field: string): string => {
    const s = str(v, field);
    return isAbsolute(s) ? s : join(base, s);
  };
  const https = (v: unknown, field: string): string => {
    const s = str(v, field);
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      return fail(field, `is not a URL: ${s}`);
    }
    if (u.protocol !== 'https:') fail(field, `must be an https:// URL: ${s}`);
    return s;
  };
  const positive = (v: unknown, field: string): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : fail(field, 'must be a positive number'));
  const c = obj(raw, '(top level)');
  const known = new Set(['device', 'keystore', 'source', 'kms', 'clear', 'nvr', 'ring', 'scheme', 'backfillRate', 'chunkMs', 'drainTimeout', 'status', 'logLevel']);
  for (const k of Object.keys(c)) if (!known.has(k)) fail(k, `is not a camera.json field (known: ${[...known].join(', ')})`);

  let source: CameraConfig['source'];
  const rawSource = c['source'];
  if (typeof rawSource === 'object' && rawSource !== null && (rawSource as Record<string, unknown>)['kind'] === 'file') {
    // a looped Annex-B file read without ffmpeg (what `keyframe record` uses)
    const src = rawSource as Record<string, unknown>;
    source = { kind: 'file', path: file(src['path'], 'source.path'), ...(src['fps'] !== undefined ? { fps: positive(src['fps'], 'source.fps') } : {}) };
  } else {
    // a test pattern, an RTSP(S) camera, a looped file through ffmpeg, a V4L2 device (src/camera/sources/spec.ts)
    let spec: SourceSpec;
    try {
      spec = parseSourceSpec(rawSource);
    } catch (e) {
      return fail('source', e instanceof Error ? `is not a source: ${e.message}` : 'is not a source');
    }
    if (spec.type === 'file') spec = { ...spec, path: isAbsolute(spec.path) ? spec.path : join(base, spec.path) };
    source = { kind: 'spec', spec };
  }

  let kms: CameraConfig['kms'];
  if (c['kms'] !== undefined) {
    const k = obj(c['kms'], 'kms');
    kms = {
      url: https(k['url'], 'kms.url'),
      root: file(k['root'], 'kms.root'),
      group: str(k['group'], 'kms.group'),
      state: k['state'] !== undefined ? file(k['state'], 'kms.state') : join(file(c['device'], 'device'), 'kms'),
      alarmAfterMs: k['alarmAfter'] !== undefined ? parseDuration(k['alarmAfter'], `${name}: "kms.alarmAfter"`) : 60_000,
    };
    if (c['clear'] !== undefined) fail('clear', 'cannot go with "kms": a camera with a group key encrypts');
  } else if (c['clear'] !== true) {
    // fail closed: unencrypted video only when asked for in so many words
    fail('kms', 'is required: the camera encrypts its video under its group\'s key (for signed but unencrypted video, say "clear": true)');
  }
  let nvr: CameraConfig['nvr'];
  if (c['nvr'] !== undefined) {
    const n = obj(c['nvr'], 'nvr');
    nvr = { url: https(n['url'], 'nvr.url'), root: file(n['root'], 'nvr.root') };
  }
  const r = obj(c['ring'], 'ring');
  const cap = r['cap'];
  if (typeof cap !== 'number' || !Number.isSafeInteger(cap) || cap < 64 << 10) fail('ring.cap', 'must be a whole number of bytes, at least 65536');
  const ringDir = file(r['dir'], 'ring.dir');
  const scheme = c['scheme'] ?? 'cbcs';
  if (scheme !== 'cbcs' && scheme !== 'cenc') fail('scheme', 'must be "cbcs" or "cenc"');
  const chunkMs = c['chunkMs'] ?? 200;
  if (typeof chunkMs !== 'number' || !Number.isSafeInteger(chunkMs) || chunkMs < 0 || chunkMs > 10_000) fail('chunkMs', 'must be a whole number of milliseconds from 0 to 10000');
  const level = c['logLevel'] ?? 'info';
  if (typeof level !== 'string' || !LEVELS.includes(level)) fail('logLevel', `must be one of ${LEVELS.join(', ')}`);
  return {
    path: resolve(path),
    device: file(c['device'], 'device'),
    ...(c['keystore'] !== undefined ? { keystore: str(c['keystore'], 'keystore') } : {}),
    source,
    ...(kms !== undefined ? { kms } : {}),
    ...(nvr !== undefined ? { nvr } : {}),
    ring: { dir: ringDir, cap: cap as number },
    scheme: scheme as 'cbcs' | 'cenc',
    backfillBytesPerSecond: c['backfillRate'] !== undefined ? positive(c['backfillRate'], 'backfillRate') : 2_000_000,
    chunkMs: chunkMs as number,
    drainMs: c['drainTimeout'] !== undefined ? parseDuration(c['drainTimeout'], `${name}: "drainTimeout"`) : 5_000,
    statusFile: c['status'] !== undefined ? file(c['status'], 'status') : join(ringDir, 'status.json'),
    logLevel: level as string,
  };
}
