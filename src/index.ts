/**
 * keyframe's public API, exported by name. Subsystems: errors, key stores (secure element), PKI (CA,
 * enrolment, devices, sites, path validation), TLS.
 */
export { ErrorCodes, KeyframeError, UsageError, InputError, NotFoundError, KeyStoreError, PkiError, EnrolmentError, GroupKeyError, GroupKeyRefusal, GROUPKEY_REFUSED_MESSAGE, ENROLMENT_REFUSED_MESSAGE, isKeyframeError } from './errors.js';
export type { ErrorCode } from './errors.js';

export type { KeyStore, KeyStoreBackend, KeyAlgorithm, KeyPairAlgorithm, KeyInfo, SignOptions } from './keystore/types.js';
export { KEY_PAIR_ALGORITHMS, LABEL_PATTERN } from './keystore/types.js';
export { openKeyStore } from './keystore/open.js';
export type { OpenKeyStoreOptions } from './keystore/open.js';
export { parseKeyStoreSpec, formatKeyStoreSpec, DEFAULT_PIN_ENV } from './keystore/spec.js';
export type { KeyStoreSpec, PinSource } from './keystore/spec.js';
export { SoftwareKeyStore, DEFAULT_SCRYPT } from './keystore/software.js';
export type { ScryptParams, SoftwareKeyStoreOptions } from './keystore/software.js';
export { Pkcs11KeyStore, pkcs11Uri } from './keystore/pkcs11.js';
export { deriveFromSharedSecret, kdfInput, KDF_LABEL } from './keystore/kdf.js';

export { initCa, issueEnrolmentToken, issueDeviceCertificate, issueSiteCertificate, issueTsaCertificate, issueExporterCertificate, revoke, issueCrl, issueAllCrls, parseRevocationReason, REVOCATION_REASONS } from './pki/ca.js';
export type { InitCaOptions, InitCaResult, IssueDeviceOptions, SiteCertificateOptions, SinglePurposeCertificateOptions, OperatorCertificateKind, RevokeOptions, RevocationReason, CrlOptions } from './pki/ca.js';
export { CaStore, requireCaDir, CA_NAMES } from './pki/ca-store.js';
export type { CaName, CaConfig, CaDb, IssuedCertificate, TokenRecord } from './pki/ca-store.js';
export { parseToken, formatToken } from './pki/enrol.js';
export { createCsr, csrSignatureValid, csrDeviceSerial } from './pki/csr.js';
export { initDevice, provisionDevice, openDevice, deviceCsr, installCertificate, selfSignDevice, csrToPem } from './pki/device.js';
export type { Device, DeviceConfig, DeviceSetupOptions, ProvisionOptions, ProvisionResult } from './pki/device.js';
export { createSite } from './pki/site.js';
export type { SiteConfig, CreateSiteOptions } from './pki/site.js';
export { createOperatorIdentity, openOperatorIdentity, IDENTITY_FILE } from './pki/operator-identity.js';
export type { OperatorIdentity, OperatorIdentityConfig, OperatorIdentityKind, CreateOperatorIdentityOptions, OpenIdentityOptions } from './pki/operator-identity.js';
export { verifyCertificate, fingerprintSha256, displayName, subjectOf, CERT_PURPOSES, SELF_SIGNED_REASON } from './pki/verify.js';
export type { CertPurpose, VerifyOptions, VerifyResult, CertSummary } from './pki/verify.js';
export { parseCertificates, parseCrls, parseCsr, certsToPem, toPem } from './pki/pem.js';
export { keyStoreCrypto, keyStoreKeyPair } from './pki/signer.js';
export { EKU_VIDEO_SIGNING, EKU_EVIDENCE_EXPORT, EKU_TIME_STAMPING, TSA_POLICY, EKU_CLIENT_AUTH, EKU_SERVER_AUTH, KEYFRAME_ARC, ATTR_SERIAL_NUMBER } from './pki/oids.js';
export { loadTlsIdentity, tlsServerOptions, tlsClientOptions, peerDeviceSerial, pkcs11EnginePath } from './pki/tls.js';
export type { TlsIdentity, TrustPolicy } from './pki/tls.js';

export { TimeStampAuthority } from './tsp/authority.js';
export type { AuthorityOptions, StampOptions } from './tsp/authority.js';
export { buildTimeStampToken } from './tsp/issue.js';
export type { TokenParameters } from './tsp/issue.js';
export { encodeTimeStampRequest, decodeTimeStampRequest, newNonce, IMPRINT_DIGESTS } from './tsp/request.js';
export type { TimeStampRequest } from './tsp/request.js';
export { decodeTimeStampResponse, verifyTimeStampToken, readTimeStampToken, PKI_STATUS_NAMES } from './tsp/token.js';
export type { TimeStampResponse, TokenOptions, TimeStampInfo, TokenVerification } from './tsp/token.js';
export { requestTimeStamp } from './tsp/client.js';
export type { HttpRequestOptions } from './tsp/client.js';
export { localStamper, httpStamper } from './tsp/stamper.js';
export type { Stamper, StamperTrust } from './tsp/stamper.js';
export type { DigestName } from './tsp/oids.js';

/** Signed video: the SEI layer, its report, and the time rules of verification (docs/signed-video.md §6). */
export * as signing from './signing/index.js';
export { DEFAULT_MAX_SKEW_MS } from './signing/time.js';

/** Recordings: time-stamp tokens over the record chain (timestamps.jsonl), evidence bundles and their verification. */
export { TIMESTAMPS_FILE, formatTokenEntry, parseTokenEntries, judgeTokens, provenByPosition } from './recording/timestamps.js';
export type { TokenEntry, TimeProof, TokenTrust } from './recording/timestamps.js';
export { appendToken, timestampRecording } from './recording/token-log.js';
export type { StampedHead } from './recording/token-log.js';
export { exportBundle, verifyBundle, TIMESTAMP_FILE, NO_EXPORTER_ROOT } from './recording/bundle.js';
export type { BundleManifest, Exporter, ExportOptions, ExportResult, BundleVerifyOptions, BundleVerification } from './recording/bundle.js';
export { verifyEvidence } from './recording/evidence.js';
export type { EvidenceOptions } from './recording/evidence.js';
export type { EvidenceReport, FragmentLayerReport, FragmentTime, TimeRange, BundleReport } from './recording/report.js';

export { MediaError } from './errors.js';
export * as h264 from './media/h264/index.js';
export * as mp4 from './media/mp4/index.js';
export { subsampleMap, nalSpans, assertCovers, MAX_CLEAR } from './cenc/subsamples.js';
export type { Subsample, NalSpan } from './cenc/subsamples.js';
export { encryptSample, decryptSample, encryptSampleParts } from './cenc/sample.js';
export type { Scheme, SampleCipher } from './cenc/sample.js';
export { IvSequence, constantIv } from './cenc/iv.js';
export { keyCheckValue, keyMatches, encodeKeyChecks, decodeKeyChecks, KCV_BOX_UUID } from './cenc/keycheck.js';
export type { KeyCheck } from './cenc/keycheck.js';
export { openInput, ANNEXB_TIMESCALE } from './packager/input.js';
export type { MediaInput, InputTrack, InputSample, InputGop, InputOptions } from './packager/input.js';
export { packageChunks, emptyStats } from './packager/package.js';
export type { ContentKey, PackageOptions, PackageStats } from './packager/package.js';
export { decryptChunks, emptyReport, readKeyChecks, checkKeys } from './packager/decrypt.js';
export type { KeySet, DecryptReport } from './packager/decrypt.js';
export { writeChunksAtomic } from './packager/files.js';

/** The NVR group-key paper, faithful and INSECURE: the baseline of the attack tests (docs/group-keys-paper.md). */
export * as groupkeyPaper from './groupkey/paper/index.js';

/** Group keys, hardened mode (the default): LKH tree, signed epoch bundles, challenge-bound auth, CENC keys (docs/group-keys.md). */
export * as groupkeyHardened from './groupkey/hardened/index.js';
