/**
 * The CRLs a service checks its peers against, read from files and judged before they are used:
 *
 * - each CRL must be signed by one of the service's CA certificates (a CRL from anyone else is refused);
 * - per issuer, a CRL whose cRLNumber is lower than the one in use is a rollback and is refused (an attacker who
 *   can write the file must not be able to un-revoke a camera by putting back an old CRL);
 * - the set says when each issuer's CRL stops being current (nextUpdate), so the service can warn well before,
 *   and say loudly when it has passed (every peer is then refused: fail closed).
 */
import { readFileSync } from 'node:fs';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CRLNumber } from '@peculiar/asn1-x509';
import { ErrorCodes, KeyframeError, NotFoundError, errnoCode } from '../errors.js';
import { crlSignatureVerifies, issuerOf, namesEqual } from './_certs.js';
import { parseCrls } from './pem.js';
import type { X509Certificate, X509Crl } from './x509.js';

export interface CrlInfo {
  readonly issuer: string;
  readonly number: bigint | undefined;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  readonly revoked: number;
}

export interface CrlSet {
  readonly crls: readonly X509Crl[];
  readonly info: readonly CrlInfo[];
  /** The certificate serial numbers (hex, lower case) each issuer (subject text) revokes. */
  readonly revokedSerials: ReadonlyMap<string, ReadonlySet<string>>;
}

/** The cRLNumber extension's value, when present. */
export function crlNumber(crl: X509Crl): bigint | undefined {
  const ext = crl.extensions.find((e) => e.type === '2.5.29.20');
  if (ext === undefined) return undefined;
  try {
    // the schema reads the INTEGER as a JS number (CRL numbers here are small counters)
    const n = AsnConvert.parse(ext.value, CRLNumber).value;
    return Number.isSafeInteger(n) ? BigInt(n) : undefined;
  } catch {
    return undefined;
  }
}

function serialHex(s: string): string {
  return s.toLowerCase().replace(/^0+(?=.)/, '');
}

/**
 * Reads and judges the CRL files. `previous` is the set in use: an issuer's CRL numbered below it is refused.
 * Throws KeyframeError naming the file and the problem; nothing of a refused set is used.
 */
export async function loadCrlSet(files: readonly string[], issuers: readonly X509Certificate[], previous?: CrlSet): Promise<CrlSet> {
  const crls: X509Crl[] = [];
  for (const file of files) {
    let pem: Buffer;
    try {
      pem = readFileSync(file);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`CRL file not found: ${file}`);
      throw new KeyframeError(ErrorCodes.INPUT, `CRL file ${file}: ${(e as Error).message}`);
    }
    const found = parseCrls(pem, file);
    if (found.length === 0) throw new KeyframeError(ErrorCodes.INPUT, `${file} holds no CRL`);
    for (const crl of found) {
      const issuer = issuers.find((c) => namesEqual(c.subjectName, crl.issuerName));
      if (issuer === undefined || !(await crlSignatureVerifies(crl, issuer))) throw new KeyframeError(ErrorCodes.CERT_INVALID, `${file}: the CRL of "${issuerOf(crl)}" is not signed by a CA this service trusts`);
      crls.push(crl);
    }
  }
  const info: CrlInfo[] = crls.map((crl) => ({ issuer: issuerOf(crl), number: crlNumber(crl), thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate, revoked: crl.entries.length }));
  for (const i of info) {
    const before = previous?.info.find((p) => p.issuer === i.issuer);
    if (before?.number !== undefined && (i.number === undefined || i.number < before.number)) {
      throw new KeyframeError(ErrorCodes.CERT_INVALID, `the CRL of "${i.issuer}" is older than the one in use (number ${String(i.number ?? 'none')} < ${String(before.number)}): refused as a rollback`);
    }
  }
  const revokedSerials = new Map<string, Set<string>>();
  for (const crl of crls) {
    const set = revokedSerials.get(issuerOf(crl)) ?? new Set<string>();
    for (const e of crl.entries) set.add(serialHex(e.serialNumber));
    revokedSerials.set(issuerOf(crl), set);
  }
  return { crls, info, revokedSerials };
}

/** Is `cert` revoked by its issuer's CRL in `set`? */
export function isRevokedIn(set: CrlSet, cert: X509Certificate): boolean {
  return set.revokedSerials.get(issuerOf(cert))?.has(serialHex(cert.serialNumber)) ?? false;
}
