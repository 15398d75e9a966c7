/**
 * Signed checkpoints over the KMS's audit chain: every `everyEntries` entries, every `intervalMs` when entries were
 * added since the last one, and at shutdown. The signature is the KMS identity key's (ECDSA P-256 in its key store),
 * so `keyframe audit verify` checks it offline against the operator CA.
 *
 * At start the log is checked: the last checkpoint's signature, the whole chain, and that the chain still has the
 * checkpoint's head at its size. A database whose audit log was cut below a checkpoint, or edited after one,
 * is named and refused — the KMS does not start on a log it cannot vouch for.
 */
import type { KeyObject } from 'node:crypto';
import { GENESIS, checkpointBody, checkpointProblem, verifyChain } from '../audit/chain.js';
import type { Checkpoint } from '../audit/chain.js';
import { StoreError } from '../util/sqlite.js';
import type { KmsAudit } from './audit-store.js';

export interface CheckpointerOptions {
  readonly audit: KmsAudit;
  /** ECDSA P-256 / SHA-256 over the data, DER. */
  readonly sign: (data: Uint8Array) => Promise<Uint8Array>;
  /** The signer's name, in every checkpoint (the KMS certificate's subject). */
  readonly origin: string;
  readonly everyEntries: number;
  readonly intervalMs: number;
  readonly log: (event: string, detail: Record<string, unknown>) => void;
}

export { auditOrigin } from '../audit/export.js';

export const CHECKPOINT_DEFAULTS = { everyEntries: 256, intervalMs: 60_000 } as const;

export class AuditCheckpointer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private scheduled = false;
  private closed = false;

  constructor(private readonly o: CheckpointerOptions) {}

  /**
   * Checks the tail of the log against its last checkpoint (module comment); throws a StoreError naming the
   * problem. `publicKey` is the KMS identity's.
   */
  checkTail(publicKey: KeyObject): void {
    const a = this.o.audit;
    const last = a.lastCheckpoint();
    const { size } = a.head();
    if (last !== undefined) {
      const problem = checkpointProblem(last, publicKey, this.o.origin);
      if (problem !== undefined) throw new StoreError(`the KMS audit log's last ${problem}; run keyframe audit verify`);
      if (size < last.size) throw new StoreError(`the KMS audit log ends at entry ${size}, but its signed checkpoint covers ${last.size} entries: entries ${size + 1}…${last.size} were removed (the database was rolled back or cut); run keyframe audit verify`);
    }
    // the whole chain, in pages (about 1 s per million entries)
    let at = { seq: 0, hash: GENESIS };
    for (;;) {
      const page = a.rows(at.seq + 1, 50_000);
      if (page.length === 0) break;
      const check = verifyChain(page, at);
      if (!check.ok) throw new StoreError(`the KMS audit log is damaged at entry ${check.seq}: ${check.problem}; run keyframe audit verify`);
      at = { seq: check.entries, hash: check.head };
      if (last !== undefined && at.seq >= last.size && at.seq - page.length < last.size) {
        const row = page[last.size - (at.seq - page.length) - 1];
        if (row?.hash !== last.head) throw new StoreError(`the KMS audit log does not match its signed checkpoint at entry ${last.size}: an entry at or before it was altered and the chain recomputed; run keyframe audit verify`);
      }
    }
  }

  start(): void {
    this.timer = setInterval(() => this.schedule(), this.o.intervalMs);
    this.timer.unref();
  }

  /** Called after an append: a checkpoint once `everyEntries` have been added since the last one. */
  noteAppend(): void {
    const last = this.o.audit.lastCheckpoint()?.size ?? 0;
    if (this.o.audit.head().size - last >= this.o.everyEntries) this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.checkpoint().catch((e: unknown) => this.o.log('audit-checkpoint-failed', { error: (e as Error).message }));
    });
  }

  /** Signs a checkpoint over the current head if entries were added since the last one; returns it. */
  async checkpoint(): Promise<Checkpoint | undefined> {
    while (this.running !== undefined) await this.running;
    let made: Checkpoint | undefined;
    const run = (async () => {
      const { size, head } = this.o.audit.head();
      if (size === 0 || size <= (this.o.audit.lastCheckpoint()?.size ?? 0)) return;
      const at = Date.now();
      const body = checkpointBody(this.o.origin, size, head, at);
      const signature = Buffer.from(await this.o.sign(Buffer.from(body, 'utf8'))).toString('base64');
      made = { size, head, at, body, signature };
      this.o.audit.addCheckpoint(made);
      this.o.log('audit-checkpoint', { size, head });
    })();
    this.running = run;
    try {
      await run;
    } finally {
      this.running = undefined;
    }
    return made;
  }

  /** Stops the timer and signs a last checkpoint. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.checkpoint();
  }
}
