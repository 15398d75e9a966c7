/**
 * Encryption and decryption of one sample under a scheme: a copy of the sample, transformed in place — the
 * input is never modified. Subsample maps must cover the sample exactly.
 */
import { MediaError } from '../errors.js';
import { cbcsTransform, cencParts, cencTransform } from './_aes.js';
import { assertCovers } from './subsamples.js';
import type { Subsample } from './subsamples.js';

export type Scheme = 'cenc' | 'cbcs';

export interface SampleCipher {
  readonly scheme: Scheme;
  /** AES-128 content key. */
  readonly key: Uint8Array;
}

function checkKey(key: Uint8Array): void {
  if (key.length !== 16) throw new MediaError(`a CENC content key is AES-128: 16 bytes, got ${key.length}`);
}

function checkIv(scheme: Scheme, iv: Uint8Array): void {
  if (scheme === 'cenc' ? iv.length !== 8 && iv.length !== 16 : iv.length !== 16) {
    throw new MediaError(`${scheme} IV must be ${scheme === 'cenc' ? '8 or 16' : '16'} bytes, got ${iv.length}`);
  }
}

export function encryptSample(cipher: SampleCipher, iv: Uint8Array, sample: Uint8Array, subsamples: readonly Subsample[]): Uint8Array {
  return transform(cipher, iv, sample, subsamples, true);
}

export function decryptSample(cipher: SampleCipher, iv: Uint8Array, sample: Uint8Array, subsamples: readonly Subsample[]): Uint8Array {
  return transform(cipher, iv, sample, subsamples, false);
}

function transform(cipher: SampleCipher, iv: Uint8Array, sample: Uint8Array, subsamples: readonly Subsample[], encrypt: boolean): Uint8Array {
  checkKey(cipher.key);
  checkIv(cipher.scheme, iv);
  assertCovers(subsamples, sample.length);
  const out = Buffer.allocUnsafe(sample.length);
  out.set(sample);
  if (cipher.scheme === 'cenc') cencTransform(cipher.key, iv, out, subsamples);
  else cbcsTransform(cipher.key, iv, out, subsamples, encrypt);
  return out;
}

/**
 * Encryption without copying the sample where the scheme allows it: parts whose concatenation is the encrypted
 * sample (views of the input's clear runs and the cipher output of its protected runs, for `cenc`; one new
 * buffer for `cbcs`, whose pattern interleaves clear and encrypted blocks). For writers that write lists (writev).
 */
export function encryptSampleParts(cipher: SampleCipher, iv: Uint8Array, sample: Uint8Array, subsamples: readonly Subsample[]): Uint8Array[] {
  if (cipher.scheme !== 'cenc') return [encryptSample(cipher, iv, sample, subsamples)];
  checkKey(cipher.key);
  checkIv('cenc', iv);
  assertCovers(subsamples, sample.length);
  return cencParts(cipher.key, iv, sample, subsamples);
}
