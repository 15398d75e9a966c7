/**
 * The audit chain and its signed checkpoints (src/audit/chain.ts): the hashes read back by openssl, and every edit,
 * deletion, reordering, insertion and truncation caught and named — by the chain alone where the chain can tell,
 * by a checkpoint where someone recomputed the chain.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { GENESIS, checkpointBody, leafHash, nextRow, parseCheckpointBody, verifyChain, verifyLog } from '../../src/audit/chain.js';
import type { ChainRow, Checkpoint } from '../../src/audit/chain.js';

const dir = mkdtempSync(join(tmpdir(), 'kf-audit-chain-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ORIGIN = 'keyframe-kms CN=kms.test';

function build(n: number): ChainRow[] {
  const rows: ChainRow[] = [];
  for (let i = 0; i < n; i++) rows.push(nextRow(rows.at(-1), { v: 1, at: new Date(1_800_000_000_000 + i * 1000).toISOString(), actor: `user:u${i % 3}`, action: i % 2 === 0 ? 'licence-release' : 'login', detail: { i, kids: [`k${i}`] } }));
  return rows;
}

function checkpoint(rows: readonly ChainRow[], size: number, key = privateKey, origin = ORIGIN): Checkpoint {
  const head = (rows[size - 1] as ChainRow).hash;
  const at = 1_800_000_100_000 + size;
  const body = checkpointBody(origin, size, head, at);
  return { size, head, at, body, signature: sign('sha256', Buffer.from(body), key).toString('base64') };
}

/** Recomputes every hash from `from` on, as someone with write access to the store could. */
function rechain(rows: readonly ChainRow[]): ChainRow[] {
  const out: ChainRow[] = [];
  for (const r of rows) {
    const fields = JSON.parse(r.entry) as Record<string, unknown>;
    delete fields['seq'];
    out.push(nextRow(out.at(-1), fields));
  }
  return out;
}

describe('audit chain', () => {
  it('leaf and chain hashes are what openssl computes: SHA-256(0x00 ‖ entry), SHA-256(h_{i-1} ‖ leaf)', () => {
    const rows = build(3);
    for (const r of rows) {
      const leafFile = join(dir, 'leaf.bin');
      writeFileSync(leafFile, Buffer.concat([Buffer.from([0]), Buffer.from(r.entry, 'utf8')]));
      expect(execFileSync('openssl', ['dgst', '-sha256', '-r', leafFile], { encoding: 'utf8' }).split(' ')[0]).toBe(r.leaf);
      const linkFile = join(dir, 'link.bin');
      writeFileSync(linkFile, Buffer.concat([Buffer.from(r.prev, 'hex'), Buffer.from(r.leaf, 'hex')]));
      expect(execFileSync('openssl', ['dgst', '-sha256', '-r', linkFile], { encoding: 'utf8' }).split(' ')[0]).toBe(r.hash);
    }
    expect(rows[0]?.prev).toBe(GENESIS);
    // RFC 6962's hash of an empty leaf
    expect(leafHash('')).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
  });

  it('a checkpoint is signed text that openssl verifies with the signer\'s public key', () => {
    const rows = build(5);
    const c = checkpoint(rows, 5);
    expect(parseCheckpointBody(c.body)).toEqual({ origin: ORIGIN, size: 5, head: c.head, at: c.at });
    writeFileSync(join(dir, 'body.txt'), c.body);
    writeFileSync(join(dir, 'sig.der'), Buffer.from(c.signature, 'base64'));
    writeFileSync(join(dir, 'pub.pem'), publicKey.export({ format: 'pem', type: 'spki' }));
    expect(execFileSync('openssl', ['dgst', '-sha256', '-verify', join(dir, 'pub.pem'), '-signature', join(dir, 'sig.der'), join(dir, 'body.txt')], { encoding: 'utf8' }).trim()).toBe('Verified OK');
    expect(verifyLog(rows, [c], publicKey, ORIGIN)).toMatchObject({ ok: true, entries: 5, covered: 5, uncovered: 0, checkpoints: 1 });
  });

  it('catches any single edit, deletion, swap or insertion at the entry where it happened', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 12 }), fc.nat(), fc.constantFrom('edit', 'delete', 'swap', 'insert'), (n, pick, kind) => {
        const rows = build(n);
        const i = pick % n;
        let bad: ChainRow[];
        let expected: number;
        if (kind === 'edit') {
          bad = rows.map((r, j) => (j === i ? { ...r, entry: r.entry.replace('"detail":{', '"detail":{"x":1,') } : r));
          expected = i + 1;
        } else if (kind === 'delete') {
          bad = rows.filter((_, j) => j !== i);
          // the entry found where the deleted one belonged (or, deleting the last, nothing: see truncation)
          if (i === n - 1) {
            expect(verifyChain(bad).ok).toBe(true);
            return;
          }
          expected = i + 2;
        } else if (kind === 'swap') {
          const j = i === n - 1 ? i - 1 : i + 1;
          const lo = Math.min(i, j);
          bad = rows.slice();
          [bad[lo], bad[lo + 1]] = [rows[lo + 1] as ChainRow, rows[lo] as ChainRow];
          expected = lo + 2;
        } else {
          const forged = nextRow(rows[i - 1], { v: 1, at: 'x', actor: 'mallory', action: 'login', detail: {} });
          bad = [...rows.slice(0, i), forged, ...rows.slice(i)];
          // the forged row takes seq i+1 and chains; the displaced original is caught
          expected = i + 1;
        }
        const r = verifyChain(bad);
        expect(r.ok).toBe(false);
        expect(!r.ok && r.seq).toBe(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('a rewritten chain (edit, then every hash recomputed) passes the chain check but not the checkpoint over it', () => {
    const rows = build(10);
    const cps = [checkpoint(rows, 4), checkpoint(rows, 8)];
    const edited = rows.map((r, j) => (j === 5 ? { ...r, entry: r.entry.replace('"i":5', '"i":55') } : r));
    const forged = rechain(edited);
    expect(verifyChain(forged).ok).toBe(true);
    expect(verifyLog(forged, cps, publicKey, ORIGIN)).toMatchObject({ ok: false, covered: 4, problem: { seq: 5, checkpoint: 8, message: expect.stringMatching(/entries 5…8 do not match the signed checkpoint at entry 8/) as unknown } });
    // an edit after the last checkpoint is protected by the chain only: the verifier says how much that is
    const late = rechain(rows.map((r, j) => (j === 9 ? { ...r, entry: r.entry.replace('"i":9', '"i":99') } : r)));
    expect(verifyLog(late, cps, publicKey, ORIGIN)).toMatchObject({ ok: true, covered: 8, uncovered: 2 });
  });

  it('truncation below a checkpoint is named; a forged or foreign checkpoint is refused', () => {
    const rows = build(10);
    const cps = [checkpoint(rows, 5), checkpoint(rows, 10)];
    expect(verifyLog(rows.slice(0, 7), cps, publicKey, ORIGIN)).toMatchObject({ ok: false, problem: { seq: 8, checkpoint: 10, message: expect.stringMatching(/entries 8…10 were removed/) as unknown } });
    // a checkpoint re-signed by another key, or for another origin, or with a body that says something else
    expect(verifyLog(rows, [checkpoint(rows, 10, other.privateKey)], publicKey, ORIGIN)).toMatchObject({ ok: false, problem: { checkpoint: 10, message: expect.stringMatching(/signature does not verify/) as unknown } });
    expect(verifyLog(rows, [checkpoint(rows, 10, privateKey, 'keyframe-kms CN=other')], publicKey, ORIGIN)).toMatchObject({ ok: false, problem: { message: expect.stringMatching(/signed for/) as unknown } });
    const c = checkpoint(rows, 10);
    expect(verifyLog(rows, [{ ...c, size: 9, head: (rows[8] as ChainRow).hash }], publicKey, ORIGIN)).toMatchObject({ ok: false, problem: { message: expect.stringMatching(/differ from its signed body/) as unknown } });
    expect(verifyLog(rows, [{ ...c, body: c.body.replace('size 10', 'size 1O') }], publicKey, ORIGIN)).toMatchObject({ ok: false, problem: { message: expect.stringMatching(/not a checkpoint/) as unknown } });
  });

  it('checkpoint bodies round-trip, and malformed ones are refused', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[ -~]{1,40}$/), fc.integer({ min: 1, max: 2 ** 40 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 0, max: 4_000_000_000_000 }), (origin, size, head, at) => {
        const h = Buffer.from(head).toString('hex');
        expect(parseCheckpointBody(checkpointBody(origin, size, h, at))).toEqual({ origin, size, head: h, at });
      }),
    );
    expect(() => checkpointBody('a\nb', 1, GENESIS, 0)).toThrow(/one non-empty line/);
    expect(() => checkpointBody('a', 0, GENESIS, 0)).toThrow(/at least one entry/);
    expect(parseCheckpointBody('keyframe audit checkpoint v1\norigin a\nsize 01\nhead ' + GENESIS + '\ntime 1970-01-01T00:00:00.000Z\n')).toBeUndefined();
  });
});
