/**
 * Group keys, hardened mode (issue 5; design in docs/group-keys.md): an LKH key tree at the KMS, epoch-numbered
 * rekey bundles AEAD-wrapped and signed by the KMS, strict acceptance with a persisted high-water mark, catch-up
 * by pull, group authentication bound to a fresh KMS challenge with per-camera blame, a leader without
 * authority, and per-camera CENC content keys and KIDs from the epoch secret. Pure cores: no I/O, no timers;
 * randomness, the clock and the KMS's signing key are injected.
 */
export { HardenedKms, kmsMember, DEFAULT_REFRESH_PERIOD_MS, DEFAULT_CHALLENGE_TTL_MS, DEFAULT_DEGREE } from './kms.js';
export type { HardenedKmsOptions, KmsMember, MembershipChanges, RekeyOptions, RekeyResult, StagedRekey, AuthOutcome, BlameOutcome, KmsState } from './kms.js';
export { HardenedMember } from './member.js';
export type { HardenedMemberOptions, MemberState, ReceiveResult } from './member.js';
export { HardenedLeader } from './leader.js';
export { HardenedGroup, KMS_ID } from './group.js';
export type { HardenedGroupOptions, HardenedWireRecord, HardenedRefusal, HardenedWireTap, AuthRound, GroupChanges } from './group.js';
export { LkhTree } from './tree.js';
export type { TreeLeaf, WrapPlan, RefreshScope, TreeChanges, AppliedChanges, TreeState } from './tree.js';
export { encodeBundle, encodeBundleBody, decodeBundle, attachSignature, bundleHash, bundleSignatureValid, sortWraps, reasonNames, REASON, GENESIS_PREV_HASH } from './bundle.js';
export type { BundleBody, RekeyBundle, DecodedBundle, ReasonName } from './bundle.js';
export { encodeWelcome, encodeWelcomeBody, decodeWelcome, welcomeSignatureValid } from './welcome.js';
export type { Welcome, WelcomeBody, DecodedWelcome } from './welcome.js';
export {
  authTag,
  rosterHash,
  canonicalRoster,
  xorTags,
  encodeChallenge,
  encodeChallengeBody,
  decodeChallenge,
  challengeSignatureValid,
  encodeCameraTag,
  decodeCameraTag,
  encodeAggregate,
  decodeAggregate,
  encodeTagList,
  decodeTagList,
  AUTH_LABEL,
  AUTH_TAG_BYTES,
  ROSTER_LABEL,
  NONCE_BYTES as CHALLENGE_NONCE_BYTES,
} from './auth.js';
export type { Challenge, ChallengeBody, CameraTag, Aggregate, TagList, TagContext } from './auth.js';
export { sealWrap, openWrap, wrapAad, WRAP_BYTES, NONCE_BYTES as WRAP_NONCE_BYTES, SEALED_BYTES, TAG_BYTES } from './wrap.js';
export type { Wrap, WrapContext } from './wrap.js';
export { contentKey, contentKid, epochContentKey, kidBinding, kidCameraPart, kidMatchesKey, parseKid, CENC_LABEL, KID_LABEL, KID_BINDING_LABEL, CONTENT_KEY_BYTES, KID_BYTES } from './content.js';
export type { EpochContentKey } from './content.js';
export { deriveSubkeys, nodeKek, hkdfExpand, systemRandom, KEY_BYTES, LABEL_WRAP, LABEL_AUTH, LABEL_KEK } from './kdf.js';
export type { Subkeys, Random, Clock } from './kdf.js';
export { ed25519KeyPair, ed25519Signer, ed25519Verifier, signingInput, SIGNATURE_CONTEXT, MAX_SIGNATURE_BYTES } from './signature.js';
export type { Signer, Verifier } from './signature.js';
export { nodeId, levelOf, indexOf, ancestorOf, isChild, inTree, capacity, heightFor, maxHeight, DEGREES } from './nodes.js';
export type { Degree } from './nodes.js';
export { messageType, compareIds, WIRE_VERSION, MSG, MAX_ID_BYTES } from './codec.js';
export type { MessageTypeName } from './codec.js';
