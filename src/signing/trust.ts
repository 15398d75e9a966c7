/**
 * Who signed: a certificate chain (as carried by a certificate SEI, a recording's chain.pem or a bundle) checked
 * against the trust anchors at the recording time, revocation included. Shared by the SEI layer, the fragment
 * records and the exporter signature of an evidence bundle.
 *
 * A camera sends the same chain in every session (and every recording), so parsed chains are kept, by their
 * exact text, in a small per-process cache: the certificate objects are reused, and with them everything the
 * PKI layer derives from a certificate once (well-formedness, names, keys, signature checks). Whatever depends
 * on the time, the trust anchors or the CRLs (validity, path checks, revocation) is checked on every call.
 */
import type { KeyObject } from 'node:crypto';
import { InputError, MediaError } from '../errors.js';
import { parseCertificates } from '../pki/pem.js';
import { publicKeyObject, subjectOf, verifyCertificate, type VerifyResult } from '../pki/verify.js';
import type { CertPurpose } from '../pki/_checks.js';
import type { X509Certificate, X509Crl } from '../pki/x509.js';
import type { Trust } from './report.js';
import type { Compromise } from './time.js';

export interface TrustOptions {
  readonly roots: readonly X509Certificate[];
  readonly crls?: readonly X509Crl[];
  /** The verification time: CRL freshness, and the latest acceptable claimed time (with `maxSkewMs`); default now. */
  readonly now?: Date;
  /** How far a claimed time may lead the verification time (default 5 minutes). */
  readonly maxSkewMs?: number;
}

/** Chain failures that mean "identity not established", as opposed to "known signer, certificate not valid then". */
const UNTRUSTED_CODES: ReadonlySet<string> = new Set(['SELF_SIGNED', 'NO_ISSUER', 'UNTRUSTED_ROOT', 'BAD_SIGNATURE', 'PATH_LIMIT']);

export interface SignerIdentity {
  /** trusted: valid at `at`; untrusted: no path to a root; invalid: known signer, certificate not valid at `at`. */
  readonly trust: Exclude<Trust, 'none'>;
  readonly reason?: string;
  /** Subjects, leaf first (the validated path when there is one). */
  readonly chain: string[];
  readonly key?: KeyObject;
  readonly leaf?: X509Certificate;
  readonly intermediates: X509Certificate[];
  /** The serialNumber attribute of the leaf's subject. */
  readonly serial?: string;
  /** Epoch ms until which the certificate stays valid (expiry of the path, or a later revocation). */
  readonly validUntil?: number;
  /** The leaf's notBefore, epoch ms: nothing it signed is proven older. */
  readonly notBefore?: number;
  /** A later revocation that means the key may be in other hands: material needs a proof of existence before it. */
  readonly compromise?: Compromise;
  /** With CRLs: thisUpdate of the newest CRL used for the leaf, epoch ms. */
  readonly crlThisUpdate?: number;
}

export function certSerial(cert: X509Certificate): string | undefined {
  const m = /(?:^|,\s*)serialNumber=((?:\\.|[^,+\\])+)/.exec(subjectOf(cert));
  return m?.[1]?.replace(/\\(.)/g, '$1');
}

/** Chains kept parsed (the most recently used). */
const PARSED_CHAINS = 32;
const parsedChains = new Map<string, readonly X509Certificate[]>();

/** parseCertificates through the cache; a chain that does not parse is not kept (and throws each time). */
function parseChain(chainPem: string | Uint8Array, source: string): X509Certificate[] {
  const key = typeof chainPem === 'string' ? `s${chainPem}` : `b${Buffer.from(chainPem.buffer, chainPem.byteOffset, chainPem.length).toString('latin1')}`;
  let chain = parsedChains.get(key);
  if (chain !== undefined) {
    parsedChains.delete(key); // most recently used last
  } else {
    chain = parseCertificates(chainPem, source);
    if (parsedChains.size >= PARSED_CHAINS) parsedChains.delete(parsedChains.keys().next().value as string);
  }
  parsedChains.set(key, chain);
  return [...chain];
}

/** Empties the parsed-chain cache, so that the next session of every camera is set up from scratch (benchmarks). */
export function forgetParsedChains(): void {
  parsedChains.clear();
}

function verifyOptions(o: TrustOptions, intermediates: readonly X509Certificate[], at: Date, purpose: CertPurpose): Parameters<typeof verifyCertificate>[1] {
  return { roots: o.roots, intermediates, ...(o.crls !== undefined ? { crls: o.crls } : {}), ...(o.now !== undefined ? { now: o.now } : {}), at, purpose };
}

/** A path valid at some time stays valid until its first notAfter or a later revocation (epoch ms). */
function validUntil(result: VerifyResult): number {
  let until = Math.min(...result.chain.map((c) => Date.parse(c.notAfter)));
  if (result.revokedLater !== undefined) until = Math.min(until, Date.parse(result.revokedLater));
  return until;
}

/**
 * Establishes the signer of a chain (PEM, leaf first) at `at`. Never throws for a bad chain: it says why.
 * `source` names the chain's carrier in the reason when it cannot be read.
 */
export async function establishSigner(
  chainPem: string | Uint8Array,
  at: Date,
  options: TrustOptions,
  purpose: CertPurpose = 'video-signing',
  source = 'certificate chain',
): Promise<SignerIdentity> {
  let chain: X509Certificate[];
  try {
    chain = parseChain(chainPem, source);
  } catch (e) {
    if (e instanceof InputError || e instanceof MediaError) return { trust: 'untrusted', reason: `certificate chain unreadable: ${e.message}`, chain: [], intermediates: [] };
    throw e;
  }
  const leaf = chain[0];
  if (leaf === undefined) return { trust: 'untrusted', reason: 'no certificate', chain: [], intermediates: [] };
  const intermediates = chain.slice(1);
  const serial = certSerial(leaf);
  const base = { chain: chain.map((c) => subjectOf(c)), leaf, intermediates, notBefore: leaf.notBefore.getTime(), ...(serial !== undefined ? { serial } : {}) };
  let key: KeyObject;
  try {
    key = publicKeyObject(leaf);
  } catch {
    return { trust: 'untrusted', reason: 'certificate key unusable', ...base };
  }
  let result;
  try {
    result = await verifyCertificate(leaf, verifyOptions(options, intermediates, at, purpose));
  } catch (e) {
    if (e instanceof InputError) return { trust: 'untrusted', reason: e.message, key, ...base };
    throw e;
  }
  const withPath = { ...base, key, ...(result.chain.length > 0 ? { chain: result.chain.map((c) => c.subject) } : {}) };
  if (!result.valid) {
    const untrusted = result.status === 'self-signed' || UNTRUSTED_CODES.has(result.code ?? '');
    return { trust: untrusted ? 'untrusted' : 'invalid', reason: result.reason ?? result.code ?? 'certificate chain not valid', ...withPath };
  }
  const c = result.compromise;
  return {
    trust: 'trusted',
    ...withPath,
    validUntil: validUntil(result),
    ...(c !== undefined ? { compromise: { time: Date.parse(c.time), reason: c.reason, subject: c.subject } } : {}),
    ...(result.crlThisUpdate !== undefined ? { crlThisUpdate: Date.parse(result.crlThisUpdate) } : {}),
  };
}

/**
 * Whether an established signer's certificate is valid at a later time `at` (a unit of a running session):
 * valid, with the time until which it stays valid, or invalid and why.
 */
export async function signerValidAt(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  at: Date,
  options: TrustOptions,
  purpose: CertPurpose = 'video-signing',
): Promise<{ readonly valid: true; readonly validUntil: number } | { readonly valid: false; readonly reason: string }> {
  const r = await verifyCertificate(leaf, verifyOptions(options, intermediates, at, purpose));
  return r.valid ? { valid: true, validUntil: validUntil(r) } : { valid: false, reason: r.reason ?? r.code ?? 'certificate not valid' };
}
