/**
 * Finding and releasing content keys. A KID names its group, camera and epoch; the key is derived from the epoch
 * secret the KMS holds. A KID made with another secret than this KMS holds for its epoch is refused and raised as
 * an alarm: never a wrong key.
 *
 * Nothing here decides or audits a release: access.ts finds keys with `findContentKey`, decides against the grants
 * and audits the whole decision before any key is answered.
 */
import { ErrorCodes, KeyframeError } from '../errors.js';
import type { KmsDb } from './db.js';
import type { EpochSpan, GroupRuntime } from './runtime.js';

export interface FoundKey {
  readonly groupId: string;
  readonly cameraId: string;
  readonly epoch: number;
  readonly key: Buffer;
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
