/**
 * A group at the KMS, whatever its mode: what the service asks of every group (its view, who takes part, a
 * membership change, a new leader, a revoked camera, a content key) behind one class, with one implementation per
 * mode (hardened-group.ts; paper-group.ts for Scheme 1 and Scheme 2). Here too: what both implementations share
 * (the long-poll waiters, the chain that serialises a group's writes, the check of a group's sealed state at load),
 * what a group needs from the service around it (GroupContext), and the types of the service's answers.
 */
import { ErrorCodes, GroupKeyRefusal, KeyframeError } from '../errors.js';
import type { HardenedKms } from '../groupkey/hardened/kms.js';
import type { Subkeys } from '../groupkey/hardened/kdf.js';
import type { GroupMode, GroupRow, KmsDb } from './db.js';
import type { Sealer } from './seal.js';

/** The KMS's address on the relay (the paper's ID_ICM). */
export const KMS_ADDRESS = 'kms';

export interface GroupView {
  readonly id: string;
  readonly mode: GroupMode;
  readonly degree: number;
  readonly leader: string | null;
  readonly epoch: number;
  readonly members: readonly string[];
  readonly pending: readonly { readonly serial: string; readonly op: 'join' | 'leave' }[];
  readonly lastRekeyAt: string | null;
  readonly refreshPeriodMs: number;
  readonly batchWindowMs: number;
  readonly treeHeight?: number;
  readonly ackStatus?: string;
  readonly lastAuth?: AuthRecord;
  /** Set when the group is stopped (its state is behind its cameras): what happened and what to do. */
  readonly alarm?: { readonly kind: string; readonly raisedAt: string; readonly message: string };
}

/** The part of a GroupView that depends on the group's mode. */
export type ModeView = Pick<GroupView, 'epoch' | 'members' | 'pending' | 'lastRekeyAt' | 'treeHeight' | 'ackStatus'>;

export interface AuthRecord {
  readonly at: string;
  readonly epoch: number;
  readonly verified: boolean;
  readonly present: readonly string[];
  readonly missing: readonly string[];
  readonly bad: readonly string[];
}

export interface ChangeResult {
  readonly group: string;
  readonly serial: string;
  readonly op: 'join' | 'leave';
  /** hardened: the epoch the change took effect in; paper schemes: null (the camera runs the protocol). */
  readonly epoch: number | null;
  readonly status: 'applied' | 'requested';
}

export type ContentKeyLookup = ReturnType<HardenedKms['contentKeyFor']>;

/** What every group needs from the service around it. */
export interface GroupContext {
  readonly db: KmsDb;
  readonly sealer: Sealer;
  readonly now: () => number;
  log(event: string, detail: Record<string, unknown>): void;
  /** A camera's sub-keys, opened from the database (enrolment.ts). */
  subkeysOf(serial: string): Promise<Subkeys>;
}

export const refused = (reason: string): GroupKeyRefusal => new GroupKeyRefusal(reason);

/** The error for a group whose stored state fails its check at load (the group is then not served). */
export function damaged(row: GroupRow, what: string): KeyframeError {
  return new KeyframeError(ErrorCodes.INPUT, `group ${row.id}: ${what}`);
}

/** Opens a part of a group's sealed state; a part that does not open makes the group damaged. */
export async function unseal<T>(row: GroupRow, what: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch {
    throw damaged(row, `${what} does not open with this KMS's sealing key (altered, or from another KMS)`);
  }
}

export interface EpochSpan {
  readonly start?: number;
  readonly end?: number;
  readonly current: boolean;
}

export abstract class GroupRuntime {
  row: GroupRow;
  /** Wakes long polls when the epoch moves. */
  readonly waiters = new Set<() => void>();
  /** Serialises rekeys and state writes. */
  chain: Promise<unknown> = Promise.resolve();
  lastAuth: AuthRecord | undefined;

  protected constructor(row: GroupRow, lastAuth: AuthRecord | undefined) {
    this.row = row;
    this.lastAuth = lastAuth;
  }

  /** The group's epoch (0 for the paper schemes, which have none at the KMS). */
  abstract get epoch(): number;

  abstract view(): ModeView;

  /** A member, or a camera with a change of membership waiting. */
  abstract isParticipant(serial: string): boolean;

  /** For a camera that takes part: whether it is a member, and the change it asked for (paper schemes). */
  abstract membership(serial: string): { member: boolean; request: 'join' | 'leave' | null };

  /** A join or leave, checked against the group as it stands (the service has checked the camera and the group). */
  abstract requestChange(serial: string, op: 'join' | 'leave', actor: string): Promise<ChangeResult>;

  abstract setLeader(serial: string, actor: string): Promise<void>;

  /** A camera that takes part was found revoked: prepares its removal; true when a leave is to be asked for. */
  abstract evictRevoked(serial: string, actor: string): Promise<boolean>;

  abstract contentKeyFor(kid: Uint8Array): ContentKeyLookup;

  /**
   * When an epoch began and ended (the issuedAt of its bundle and of the next one, KMS clock, signed), and whether it
   * is the one in use; unknown times are undefined.
   */
  abstract epochSpan(epoch: number): EpochSpan;

  /** The service stops: nothing waits on the group any more. */
  stop(): void {
    this.wake();
  }

  wake(): void {
    for (const w of [...this.waiters]) w();
  }

  serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }
}
