/**
 * The camera relay at the KMS (the paper's LAN: leader ↔ members): who may post to a group's mailbox and read
 * from it (its participants), and where a message goes — to cameras of the group through the mailbox
 * (mailbox.ts), or, in the paper schemes, to the KMS itself (paper-group.ts). The hardened protocol does not
 * trust the relay and sends the KMS nothing through it.
 */
import { InputError } from '../errors.js';
import type { Mailbox, MailItem } from './mailbox.js';
import { PaperGroup } from './paper-group.js';
import { KMS_ADDRESS, refused } from './runtime.js';
import type { GroupRuntime } from './runtime.js';

export class Relay {
  constructor(
    private readonly mailbox: Mailbox,
    private readonly group: (id: string) => GroupRuntime | undefined,
  ) {}

  private participant(groupId: string, serial: string): GroupRuntime {
    const g = this.group(groupId);
    if (g === undefined || !g.isParticipant(serial)) throw refused('not a member');
    return g;
  }

  /** Before a body is read: would a message of `size` bytes from `from` be taken? (Members only; relay quotas.) */
  admitPost(groupId: string, from: string, to: readonly string[], size: number): void {
    this.participant(groupId, from);
    this.mailbox.admit(groupId, from, to.filter((t) => t !== KMS_ADDRESS), size);
  }

  /** Sends `body` from an authenticated camera to cameras of its group, or (paper schemes) to the KMS. */
  async post(groupId: string, from: string, to: readonly string[], body: Uint8Array): Promise<void> {
    const g = this.participant(groupId, from);
    if (to.length === 0 || to.length > 100_000) throw new InputError('a message names 1–100000 recipients');
    if (to.includes(from)) throw new InputError('a camera may not post a message to itself');
    const cameras = to.filter((t) => t !== KMS_ADDRESS);
    for (const t of cameras) if (!g.isParticipant(t)) throw refused('recipient not in the group');
    if (cameras.length > 0) this.mailbox.post(groupId, from, cameras, body);
    if (to.includes(KMS_ADDRESS)) {
      if (!(g instanceof PaperGroup)) throw refused('the hardened KMS takes no relayed messages');
      await g.serial(() => g.handle(from, body));
    }
  }

  /** A camera's relayed messages after `after`; waits up to `waitMs` when there are none. */
  async inbox(groupId: string, serial: string, after: number, waitMs: number, signal?: AbortSignal): Promise<{ items: MailItem[]; more: boolean }> {
    this.participant(groupId, serial);
    return this.mailbox.read(groupId, serial, after, waitMs, signal);
  }
}
