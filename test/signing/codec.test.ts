/** TLV and Media Signing SEI codecs (fast-check round trips), hashing rules, frame alignment. */
import { createHash, generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MediaError } from '../../src/errors.js';
import { buildSeiNal, parseSei, userDataUnregistered, uuidBytes } from '../../src/media/h264/index.js';
import { frameHash, isHashed, parameterSetId, unitHash, ZERO_HASH } from '../../src/signing/hashing.js';
import {
  buildCertificateSei,
  buildUnitSei,
  canonicalJson,
  decodeOids,
  encodeOid,
  isSigningSei,
  MAX_UNIT_TICKS,
  MEDIA_SIGNING_UUID,
  OID_ECDSA_SHA256,
  OID_SHA256,
  parseSigningSei,
  type SessionManifest,
} from '../../src/signing/sei.js';
import { decodeTlvs, encodeTlvs } from '../../src/signing/tlv.js';
import { align } from '../../src/signing/verifier.js';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signer = (data: Uint8Array): Promise<Uint8Array> => Promise.resolve(cryptoSign('sha256', data, privateKey));

const bytes = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });

describe('TLV', () => {
  it('round-trips any list of TLVs', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ tag: fc.integer({ min: 0, max: 255 }), value: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 20 }), (items) => {
        const back = decodeTlvs(encodeTlvs(items));
        expect(back.map((t) => ({ tag: t.tag, value: Uint8Array.from(t.value) }))).toEqual(items);
      }),
    );
  });

  it('rejects truncation and overruns, and oversize values', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 50 }), fc.integer({ min: 1, max: 3 }), (value, cut) => {
        const enc = encodeTlvs([{ tag: 1, value }]);
        expect(() => decodeTlvs(enc.subarray(0, enc.length - cut))).toThrow(MediaError);
      }),
    );
    expect(() => encodeTlvs([{ tag: 1, value: new Uint8Array(65536) }])).toThrow(MediaError);
    expect(() => encodeTlvs([{ tag: 256, value: new Uint8Array(0) }])).toThrow(MediaError);
  });

  it('OIDs and canonical JSON', () => {
    for (const oid of [OID_SHA256, OID_ECDSA_SHA256, '1.2.840.113549.1.1.11', '2.999.1']) expect(decodeOids(encodeOid(oid))).toEqual([oid]);
    expect(Buffer.from(encodeOid(OID_SHA256)).toString('hex')).toBe('0609608648016503040201');
    expect(canonicalJson({ v: 1, b: 'x', a: 2 })).toBe('{"a":2,"b":"x","v":1}');
  });
});

describe('Media Signing SEI', () => {
  const general = fc
    .record({
      version: fc.constant(1),
      flags: fc.integer({ min: 0, max: 3 }),
      start: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      duration: fc.bigInt({ min: 0n, max: MAX_UNIT_TICKS }),
      counter: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      nalCount: fc.integer({ min: 0, max: 65535 }),
      frameCount: fc.integer({ min: 0, max: 60 }),
      unitHash: bytes(32),
      prevUnitHash: bytes(32),
    })
    .map(({ duration, ...g }) => ({ ...g, end: g.start + duration }));

  it('unit SEI round-trips, is escaped, and its signature covers the payload up to the signature TLV', async () => {
    await fc.assert(
      fc.asyncProperty(
        general,
        fc.option(fc.array(fc.record({ type: fc.constantFrom(7, 8), id: fc.integer({ min: 0, max: 255 }), sha256: bytes(32) }), { maxLength: 4 }), { nil: undefined }),
        fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
        async (g, parameterSets, endReason) => {
          const hashList = Array.from({ length: g.frameCount }, (_, i) => createHash('sha256').update(String(i)).digest().subarray(0, 8));
          const nal = await buildUnitSei({ general: g, hashList, ...(parameterSets !== undefined ? { parameterSets } : {}), ...(endReason !== undefined ? { endReason } : {}) }, signer);
          for (let i = 2; i < nal.length; i++) expect(nal[i - 2] === 0 && nal[i - 1] === 0 && (nal[i] as number) <= 2).toBe(false);
          expect(isSigningSei(nal)).toBe(true);
          expect(isHashed(nal)).toBe(false);
          const p = parseSigningSei(nal);
          if (p?.kind !== 'unit') throw new Error(`parsed as ${p?.kind}`);
          expect({ ...p.general, unitHash: Uint8Array.from(p.general.unitHash), prevUnitHash: Uint8Array.from(p.general.prevUnitHash) }).toEqual(g);
          expect(p.hashList.map((h) => Uint8Array.from(h))).toEqual(hashList.map((h) => Uint8Array.from(h)));
          expect(p.parameterSets?.map((x) => ({ ...x, sha256: Uint8Array.from(x.sha256) }))).toEqual(parameterSets);
          expect(p.endReason).toBe(endReason);
          expect(p.reserved).toBe(0x40);
          expect(Buffer.from(p.signedData.subarray(0, 16)).equals(Buffer.from(MEDIA_SIGNING_UUID))).toBe(true);
          expect(cryptoVerify('sha256', p.signedData, publicKey, p.signature)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('certificate SEI round-trips its manifest, chain and algorithms', async () => {
    const manifest: SessionManifest = { v: 1, serial: 'SN-1', session: '00112233445566778899aabbccddeeff', start: '2026-01-01T00:00:00.000Z', kid: 'ab'.repeat(32), counterStart: 7 };
    const nal = await buildCertificateSei({ hashOid: OID_SHA256, signatureOid: OID_ECDSA_SHA256, chainPem: '-----BEGIN CERTIFICATE-----\n', manifest }, signer);
    const p = parseSigningSei(nal);
    if (p?.kind !== 'certificate') throw new Error('not a certificate SEI');
    expect(p.manifest).toEqual(manifest);
    expect(p.manifestJson).toBe('{"counterStart":7,"kid":"' + 'ab'.repeat(32) + '","serial":"SN-1","session":"00112233445566778899aabbccddeeff","start":"2026-01-01T00:00:00.000Z","v":1}');
    expect([p.hashOid, p.signatureOid, p.reserved]).toEqual([OID_SHA256, OID_ECDSA_SHA256, 0xc0]);
    expect(cryptoVerify('sha256', p.signedData, publicKey, p.signature)).toBe(true);
  });

  it('a unit longer than the u32 duration holds, or ending before it starts, is refused', async () => {
    const g = { version: 1, flags: 0, start: 10n ** 17n, end: 10n ** 17n, counter: 0n, nalCount: 1, frameCount: 0, unitHash: new Uint8Array(32), prevUnitHash: new Uint8Array(32) };
    await expect(buildUnitSei({ general: { ...g, end: g.start + MAX_UNIT_TICKS }, hashList: [] }, signer)).resolves.toBeInstanceOf(Uint8Array);
    expect(() => buildUnitSei({ general: { ...g, end: g.start + MAX_UNIT_TICKS + 1n }, hashList: [] }, signer)).toThrow(MediaError);
    expect(() => buildUnitSei({ general: { ...g, end: g.start - 1n }, hashList: [] }, signer)).toThrow(MediaError);
  });

  it('other SEIs are not signing SEIs (and are hashed); a broken signing SEI is reported malformed', () => {
    const other = buildSeiNal([userDataUnregistered(uuidBytes('dc45e9bd-e6d9-48b7-962c-d820d923eeef'), new Uint8Array([1, 2, 3]))]);
    expect(parseSigningSei(other)).toBeUndefined();
    expect(isHashed(other)).toBe(true);
    const broken = buildSeiNal([userDataUnregistered(MEDIA_SIGNING_UUID, new Uint8Array([0x40, 1, 0, 9]))]);
    expect(parseSigningSei(broken)).toMatchObject({ kind: 'malformed' });
    expect(parseSei(broken)).toHaveLength(1);
  });
});

describe('hashing', () => {
  it('AUD and filler are not hashed; frame and unit hashes follow the format', () => {
    const aud = Uint8Array.of(0x09, 0xf0);
    const sps = Uint8Array.of(0x67, 0x42, 0x00, 0x1e, 0x8b);
    const slice = Uint8Array.of(0x65, 0x88, 0x84, 0x21);
    expect(isHashed(aud)).toBe(false);
    expect(isHashed(Uint8Array.of(0x0c, 0xff))).toBe(false);
    const f = frameHash([aud, sps, slice]);
    const h = (d: Uint8Array): Buffer => createHash('sha256').update(d).digest();
    expect(f?.nalCount).toBe(2);
    expect(Buffer.from(f?.hash ?? []).equals(h(Buffer.concat([h(sps), h(slice)])))).toBe(true);
    expect(frameHash([aud])).toBeUndefined();
    const sid = new Uint8Array(16).fill(1);
    const ps = [
      { type: 7, id: 0, sha256: h(sps) },
      { type: 8, id: 3, sha256: h(slice) },
    ];
    const expected = h(Buffer.concat([ZERO_HASH, sid, Buffer.from('0000000000000005', 'hex'), Buffer.from('0002', 'hex'), Buffer.from('0700', 'hex'), h(sps), Buffer.from('0803', 'hex'), h(slice), f?.hash ?? new Uint8Array()]));
    expect(Buffer.from(unitHash(ZERO_HASH, sid, 5n, ps, [f?.hash ?? new Uint8Array()])).equals(expected)).toBe(true);
    const none = h(Buffer.concat([ZERO_HASH, sid, Buffer.from('0000000000000005', 'hex'), Buffer.from('0000', 'hex'), f?.hash ?? new Uint8Array()]));
    expect(Buffer.from(unitHash(ZERO_HASH, sid, 5n, [], [f?.hash ?? new Uint8Array()])).equals(none)).toBe(true);
    expect(parameterSetId(sps)).toBe(0);
  });

  it('aligns received frames with the signed list', () => {
    const hs = [1, 2, 3, 4, 5].map((i) => createHash('sha256').update(String(i)).digest());
    const list = hs.map((x) => x.subarray(0, 8));
    const frames = (idx: number[]): { hash: Uint8Array; input: number }[] => idx.map((i, input) => ({ hash: hs[i] ?? createHash('sha256').update('x').digest(), input }));
    const kinds = (idx: number[]): string[] => align(list, frames(idx)).map((a) => (a.kind === 'frame' ? (a.match ? 'ok' : 'mod') : a.kind));
    expect(kinds([0, 1, 2, 3, 4])).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(kinds([0, 2, 3, 4])).toEqual(['ok', 'missing', 'ok', 'ok', 'ok']);
    expect(kinds([0, 1, 1, 2, 3, 4])).toEqual(['ok', 'ok', 'extra', 'ok', 'ok', 'ok']);
    expect(kinds([0, 9, 2, 3, 4])).toEqual(['ok', 'mod', 'ok', 'ok', 'ok']);
    expect(kinds([0, 1, 2])).toEqual(['ok', 'ok', 'ok', 'missing', 'missing']);
  });
});
