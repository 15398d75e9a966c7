/**
 * What the services' JSON configurations (kms.json, nvr.json) have in common, parsed one way: the object itself with
 * its known settings, `listen`, file names resolved against the file's directory, key store specs and CRL lists.
 * Every error is an InputError naming the file and the setting.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { InputError, NotFoundError, errnoCode, ioError } from '../errors.js';

/** Parses `text` as a JSON object whose keys are all in `known`. */
export function parseServiceObject(text: string, source: string, known: readonly string[]): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new InputError(`${source} is not valid JSON`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InputError(`${source} must be a JSON object`);
  const o = raw as Record<string, unknown>;
  const set = new Set(known);
  for (const k of Object.keys(o)) if (!set.has(k)) throw new InputError(`${source}: unknown setting "${k}"`);
  return o;
}

/** Reads a service's configuration file: missing is NotFoundError (`what` not found: FILE), other errors name the path. */
export function readServiceConfig(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`${what} not found: ${file}`);
    throw ioError(e, file, 'read') ?? e;
  }
}

/** A non-empty string setting. */
export function settingString(o: Record<string, unknown>, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw new InputError(`${where}: "${key}" must be a non-empty string`);
  return v;
}

/** A path setting's resolver: relative names are relative to the configuration file's directory. */
export function pathResolver(baseDir: string): (p: string) => string {
  return (p) => (isAbsolute(p) ? p : resolve(baseDir, p));
}

/** `listen`: { host, port } with defaults. */
export function parseListen(value: unknown, source: string, defaults: { readonly host: string; readonly port: number }): { host: string; port: number } {
  const raw = value ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InputError(`${source}: "listen" must be an object`);
  const l = raw as Record<string, unknown>;
  const host = l['host'] ?? defaults.host;
  const port = l['port'] ?? defaults.port;
  if (typeof host !== 'string' || host === '') throw new InputError(`${source}: listen.host must be a host name or address`);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) throw new InputError(`${source}: listen.port must be 0–65535`);
  return { host, port };
}

/** An optional key store spec setting (`keystore`, `tsaKeystore`). */
export function parseKeystoreSpec(o: Record<string, unknown>, key: string, source: string): string | undefined {
  const v = o[key];
  if (v !== undefined && (typeof v !== 'string' || v === '')) throw new InputError(`${source}: "${key}" must be a key store spec`);
  return v;
}

/** trust.crls: one file name or a list of them (PEM, each may hold several CRLs); undefined when absent. */
export function parseCrlFiles(trust: Record<string, unknown>, source: string): string[] | undefined {
  const raw = trust['crls'];
  const crls = typeof raw === 'string' ? [raw] : raw;
  if (crls !== undefined && (!Array.isArray(crls) || crls.length === 0 || crls.some((c) => typeof c !== 'string' || c === ''))) {
    throw new InputError(`${source}: trust.crls must be a list of CRL file names (PEM, each may hold several CRLs)`);
  }
  return crls as string[] | undefined;
}

/** What `kms init` and `nvr init` write as `trust`: the CA's certificates and CRL file, relative to the service's directory. */
export function trustSetting(dir: string, caDir: string, crlFile: string, root = join(caDir, 'root.pem')): { root: string; factory: string; operator: string; crls: string[] } {
  const rel = (p: string): string => relative(dir, p) || '.';
  return { root: rel(root), factory: rel(join(caDir, 'factory.pem')), operator: rel(join(caDir, 'operator.pem')), crls: [rel(crlFile)] };
}
