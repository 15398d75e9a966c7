/**
 * Release of content keys (for the licence server and tests): finds the group and epoch a KID was made in and
 * hands out its key, after the release (or the refusal) is audited — if the audit row cannot be written, no key
 * leaves the KMS. A KID made with another secret than this KMS holds for its epoch is refused and raised as an
 * alarm: never a wrong key.
 */
import { ErrorCodes, KeyframeError } from '../errors.js';
import type { KmsDb } from './db.js';
import type { GroupRuntime } from './runtime.js';

export interface ReleasedKey {
  groupId: string;
  cameraId: string;
  epoch: number;
  key: Buffer;
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

export function releaseContentKey(groups: Iterable<GroupRuntime>, db: KmsDb, log: (event: string, detail: Record<string, unknown>) => void, kid: Uint8Array, actor: string): ReleasedKey | undefined {
  let found: ReleasedKey | undefined;
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
    found = { groupId: g.row.id, cameraId: k.cameraId, epoch: k.epoch, key: asBuffer(k.key) };
    break;
  }
  db.audit(actor, found !== undefined ? 'content-key-release' : 'content-key-unknown', found !== undefined ? { kid: kidHex, group: found.groupId, camera: found.cameraId, epoch: found.epoch } : { kid: kidHex });
  return found;
}
