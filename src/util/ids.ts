/**
 * Identifiers that name things across keyframe — device serials, group ids, key labels, user names: 1–64
 * characters from [A-Za-z0-9._-], starting with a letter or digit. Nothing else is accepted where an identifier
 * is expected, so that no id can carry a NUL, a newline, a path separator or markup into a log, a file name or a
 * URL. (docs/security.md)
 */
import { InputError } from '../errors.js';

export const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const IDENTIFIER_RULE = '1–64 characters from A–Z a–z 0–9 . _ -, starting with a letter or digit';

export function isIdentifier(value: unknown): value is string {
  return typeof value === 'string' && IDENTIFIER.test(value);
}

/** `value` when it is an identifier; otherwise an InputError naming `what` (the value is shown escaped). */
export function checkIdentifier(value: unknown, what: string): string {
  if (isIdentifier(value)) return value;
  throw new InputError(`${what} ${JSON.stringify(String(value)).slice(0, 80)} is not valid: ${IDENTIFIER_RULE}`);
}
