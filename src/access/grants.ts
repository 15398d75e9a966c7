/**
 * Grants and the licence decision (pure; issue 13 §2–§3).
 *
 * A grant gives a user, or every account of a role, rights (live, playback, export, lock) on a camera or on every
 * camera of a group, over a recorded-time window — fixed [from, to] or "the last N days" — for as long as the grant
 * itself is valid. A right counts only if the account's role allows it (roles.ts).
 *
 * A content key decrypts a whole key epoch of one camera, so a key is released only where the grant covers all of
 * what it decrypts:
 * - playback: the grant's window covers the epoch's span [start of epoch e, start of epoch e+1) — for the epoch in
 *   use, up to now. An epoch whose start the KMS does not know (made before it kept epoch times) is never covered.
 *   The rekey period bounds how finely playback can be granted: a window shorter than an epoch gets no key.
 * - live: the epoch is the group's current one, or the one before it for `liveGraceMs` after the rotation (a
 *   viewer's player is still showing video made under it).
 * Everything is decided per KID; a KID the KMS does not know is denied like one it may not release.
 */
import type { Right, Role } from './roles.js';
import { roleAllows } from './roles.js';

/**
 * Who a grant is for: an account, every account of a role, or a certificate administrator (an operator-CA client
 * certificate named in the KMS's "admins", by its common name; it holds the admin role's rights).
 */
export type Principal = { readonly kind: 'user'; readonly name: string } | { readonly kind: 'role'; readonly role: Role } | { readonly kind: 'certificate'; readonly name: string };
export type Scope = { readonly kind: 'camera'; readonly serial: string } | { readonly kind: 'group'; readonly group: string };
export type GrantWindow = { readonly kind: 'fixed'; readonly from: number; readonly to: number } | { readonly kind: 'last'; readonly ms: number };

export interface Grant {
  readonly id: number;
  readonly principal: Principal;
  readonly scope: Scope;
  readonly rights: readonly Right[];
  readonly window: GrantWindow;
  /** The grant's own validity (ms since the epoch); `validTo` undefined: until revoked. */
  readonly validFrom: number;
  readonly validTo?: number;
  /** The case an investigator works on (informational, audited). */
  readonly caseId?: string;
}

export interface Account {
  readonly name: string;
  readonly role: Role;
  /** A certificate administrator rather than an account. */
  readonly certificate?: boolean;
}

/** What a KID resolved to at the KMS. */
export interface KeyEpoch {
  readonly kid: string;
  readonly group: string;
  readonly camera: string;
  readonly epoch: number;
  /** When the epoch began (KMS clock), undefined when unknown. */
  readonly start?: number;
  /** When the next epoch began; undefined while this one is in use. */
  readonly end?: number;
  /** Whether it is the group's epoch in use now. */
  readonly current: boolean;
}

export interface KeyDecision {
  readonly kid: string;
  readonly allowed: boolean;
  /** The grant that allowed it, and through which right. */
  readonly grant?: number;
  readonly right?: 'live' | 'playback';
  /** Why not (audit only; the answer to the client is generic). */
  readonly reason?: string;
}

export const LIVE_GRACE_MS = 2 * 60_000;

export function grantApplies(g: Grant, who: Account): boolean {
  const p = g.principal;
  if (who.certificate === true) return p.kind === 'certificate' && p.name === who.name;
  return p.kind === 'user' ? p.name === who.name : p.kind === 'role' && p.role === who.role;
}

export function grantInForce(g: Grant, now: number): boolean {
  return g.validFrom <= now && (g.validTo === undefined || now < g.validTo);
}

export function scopeCovers(s: Scope, k: Pick<KeyEpoch, 'group' | 'camera'>): boolean {
  return s.kind === 'camera' ? s.serial === k.camera : s.group === k.group;
}

/** The window as [from, to] at `now`. */
export function windowAt(w: GrantWindow, now: number): { from: number; to: number } {
  return w.kind === 'fixed' ? { from: w.from, to: w.to } : { from: now - w.ms, to: now };
}

/** Whether a grant's window covers an epoch's whole span (its end is now while it is in use). */
export function windowCovers(w: GrantWindow, k: Pick<KeyEpoch, 'start' | 'end'>, now: number): boolean {
  if (k.start === undefined) return false;
  const { from, to } = windowAt(w, now);
  const end = k.end ?? now;
  return from <= k.start && end <= to;
}

export function liveAllows(k: Pick<KeyEpoch, 'current' | 'end'>, now: number, graceMs = LIVE_GRACE_MS): boolean {
  return k.current || (k.end !== undefined && now - k.end <= graceMs && now >= k.end);
}

/** The decision for one KID (undefined key: the KMS does not know the KID). */
export function decideKey(kid: string, key: KeyEpoch | undefined, who: Account, grants: readonly Grant[], now: number, graceMs = LIVE_GRACE_MS): KeyDecision {
  if (key === undefined) return { kid, allowed: false, reason: 'unknown KID' };
  let reason = 'no grant covers this camera';
  for (const g of grants) {
    if (!grantApplies(g, who) || !scopeCovers(g.scope, key)) continue;
    if (!grantInForce(g, now)) {
      reason = `grant ${g.id} is not in force`;
      continue;
    }
    if (g.rights.includes('playback') && roleAllows(who.role, 'playback')) {
      if (windowCovers(g.window, key, now)) return { kid, allowed: true, grant: g.id, right: 'playback' };
      reason = key.start === undefined ? `epoch ${key.epoch} has no known start` : `grant ${g.id}'s window does not cover epoch ${key.epoch}`;
    }
    if (g.rights.includes('live') && roleAllows(who.role, 'live')) {
      if (liveAllows(key, now, graceMs)) return { kid, allowed: true, grant: g.id, right: 'live' };
      if (!g.rights.includes('playback')) reason = `epoch ${key.epoch} is not live`;
    }
    if (!g.rights.some((r) => (r === 'live' || r === 'playback') && roleAllows(who.role, r))) reason = `grant ${g.id} gives the role ${who.role} no live or playback right`;
  }
  return { kid, allowed: false, reason };
}
