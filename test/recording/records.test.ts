/**
 * Fragment records over the ciphertext of an encrypted recording: a recorder or auditor proves integrity, order
 * and completeness without any content key — a bit flipped in an encrypted fragment, a fragment deleted, two
 * reordered, a record removed or edited, or records signed by another camera are each reported, and localised.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftwareKeyStore } from '../../src/keystore/software.js';
import type { KeyStore } from '../../src/keystore/types.js';
import { writeChunksAtomic } from '../../src/packager/files.js';
import { openInput } from '../../src/packager/input.js';
import { emptyStats, packageChunks } from '../../src/packager/package.js';
import { splitCmaf } from '../../src/recording/fragments.js';
import { GENESIS, canonicalJson, parseRecord, recordHash, sha256Hex, signRecord, verifyRecordChain } from '../../src/recording/records.js';
import type { FragmentRecord } from '../../src/recording/records.js';
import { clip } from '../helpers/media.js';

let work: string;
let store: KeyStore;
let other: KeyStore;
let fragments: Uint8Array[];
let records: FragmentRecord[];
const session = randomBytes(16).toString('hex');

async function recordsFor(frags: readonly Uint8Array[], s: KeyStore, label: string): Promise<FragmentRecord[]> {
  const out: FragmentRecord[] = [];
  let prev = GENESIS;
  for (const [seq, f] of frags.entries()) {
    const r = await signRecord({ v: 1, session, seq, counter: 1000 + seq, start: seq, end: seq + 1, sha256: sha256Hex(f), prev }, (d) => s.sign(label, d));
    prev = recordHash(r);
    out.push(r);
  }
  return out;
}

const hashes = (frags: readonly Uint8Array[]): string[] => frags.map((f) => sha256Hex(f));

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'kf-rec-'));
  store = await SoftwareKeyStore.open(join(work, 'cam'), 'camera passphrase', { create: true, scrypt: { N: 1024, r: 8, p: 1 } });
  await store.generateKeyPair('device', 'ec-p256');
  other = await SoftwareKeyStore.open(join(work, 'other'), 'camera passphrase', { create: true, scrypt: { N: 1024, r: 8, p: 1 } });
  await other.generateKeyPair('device', 'ec-p256');
  const src = await clip({ width: 640, height: 360, seconds: 6, gop: 30, format: 'mp4' });
  const out = join(work, 'rec.mp4');
  const input = await openInput(src);
  await writeChunksAtomic(out, packageChunks(input, { scheme: 'cbcs', keyFor: () => ({ kid: randomBytes(16), key: randomBytes(16) }) }, emptyStats()));
  await input.close();
  fragments = [...splitCmaf(readFileSync(out)).fragments];
  records = await recordsFor(fragments, store, 'device');
}, 240_000);

afterAll(async () => {
  await store.close();
  await other.close();
  rmSync(work, { recursive: true, force: true });
});

describe('fragment records over ciphertext, checked without any content key', () => {
  it('an intact recording: every fragment authentic', async () => {
    expect(fragments.length).toBe(6);
    const r = verifyRecordChain(records, hashes(fragments), await store.getPublicKey('device'));
    expect(r.problems).toEqual([]);
    expect(r.authentic).toBe(6);
    expect(r.coveredSeconds).toBe(6);
  });

  it('a bit flipped in an encrypted fragment: that fragment is tampered, the others authentic', async () => {
    const flipped = fragments.map((f) => Buffer.from(f));
    const f2 = flipped[2] as Buffer;
    f2[f2.length - 100] = (f2[f2.length - 100] ?? 0) ^ 0x01;
    const r = verifyRecordChain(records, hashes(flipped), await store.getPublicKey('device'));
    expect(r.problems.map((p) => [p.kind, p.seq, p.start, p.end])).toEqual([['tampered', 2, 2, 3]]);
    expect(r.authentic).toBe(5);
  });

  it('a fragment deleted: reported missing with its time range, alone', async () => {
    const r = verifyRecordChain(records, hashes([...fragments.slice(0, 3), ...fragments.slice(4)]), await store.getPublicKey('device'));
    expect(r.problems.map((p) => [p.kind, p.seq, p.start, p.end])).toEqual([['missing', 3, 3, 4]]);
  });

  it('two fragments reordered: reported out of order', async () => {
    const swapped = [fragments[0], fragments[2], fragments[1], ...fragments.slice(3)] as Uint8Array[];
    const r = verifyRecordChain(records, hashes(swapped), await store.getPublicKey('device'));
    expect(r.problems.map((p) => p.kind)).toEqual(['out-of-order']);
    expect([1, 2]).toContain(r.problems[0]?.seq);
  });

  it('a record removed, a record edited, a fragment without a record', async () => {
    const pub = await store.getPublicKey('device');
    const removed = verifyRecordChain([...records.slice(0, 2), ...records.slice(3)], hashes(fragments), pub);
    expect(removed.problems.map((p) => p.kind)).toEqual(expect.arrayContaining(['missing', 'chain-broken', 'unrecorded']));
    const edited = records.map((r, i) => (i === 4 ? { ...r, end: 99 } : r));
    const e = verifyRecordChain(edited, hashes(fragments), pub);
    expect(e.problems.map((p) => [p.kind, p.seq])).toEqual(expect.arrayContaining([['bad-signature', 4], ['chain-broken', 5]]));
  });

  it("records signed by another camera's key do not verify", async () => {
    const forged = await recordsFor(fragments, other, 'device');
    const r = verifyRecordChain(forged, hashes(fragments), await store.getPublicKey('device'));
    expect(r.authentic).toBe(0);
    expect(r.problems.filter((p) => p.kind === 'bad-signature')).toHaveLength(6);
  });

  it('records survive a JSON round trip through records.jsonl (property on canonical JSON)', () => {
    for (const [i, r] of records.entries()) expect(parseRecord(JSON.stringify(r), i + 1)).toEqual(r);
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.oneof(fc.integer(), fc.string(), fc.boolean())), (o) => {
        expect(JSON.parse(canonicalJson(o))).toEqual(o);
        expect(canonicalJson(JSON.parse(canonicalJson(o)))).toBe(canonicalJson(o));
      }),
    );
    expect(() => parseRecord('{"v":1}', 7)).toThrow(/line 7/);
  });
});
