/** PKCS#10 certificate requests signed inside the key store, and their checks (proof of possession). */
import { ChallengePasswordAttribute, Pkcs10CertificateRequestGenerator } from './x509.js';
import type { Attribute, Name, Pkcs10CertificateRequest } from './x509.js';
import { webcrypto } from 'node:crypto';
import type { KeyStore } from '../keystore/types.js';
import { ATTR_SERIAL_NUMBER } from './oids.js';
import { keyStoreCrypto, keyStoreKeyPair } from './signer.js';

/** PKCS#9 challengePassword (RFC 2985). */
const OID_CHALLENGE_PASSWORD = '1.2.840.113549.1.9.7';

export interface CsrOptions {
  /** Subject DN. */
  readonly subject: Name | string;
  /** PKCS#9 challengePassword: carries a one-time enrolment token to the factory CA. */
  readonly challengePassword?: string;
}

export async function createCsr(store: KeyStore, label: string, options: CsrOptions): Promise<Pkcs10CertificateRequest> {
  const keys = await keyStoreKeyPair(store, label);
  const attributes: Attribute[] = options.challengePassword !== undefined ? [new ChallengePasswordAttribute(options.challengePassword)] : [];
  return Pkcs10CertificateRequestGenerator.create(
    {
      name: options.subject,
      keys: { privateKey: keys.privateKey, publicKey: keys.publicKey } as never,
      signingAlgorithm: keys.signingAlgorithm as never,
      attributes,
    },
    keyStoreCrypto,
  );
}

/** True when the request is signed by the private key of the public key it carries. */
export async function csrSignatureValid(csr: Pkcs10CertificateRequest): Promise<boolean> {
  try {
    return await csr.verify(webcrypto);
  } catch {
    return false;
  }
}

/** The device serial (X.520 serialNumber) in the request's subject, if exactly one. */
export function csrDeviceSerial(csr: Pkcs10CertificateRequest): string | undefined {
  const values = csr.subjectName.getField(ATTR_SERIAL_NUMBER);
  return values.length === 1 ? values[0] : undefined;
}

export function csrChallengePassword(csr: Pkcs10CertificateRequest): string | undefined {
  const attr = csr.getAttribute(OID_CHALLENGE_PASSWORD);
  if (attr === null) return undefined;
  try {
    return new ChallengePasswordAttribute(attr.rawData).password;
  } catch {
    return undefined;
  }
}
