/**
 * Passwords: argon2id at OWASP's first recommended setting (m = 19 MiB, t = 2, p = 1; Password Storage Cheat Sheet)
 * through @node-rs/argon2 (prebuilt binaries from the npm registry, no compiler, no install script), stored as PHC
 * strings. A stored hash made with weaker parameters verifies and asks to be rehashed (done at the next login).
 *
 * An unknown account is verified against a dummy hash, so that a login costs the same whether the name exists.
 * Policy (NIST SP 800-63B §3.1.1.2, OWASP Authentication Cheat Sheet): 12 to 256 characters, no composition rules.
 */
import type * as Argon2 from '@node-rs/argon2';
import { InputError } from '../errors.js';

/** The argon2 binding, loaded at the first hash (the policy check alone, used by the CLI, does not need it). */
const argon2 = async (): Promise<typeof Argon2> => import('@node-rs/argon2');

export const ARGON2ID = { algorithm: 2 /* Algorithm.Argon2id (a const enum) */, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 256;

export function checkPasswordPolicy(password: string): void {
  const n = [...password].length;
  if (n < PASSWORD_MIN) throw new InputError(`a password must be at least ${PASSWORD_MIN} characters`);
  if (n > PASSWORD_MAX) throw new InputError(`a password must be at most ${PASSWORD_MAX} characters`);
}

export async function hashPassword(password: string): Promise<string> {
  return (await argon2()).hash(password.normalize('NFC'), ARGON2ID);
}

let dummy: Promise<string> | undefined;

/**
 * Checks a password against a stored PHC string (undefined: an unknown account, checked against a dummy hash so that
 * it takes as long, and refused). `rehash`: the stored hash uses other parameters than today's.
 */
export async function verifyPassword(stored: string | undefined, password: string): Promise<{ ok: boolean; rehash: boolean }> {
  const phc = stored ?? (await (dummy ??= hashPassword('keyframe: no such account')));
  const { verify } = await argon2();
  const ok = await verify(phc, password.normalize('NFC')).catch(() => false);
  const want = `$argon2id$v=19$m=${ARGON2ID.memoryCost},t=${ARGON2ID.timeCost},p=${ARGON2ID.parallelism}$`;
  return { ok: ok && stored !== undefined, rehash: ok && stored !== undefined && !stored.startsWith(want) };
}
