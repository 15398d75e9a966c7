/**
 * Group commit for the audit log's busiest writer, licences: the entries asked for during one turn of the event loop
 * are appended in one transaction at its end (one fsync for all of them instead of one each), and each caller's
 * promise settles only after that commit. A licence is answered after its entry is durable, as before; when the
 * commit fails, every caller in the batch gets the error and no key of any of them is released.
 *
 * better-sqlite3 commits on the event loop: while one commit waits for the disk, requests queue in the sockets;
 * they are read in the next poll phase, decided, and committed together at its end. So a slow fsync (a busy disk)
 * costs the queued requests one fsync, not one each.
 */
import type { AuditInput, AuditRow, KmsAudit } from './audit-store.js';

interface Pending {
  readonly entry: AuditInput;
  readonly resolve: (row: AuditRow) => void;
  readonly reject: (e: unknown) => void;
}

/** Entries per transaction at most (a burst is committed in several). */
export const AUDIT_BATCH_MAX = 256;

export class AuditBatcher {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(private readonly audit: Pick<KmsAudit, 'appendMany'>) {}

  /** Resolves with the entry's row once it is committed; rejects when its batch's commit failed. */
  append(entry: AuditInput): Promise<AuditRow> {
    return new Promise<AuditRow>((resolve, reject) => {
      this.queue.push({ entry, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits what is queued now (also called at shutdown, before the database closes). */
  flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, AUDIT_BATCH_MAX);
      let rows: AuditRow[];
      try {
        rows = this.audit.appendMany(batch.map((p) => p.entry));
      } catch (e) {
        for (const p of batch) p.reject(e);
        continue;
      }
      batch.forEach((p, i) => p.resolve(rows[i] as AuditRow));
    }
  }
}
