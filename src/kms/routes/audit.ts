/**
 * The audit log for administrators (mutual TLS): its entries and checkpoints in pages, and the KMS's certificate
 * chain, so that `keyframe audit export` can write a file that `keyframe audit verify` checks offline.
 */
import type { Checkpoint } from '../../audit/chain.js';
import type { SecureServer } from '../../server/kit.js';
import type { KmsDb } from '../db.js';
import { admin } from './common.js';

type Q = { Querystring: { from?: string; limit?: string } };

export interface AuditRouteOptions {
  readonly db: KmsDb;
  /** The name checkpoints are signed as, and the KMS's certificate chain (PEM, leaf first). */
  readonly origin: string;
  readonly chain: readonly string[];
  /** Signs a checkpoint now (when entries were added since the last one). */
  readonly checkpoint: () => Promise<Checkpoint | undefined>;
}

export function auditRoutes(server: SecureServer, o: AuditRouteOptions): void {
  const db = o.db;
  server.app.get<Q>('/v1/admin/audit', async (req) => {
    admin(req);
    const from = Number(req.query.from ?? 1);
    const limit = Number(req.query.limit ?? 1000);
    if (!Number.isSafeInteger(from) || from < 1 || !Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) throw Object.assign(new Error('from ≥ 1 and 1 ≤ limit ≤ 10000'), { statusCode: 400 });
    const a = db.auditLog;
    const rows = a.rows(from, limit);
    const { size, head } = a.head();
    return { origin: o.origin, chain: o.chain, size, head, entries: rows.map((r) => ({ seq: r.seq, entry: r.entry, leaf: r.leaf, prev: r.prev, hash: r.hash })), checkpoints: from === 1 ? a.checkpoints() : [] };
  });
  server.app.post('/v1/admin/audit/checkpoint', async (req) => {
    admin(req);
    return { checkpoint: (await o.checkpoint()) ?? null };
  });
}
