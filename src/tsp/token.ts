/**
 * RFC 3161 time-stamp replies and tokens, read and verified. Pure: bytes, certificates and CRLs in; a result out.
 *
 * A token is a CMS SignedData (RFC 5652) whose content is a TSTInfo: "this hash existed at genTime", by the TSA's
 * clock and key. `verifyTimeStampToken` accepts it only if all of these hold (RFC 3161 §2.4.2, RFC 5816):
 *
 * - the SignedData holds one SignerInfo, its eContentType is id-ct-TSTInfo, and the TSTInfo is version 1;
 * - the message imprint is the caller's hash (with the caller's algorithm), and the nonce is the caller's if one was
 *   sent;
 * - the signer's certificate is found (in the token or among the caller's intermediates) by the SignerInfo's sid;
 * - the signed attributes hold the content type id-ct-TSTInfo, the message digest of the TSTInfo, and an ESS
 *   signing-certificate(-v2) attribute naming that certificate by hash (and issuer/serial when given);
 * - the signature over the signed attributes, as received, verifies with that certificate's key;
 * - the certificate is a TSA's: its extended key usage is id-kp-timeStamping only and critical, and it chains to a
 *   trusted root, valid at genTime (revocation honoured with CRLs; a TSA key revoked as compromised at any time
 *   makes every token of it worthless: whoever holds the key can date anything);
 * - the policy is one the caller accepts (when the caller names any), and the tsa name, if present, is the signer's.
 *
 * An invalid token is a result ({ valid: false, code, reason }), never an exception.
 */
import { createHash, verify as cryptoVerify } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { ContentInfo, SignedData } from '@peculiar/asn1-cms';
import { PKIStatus, TimeStampResp, TSTInfo } from '@peculiar/asn1-tsp';
import type { Name as AsnName } from '@peculiar/asn1-x509';
import { InputError } from '../errors.js';
import { subjectKeyId } from '../pki/_certs.js';
import { asDecoded } from '../pki/_checks.js';
import { TSA_POLICY } from '../pki/oids.js';
import { publicKeyObject, summarize, subjectOf, verifyCertificate, type CertSummary } from '../pki/verify.js';
import { X509Certificate } from '../pki/x509.js';
import type { X509Crl } from '../pki/x509.js';
import { signedDataParts, tokenOfResponse, TspFormatError } from './_der.js';
import { SigningCertificate, SigningCertificateV2, type EssCertIdV2 } from './_ess.js';
import {
  DIGEST_OID,
  DIGEST_OIDS,
  type DigestName,
  OID_CONTENT_TYPE,
  OID_MESSAGE_DIGEST,
  OID_SIGNED_DATA,
  OID_SIGNING_CERTIFICATE,
  OID_SIGNING_CERTIFICATE_V2,
  OID_TST_INFO,
  SIGNATURE_OIDS,
  TST_INFO_OID_DER,
} from './oids.js';
import { integerValue } from './request.js';

export const PKI_STATUS_NAMES: Readonly<Record<number, string>> = {
  0: 'granted',
  1: 'grantedWithMods',
  2: 'rejection',
  3: 'waiting',
  4: 'revocationWarning',
  5: 'revocationNotification',
};

export interface TimeStampResponse {
  /** PKIStatus: 0 granted, 1 grantedWithMods, 2 rejection, … */
  readonly status: number;
  readonly statusText: readonly string[];
  /** Names of the PKIFailureInfo bits set, e.g. badAlg, unacceptedPolicy. */
  readonly failInfo: readonly string[];
  /** The token (a DER ContentInfo), byte for byte as received. */
  readonly token?: Buffer;
}

/** Reads a TimeStampResp (InputError when it is not one). */
export function decodeTimeStampResponse(der: Uint8Array): TimeStampResponse {
  let resp: TimeStampResp;
  let token: Buffer | undefined;
  try {
    resp = AsnConvert.parse(der, TimeStampResp);
    token = tokenOfResponse(der);
  } catch (e) {
    throw new InputError('not an RFC 3161 time-stamp reply', { cause: e });
  }
  const status = Number(resp.status.status);
  const granted = status === Number(PKIStatus.granted) || status === Number(PKIStatus.grantedWithMods);
  return {
    status,
    statusText: [...(resp.status.statusString ?? [])],
    failInfo: resp.status.failInfo?.toJSON() ?? [],
    ...(granted && token !== undefined ? { token } : {}),
  };
}

export interface TokenOptions {
  /** The hash the token must be over. */
  readonly hash: Uint8Array;
  /** Its algorithm (default sha256). */
  readonly hashAlgorithm?: DigestName;
  /** The nonce sent in the request, when the token answers one. */
  readonly nonce?: bigint;
  /** Trust anchors for TSA certificates. */
  readonly roots: readonly X509Certificate[];
  /** Further untrusted chain candidates (the token's own certificates are used too). */
  readonly intermediates?: readonly X509Certificate[];
  /** With CRLs, the TSA's chain is checked for revocation at genTime. */
  readonly crls?: readonly X509Crl[];
  /** Time for CRL freshness (default now). */
  readonly now?: Date;
  /** Accepted TSA policies (OIDs); default: any. */
  readonly policies?: readonly string[];
}

export interface TimeStampInfo {
  /** When the TSA says the hash existed, ISO 8601. */
  readonly genTime: string;
  /** genTime plus the token's accuracy: the hash existed no later than this. */
  readonly notAfter: string;
  readonly accuracyMs?: number;
  readonly serialNumber: string;
  readonly policy: string;
  readonly hashAlgorithm: string;
  readonly hashedMessage: string;
  readonly nonce?: string;
  readonly ordering: boolean;
  /** The signer's certificate. */
  readonly tsa?: CertSummary;
}

export type TokenVerification =
  | { readonly valid: true; readonly info: TimeStampInfo; readonly chain: readonly CertSummary[] }
  | { readonly valid: false; readonly code: string; readonly reason: string; readonly info?: TimeStampInfo; readonly chain?: readonly CertSummary[] };

interface Decoded {
  readonly signedData: SignedData;
  readonly tstInfo: TSTInfo;
  readonly tstDer: Uint8Array;
  readonly certificates: readonly X509Certificate[];
  readonly signedAttributes: Buffer | undefined;
}

function decode(der: Uint8Array): Decoded {
  const ci = AsnConvert.parse(der, ContentInfo);
  if (ci.contentType !== OID_SIGNED_DATA) throw new TspFormatError(`content type ${ci.contentType} is not SignedData`);
  const signedData = AsnConvert.parse(ci.content, SignedData);
  if (signedData.encapContentInfo.eContentType !== OID_TST_INFO) throw new TspFormatError(`eContentType ${signedData.encapContentInfo.eContentType} is not id-ct-TSTInfo`);
  const single = signedData.encapContentInfo.eContent?.single;
  if (single === undefined) throw new TspFormatError('the token carries no TSTInfo');
  const tstDer = new Uint8Array(single.buffer);
  const tstInfo = AsnConvert.parse(tstDer, TSTInfo);
  const parts = signedDataParts(der);
  const certificates = parts.certificates.map((c) => new X509Certificate(c));
  return { signedData, tstInfo, tstDer, certificates, signedAttributes: parts.signedAttributes };
}

function hexOf(b: ArrayBuffer | Uint8Array): string {
  return Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b)).toString('hex');
}

function digest(name: DigestName, data: Uint8Array): Buffer {
  return createHash(name).update(data).digest();
}

/** Accuracy in milliseconds (RFC 3161: seconds, millis, micros; all optional). */
function accuracyMs(t: TSTInfo): number | undefined {
  const a = t.accuracy;
  if (a === undefined) return undefined;
  return (a.seconds ?? 0) * 1000 + (a.millis ?? 0) + Math.ceil((a.micros ?? 0) / 1000);
}

/**
 * The OID as text. The decoder prints arcs above 2^53 (keyframe's UUID arc) as `{…}`: known OIDs are given back
 * in their decimal form.
 */
function displayOid(oid: string): string {
  return [TSA_POLICY].find((known) => asDecoded(known) === oid) ?? oid;
}

/** What the token says, read without judging it. */
function infoOf(d: Decoded, signer?: X509Certificate): TimeStampInfo {
  const t = d.tstInfo;
  const acc = accuracyMs(t);
  const genTime = t.genTime;
  return {
    genTime: genTime.toISOString(),
    notAfter: new Date(genTime.getTime() + (acc ?? 0)).toISOString(),
    ...(acc !== undefined ? { accuracyMs: acc } : {}),
    serialNumber: hexOf(t.serialNumber),
    policy: displayOid(t.policy),
    hashAlgorithm: DIGEST_OIDS[t.messageImprint.hashAlgorithm.algorithm] ?? t.messageImprint.hashAlgorithm.algorithm,
    hashedMessage: hexOf(t.messageImprint.hashedMessage.buffer),
    ...(t.nonce !== undefined ? { nonce: integerValue(t.nonce).toString() } : {}),
    ordering: t.ordering,
    ...(signer !== undefined ? { tsa: summarize(signer) } : {}),
  };
}

/** The time a token states (genTime) and its serial number, without verifying it: for listings. */
export function readTimeStampToken(der: Uint8Array): TimeStampInfo {
  try {
    const d = decode(der);
    return infoOf(d, findSigner(d, []));
  } catch (e) {
    throw new InputError('not an RFC 3161 time-stamp token', { cause: e });
  }
}

function nameDer(name: AsnName): Buffer {
  return Buffer.from(AsnConvert.serialize(name));
}

function serialOf(cert: X509Certificate): bigint {
  return BigInt(`0x${cert.serialNumber.length > 0 ? cert.serialNumber : '0'}`);
}

/** The certificate the SignerInfo names (issuer and serial number, or subject key identifier). */
function findSigner(d: Decoded, extra: readonly X509Certificate[]): X509Certificate | undefined {
  const si = d.signedData.signerInfos[0];
  if (si === undefined) return undefined;
  const pool = [...d.certificates, ...extra];
  const ias = si.sid.issuerAndSerialNumber;
  if (ias !== undefined) {
    const issuer = nameDer(ias.issuer);
    const serial = integerValue(ias.serialNumber);
    return pool.find((c) => Buffer.from(c.issuerName.toArrayBuffer()).equals(issuer) && serialOf(c) === serial);
  }
  const ski = si.sid.subjectKeyIdentifier;
  if (ski !== undefined) {
    const want = hexOf(ski.buffer);
    return pool.find((c) => subjectKeyId(c) === want);
  }
  return undefined;
}

type Check = { readonly code: string; readonly reason: string } | undefined;

function attributeValues(d: Decoded, type: string): ArrayBuffer[][] {
  return (d.signedData.signerInfos[0]?.signedAttrs ?? []).filter((a) => a.attrType === type).map((a) => a.attrValues);
}

/** The single value of a signed attribute that must occur exactly once with one value. */
function single(d: Decoded, type: string, name: string): ArrayBuffer | Check {
  const all = attributeValues(d, type);
  if (all.length !== 1 || all[0]?.length !== 1) return { code: 'SIGNED_ATTRIBUTES', reason: `the signed attributes must hold one ${name} attribute with one value` };
  return all[0][0];
}

function checkSignedAttributes(d: Decoded, signer: X509Certificate, digestName: DigestName): Check {
  const ct = single(d, OID_CONTENT_TYPE, 'content-type');
  if (!(ct instanceof ArrayBuffer)) return ct;
  if (!Buffer.from(ct).equals(TST_INFO_OID_DER)) return { code: 'SIGNED_ATTRIBUTES', reason: 'the content-type attribute is not id-ct-TSTInfo' };
  const md = single(d, OID_MESSAGE_DIGEST, 'message-digest');
  if (!(md instanceof ArrayBuffer)) return md;
  if (!Buffer.from(AsnConvert.parse(md, OctetString).buffer).equals(digest(digestName, d.tstDer))) {
    return { code: 'MESSAGE_DIGEST', reason: 'the message-digest attribute does not match the TSTInfo: the token was altered' };
  }
  const certDer = new Uint8Array(signer.rawData);
  const v2 = attributeValues(d, OID_SIGNING_CERTIFICATE_V2);
  const v1 = attributeValues(d, OID_SIGNING_CERTIFICATE);
  if (v2.length + v1.length !== 1 || (v2[0] ?? v1[0])?.length !== 1) {
    return { code: 'SIGNING_CERTIFICATE', reason: 'the signed attributes must hold one ESS signing-certificate or signing-certificate-v2 attribute' };
  }
  let first: { certHash: OctetString; issuerSerial?: EssCertIdV2['issuerSerial']; alg: DigestName | undefined } | undefined;
  try {
    if (v2.length === 1) {
      const sc = AsnConvert.parse((v2[0] as ArrayBuffer[])[0] as ArrayBuffer, SigningCertificateV2);
      const c = sc.certs[0];
      if (c !== undefined) first = { certHash: c.certHash, ...(c.issuerSerial !== undefined ? { issuerSerial: c.issuerSerial } : {}), alg: c.hashAlgorithm === undefined ? 'sha256' : DIGEST_OIDS[c.hashAlgorithm.algorithm] };
    } else {
      const sc = AsnConvert.parse((v1[0] as ArrayBuffer[])[0] as ArrayBuffer, SigningCertificate);
      const c = sc.certs[0];
      if (c !== undefined) first = { certHash: c.certHash, ...(c.issuerSerial !== undefined ? { issuerSerial: c.issuerSerial } : {}), alg: 'sha1' };
    }
  } catch {
    return { code: 'SIGNING_CERTIFICATE', reason: 'the ESS signing-certificate attribute is malformed' };
  }
  if (first === undefined) return { code: 'SIGNING_CERTIFICATE', reason: 'the ESS signing-certificate attribute names no certificate' };
  if (first.alg === undefined) return { code: 'UNSUPPORTED_ALGORITHM', reason: 'the ESS signing-certificate attribute uses an unknown hash' };
  if (!Buffer.from(first.certHash.buffer).equals(digest(first.alg, certDer))) {
    return { code: 'SIGNING_CERTIFICATE', reason: `the ESS signing-certificate attribute names another certificate than the signer "${subjectOf(signer)}"` };
  }
  const is = first.issuerSerial;
  if (is !== undefined) {
    const issuerDer = Buffer.from(signer.issuerName.toArrayBuffer());
    const namesIssuer = is.issuer.some((g) => g.directoryName !== undefined && nameDer(g.directoryName).equals(issuerDer));
    if (integerValue(is.serialNumber) !== serialOf(signer) || !namesIssuer) {
      return { code: 'SIGNING_CERTIFICATE', reason: 'the ESS signing-certificate attribute names another issuer or serial number than the signer certificate' };
    }
  }
  return undefined;
}

function checkSignature(d: Decoded, signer: X509Certificate): Check {
  const si = d.signedData.signerInfos[0];
  if (si === undefined || d.signedAttributes === undefined) return { code: 'SIGNED_ATTRIBUTES', reason: 'the token has no signed attributes' };
  const digestName = DIGEST_OIDS[si.digestAlgorithm.algorithm];
  const sig = SIGNATURE_OIDS[si.signatureAlgorithm.algorithm];
  if (digestName === undefined || digestName === 'sha1' || sig === undefined || (sig.digest !== undefined && sig.digest !== digestName)) {
    return { code: 'UNSUPPORTED_ALGORITHM', reason: `unsupported signature algorithm ${si.signatureAlgorithm.algorithm} with digest ${si.digestAlgorithm.algorithm}` };
  }
  let key;
  try {
    key = publicKeyObject(signer);
  } catch {
    return { code: 'UNSUPPORTED_ALGORITHM', reason: 'the TSA certificate key is unusable' };
  }
  if (key.asymmetricKeyType !== sig.key) return { code: 'UNSUPPORTED_ALGORITHM', reason: `a ${sig.key.toUpperCase()} signature with a ${key.asymmetricKeyType ?? '?'} key` };
  let ok: boolean;
  try {
    ok = cryptoVerify(digestName, d.signedAttributes, sig.key === 'ec' ? { key, dsaEncoding: 'der' } : key, new Uint8Array(si.signature.buffer));
  } catch {
    ok = false;
  }
  if (!ok) return { code: 'BAD_SIGNATURE', reason: 'the TSA signature does not verify: the token was altered or forged' };
  return checkSignedAttributes(d, signer, digestName);
}

function policyAccepted(policy: string, accepted: readonly string[] | undefined): boolean {
  return accepted === undefined || accepted.some((p) => p === policy || asDecoded(p) === policy);
}

/** Verifies a time-stamp token (DER ContentInfo) against the caller's hash and trust anchors; see the module comment. */
export async function verifyTimeStampToken(token: Uint8Array, options: TokenOptions): Promise<TokenVerification> {
  let d: Decoded;
  try {
    d = decode(token);
  } catch (e) {
    return { valid: false, code: 'MALFORMED', reason: `not a well-formed RFC 3161 time-stamp token${e instanceof Error ? ` (${e.message})` : ''}` };
  }
  const signer = findSigner(d, options.intermediates ?? []);
  const info = infoOf(d, signer);
  const bad = (code: string, reason: string, chain?: readonly CertSummary[]): TokenVerification => ({ valid: false, code, reason, info, ...(chain !== undefined ? { chain } : {}) });
  const t = d.tstInfo;
  if (Number(t.version) !== 1) return bad('MALFORMED', `TSTInfo version ${String(t.version)} (expected 1)`);
  if (d.signedData.signerInfos.length !== 1) return bad('MALFORMED', `the token has ${d.signedData.signerInfos.length} signers (expected 1)`);
  const hashAlgorithm = options.hashAlgorithm ?? 'sha256';
  const mi = t.messageImprint;
  if (mi.hashAlgorithm.algorithm !== DIGEST_OID[hashAlgorithm] || !Buffer.from(mi.hashedMessage.buffer).equals(Buffer.from(options.hash))) {
    return bad('IMPRINT_MISMATCH', 'message imprint mismatch: the token is over other data');
  }
  if (options.nonce !== undefined && (t.nonce === undefined || integerValue(t.nonce) !== options.nonce)) return bad('NONCE_MISMATCH', 'the token does not carry the nonce of the request (a replayed reply?)');
  if (signer === undefined) return bad('NO_SIGNER_CERTIFICATE', "the TSA's certificate is neither in the token nor given");
  const sigProblem = checkSignature(d, signer);
  if (sigProblem !== undefined) return bad(sigProblem.code, sigProblem.reason);
  if (t.tsa !== undefined) {
    const dn = t.tsa.directoryName;
    if (dn === undefined || !nameDer(dn).equals(Buffer.from(signer.subjectName.toArrayBuffer()))) return bad('TSA_NAME', "the token's tsa name is not its signer's");
  }
  const chainResult = await verifyCertificate(signer, {
    roots: options.roots,
    intermediates: [...d.certificates, ...(options.intermediates ?? [])],
    ...(options.crls !== undefined ? { crls: options.crls } : {}),
    ...(options.now !== undefined ? { now: options.now } : {}),
    at: t.genTime,
    purpose: 'timestamping',
  });
  if (!chainResult.valid) return bad('TSA_CERTIFICATE', `TSA certificate not valid at genTime ${info.genTime}: ${chainResult.reason ?? chainResult.code ?? 'invalid'}`, chainResult.chain);
  if (chainResult.compromise !== undefined) {
    const c = chainResult.compromise;
    return bad('TSA_COMPROMISED', `the TSA's certificate "${c.subject}" was revoked at ${c.time} (${c.reason}): whoever holds its key can date anything, so its tokens prove nothing`, chainResult.chain);
  }
  if (!policyAccepted(t.policy, options.policies)) return bad('POLICY', `TSA policy ${t.policy} is not an accepted one`, chainResult.chain);
  return { valid: true, info, chain: chainResult.chain };
}
