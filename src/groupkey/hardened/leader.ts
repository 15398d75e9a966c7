/**
 * The leader camera's extra role in hardened mode: a relay and ACK aggregator with no authority (the fix of
 * attack A8). It holds no key beyond its own member keys (it is an ordinary HardenedMember besides this), and
 * nothing it sends carries key material it could change undetected:
 *   - rekey bundles and challenges are KMS-signed; the leader forwards the bytes as they are;
 *   - for a challenge it collects each camera's tag (auth.ts), XORs them into one aggregate for the KMS, and
 *     keeps the per-camera tags so that, when the aggregate fails, the KMS can verify them one by one (blame).
 * A leader that drops a camera's tag makes that camera "missing" at the KMS; one that alters or invents a tag
 * makes the aggregate fail and is caught by blame. It cannot produce a valid tag for another camera (no
 * K_i^auth) nor a bundle (no KMS signing key).
 */
import { GroupKeyRefusal } from '../../errors.js';
import { decodeCameraTag, decodeChallenge, encodeAggregate, encodeTagList, xorTags } from './auth.js';
import { compareIds } from './codec.js';
import { bytesEqual } from './kdf.js';

interface Round {
  readonly groupId: string;
  readonly epoch: number;
  readonly nonce: Uint8Array;
  readonly tags: Map<string, Uint8Array>;
}

export class HardenedLeader {
  readonly groupId: string;
  private round: Round | undefined;

  constructor(o: { readonly groupId: string }) {
    this.groupId = o.groupId;
  }

  /** Starts a round for a KMS challenge; returns the bytes to forward to every camera (unchanged). */
  start(challenge: Uint8Array): Uint8Array {
    let c;
    try {
      c = decodeChallenge(challenge).challenge;
    } catch {
      throw new GroupKeyRefusal('leader: malformed challenge');
    }
    if (c.groupId !== this.groupId) throw new GroupKeyRefusal('leader: foreign challenge');
    this.round = { groupId: c.groupId, epoch: c.epoch, nonce: c.nonce, tags: new Map() };
    return challenge;
  }

  /** Takes one camera's cameraTag message for the current round. */
  collect(cameraTag: Uint8Array): void {
    const r = this.round;
    let t;
    try {
      t = decodeCameraTag(cameraTag);
    } catch {
      throw new GroupKeyRefusal('leader: malformed tag');
    }
    if (r === undefined || t.groupId !== r.groupId || t.epoch !== r.epoch || !bytesEqual(t.nonce, r.nonce)) throw new GroupKeyRefusal('leader: tag for another round');
    if (r.tags.has(t.memberId)) throw new GroupKeyRefusal('leader: second tag from one camera');
    r.tags.set(t.memberId, t.tag);
  }

  /** The cameras that answered, in canonical order. */
  responders(): string[] {
    return [...(this.round?.tags.keys() ?? [])].sort(compareIds);
  }

  private current(): Round {
    if (this.round === undefined || this.round.tags.size === 0) throw new GroupKeyRefusal('leader: no tags collected');
    return this.round;
  }

  /** The aggregate message for the KMS: the XOR of every collected tag, and who answered. */
  aggregate(): Uint8Array {
    const r = this.current();
    const members = this.responders();
    return encodeAggregate({ groupId: r.groupId, epoch: r.epoch, nonce: r.nonce, members, aggregate: xorTags(members.map((m) => r.tags.get(m) as Uint8Array)) });
  }

  /** The per-camera tags, for blame when the aggregate failed. */
  tagList(): Uint8Array {
    const r = this.current();
    return encodeTagList({ groupId: r.groupId, epoch: r.epoch, nonce: r.nonce, tags: this.responders().map((memberId) => ({ memberId, tag: r.tags.get(memberId) as Uint8Array })) });
  }
}
