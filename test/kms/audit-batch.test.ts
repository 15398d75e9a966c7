// Group commit of licence decisions (src/kms/audit-batch.ts) on a real KMS database: the entries asked for in one
// turn of the event loop are one transaction, in order, on the chain; a failure in the batch writes none of them
// and fails every caller (no key may be released then).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/audit/chain.js';
import { AUDIT_BATCH_MAX, AuditBatcher } from '../../src/kms/audit-batch.js';
import { KmsDb } from '../../src/kms/db.js';

let dir: string;
let db: KmsDb;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kf-audit-batch-'));
  db = KmsDb.open(join(dir, 'kms.db'), { create: true });
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const entry = (i: number, extra: Record<string, unknown> = {}) => ({ actor: `user:u${i}`, action: 'licence', detail: { n: i, ...extra }, at: 1_700_000_000_000 + i });

describe('audit group commit', () => {
  it('appends the entries of one turn in one transaction, in the order asked, on the hash chain', async () => {
    db.audit('admin:root', 'user-add', { user: 'u0' }); // an entry appended at once, before the batch
    let commits = 0;
    db.auditLog.onAppend = () => commits++;
    const batch = new AuditBatcher(db.auditLog);
    const rows = await Promise.all([1, 2, 3, 4, 5].map((i) => batch.append(entry(i))));
    expect(commits).toBe(1);
    expect(rows.map((r) => r.seq)).toEqual([2, 3, 4, 5, 6]);
    expect(rows.map((r) => r.actor)).toEqual(['user:u1', 'user:u2', 'user:u3', 'user:u4', 'user:u5']);
    const all = db.auditLog.rows();
    expect(verifyChain(all)).toMatchObject({ ok: true });
    expect(all.map((r) => (JSON.parse(r.entry) as { detail: { n?: number } }).detail.n)).toEqual([undefined, 1, 2, 3, 4, 5]);
    // the next turn is another transaction
    await batch.append(entry(6));
    expect(commits).toBe(2);
  });

  it('a burst larger than one batch is committed in several, every caller answered', async () => {
    let commits = 0;
    db.auditLog.onAppend = () => commits++;
    const batch = new AuditBatcher(db.auditLog);
    const n = AUDIT_BATCH_MAX + 10;
    const rows = await Promise.all(Array.from({ length: n }, (_, i) => batch.append(entry(i))));
    expect(commits).toBe(2);
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(verifyChain(db.auditLog.rows())).toMatchObject({ ok: true });
  });

  it('an entry that cannot be written fails its whole batch: nothing of it is in the log, every caller gets the error', async () => {
    db.audit('admin:root', 'user-add', { user: 'u0' });
    const batch = new AuditBatcher(db.auditLog);
    // a BigInt cannot be serialised: the third insert throws inside the transaction, which rolls back
    const results = await Promise.allSettled([batch.append(entry(1)), batch.append(entry(2)), batch.append(entry(3, { bad: 1n })), batch.append(entry(4))]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    expect(db.auditLog.head().size).toBe(1);
    // the batcher goes on: the next turn commits
    const r = await batch.append(entry(5));
    expect(r.seq).toBe(2);
    expect(verifyChain(db.auditLog.rows())).toMatchObject({ ok: true });
  });

  it('a closed database fails the queued appends instead of answering them', async () => {
    const batch = new AuditBatcher(db.auditLog);
    const p = batch.append(entry(1));
    db.close();
    await expect(p).rejects.toThrow(/not open/);
    db = KmsDb.open(join(dir, 'kms.db'));
    expect(db.auditLog.head().size).toBe(0);
  });
});
