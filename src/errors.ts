/**
 * Typed errors with stable codes. Every error keyframe raises on purpose is a KeyframeError with a code from
 * this catalogue; the CLI prints `keyframe: <message>` on one line and exits with the error's exit code
 * (2 for usage and input errors, 1 for anything refused or failed).
 */

export const ErrorCodes = {
  /** Wrong command-line usage: unknown option, missing argument, bad value. */
  USAGE: 'KF_ERR_USAGE',
  /** An input file or value is malformed (bad PEM, bad JSON, bad hex, bad spec). */
  INPUT: 'KF_ERR_INPUT',
  /** A named file, directory or object does not exist. */
  NOT_FOUND: 'KF_ERR_NOT_FOUND',
  /** The output already exists and would be overwritten. */
  EXISTS: 'KF_ERR_EXISTS',
  /** The secure element / key store failed an operation. */
  KEYSTORE: 'KF_ERR_KEYSTORE',
  /** Key store login failed (wrong PIN or passphrase). Deliberately uninformative. */
  KEYSTORE_AUTH: 'KF_ERR_KEYSTORE_AUTH',
  /** No key under that label. */
  KEY_NOT_FOUND: 'KF_ERR_KEY_NOT_FOUND',
  /** A key under that label exists already. */
  KEY_EXISTS: 'KF_ERR_KEY_EXISTS',
  /** The key or backend does not support the requested operation or algorithm. */
  UNSUPPORTED: 'KF_ERR_UNSUPPORTED',
  /** Unwrap failed: wrong key, wrong context or tampered data. Deliberately uninformative. */
  UNWRAP: 'KF_ERR_UNWRAP',
  /** An enrolment request was refused (bad, reused or foreign token; bad proof of possession). */
  ENROL_REFUSED: 'KF_ERR_ENROL_REFUSED',
  /** A certificate does not match the key it is meant for. */
  CERT_MISMATCH: 'KF_ERR_CERT_MISMATCH',
  /** A certificate or chain failed validation. */
  CERT_INVALID: 'KF_ERR_CERT_INVALID',
  /** The CA directory is missing, incomplete or inconsistent. */
  CA_STATE: 'KF_ERR_CA_STATE',
  /** Another process holds the lock on a state directory. */
  LOCKED: 'KF_ERR_LOCKED',
  /** TLS set-up failed. */
  TLS: 'KF_ERR_TLS',
  /** Malformed or unsupported media: H.264 bitstream, MP4 box structure, encryption metadata. */
  MEDIA: 'KF_ERR_MEDIA',
  /** Decryption impossible: no key for a KID, or the key is wrong where the format lets us tell. */
  DECRYPT: 'KF_ERR_DECRYPT',
  /** A group-key protocol message is malformed: truncated, trailing bytes, unknown type, bad field. */
  GROUPKEY_MESSAGE: 'KF_ERR_GROUPKEY_MESSAGE',
  /** A group-key protocol message was refused: a verification failed, or it does not fit the role's state. */
  GROUPKEY_REFUSED: 'KF_ERR_GROUPKEY_REFUSED',
  /** Time-stamping (RFC 3161) refused or failed: a TSA rejected a request, or a reply or token does not verify. */
  TIMESTAMP: 'KF_ERR_TIMESTAMP',
  /** A service could not be reached, or answered outside its protocol. */
  UNAVAILABLE: 'KF_ERR_UNAVAILABLE',
  /** A bug: an invariant did not hold. */
  INTERNAL: 'KF_ERR_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

const USAGE_LIKE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCodes.USAGE,
  ErrorCodes.INPUT,
  ErrorCodes.NOT_FOUND,
  ErrorCodes.UNSUPPORTED,
  ErrorCodes.MEDIA,
  ErrorCodes.GROUPKEY_MESSAGE,
]);

export class KeyframeError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeyframeError';
    this.code = code;
  }

  /** 2 for usage and input errors, 1 for everything refused or failed. */
  get exitCode(): 1 | 2 {
    return USAGE_LIKE.has(this.code) ? 2 : 1;
  }
}

export class UsageError extends KeyframeError {
  constructor(message: string) {
    super(ErrorCodes.USAGE, message);
    this.name = 'UsageError';
  }
}

export class InputError extends KeyframeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCodes.INPUT, message, options);
    this.name = 'InputError';
  }
}

export class NotFoundError extends KeyframeError {
  constructor(message: string) {
    super(ErrorCodes.NOT_FOUND, message);
    this.name = 'NotFoundError';
  }
}

export class KeyStoreError extends KeyframeError {
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'KeyStoreError';
  }
}

export class PkiError extends KeyframeError {
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'PkiError';
  }
}

/** Malformed media. `offset` is the byte position in the input where the problem was found, when known. */
export class MediaError extends KeyframeError {
  readonly offset: number | undefined;

  constructor(message: string, offset?: number) {
    super(ErrorCodes.MEDIA, offset !== undefined ? `${message} (at byte ${offset})` : message);
    this.name = 'MediaError';
    this.offset = offset;
  }
}

/**
 * Group-key protocol errors: GROUPKEY_MESSAGE for bytes that do not decode (`offset` is where the decoder
 * stopped), GROUPKEY_REFUSED for a message a role will not act on (a failed check or the wrong state).
 */
export class GroupKeyError extends KeyframeError {
  readonly offset: number | undefined;

  constructor(code: typeof ErrorCodes.GROUPKEY_MESSAGE | typeof ErrorCodes.GROUPKEY_REFUSED, message: string, offset?: number) {
    super(code, offset !== undefined ? `${message} (at byte ${offset})` : message);
    this.name = 'GroupKeyError';
    this.offset = offset;
  }
}

/** The single message for every refused group-key message in hardened mode: the sender learns nothing about why. */
export const GROUPKEY_REFUSED_MESSAGE = 'group-key message refused';

/**
 * A hardened-mode refusal (KF_ERR_GROUPKEY_REFUSED): identical for every failed signature, AEAD tag, MAC, chain,
 * epoch or decoding check, so that no check can be told from another by its error. `auditReason` is for the
 * local audit log only; never send it to a peer.
 */
export class GroupKeyRefusal extends GroupKeyError {
  readonly auditReason: string;

  constructor(auditReason: string) {
    super(ErrorCodes.GROUPKEY_REFUSED, GROUPKEY_REFUSED_MESSAGE);
    this.name = 'GroupKeyRefusal';
    this.auditReason = auditReason;
  }
}

/** The single message for any failed enrolment: the requester learns nothing about why. */
export const ENROLMENT_REFUSED_MESSAGE = 'enrolment refused: the request is not authorised';

export class EnrolmentError extends KeyframeError {
  /** The specific reason, for the CA's audit log only; never shown to the requester. */
  readonly auditReason: string;

  constructor(auditReason: string) {
    super(ErrorCodes.ENROL_REFUSED, ENROLMENT_REFUSED_MESSAGE);
    this.name = 'EnrolmentError';
    this.auditReason = auditReason;
  }
}

export function isKeyframeError(e: unknown): e is KeyframeError {
  return e instanceof KeyframeError;
}

/** Node's errno errors (ENOENT, EACCES …) carry a string `code`. */
export function errnoCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const code = (e).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
