/**
 * ESS signing-certificate attributes (RFC 2634 §5.4, RFC 5035 §3): the hash of the certificate that signed a
 * time-stamp token, bound into its signed attributes so that the signer cannot be substituted. Not in the
 * @peculiar/asn1-* packages, so declared here with @peculiar/asn1-schema (decorators applied as functions: the
 * project compiles without experimental decorators).
 *
 *   SigningCertificate   ::= SEQUENCE { certs SEQUENCE OF ESSCertID, policies SEQUENCE OF PolicyInformation OPTIONAL }
 *   ESSCertID            ::= SEQUENCE { certHash OCTET STRING (SHA-1), issuerSerial IssuerSerial OPTIONAL }
 *   SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, policies SEQUENCE OF PolicyInformation OPTIONAL }
 *   ESSCertIDv2          ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier DEFAULT {algorithm id-sha256},
 *                                       certHash OCTET STRING, issuerSerial IssuerSerial OPTIONAL }
 *   IssuerSerial         ::= SEQUENCE { issuer GeneralNames, serialNumber CertificateSerialNumber }
 */
import { AsnIntegerArrayBufferConverter, AsnProp, AsnPropTypes, OctetString } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, GeneralNames, PolicyInformation } from '@peculiar/asn1-x509';

export class IssuerSerial {
  issuer = new GeneralNames();
  serialNumber = new ArrayBuffer(0);
}
AsnProp({ type: GeneralNames })(IssuerSerial.prototype, 'issuer');
AsnProp({ type: AsnPropTypes.Integer, converter: AsnIntegerArrayBufferConverter })(IssuerSerial.prototype, 'serialNumber');

export class EssCertId {
  certHash = new OctetString();
  issuerSerial?: IssuerSerial;
}
AsnProp({ type: OctetString })(EssCertId.prototype, 'certHash');
AsnProp({ type: IssuerSerial, optional: true })(EssCertId.prototype, 'issuerSerial');

export class EssCertIdV2 {
  hashAlgorithm?: AlgorithmIdentifier;
  certHash = new OctetString();
  issuerSerial?: IssuerSerial;
}
AsnProp({ type: AlgorithmIdentifier, optional: true })(EssCertIdV2.prototype, 'hashAlgorithm');
AsnProp({ type: OctetString })(EssCertIdV2.prototype, 'certHash');
AsnProp({ type: IssuerSerial, optional: true })(EssCertIdV2.prototype, 'issuerSerial');

export class SigningCertificate {
  certs: EssCertId[] = [];
  policies?: PolicyInformation[];
}
AsnProp({ type: EssCertId, repeated: 'sequence' })(SigningCertificate.prototype, 'certs');
AsnProp({ type: PolicyInformation, repeated: 'sequence', optional: true })(SigningCertificate.prototype, 'policies');

export class SigningCertificateV2 {
  certs: EssCertIdV2[] = [];
  policies?: PolicyInformation[];
}
AsnProp({ type: EssCertIdV2, repeated: 'sequence' })(SigningCertificateV2.prototype, 'certs');
AsnProp({ type: PolicyInformation, repeated: 'sequence', optional: true })(SigningCertificateV2.prototype, 'policies');
