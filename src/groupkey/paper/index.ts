/**
 * The NVR group-key paper (Choi, Hwang, Lee), implemented faithfully as pure state machines: Scheme 1 and
 * Scheme 2, every message with a canonical codec, per-role operation counters and the §5.6 tables recounted.
 * INSECURE BY DESIGN: it is the baseline the attack tests break (A1–A7, docs/group-keys-paper.md); never use it
 * to protect video.
 */
export { PaperKms } from './kms.js';
export type { PaperKmsOptions, PaperGroupRegistration, AckStatus, PaperKmsGroupState } from './kms.js';
export { PaperLeader } from './leader.js';
export type { PaperLeaderOptions, PaperScheme, LeaderStateKind } from './leader.js';
export { PaperMember } from './member.js';
export type { PaperMemberOptions } from './member.js';
export { PaperGroup, KMS_ID, LEADER_ID } from './group.js';
export type { PaperGroupOptions, WireRecord, WireTap, Refusal } from './group.js';
export { encodeMessage, decodeMessage, MESSAGE_TYPES, MESSAGE_VERSION, CT32_BYTES, CT64_BYTES } from './messages.js';
export type { PaperMessage, PaperMessageType, MIC, AuthM, EgskEntry, MemberAuth, GroupAuth, KeyDelivery, MemberKey, MemberAck, GroupAck, RefreshAuth, NewMemberKey, Refresh, Outgoing } from './messages.js';
export * as formulas from './formulas.js';
export type { PaperRequest } from './formulas.js';
export { CountingPrimitives, OpCounter, OP_KINDS, NO_OPS, addOps } from './ops.js';
export type { OpCounts, OpKind, LabelledOps } from './ops.js';
export { concat, sha256, aesCtrEncrypt, aesCtrDecrypt, xorBytes, bytesEqual, seededRandom, KEY_BYTES, R_BYTES, HASH_BYTES, IV_BYTES, MAX_ID_BYTES } from './primitives.js';
export type { Random, Part } from './primitives.js';
export { paperTables, formatPaperTables, measurePhase, paperStyle, formatBreakdown, PAPER_FIGURES, DIFFERENCE_NOTES, GROUP_SIZES, TABLE_COLUMNS, COLUMN_TITLES } from './table.js';
export type { TableRow, TableCell, TableColumn, PaperPhase, PhaseMeasurement, Measured, MeasuredColumn } from './table.js';
