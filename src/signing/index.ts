/**
 * Signed video (docs/signed-video.md): the Media Signing SEI layer. The signer runs where the camera does,
 * with its device key; the verifier needs only the manufacturer root (and CRLs).
 */
export { encodeTlvs, decodeTlvs } from './tlv.js';
export type { Tlv } from './tlv.js';
export * from './sei.js';
export { sha256, frameHashOf, gopHash, nalDigest, parameterSetDigest, unitDigest, ParameterSetTracker, ZERO_HASH } from './hashing.js';
export type { ParameterSetHash } from './hashing.js';
export { UnitCounter, MemoryCounterStore } from './counter.js';
export type { CounterStore } from './counter.js';
export { COUNTER_FILE, FileCounterStore, openUnitCounter } from './counter-file.js';
export { StreamSigner, DEFAULT_FPS, toFiletime, fromFiletime } from './signer.js';
export type { SignerOptions, SignerStats } from './signer.js';
export { StreamVerifier, verifyNals, align } from './verifier.js';
export { OnvifLayer, verifyOnvifSignature } from './onvif-verifier.js';
export type { VerifierOptions } from './verifier.js';
export { formatReport, formatBounds, overallVerdict, sessionVerdict, VERDICT_RANK } from './report.js';
export type { Verdict, RangeStatus, ReportRange, SessionReport, SessionTime, VerificationReport, Trust, SigningFormat } from './report.js';
export { ONVIF_ONLY_MISSING } from './report.js';
export { DEFAULT_MAX_SKEW_MS, timePolicy, futureClaim, provenBefore, unprovenReason, revocationKnowledge, bounds } from './time.js';
export type { TimePolicy, Compromise, RevocationKnowledge, TimeBounds } from './time.js';
export { deviceSigner, signAnnexB } from './device.js';
export type { DeviceSignOptions } from './device.js';
