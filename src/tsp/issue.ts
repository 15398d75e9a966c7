/**
 * Building an RFC 3161 time-stamp token (a DER ContentInfo holding a CMS SignedData over a TSTInfo) around a signing
 * callback. Pure apart from the callback: no clock, no key, no check of the signer — the TimeStampAuthority decides
 * what to sign, when, and with which certificate (see authority.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  Attribute,
  CertificateChoices,
  CertificateSet,
  ContentInfo,
  DigestAlgorithmIdentifier,
  DigestAlgorithmIdentifiers,
  EncapsulatedContent,
  EncapsulatedContentInfo,
  IssuerAndSerialNumber,
  SignatureAlgorithmIdentifier,
  SignedData,
  SignerIdentifier,
  SignerInfo,
  SignerInfos,
} from '@peculiar/asn1-cms';
import { Accuracy, MessageImprint, TSTInfo } from '@peculiar/asn1-tsp';
import { AlgorithmIdentifier, Certificate, GeneralName, GeneralNames, Name as AsnName } from '@peculiar/asn1-x509';
import type { X509Certificate } from '../pki/x509.js';
import { derLength } from './_der.js';
import { EssCertIdV2, IssuerSerial, SigningCertificateV2 } from './_ess.js';
import { DIGEST_OID, type DigestName, OID_CONTENT_TYPE, OID_ECDSA_SHA256, OID_MESSAGE_DIGEST, OID_RSA_SHA256, OID_SIGNED_DATA, OID_SIGNING_CERTIFICATE_V2, OID_TST_INFO, TST_INFO_OID_DER } from './oids.js';
import { integerBytes } from './request.js';

export interface TokenParameters {
  /** The signer's certificate (named in the SignerInfo and the ESS signing-certificate-v2 attribute). */
  readonly certificate: X509Certificate;
  /** Certificates to carry in the token (empty: none). */
  readonly chain: readonly X509Certificate[];
  /** RSA (PKCS#1 v1.5) rather than ECDSA. */
  readonly rsa: boolean;
  /** Signs SHA-256(data): ECDSA as DER, or RSA PKCS#1 v1.5. */
  readonly sign: (data: Uint8Array) => Promise<Uint8Array>;
  readonly hashAlgorithm: DigestName;
  readonly hash: Uint8Array;
  readonly policy: string;
  readonly nonce?: bigint;
  readonly genTime: Date;
  readonly accuracySeconds?: number;
  /** Default: 127 random bits. */
  readonly serialNumber?: bigint;
}

/** DER SET OF: the elements sorted by their encodings (X.690 §11.6). */
function derSetOf(elements: readonly Buffer[]): Buffer {
  const body = Buffer.concat([...elements].sort((a, b) => Buffer.compare(a, b)));
  return Buffer.concat([Buffer.from([0x31]), derLength(body.length), body]);
}

function randomSerial(): bigint {
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x01;
  return BigInt(`0x${serial.toString('hex')}`);
}

export async function buildTimeStampToken(p: TokenParameters): Promise<Buffer> {
  const tbs = AsnConvert.parse(p.certificate.rawData, Certificate).tbsCertificate;
  const tstInfo = new TSTInfo({
    version: 1,
    policy: p.policy,
    messageImprint: new MessageImprint({ hashAlgorithm: new AlgorithmIdentifier({ algorithm: DIGEST_OID[p.hashAlgorithm] }), hashedMessage: new OctetString(p.hash) }),
    serialNumber: integerBytes(p.serialNumber ?? randomSerial()),
    genTime: p.genTime,
    ...(p.accuracySeconds !== undefined ? { accuracy: new Accuracy({ seconds: p.accuracySeconds }) } : {}),
    ordering: false,
    ...(p.nonce !== undefined ? { nonce: integerBytes(p.nonce) } : {}),
    tsa: new GeneralName({ directoryName: AsnConvert.parse(p.certificate.subjectName.toArrayBuffer(), AsnName) }),
  });
  const eContent = Buffer.from(AsnConvert.serialize(tstInfo));
  const essId = new EssCertIdV2();
  essId.certHash = new OctetString(createHash('sha256').update(new Uint8Array(p.certificate.rawData)).digest());
  const issuerSerial = new IssuerSerial();
  issuerSerial.issuer = new GeneralNames([new GeneralName({ directoryName: tbs.issuer })]);
  issuerSerial.serialNumber = tbs.serialNumber;
  essId.issuerSerial = issuerSerial;
  const signingCertificate = new SigningCertificateV2();
  signingCertificate.certs = [essId];
  const attributes = [
    new Attribute({ attrType: OID_CONTENT_TYPE, attrValues: [new Uint8Array(TST_INFO_OID_DER).buffer] }),
    new Attribute({ attrType: OID_MESSAGE_DIGEST, attrValues: [AsnConvert.serialize(new OctetString(createHash('sha256').update(eContent).digest()))] }),
    new Attribute({ attrType: OID_SIGNING_CERTIFICATE_V2, attrValues: [AsnConvert.serialize(signingCertificate)] }),
  ]
    .map((a) => ({ a, der: Buffer.from(AsnConvert.serialize(a)) }))
    .sort((x, y) => Buffer.compare(x.der, y.der));
  // what is signed is the DER SET OF the attributes, sorted; the SignerInfo carries them in that order
  const signature = await p.sign(derSetOf(attributes.map((x) => x.der)));
  const signerInfo = new SignerInfo({
    version: 1,
    sid: new SignerIdentifier({ issuerAndSerialNumber: new IssuerAndSerialNumber({ issuer: tbs.issuer, serialNumber: tbs.serialNumber }) }),
    digestAlgorithm: new DigestAlgorithmIdentifier({ algorithm: DIGEST_OID.sha256 }),
    signedAttrs: attributes.map((x) => x.a),
    signatureAlgorithm: new SignatureAlgorithmIdentifier(p.rsa ? { algorithm: OID_RSA_SHA256, parameters: null } : { algorithm: OID_ECDSA_SHA256 }),
    signature: new OctetString(signature),
  });
  const signedData = new SignedData({
    version: 3,
    digestAlgorithms: new DigestAlgorithmIdentifiers([new DigestAlgorithmIdentifier({ algorithm: DIGEST_OID.sha256 })]),
    encapContentInfo: new EncapsulatedContentInfo({ eContentType: OID_TST_INFO, eContent: new EncapsulatedContent({ single: new OctetString(eContent) }) }),
    ...(p.chain.length > 0 ? { certificates: new CertificateSet(p.chain.map((c) => new CertificateChoices({ certificate: AsnConvert.parse(c.rawData, Certificate) }))) } : {}),
    signerInfos: new SignerInfos([signerInfo]),
  });
  return Buffer.from(AsnConvert.serialize(new ContentInfo({ contentType: OID_SIGNED_DATA, content: AsnConvert.serialize(signedData) })));
}
