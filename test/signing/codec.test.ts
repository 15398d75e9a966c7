/**
 * The signing SEI codecs (fast-check round trips): ONVIF Media Signing TLVs and SEIs as the reference implementation
 * r25.12.3 writes them (docs/signed-video.md §1), keyframe's extension SEI, the hashing rules, frame alignment.
 */
import { createHash, generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MediaError } from '../../src/errors.js';
import { buildSeiNal, parseSei, unescapeRbsp, userDataUnregistered, uuidBytes } from '../../src/media/h264/index.js';
import { gopHash, isPrimarySlice, OnvifLinker, onvifSliceKind, parameterSetDigest, parameterSetId, trimmed, unitDigest } from '../../src/signing/hashing.js';
import {
  buildKeyframeSessionSei,
  buildKeyframeUnitSei,
  buildOnvifSei,
  canonicalJson,
  decodeCryptoInfo,
  decodeGeneral,
  decodeOid,
  decodeVendorInfo,
  ECDSA_P256_SIGNATURE_SLOT,
  encodeCertificates,
  encodeCryptoInfo,
  encodeGeneral,
  encodeHashList,
  encodeOid,
  encodeVendorInfo,
  isSigningSei,
  KEYFRAME_UUID,
  MAX_UNIT_TICKS,
  OID_ECDSA_SHA256,
  OID_SHA256,
  ONVIF_UUID,
  OnvifTag,
  parseSigningSei,
  type OnvifGeneral,
  type SessionManifest,
} from '../../src/signing/sei.js';
import { decodeTlvs, encodeTlvs } from '../../src/signing/tlv.js';
import { align } from '../../src/signing/verifier.js';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const derSigner = (data: Uint8Array): Promise<Uint8Array> => Promise.resolve(cryptoSign('sha256', data, privateKey));
const rawSigner = (data: Uint8Array): Promise<Uint8Array> => Promise.resolve(cryptoSign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }));

const bytes = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });

/** No start code emulation in an escaped NAL unit. */
function escaped(nal: Uint8Array): boolean {
  for (let i = 2; i < nal.length; i++) if (nal[i - 2] === 0 && nal[i - 1] === 0 && (nal[i] as number) <= 2) return false;
  return true;
}

describe('TLV', () => {
  it('round-trips any list of TLVs (tag u8, length u16 big-endian)', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ tag: fc.integer({ min: 0, max: 255 }), value: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 20 }), (items) => {
        const back = decodeTlvs(encodeTlvs(items));
        expect(back.map((t) => ({ tag: t.tag, value: Uint8Array.from(t.value) }))).toEqual(items);
      }),
    );
    expect(Buffer.from(encodeTlvs([{ tag: 3, value: new Uint8Array(0x4b) }]).subarray(0, 3)).toString('hex')).toBe('03004b');
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
    for (const oid of [OID_SHA256, OID_ECDSA_SHA256, '1.2.840.113549.1.1.11', '2.999.1']) expect(decodeOid(encodeOid(oid))).toBe(oid);
    expect(Buffer.from(encodeOid(OID_SHA256)).toString('hex')).toBe('0609608648016503040201');
    expect(canonicalJson({ v: 1, b: 'x', a: 2 })).toBe('{"a":2,"b":"x","v":1}');
  });
});

describe('ONVIF Media Signing TLVs (reference r25.12.3 layouts)', () => {
  const general: fc.Arbitrary<OnvifGeneral> = fc.record({
    version: fc.constant(2),
    codeVersion: fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })),
    partial: fc.boolean(),
    start: fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }),
    end: fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }),
    counter: fc.integer({ min: 0, max: 0xffffffff }),
    nalCount: fc.integer({ min: 0, max: 0xffff }),
    gopHash: bytes(32),
    linkedHash: bytes(32),
  });

  it('general TLV: 91 bytes for SHA-256, big-endian, round-trips', () => {
    fc.assert(
      fc.property(general, (g) => {
        const v = encodeGeneral(g);
        expect(v.length).toBe(91);
        const back = decodeGeneral(v);
        expect({ ...back, gopHash: Uint8Array.from(back.gopHash), linkedHash: Uint8Array.from(back.linkedHash) }).toEqual(g);
      }),
    );
    // the reference's example: version 2, code version 25.12.3, start 2026-01-01 big-endian, counter 1, 25 NAL units
    const v = encodeGeneral({ version: 2, codeVersion: [25, 12, 3], partial: false, start: 134116992000000000n, end: 134116992010000000n, counter: 1, nalCount: 25, gopHash: new Uint8Array(32), linkedHash: new Uint8Array(32) });
    expect(Buffer.from(v.subarray(0, 27)).toString('hex')).toBe('02190c0300' + '01dc7ab192810000' + '01dc7ab193199680' + '00000001' + '0019');
  });

  it('crypto info, vendor info, certificates: the version byte first', () => {
    const c = encodeCryptoInfo({ hashOid: OID_SHA256, rsaSize: 0 });
    // as the reference writes it for an EC key: 01 | 0b | OID | 00 | 0000
    expect(Buffer.from(c).toString('hex')).toBe('010b0609608648016503040201000000');
    expect(decodeCryptoInfo(c)).toEqual({ hashOid: OID_SHA256, rsaSize: 0 });
    expect(decodeCryptoInfo(encodeCryptoInfo({ hashOid: OID_SHA256, signatureOid: OID_ECDSA_SHA256, rsaSize: 0 }))).toEqual({ hashOid: OID_SHA256, signatureOid: OID_ECDSA_SHA256, rsaSize: 0 });
    const vi = { firmwareVersion: 'r25.12.3', serialNumber: 'N/A', manufacturer: 'Media Signing Framework' };
    expect(encodeVendorInfo(vi).length).toBe(38);
    expect(decodeVendorInfo(encodeVendorInfo(vi))).toEqual(vi);
    expect(Buffer.from(encodeCertificates({ userProvisioned: false, chainPem: '-----' }).subarray(0, 3)).toString('hex')).toBe('01002d');
    expect(() => decodeCryptoInfo(Uint8Array.of(0x06, 0x09))).toThrow(MediaError);
  });

  it('signed SEI: escaped, signature TLV last with DER padded to 72 bytes by 0x01, document = header to the signature tag', async () => {
    await fc.assert(
      fc.asyncProperty(general, fc.array(bytes(32), { maxLength: 30 }), fc.boolean(), async (g, list, epb) => {
        const tlvs = [{ tag: OnvifTag.GENERAL, value: encodeGeneral(g) }, ...(list.length > 0 ? [{ tag: OnvifTag.HASH_LIST, value: encodeHashList(list) }] : [])];
        const nal = await buildOnvifSei({ certificate: false, tlvs, sign: derSigner, slot: ECDSA_P256_SIGNATURE_SLOT, epbBeforeHashing: epb });
        expect(escaped(nal)).toBe(true);
        expect(isSigningSei(nal)).toBe(true);
        const p = parseSigningSei(nal);
        if (p?.kind !== 'onvif') throw new Error(`parsed as ${p?.kind}`);
        expect(p.reserved).toBe(epb ? 0x40 : 0x00);
        expect(p.tags).toEqual([...tlvs.map((t) => t.tag), OnvifTag.SIGNATURE]);
        expect(p.signatureSlot).toBe(72);
        expect(p.general?.counter).toBe(g.counter);
        const doc = p.document ?? new Uint8Array();
        expect(doc[0]).toBe(0x06);
        expect(doc[1]).toBe(0x05);
        expect(cryptoVerify('sha256', doc, publicKey, p.signature ?? new Uint8Array())).toBe(true);
        // the document ends right before the signature tag, in the stream's (escaped) or the unescaped bytes
        const { rbsp } = unescapeRbsp(nal);
        const sigAt = rbsp.length - 1 - (3 + 3 + 72);
        expect(rbsp[sigAt]).toBe(OnvifTag.SIGNATURE);
        if (!epb) expect(Buffer.from(doc).equals(Buffer.from(rbsp.subarray(0, sigAt)))).toBe(true);
        else expect(Buffer.from(unescapeRbsp(doc).rbsp).equals(Buffer.from(rbsp.subarray(0, sigAt)))).toBe(true);
        // padding with 0x01 after the DER signature
        const sigValue = rbsp.subarray(sigAt + 3, sigAt + 3 + 75);
        const len = ((sigValue[1] as number) << 8) | (sigValue[2] as number);
        expect(sigValue.subarray(3 + len).every((b) => b === 1)).toBe(true);
        expect(rbsp[rbsp.length - 1]).toBe(0x80);
      }),
      { numRuns: 40 },
    );
  });

  it('unknown tags and a reserved byte announcing more are malformed; reserved 0x00 is accepted', async () => {
    const bad = buildSeiNal([userDataUnregistered(ONVIF_UUID, Uint8Array.of(0x00, 0x80, 0x00, 0x01, 0x00))]);
    expect(parseSigningSei(bad)).toMatchObject({ kind: 'malformed', layer: 'onvif' });
    const more = buildSeiNal([userDataUnregistered(ONVIF_UUID, Uint8Array.of(0x01))]);
    expect(parseSigningSei(more)).toMatchObject({ kind: 'malformed' });
    const ok = buildSeiNal([userDataUnregistered(ONVIF_UUID, Uint8Array.of(0x00))]);
    expect(parseSigningSei(ok)).toMatchObject({ kind: 'onvif', reserved: 0, tags: [] });
  });
});

describe("keyframe's extension SEI", () => {
  it('unit SEI round-trips, is escaped, and is signed over its document', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          flags: fc.constantFrom(0, 2),
          counter: fc.integer({ min: 0, max: 0xffffffff }),
          sessionTag: bytes(8),
          start: fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }),
          duration: fc.bigInt({ min: 0n, max: MAX_UNIT_TICKS }),
          firstFrame: fc.integer({ min: 0, max: 0xffffffff }),
          psDigest: bytes(8),
          unitDigest: bytes(32),
          frames: fc.integer({ min: 0, max: 60 }),
        }),
        fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
        async ({ duration, frames, ...u }, endReason) => {
          const frameHashes = Array.from({ length: frames }, (_, i) => createHash('sha256').update(String(i)).digest().subarray(0, 8));
          const unit = { ...u, end: u.start + duration, frameHashes, ...(endReason !== undefined ? { endReason } : {}) };
          const nal = await buildKeyframeUnitSei(unit, rawSigner, 64);
          expect(escaped(nal)).toBe(true);
          const p = parseSigningSei(nal);
          if (p?.kind !== 'kf-unit') throw new Error(`parsed as ${p?.kind}`);
          expect(p.counter).toBe(u.counter);
          expect(p.end).toBe(u.start + duration);
          expect(p.firstFrame).toBe(u.firstFrame);
          expect(Uint8Array.from(p.unitDigest)).toEqual(u.unitDigest);
          expect(p.frameHashes.map((h) => Uint8Array.from(h))).toEqual(frameHashes.map((h) => Uint8Array.from(h)));
          expect(p.endReason).toBe(endReason);
          expect(cryptoVerify('sha256', p.document, { key: publicKey, dsaEncoding: 'ieee-p1363' }, p.signature)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('session SEI round-trips its canonical manifest; durations beyond u32 are refused', async () => {
    const manifest: SessionManifest = { v: 1, serial: 'SN-1', session: '00112233445566778899aabbccddeeff', start: '2026-01-01T00:00:00.000Z', kid: 'ab'.repeat(32), counterStart: 7 };
    const nal = await buildKeyframeSessionSei(manifest, rawSigner, 64);
    const p = parseSigningSei(nal);
    if (p?.kind !== 'kf-session') throw new Error('not a session SEI');
    expect(p.manifest).toEqual(manifest);
    expect(p.manifestJson).toBe('{"counterStart":7,"kid":"' + 'ab'.repeat(32) + '","serial":"SN-1","session":"00112233445566778899aabbccddeeff","start":"2026-01-01T00:00:00.000Z","v":1}');
    expect(cryptoVerify('sha256', p.document, { key: publicKey, dsaEncoding: 'ieee-p1363' }, p.signature)).toBe(true);
    const u = { flags: 0, counter: 0, sessionTag: new Uint8Array(8), start: 10n ** 17n, end: 10n ** 17n + MAX_UNIT_TICKS + 1n, firstFrame: 0, psDigest: new Uint8Array(8), unitDigest: new Uint8Array(32), frameHashes: [] };
    expect(() => buildKeyframeUnitSei(u, rawSigner, 64)).toThrow(MediaError);
    await expect(buildKeyframeUnitSei({ ...u, end: u.start + MAX_UNIT_TICKS }, rawSigner, 64)).resolves.toBeInstanceOf(Uint8Array);
  });

  it('other SEIs are not signing SEIs; a broken keyframe SEI is malformed', () => {
    const other = buildSeiNal([userDataUnregistered(uuidBytes('dc45e9bd-e6d9-48b7-962c-d820d923eeef'), new Uint8Array([1, 2, 3]))]);
    expect(parseSigningSei(other)).toBeUndefined();
    expect(isSigningSei(other)).toBe(false);
    const broken = buildSeiNal([userDataUnregistered(KEYFRAME_UUID, new Uint8Array([1, 2, 0, 9]))]);
    expect(parseSigningSei(broken)).toMatchObject({ kind: 'malformed', layer: 'keyframe' });
    expect(parseSei(broken)).toHaveLength(1);
  });
});

describe('hashing', () => {
  const h = (d: Uint8Array | string): Buffer => createHash('sha256').update(d).digest();

  it('ONVIF items: the IDR primary slice is the anchor, other slices are H(anchor ‖ H(slice)), trailing zeros ignored', () => {
    const idr = Uint8Array.of(0x65, 0x88, 0x84, 0x21);
    const idr2 = Uint8Array.of(0x65, 0x40, 0x84, 0x21); // first_mb_in_slice ≠ 0
    const p = Uint8Array.of(0x41, 0x9a, 0x02, 0x03, 0x00, 0x00);
    expect([onvifSliceKind(idr), onvifSliceKind(idr2), onvifSliceKind(p), onvifSliceKind(Uint8Array.of(0x67, 0x42))]).toEqual(['anchor', 'slice', 'slice', undefined]);
    expect([isPrimarySlice(idr), isPrimarySlice(idr2)]).toEqual([true, false]);
    expect(trimmed(p).length).toBe(4);
    const l = new OnvifLinker();
    const bin = (b: Uint8Array): string => Buffer.from(b).toString('binary');
    const a = l.item('anchor', bin(h(idr)));
    const s = l.item('slice', bin(h(trimmed(p))));
    expect(a).toBe(bin(h(idr)));
    expect(s).toBe(bin(h(Buffer.concat([h(idr), h(trimmed(p))]))));
    expect(Buffer.from(gopHash([a, s])).equals(h(Buffer.concat([h(idr), h(Buffer.concat([h(idr), h(trimmed(p))]))])))).toBe(true);
  });

  it("keyframe's parameter-set and unit digests", () => {
    const sps = Uint8Array.of(0x67, 0x42, 0x00, 0x1e, 0x8b);
    const ps = [{ type: 7, id: 0, sha256: h(sps) }];
    const d = parameterSetDigest(ps);
    expect(Buffer.from(d).equals(h(Buffer.concat([Buffer.from('keyframe parameter sets'), Buffer.from('00010700', 'hex'), h(sps)])))).toBe(true);
    const f = h('frame');
    expect(Buffer.from(unitDigest(d, [f])).equals(h(Buffer.concat([Buffer.from('keyframe unit'), d, f])))).toBe(true);
    expect(parameterSetId(sps)).toBe(0);
  });

  it('aligns received frames with the signed list', () => {
    const hs = [1, 2, 3, 4, 5].map((i) => h(String(i)));
    const list = hs.map((x) => x.subarray(0, 8));
    const frames = (idx: number[]): { hash: Uint8Array; input: number }[] => idx.map((i, input) => ({ hash: hs[i] ?? h('x'), input }));
    const kinds = (idx: number[]): string[] => align(list, frames(idx)).map((a) => (a.kind === 'frame' ? (a.match ? 'ok' : 'mod') : a.kind));
    expect(kinds([0, 1, 2, 3, 4])).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(kinds([0, 2, 3, 4])).toEqual(['ok', 'missing', 'ok', 'ok', 'ok']);
    expect(kinds([0, 1, 1, 2, 3, 4])).toEqual(['ok', 'ok', 'extra', 'ok', 'ok', 'ok']);
    expect(kinds([0, 9, 2, 3, 4])).toEqual(['ok', 'mod', 'ok', 'ok', 'ok']);
    expect(kinds([0, 1, 2])).toEqual(['ok', 'ok', 'ok', 'missing', 'missing']);
  });
});
