/** Object identifiers of RFC 3161 / RFC 5816 time-stamping and the CMS around it (RFC 5652, RFC 2634, RFC 5035). */
export const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';
/** id-ct-TSTInfo: the eContentType of a time-stamp token. */
export const OID_TST_INFO = '1.2.840.113549.1.9.16.1.4';
/** DER of the OBJECT IDENTIFIER id-ct-TSTInfo: the value of a token's content-type attribute. */
export const TST_INFO_OID_DER = Buffer.from('060b2a864886f70d0109100104', 'hex');
export const OID_CONTENT_TYPE = '1.2.840.113549.1.9.3';
export const OID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
/** ESS signing-certificate (SHA-1 ESSCertID, RFC 2634) and signing-certificate-v2 (ESSCertIDv2, RFC 5035 / RFC 5816). */
export const OID_SIGNING_CERTIFICATE = '1.2.840.113549.1.9.16.2.12';
export const OID_SIGNING_CERTIFICATE_V2 = '1.2.840.113549.1.9.16.2.47';

export type DigestName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

/** Digest algorithms by OID. SHA-1 is read only where RFC 2634's ESSCertID requires it, never for an imprint. */
export const DIGEST_OIDS: Readonly<Record<string, DigestName>> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

export const DIGEST_OID: Readonly<Record<DigestName, string>> = {
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
};

/** Signature algorithms a token may be signed with: what the signature value is, and the digest it implies (if any). */
export const SIGNATURE_OIDS: Readonly<Record<string, { readonly key: 'ec' | 'rsa'; readonly digest?: DigestName }>> = {
  '1.2.840.10045.4.3.2': { key: 'ec', digest: 'sha256' },
  '1.2.840.10045.4.3.3': { key: 'ec', digest: 'sha384' },
  '1.2.840.10045.4.3.4': { key: 'ec', digest: 'sha512' },
  '1.2.840.10045.2.1': { key: 'ec' },
  '1.2.840.113549.1.1.1': { key: 'rsa' },
  '1.2.840.113549.1.1.11': { key: 'rsa', digest: 'sha256' },
  '1.2.840.113549.1.1.12': { key: 'rsa', digest: 'sha384' },
  '1.2.840.113549.1.1.13': { key: 'rsa', digest: 'sha512' },
};

export const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
export const OID_RSA_SHA256 = '1.2.840.113549.1.1.11';
