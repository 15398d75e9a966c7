/**
 * The per-process registry of PKCS#11 modules. A module (shared library) is loaded and C_Initialize'd once per
 * process and never C_Finalize'd: the OpenSSL pkcs11 engine (libp11, used for TLS with a token key) may share the
 * same library in this process, and finalizing it would pull the ground from under the engine's sessions.
 *
 * Also here: turning pkcs11js errors into KeyStoreErrors with stable codes, and the login book-keeping that makes
 * a second login with a wrong PIN fail even though the token is already logged in for this process.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import pkcs11js from 'pkcs11js';
import type { Handle, PKCS11 } from 'pkcs11js';
import { ErrorCodes, KeyStoreError, KeyframeError } from '../errors.js';
import type { ErrorCode } from '../errors.js';

export { pkcs11js };
export type { Handle };
export type Pkcs11 = PKCS11;

export interface LoadedModule {
  readonly path: string;
  readonly p11: Pkcs11;
  /** Per slot: a keyed digest of the PIN this process last logged in with (see `checkLoggedInPin`). */
  readonly pins: Map<string, Buffer>;
}

const modules = new Map<string, LoadedModule>();
/** Process-local key for PIN digests: they never leave memory, and mean nothing outside this process. */
const PIN_KEY = randomBytes(32);

/** The CKR_… name of a pkcs11js error, or undefined for anything else. */
export function ckrName(e: unknown): string | undefined {
  if (e instanceof Error && /^CKR_[A-Z0-9_]+$/.test(e.message)) return e.message;
  return undefined;
}

const UNSUPPORTED_CKR = new Set([
  'CKR_MECHANISM_INVALID',
  'CKR_MECHANISM_PARAM_INVALID',
  'CKR_KEY_FUNCTION_NOT_PERMITTED',
  'CKR_KEY_TYPE_INCONSISTENT',
  'CKR_FUNCTION_NOT_SUPPORTED',
]);

/**
 * A KeyStoreError for any error thrown while talking to a module. KeyframeErrors pass through; a pkcs11js error
 * keeps only its CKR_ name (no native stack, no cause chain that a logger could print).
 */
export function p11Error(e: unknown, what: string, code?: ErrorCode): KeyframeError {
  if (e instanceof KeyframeError) return e;
  const ckr = ckrName(e);
  if (ckr !== undefined) {
    return new KeyStoreError(code ?? (UNSUPPORTED_CKR.has(ckr) ? ErrorCodes.UNSUPPORTED : ErrorCodes.KEYSTORE), `PKCS#11 ${what} failed: ${ckr}`);
  }
  const first = e instanceof Error ? (e.message.split('\n')[0] ?? '') : String(e);
  return new KeyStoreError(code ?? ErrorCodes.KEYSTORE, `PKCS#11 ${what} failed: ${first}`);
}

/** Loads and initializes the module at `path`, once per process. */
export function loadModule(path: string): LoadedModule {
  if (!existsSync(path)) throw new KeyStoreError(ErrorCodes.KEYSTORE, `PKCS#11 module not found: ${path}`);
  let key: string;
  try {
    key = realpathSync(path);
  } catch {
    key = path;
  }
  const known = modules.get(key);
  if (known !== undefined) return known;
  const p11 = new pkcs11js.PKCS11();
  try {
    p11.load(key);
  } catch (e) {
    throw p11Error(e, `loading module ${path}`);
  }
  try {
    p11.C_Initialize();
  } catch (e) {
    // someone in this process (the OpenSSL pkcs11 engine) initialized it first: that is fine
    if (ckrName(e) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw p11Error(e, `C_Initialize of ${path}`);
  }
  const loaded: LoadedModule = { path, p11, pins: new Map() };
  modules.set(key, loaded);
  return loaded;
}

function pinDigest(pin: string): Buffer {
  return createHmac('sha256', PIN_KEY).update(pin, 'utf8').digest();
}

/** Records the PIN of a successful C_Login on `slot`. */
export function rememberPin(module: LoadedModule, slot: Handle, pin: string): void {
  module.pins.set(slot.toString('hex'), pinDigest(pin));
}

/**
 * Login state is per token and process, not per session: after one store logged in, C_Login on another session
 * returns CKR_USER_ALREADY_LOGGED_IN whatever PIN is given. So a second open must match the PIN of the first;
 * false means it did not. If the login was made by someone else in this process (the OpenSSL engine), there is
 * nothing to compare with, and the login is accepted.
 */
export function checkLoggedInPin(module: LoadedModule, slot: Handle, pin: string): boolean {
  const known = module.pins.get(slot.toString('hex'));
  if (known === undefined) return true;
  return timingSafeEqual(pinDigest(pin), known);
}
