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
  /** A limit or quota was reached: too many, too often, too full (the request may be retried later). */
  LIMIT: 'KF_ERR_LIMIT',
  /** An input is larger than the bound that applies to it (a message, a body, a file). */
  TOO_LARGE: 'KF_ERR_TOO_LARGE',
  /** Time-stamping (RFC 3161) refused or failed: a TSA rejected a request, or a reply or token does not verify. */
  TIMESTAMP: 'KF_ERR_TIMESTAMP',
  /** Two copies of state disagree: a KMS whose state is behind (or beside) what its cameras hold. */
  DIVERGED: 'KF_ERR_DIVERGED',
  /** A service refused this identity: its certificate is not accepted, or it is not authorised for the request. */
  FORBIDDEN: 'KF_ERR_FORBIDDEN',
  /** A service could not be reached, or answered outside its protocol. */
  UNAVAILABLE: 'KF_ERR_UNAVAILABLE',
  /**
   * An ordinary operating-system failure on a named path or address: no such file or directory, not a directory,
   * permission denied, read-only file system, disk full, address in use. Exit 2, like an input error.
   */
  IO: 'KF_ERR_IO',
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
  ErrorCodes.TOO_LARGE,
  ErrorCodes.IO,
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

/** What an errno code means, in words a user reads after the path. */
const ERRNO_REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large',
  EEXIST: 'it exists already',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many levels of symbolic links',
  ENOTEMPTY: 'the directory is not empty',
  EBUSY: 'the file is busy',
  ETXTBSY: 'the file is busy',
  EMFILE: 'too many open files',
  EPIPE: 'the reader closed the pipe',
  EADDRINUSE: 'the address is in use (another process listens there)',
  EADDRNOTAVAIL: 'the address is not available on this machine',
};

/** The verb for a failed system call, for "cannot VERB PATH". */
const SYSCALL_VERBS: Readonly<Record<string, string>> = {
  open: 'open',
  read: 'read',
  write: 'write',
  writev: 'write',
  fsync: 'write',
  fdatasync: 'write',
  close: 'write',
  rename: 'rename',
  mkdir: 'create directory',
  mkdtemp: 'create a directory in',
  rmdir: 'remove',
  unlink: 'remove',
  rm: 'remove',
  scandir: 'read directory',
  opendir: 'read directory',
  stat: 'read',
  lstat: 'read',
  access: 'read',
  realpath: 'read',
  copyfile: 'copy',
  chmod: 'change the mode of',
  link: 'link',
  symlink: 'link',
  listen: 'listen on',
  bind: 'listen on',
};

/** The fields Node puts on errno errors. */
interface ErrnoFields {
  readonly code?: unknown;
  readonly syscall?: unknown;
  readonly path?: unknown;
  readonly dest?: unknown;
  readonly address?: unknown;
  readonly port?: unknown;
}

/** True for an errno error that `ioError` turns into one honest line. */
export function isOrdinaryIoError(e: unknown): boolean {
  const code = errnoCode(e);
  return code !== undefined && code in ERRNO_REASONS;
}

/**
 * The one place where ordinary operating-system failures become KeyframeErrors: one line naming the path (or the
 * address) and what is wrong, exit 2 (KF_ERR_IO; NOT_FOUND for a missing file; EXISTS, a refusal, for an
 * existing one). `path` overrides the path Node recorded (e.g. the output a temporary file stands for); `action`
 * the verb ("write", "read"). Returns undefined for anything that is not an ordinary errno failure, which stays
 * what it is (a bug is reported as one).
 */
export function ioError(e: unknown, path?: string, action?: string): KeyframeError | undefined {
  if (e instanceof KeyframeError) return e;
  const code = errnoCode(e);
  if (code === undefined || !(code in ERRNO_REASONS)) return undefined;
  const f = e as ErrnoFields;
  const reason = ERRNO_REASONS[code] as string;
  const syscall = typeof f.syscall === 'string' ? f.syscall : undefined;
  if (code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL' || syscall === 'listen' || syscall === 'bind') {
    const where = path ?? (typeof f.address === 'string' ? `${f.address.includes(':') ? `[${f.address}]` : f.address}${typeof f.port === 'number' ? `:${f.port}` : ''}` : 'the address');
    return new KeyframeError(ErrorCodes.IO, `cannot ${action ?? 'listen on'} ${where}: ${reason}`, { cause: e });
  }
  const named = path ?? (typeof f.path === 'string' ? f.path : undefined);
  const verb = action ?? (syscall !== undefined ? SYSCALL_VERBS[syscall] : undefined) ?? 'use';
  const target = named ?? 'a file';
  const dest = path === undefined && syscall === 'rename' && typeof f.dest === 'string' ? ` to ${f.dest}` : '';
  const message = `cannot ${verb} ${target}${dest}: ${reason}`;
  if (code === 'ENOENT') return new KeyframeError(ErrorCodes.NOT_FOUND, message, { cause: e });
  if (code === 'EEXIST') return new KeyframeError(ErrorCodes.EXISTS, message, { cause: e });
  return new KeyframeError(ErrorCodes.IO, message, { cause: e });
}

/** Runs `fn`, turning an ordinary errno failure into `ioError(e, path, action)`. */
export async function withIoErrors<T>(path: string, action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw ioError(e, path, action) ?? e;
  }
}

/**
 * An error from outside keyframe that is still an ordinary, user-facing failure: an errno failure (see ioError) or
 * an invalid URL (Node's ERR_INVALID_URL, a usage error naming the value). Undefined for anything else: a bug.
 */
export function knownError(e: unknown): KeyframeError | undefined {
  if (e instanceof KeyframeError) return e;
  if (errnoCode(e) === 'ERR_INVALID_URL') {
    const input = (e as { input?: unknown }).input;
    return new UsageError(`invalid URL${typeof input === 'string' ? ` "${input}"` : ''}: expected e.g. https://host:8443`);
  }
  return ioError(e);
}
