/**
 * Finding and releasing content keys. A KID names its group, camera and epoch; the key is derived from the epoch
 * secret the KMS holds. A KID made with another secret than this KMS holds for its epoch is refused and raised as
 * an alarm: never a wrong key.
 *
 * `releaseContentKey` (the administrators' route) audits the release or the refusal before anything is answered — if
 * the audit row cannot be written, no key leaves the KMS. The licence server (access.ts) finds keys with
 * `findContentKey` and audits its whole decision the same way.
 */
import { ErrorCodes, KeyframeError } from '../errors.js';
import type { KmsDb } from './db.js';
import type { EpochSpan, GroupRuntime } from './runtime.js';

export interface ReleasedKey {
  groupId: string;
  cameraId: string;
  epoch: number;
  key: Buffer;
}

export interface FoundKey extends ReleasedKey {
  readonly span: EpochSpan;
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** The key of a KID with its epoch's span, undefined when no group made it; throws (audited, alarmed) on a mismatch. */
export function findContentKey(groups: Iterable<GroupRuntime>, db: KmsDb, log: (event: string, detail: Record<string, unknown>) => void, kid: Uint8Array, actor: string): FoundKey | undefined {
  const kidHex = Buffer.from(kid).toString('hex');
  for (const g of groups) {
    const k = g.contentKeyFor(kid);
    if (k === undefined) continue;
    if ('mismatch' in k) {
      // the KID was made with another secret than this KMS holds for that epoch: never hand out a wrong key
      db.audit(actor, 'content-key-mismatch', { kid: kidHex, group: g.row.id, camera: k.cameraId, epoch: k.epoch });
      log('alarm', { group: g.row.id, kind: 'kid-mismatch', kid: kidHex, epoch: k.epoch });
      throw new KeyframeError(ErrorCodes.DIVERGED, `KID ${kidHex} of ${k.cameraId}, epoch ${k.epoch}, was made with another key than this KMS holds for that epoch: the KMS's state was rolled back or forked; no key is released`);
    }
    return { groupId: g.row.id, cameraId: k.cameraId, epoch: k.epoch, key: asBuffer(k.key), span: g.epochSpan(k.epoch) };
  }
  return undefined;
}

export function releaseContentKey(groups: Iterable<GroupRuntime>, db: KmsDb, log: (event: string, detail: Record<string, unknown>) => void, kid: Uint8Array, actor: string): ReleasedKey | undefined {
  const kidHex = Buffer.from(kid).toString('hex');
  const found = findContentKey(groups, db, log, kid, actor);
  db.audit(actor, found !== undefined ? 'content-key-release' : 'content-key-unknown', found !== undefined ? { kid: kidHex, group: found.groupId, camera: found.cameraId, epoch: found.epoch } : { kid: kidHex });
  if (found === undefined) return undefined;
  return { groupId: found.groupId, cameraId: found.cameraId, epoch: found.epoch, key: found.key };
}
