/**
 * Key store specs, as named on the command line:
 *
 *   file:DIR[;pin-env=VAR|;pin-file=PATH]
 *   pkcs11:module=PATH;token=LABEL[;pin-env=VAR|;pin-file=PATH]
 *
 * A spec names where a PIN or passphrase comes from, never the secret itself, so that no secret appears in argv
 * or in a process listing. Without a pin source, a software store's passphrase comes from $KEYFRAME_KEYSTORE_PIN;
 * a PKCS#11 spec must name its PIN source: a token counts failed logins and locks itself, so a PIN meant for
 * another store is never tried on it by default.
 *
 * Relative paths are resolved against a base directory: the current one on the command line, and the directory
 * of the file that records the spec (device.json, site.json, ca.json), which records a store inside itself by a
 * relative path — so that an identity directory can be moved or restored elsewhere as a whole.
 */
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { InputError } from '../errors.js';

export const DEFAULT_PIN_ENV = 'KEYFRAME_KEYSTORE_PIN';

export type PinSource = { readonly env: string } | { readonly file: string };

export type KeyStoreSpec =
  | { readonly kind: 'file'; readonly dir: string; readonly pin: PinSource }
  | { readonly kind: 'pkcs11'; readonly module: string; readonly token: string; readonly pin: PinSource };

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function parseParams(text: string, spec: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const part of text.split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new InputError(`bad key store spec "${redact(spec)}": "${redact(part)}" is not NAME=VALUE`);
    const name = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (params.has(name)) throw new InputError(`bad key store spec "${redact(spec)}": ${name} given twice`);
    if (value === '') throw new InputError(`bad key store spec "${redact(spec)}": ${name} is empty`);
    params.set(name, value);
  }
  return params;
}

/** Never echo something that looks like an inline secret back to a terminal or a log. */
function redact(text: string): string {
  return text.replace(/(pin|pin-value|passphrase|password)=[^;]*/gi, '$1=…');
}

function pinSource(params: Map<string, string>, spec: string, baseDir: string): PinSource | undefined {
  for (const forbidden of ['pin', 'pin-value', 'passphrase', 'password']) {
    if (params.has(forbidden)) {
      throw new InputError(`key store spec "${redact(spec)}": a secret may not be written into a spec; use pin-env=VAR or pin-file=PATH`);
    }
  }
  const env = params.get('pin-env');
  const file = params.get('pin-file');
  params.delete('pin-env');
  params.delete('pin-file');
  if (env !== undefined && file !== undefined) {
    throw new InputError(`key store spec "${redact(spec)}": give pin-env or pin-file, not both`);
  }
  if (file !== undefined) return { file: resolve(baseDir, file) };
  if (env === undefined) return undefined;
  const name = env;
  if (!ENV_NAME.test(name)) throw new InputError(`key store spec "${redact(spec)}": pin-env "${name}" is not an environment variable name`);
  return { env: name };
}

/** Parses a spec; relative paths in it are taken from `baseDir` (default: the current directory). */
export function parseKeyStoreSpec(spec: string, baseDir: string = process.cwd()): KeyStoreSpec {
  if (spec.startsWith('file:')) {
    const [dir = '', ...rest] = spec.slice('file:'.length).split(';');
    if (dir === '') throw new InputError(`bad key store spec "${redact(spec)}": file: needs a directory`);
    const params = parseParams(rest.join(';'), spec);
    const pin = pinSource(params, spec, baseDir) ?? { env: DEFAULT_PIN_ENV };
    if (params.size > 0) throw new InputError(`bad key store spec "${redact(spec)}": unknown parameter ${[...params.keys()].join(', ')}`);
    return { kind: 'file', dir: resolve(baseDir, dir), pin };
  }
  if (spec.startsWith('pkcs11:')) {
    const params = parseParams(spec.slice('pkcs11:'.length), spec);
    const module = params.get('module');
    const token = params.get('token');
    if (module === undefined) throw new InputError(`bad key store spec "${redact(spec)}": pkcs11: needs module=PATH`);
    if (token === undefined) throw new InputError(`bad key store spec "${redact(spec)}": pkcs11: needs token=LABEL`);
    const pin = pinSource(params, spec, baseDir);
    params.delete('module');
    params.delete('token');
    if (params.size > 0) throw new InputError(`bad key store spec "${redact(spec)}": unknown parameter ${[...params.keys()].join(', ')}`);
    if (pin === undefined) {
      throw new InputError(
        `key store spec "${redact(spec)}": a pkcs11: spec needs its PIN source, ;pin-env=VAR or ;pin-file=PATH (a wrong PIN costs one of the token's few login attempts, so $${DEFAULT_PIN_ENV} is not tried on a token)`,
      );
    }
    return { kind: 'pkcs11', module: resolve(baseDir, module), token, pin };
  }
  throw new InputError(`bad key store spec "${redact(spec)}": expected file:DIR or pkcs11:module=PATH;token=LABEL`);
}

/**
 * The canonical text of a spec (round-trips through parseKeyStoreSpec with the same base). With `relativeTo`, a
 * store directory or PIN file inside that directory is written relative to it.
 */
export function formatKeyStoreSpec(spec: KeyStoreSpec, relativeTo?: string): string {
  const path = (p: string): string => {
    if (relativeTo === undefined) return p;
    const r = relative(resolve(relativeTo), p);
    return r !== '' && !r.startsWith('..') && !isAbsolute(r) ? r.split(sep).join('/') : p;
  };
  const pin = 'env' in spec.pin ? `pin-env=${spec.pin.env}` : `pin-file=${path(spec.pin.file)}`;
  if (spec.kind === 'file') return `file:${path(spec.dir)};${pin}`;
  return `pkcs11:module=${spec.module};token=${spec.token};${pin}`;
}
