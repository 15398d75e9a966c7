/**
 * What an access token lets its holder do at an NVR (pure): the KMS resolves the account's grants when it issues
 * the token — each grant in force becomes an entry naming the cameras it covers (a group's members at that moment),
 * the rights the role allows, and the recorded-time window as it stands then — so that the NVR decides offline.
 *
 *   acl: [{ "cams": ["CAM-1", …], "rights": ["playback", "export"], "from": ms, "to": ms }, …]
 *
 * Playback, export and lock need a range inside an entry's window; live needs no window.
 */
import { RIGHTS } from './roles.js';
import type { Right } from './roles.js';

export interface AclEntry {
  readonly cams: readonly string[];
  readonly rights: readonly Right[];
  readonly from: number;
  readonly to: number;
}

/** What is wrong with an ACL claim, or undefined. */
export function aclProblem(acl: unknown): string | undefined {
  if (!Array.isArray(acl)) return 'claim "acl" is not a list';
  if (acl.length > 1000) return 'claim "acl" has more than 1000 entries';
  for (const [i, e] of acl.entries()) {
    if (typeof e !== 'object' || e === null || Array.isArray(e)) return `acl[${i}] is not an object`;
    const o = e as Record<string, unknown>;
    const cams = o['cams'];
    const rights = o['rights'];
    if (!Array.isArray(cams) || cams.length === 0 || cams.some((c) => typeof c !== 'string' || c === '')) return `acl[${i}].cams is not a list of camera serials`;
    if (!Array.isArray(rights) || rights.length === 0 || rights.some((r) => !(RIGHTS as readonly unknown[]).includes(r))) return `acl[${i}].rights is not a list of rights`;
    for (const k of ['from', 'to']) if (typeof o[k] !== 'number' || !Number.isSafeInteger(o[k])) return `acl[${i}].${k} is not a time in ms`;
    if ((o['to'] as number) < (o['from'] as number)) return `acl[${i}] ends before it starts`;
  }
  return undefined;
}

/** Whether `acl` gives `right` on `camera` (for a range [from, to) of recorded time, except for live). */
export function aclAllows(acl: readonly AclEntry[], camera: string, right: Right, range?: { readonly from: number; readonly to: number }): boolean {
  return acl.some((e) => e.rights.includes(right) && e.cams.includes(camera) && (right === 'live' || (range !== undefined && e.from <= range.from && range.to <= e.to)));
}

/** The cameras `acl` gives `right` on. */
export function aclCameras(acl: readonly AclEntry[], right: Right): string[] {
  return [...new Set(acl.filter((e) => e.rights.includes(right)).flatMap((e) => e.cams))].sort();
}
