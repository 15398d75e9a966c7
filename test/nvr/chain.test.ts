/**
 * The incremental record-chain verifier (src/recording/chain.ts), pure: a session's records signed with a real
 * P-256 key, fed in any order with their segments' hashes; each verdict settles once what it depends on is held.
 */
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { IncrementalChainVerifier, parseChainRecord, verdictFails } from '../../src/recording/chain.js';
import { GENESIS, canonicalJson, recordHash, sha256Hex, signRecord, type AnyRecord, type SessionRecord } from '../../src/recording/records.js';

const SESSION = '0123456789abcdef0123456789abcdef';

async function chainOf(n: number, key = generateKeyPairSync('ec', { namedCurve: 'P-256' })): Promise<{ key: typeof key; records: AnyRecord[]; segments: string[] }> {
  const sign = async (d: Uint8Array): Promise<Uint8Array> => Promise.resolve(cryptoSign('sha256', d, key.privateKey));
  const segments = Array.from({ length: n }, (_, i) => sha256Hex(`segment ${i}`));
  const session = await signRecord({ v: 1, kind: 'session', session: SESSION, serial: 'CAM-1', start: '2026-12-07T00:00:00.000Z', scheme: 'cbcs', kid: 'ab'.repeat(16), init: sha256Hex('init'), counter: 10, prev: GENESIS }, sign);
  const records: AnyRecord[] = [session];
  for (let i = 0; i < n; i++) {
    records.push(await signRecord({ v: 1, session: SESSION, seq: i, counter: 11 + i, start: i, end: i + 1, sha256: segments[i] as string, kid: 'ab'.repeat(16), prev: recordHash(records[i] as AnyRecord) }, sign));
  }
  records.push(await signRecord({ v: 1, kind: 'end', session: SESSION, seq: n, counter: 11 + n, end: n, reason: 0, prev: recordHash(records[n] as AnyRecord) }, sign));
  return { key, records, segments };
}

describe('IncrementalChainVerifier', () => {
  it('settles every verdict whatever the order records and segments arrive in', async () => {
    const { key, records, segments } = await chainOf(5);
    const v = new IncrementalChainVerifier(key.publicKey, records[0] as SessionRecord);
    // backfill order: the newest first, segments before their records
    expect(v.addSegment(4, segments[4] as string)).toBeUndefined();
    const last = v.addRecord(6, records[6] as AnyRecord);
    expect(last[0]).toMatchObject({ index: 6, kind: 'end', signature: true });
    expect(last[0]?.chained).toBeUndefined(); // record 5 not held yet
    const r5 = v.addRecord(5, records[5] as AnyRecord);
    expect(r5[0]).toMatchObject({ index: 5, kind: 'fragment', signature: true, segment: true });
    expect(r5[1]).toMatchObject({ index: 6, chained: true, counterIncreases: true });
    for (const i of [2, 1, 4, 3]) v.addRecord(i, records[i] as AnyRecord);
    for (const s of [0, 1, 2, 3]) expect(v.addSegment(s, segments[s] as string)).toBe(true);
    for (let i = 1; i <= 6; i++) expect(verdictFails(v.verdict(i)), `record ${i}`).toBe(false);
    expect(v.verdict(3).segment).toBe(true);
    expect(v.end?.seq).toBe(5);
  });

  it('condemns a record that does not follow its predecessor, a forged signature, another session, and wrong bytes', async () => {
    const { key, records, segments } = await chainOf(4);
    const other = await chainOf(4);
    const v = new IncrementalChainVerifier(key.publicKey, records[0] as SessionRecord);
    v.addRecord(1, records[1] as AnyRecord);
    // record 3 where record 2 belongs: signed, but it does not chain to record 1
    const swapped = v.addRecord(2, records[3] as AnyRecord)[0];
    expect(swapped).toMatchObject({ signature: true, chained: false });
    expect(verdictFails(swapped as never)).toBe(true);
    v.removeRecord(2);
    // another camera's record (another key) in this place
    expect(v.addRecord(2, other.records[2] as AnyRecord)[0]?.signature).toBe(false);
    v.removeRecord(2);
    v.addRecord(2, records[2] as AnyRecord);
    expect(verdictFails(v.verdict(2))).toBe(false);
    // a segment whose bytes are not the signed ones
    expect(v.addSegment(1, sha256Hex('a flipped bit'))).toBe(false);
    expect(v.addSegment(0, segments[0] as string)).toBe(true);
    // a record of this key for another session is not a record of this chain
    const foreign = await signRecord({ ...(JSON.parse(canonicalJson(records[3])) as Record<string, unknown>), session: 'ff'.repeat(16), sig: undefined }, async (d) => Promise.resolve(cryptoSign('sha256', d, key.privateKey)));
    expect(v.addRecord(3, foreign as unknown as AnyRecord)[0]?.signature).toBe(false);
  });

  it('parses lost records and refuses malformed ones', () => {
    const lost = { v: 1, kind: 'lost', session: SESSION, of: SESSION, from: 3, to: 5, start: 3, end: 5, reason: 'buffer-full', counter: 9, prev: GENESIS, sig: 'AA==' };
    expect(parseChainRecord(JSON.stringify(lost))).toMatchObject({ kind: 'lost', from: 3, to: 5 });
    expect(() => parseChainRecord(JSON.stringify({ ...lost, to: 2 }))).toThrow(/lost record/);
    expect(() => parseChainRecord(JSON.stringify({ ...lost, reason: 'whatever' }))).toThrow(/lost record/);
    expect(() => parseChainRecord('{"v":1,"kind":"unknown"}')).toThrow();
    // a fragment record's kid, when present, is 32 hex digits
    const frag = { v: 1, session: SESSION, seq: 0, counter: 1, start: 0, end: 1, sha256: 'a'.repeat(64), prev: GENESIS, sig: 'AA==' };
    expect(parseChainRecord(JSON.stringify({ ...frag, kid: 'cd'.repeat(16) }))).toMatchObject({ kid: 'cd'.repeat(16) });
    expect(() => parseChainRecord(JSON.stringify({ ...frag, kid: 'xyz' }))).toThrow(/fragment record/);
  });
});
