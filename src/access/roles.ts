/**
 * Account roles and the rights a grant can give (issue 13 §2). A role bounds what its accounts may ever do; a
 * grant says on which cameras, over which recorded time, and until when. A right counts only where both agree.
 *
 *   admin         administers accounts, grants, groups; may hold any right through grants
 *   operator      live, playback, lock
 *   investigator  playback and export (within the cases granted)
 *   viewer        live only
 *   auditor       reads the audit log; no video
 */
import { InputError } from '../errors.js';

export const ROLES = ['admin', 'operator', 'investigator', 'viewer', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

export const RIGHTS = ['live', 'playback', 'export', 'lock'] as const;
export type Right = (typeof RIGHTS)[number];

export const ROLE_RIGHTS: Readonly<Record<Role, readonly Right[]>> = {
  admin: ['live', 'playback', 'export', 'lock'],
  operator: ['live', 'playback', 'lock'],
  investigator: ['playback', 'export'],
  viewer: ['live'],
  auditor: [],
};

export function parseRole(value: unknown, what = 'role'): Role {
  if (typeof value !== 'string' || !(ROLES as readonly string[]).includes(value)) throw new InputError(`${what} must be one of ${ROLES.join(', ')}`);
  return value as Role;
}

/** A list of rights ("live,playback" or an array); at least one, no repeats. */
export function parseRights(value: unknown, what = 'rights'): Right[] {
  const list = typeof value === 'string' ? value.split(',').map((s) => s.trim()) : value;
  if (!Array.isArray(list) || list.length === 0) throw new InputError(`${what} must name at least one of ${RIGHTS.join(', ')}`);
  const out: Right[] = [];
  for (const r of list) {
    if (typeof r !== 'string' || !(RIGHTS as readonly string[]).includes(r)) throw new InputError(`${what}: ${JSON.stringify(r)} is not one of ${RIGHTS.join(', ')}`);
    if (out.includes(r as Right)) throw new InputError(`${what}: ${r} is named twice`);
    out.push(r as Right);
  }
  return out;
}

/** Whether an account of `role` may ever use `right`. */
export function roleAllows(role: Role, right: Right): boolean {
  return ROLE_RIGHTS[role].includes(right);
}

/** Account names: 1–64 letters, digits and ._@-, starting with a letter or digit (they appear in logs and audit). */
export function checkUserName(value: unknown): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(value)) throw new InputError('a user name is 1–64 letters, digits or ._@- (starting with a letter or digit)');
  return value;
}
