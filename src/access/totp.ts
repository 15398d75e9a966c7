/**
 * One-time passwords for the optional second factor at login: HOTP (RFC 4226) and TOTP (RFC 6238) over
 * HMAC-SHA-1/256/512, base32 (RFC 4648 §6) for the shared secret as authenticator apps show and take it, and the
 * otpauth:// Key Uri Format that enrols an app from a QR code. Pure: no I/O, no clock (the caller passes the
 * time) and no state (the caller keeps, per account, the step of the last code it accepted).
 *
 * - hotp: HMAC(secret, the counter as 8 bytes big-endian), dynamic truncation (RFC 4226 §5.3: 31 bits at the
 *   offset named by the low nibble of the last byte, also for SHA-256/512 as RFC 6238 does), the low `digits`
 *   decimal digits, zero-padded.
 * - totp: hotp at step T = floor((time - T0) / X) (RFC 6238 §4.2), X = 30 s and T0 = 0 by default.
 * - verifyTotp: tries every step in now ± window (default 1: RFC 6238 §5.2 recommends at most one step of
 *   transmission delay; drift beyond that is the caller's re-synchronisation), compares each candidate with the
 *   code in constant time and visits all of them whatever matched, and refuses any step at or before the last
 *   one accepted for the account (§5.2: a code is good once). It returns the matched step, which the caller
 *   stores as that account's new lastStep. A code of the wrong length or with anything but ASCII digits is
 *   refused (undefined), never thrown: it is the user's input.
 * - Options that are the caller's configuration (digits 6–8, step, window 0–10, algorithm, counter, time) are
 *   checked and a bad one is an InputError naming it.
 * - base32: RFC 4648 alphabet, encoded uppercase without padding (what authenticator apps expect); decoding
 *   takes either case, optional '=' padding and spaces (apps print secrets in groups of four). Bits left over
 *   after the last whole byte are dropped, not refused (RFC 4648 §3.5 lets a decoder refuse them; secrets made
 *   as random base32 characters have them, and authenticator apps accept those).
 * - generateTotpSecret: 20 random bytes, the 160 bits RFC 4226 §4 (R6) recommends.
 *
 * References: RFC 4226 (HOTP), RFC 6238 (TOTP), RFC 4648 (base32), Google Authenticator Key Uri Format
 * (https://github.com/google/google-authenticator/wiki/Key-Uri-Format). Test vectors:
 * test/vectors/rfc4226-rfc6238.json.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { InputError } from '../errors.js';

export type OtpAlgorithm = 'sha1' | 'sha256' | 'sha512';
export type OtpDigits = 6 | 7 | 8;

export interface HotpOptions {
  /** Length of the code (default 6). */
  readonly digits?: OtpDigits;
  /** HMAC hash (default 'sha1', the only one many authenticator apps honour). */
  readonly algorithm?: OtpAlgorithm;
}

export interface TotpOptions extends HotpOptions {
  /** Time step X in seconds (default 30). */
  readonly stepSeconds?: number;
  /** T0, the Unix time in seconds from which steps are counted (default 0). */
  readonly t0?: number;
}

export interface VerifyTotpOptions extends TotpOptions {
  /** Steps accepted either side of the current one (default 1, at most 10). */
  readonly window?: number;
  /** The step of the last code accepted for this account: any step at or before it is refused (replay). */
  readonly lastStep?: number;
}

export interface OtpauthUriOptions extends HotpOptions {
  /** The period parameter, in seconds (default 30). */
  readonly stepSeconds?: number;
}

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const BASE32_VALUE: ReadonlyMap<string, number> = new Map(
  [...BASE32_ALPHABET].flatMap((c, i): [string, number][] => [
    [c, i],
    [c.toLowerCase(), i],
  ]),
);
/** Unpadded lengths modulo 8 that a whole number of bytes can have (0, 1, 2, 3, 4 bytes past a 5-byte group). */
const BASE32_VALID_REMAINDERS: ReadonlySet<number> = new Set([0, 2, 4, 5, 7]);

const DEFAULT_DIGITS: OtpDigits = 6;
const DEFAULT_ALGORITHM: OtpAlgorithm = 'sha1';
const DEFAULT_STEP_SECONDS = 30;
const DEFAULT_WINDOW = 1;
const MAX_WINDOW = 10;
const MAX_COUNTER = (1n << 64n) - 1n;
const ALGORITHMS: ReadonlySet<string> = new Set<OtpAlgorithm>(['sha1', 'sha256', 'sha512']);
const DIGITS: ReadonlySet<number> = new Set<OtpDigits>([6, 7, 8]);
const DIGITS_PATTERN = /^[0-9]+$/;

/** Base32 (RFC 4648 §6), uppercase, without padding. */
export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32_ALPHABET[(buffer >>> bits) & 31];
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * Base32 (RFC 4648 §6) to bytes: either case, optional '=' padding (which must then be complete), spaces
 * ignored. Any other character, '=' before the end, or a length no whole number of bytes has is an InputError.
 */
export function base32Decode(text: string): Buffer {
  if (typeof text !== 'string') throw new InputError('base32: the input is not a string');
  let data = '';
  let padding = 0;
  let position = 0;
  for (const c of text) {
    position++;
    if (c === ' ') continue;
    if (c === '=') {
      padding++;
      continue;
    }
    if (padding > 0) {
      throw new InputError(`base32: character ${JSON.stringify(c)} at position ${position} follows '=', which is padding and may only end the text`);
    }
    if (!BASE32_VALUE.has(c)) {
      throw new InputError(`base32: character ${JSON.stringify(c)} at position ${position} is not in the RFC 4648 alphabet (A-Z, 2-7)`);
    }
    data += c;
  }
  const remainder = data.length % 8;
  if (!BASE32_VALID_REMAINDERS.has(remainder)) {
    throw new InputError(`base32: ${data.length} characters cannot be a whole number of bytes (a length of 1, 3 or 6 modulo 8 is impossible)`);
  }
  if (padding > 0 && (remainder === 0 || remainder + padding !== 8)) {
    const expected = remainder === 0 ? 'none is needed' : `${8 - remainder} expected`;
    throw new InputError(`base32: ${padding} '=' after ${data.length} characters; padding must make the length a multiple of 8 (${expected})`);
  }
  const out = Buffer.alloc(Math.floor((data.length * 5) / 8));
  let buffer = 0;
  let bits = 0;
  let n = 0;
  for (const c of data) {
    buffer = ((buffer << 5) | (BASE32_VALUE.get(c) as number)) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (buffer >>> bits) & 0xff;
    }
  }
  return out;
}

/** HOTP (RFC 4226 §5.3): the `digits`-digit code for `counter` (0 to 2^64 - 1), zero-padded. */
export function hotp(secret: Uint8Array, counter: number | bigint, options: HotpOptions = {}): string {
  const { digits, algorithm } = hotpOptions(options);
  checkSecret(secret);
  return hotpCode(secret, counterBigint(counter), digits, algorithm);
}

/** TOTP (RFC 6238 §4): the code for the time step that holds `timeMs` (Unix time in milliseconds). */
export function totp(secret: Uint8Array, timeMs: number, options: TotpOptions = {}): string {
  const { digits, algorithm } = hotpOptions(options);
  const { stepMs, t0Ms } = stepOptions(options);
  checkSecret(secret);
  const step = stepAt(timeMs, stepMs, t0Ms);
  if (step < 0) throw new InputError(`TOTP: time ${timeMs} ms is before T0 (${t0Ms / 1000} s)`);
  return hotpCode(secret, BigInt(step), digits, algorithm);
}

/**
 * Checks a TOTP code typed by the user against the steps `nowMs` ± window. Returns the matched step (store it as
 * the account's lastStep), or undefined: no match, a replayed step (at or before lastStep), or a code that is not
 * `digits` ASCII digits. Every candidate is computed and compared in constant time; none is skipped on a match.
 * When two candidates match (codes collide about once in 10^digits), the latest step is returned.
 */
export function verifyTotp(secret: Uint8Array, code: string, nowMs: number, options: VerifyTotpOptions = {}): number | undefined {
  const { digits, algorithm } = hotpOptions(options);
  const { stepMs, t0Ms } = stepOptions(options);
  const window = options.window ?? DEFAULT_WINDOW;
  if (!Number.isInteger(window) || window < 0 || window > MAX_WINDOW) {
    throw new InputError(`TOTP: window ${String(window)} must be an integer from 0 to ${MAX_WINDOW} steps`);
  }
  const lastStep = options.lastStep;
  if (lastStep !== undefined && !Number.isSafeInteger(lastStep)) {
    throw new InputError(`TOTP: lastStep ${String(lastStep)} is not an integer`);
  }
  checkSecret(secret);
  const current = stepAt(nowMs, stepMs, t0Ms);
  if (typeof code !== 'string' || code.length !== digits || !DIGITS_PATTERN.test(code)) return undefined;
  const given = Buffer.from(code, 'latin1');
  let matched: number | undefined;
  for (let step = current - window; step <= current + window; step++) {
    if (step < 0) continue;
    const candidate = Buffer.from(hotpCode(secret, BigInt(step), digits, algorithm), 'latin1');
    const equal = timingSafeEqual(candidate, given);
    const fresh = lastStep === undefined || step > lastStep;
    if (equal && fresh) matched = step;
  }
  return matched;
}

/** A new TOTP secret: 20 random bytes (160 bits, RFC 4226 §4 R6). */
export function generateTotpSecret(): Buffer {
  return randomBytes(20);
}

/**
 * The otpauth:// URI (Key Uri Format) an authenticator app enrols from, usually shown as a QR code:
 * otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30. Issuer and account are
 * percent-encoded and may not contain ':' (the label's separator).
 */
export function otpauthUri(issuer: string, account: string, secret: Uint8Array, options: OtpauthUriOptions = {}): string {
  const { digits, algorithm } = hotpOptions(options);
  const { stepMs } = stepOptions(options);
  checkSecret(secret);
  const encodedIssuer = labelPart('issuer', issuer);
  const encodedAccount = labelPart('account', account);
  return (
    `otpauth://totp/${encodedIssuer}:${encodedAccount}` +
    `?secret=${base32Encode(secret)}&issuer=${encodedIssuer}` +
    `&algorithm=${algorithm.toUpperCase()}&digits=${digits}&period=${stepMs / 1000}`
  );
}

function labelPart(what: string, value: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new InputError(`otpauth URI: the ${what} is empty`);
  if (value.includes(':')) throw new InputError(`otpauth URI: the ${what} ${JSON.stringify(value)} contains ':', the label separator`);
  try {
    return encodeURIComponent(value);
  } catch (err) {
    throw new InputError(`otpauth URI: the ${what} is not well-formed Unicode (a lone surrogate)`, { cause: err });
  }
}

function hotpOptions(options: HotpOptions): { digits: OtpDigits; algorithm: OtpAlgorithm } {
  const digits = options.digits ?? DEFAULT_DIGITS;
  if (!DIGITS.has(digits)) throw new InputError(`OTP: digits ${String(digits)} must be 6, 7 or 8`);
  const algorithm = options.algorithm ?? DEFAULT_ALGORITHM;
  if (!ALGORITHMS.has(algorithm)) throw new InputError(`OTP: algorithm ${JSON.stringify(algorithm)} must be sha1, sha256 or sha512`);
  return { digits, algorithm };
}

function stepOptions(options: TotpOptions): { stepMs: number; t0Ms: number } {
  const stepSeconds = options.stepSeconds ?? DEFAULT_STEP_SECONDS;
  if (!Number.isSafeInteger(stepSeconds) || stepSeconds <= 0) {
    throw new InputError(`TOTP: stepSeconds ${String(stepSeconds)} must be a positive integer`);
  }
  const t0 = options.t0 ?? 0;
  if (!Number.isSafeInteger(t0)) throw new InputError(`TOTP: t0 ${String(t0)} must be an integer number of seconds`);
  const stepMs = stepSeconds * 1000;
  const t0Ms = t0 * 1000;
  if (!Number.isSafeInteger(stepMs) || !Number.isSafeInteger(t0Ms)) throw new InputError('TOTP: stepSeconds or t0 is out of range');
  return { stepMs, t0Ms };
}

function stepAt(timeMs: number, stepMs: number, t0Ms: number): number {
  if (typeof timeMs !== 'number' || !Number.isFinite(timeMs)) throw new InputError(`TOTP: time ${String(timeMs)} is not a finite number of milliseconds`);
  const step = Math.floor((timeMs - t0Ms) / stepMs);
  if (!Number.isSafeInteger(step)) throw new InputError(`TOTP: time ${timeMs} ms is out of range`);
  return step;
}

function checkSecret(secret: Uint8Array): void {
  if (!(secret instanceof Uint8Array)) throw new InputError('OTP: the secret is not bytes');
  if (secret.length === 0) throw new InputError('OTP: the secret is empty');
}

function counterBigint(counter: number | bigint): bigint {
  if (typeof counter === 'bigint') {
    if (counter < 0n || counter > MAX_COUNTER) throw new InputError(`HOTP: counter ${counter} is outside 0 to 2^64 - 1`);
    return counter;
  }
  if (typeof counter !== 'number' || !Number.isSafeInteger(counter) || counter < 0) {
    throw new InputError(`HOTP: counter ${String(counter)} must be a non-negative integer`);
  }
  return BigInt(counter);
}

function hotpCode(secret: Uint8Array, counter: bigint, digits: OtpDigits, algorithm: OtpAlgorithm): string {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(counter);
  const mac = createHmac(algorithm, secret).update(message).digest();
  const offset = (mac[mac.length - 1] as number) & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** digits).padStart(digits, '0');
}
