/**
 * The one entry to @peculiar/x509. It loads tsyringe, which needs the Reflect metadata API before it is
 * evaluated; ES modules evaluate their imports in source order, so the polyfill comes first here, and every
 * keyframe module imports X.509 classes from this file rather than from the package.
 */
import 'reflect-metadata';

export {
  AsnEcSignatureFormatter,
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ChallengePasswordAttribute,
  ExtendedKeyUsageExtension,
  Extension,
  KeyUsageFlags,
  KeyUsagesExtension,
  Name,
  Pkcs10CertificateRequest,
  Pkcs10CertificateRequestGenerator,
  PublicKey,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
  X509Crl,
  X509CrlEntry,
  X509CrlGenerator,
  X509CrlReason,
} from '@peculiar/x509';
export type { Attribute, JsonGeneralName } from '@peculiar/x509';
