/**
 * Property tests (fast-check) for the ONVIF Export File Format box encoders and their parser
 * (src/media/mp4/oeff.ts): any suep/cstb/seal content survives a build → parse round trip, a seal covers exactly
 * its meta with its own signature zero, and repeated signing (appendSealInstance) leaves what every earlier seal
 * covers unchanged — the property that keeps the first seal valid after a second one is added.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readBoxHeader } from '../../../src/media/mp4/index.js';
import { appendSealInstance, buildCstb, buildExportMeta, buildSuep, parseCstb, parseExportMeta, parseSuep, sealInput, type SealSpec, type SurveillanceExport } from '../../../src/media/mp4/oeff.js';

/** UTF-8 strings without NUL (a null-terminated string cannot hold one). */
const text = fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => s.replace(/\0/g, ''));
const u64 = fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn });

const surveillance: fc.Arbitrary<SurveillanceExport> = fc.record({
  unitName: text,
  unitUrl: text,
  unitMac: text,
  exportTime: fc.integer({ min: 0, max: 2 ** 40 }),
  operator: text,
  sources: fc.array(fc.record({ trackId: fc.integer({ min: 1, max: 0xffff }), name: text, url: text, mac: text, line: text }), { maxLength: 4 }),
});

const sealSpec: fc.Arbitrary<SealSpec> = fc.record(
  {
    certificate: fc.uint8Array({ minLength: 1, maxLength: 300 }),
    algorithm: fc.uint8Array({ minLength: 2, maxLength: 40 }),
    userInformation: text,
    startTimes: fc.array(fc.record({ trackId: fc.integer({ min: 1, max: 0xffff_ffff }), startTime: u64 }), { maxLength: 3 }),
    signatureLength: fc.integer({ min: 1, max: 600 }),
  },
  { requiredKeys: ['certificate', 'signatureLength'] },
);

describe('ONVIF export boxes: properties', () => {
  it('suep round-trips any content', () => {
    fc.assert(
      fc.property(surveillance, (s) => {
        const b = buildSuep(s);
        expect(parseSuep(b, readBoxHeader(b, 0, b.length))).toEqual(s);
      }),
    );
  });

  it('cstb round-trips any entries', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ trackId: fc.integer({ min: 0, max: 0xffff_ffff }), startTime: u64 }), { maxLength: 8 }), (entries) => {
        const b = buildCstb(entries);
        expect(parseCstb(b, readBoxHeader(b, 0, b.length))).toEqual(entries);
      }),
    );
  });

  it('an export meta parses back to its fields; its seal covers it with only the signature zeroed', () => {
    fc.assert(
      fc.property(surveillance, sealSpec, fc.uint8Array({ minLength: 1, maxLength: 600 }), (s, seal, sigSeed) => {
        const { meta, signatureOffset } = buildExportMeta(s, seal);
        const signature = Uint8Array.from({ length: seal.signatureLength }, (_, i) => (sigSeed[i % sigSeed.length] as number) | 1);
        meta.set(signature, signatureOffset);
        const p = parseExportMeta(meta);
        expect(p.problems).toEqual([]);
        expect(p.unsealed).toEqual([]);
        expect(p.surveillance).toEqual(s);
        expect(p.seals).toHaveLength(1);
        const got = p.seals[0]!;
        expect(got.problems).toEqual([]);
        expect(Buffer.from(got.certificate!)).toEqual(Buffer.from(seal.certificate));
        expect(got.algorithm === undefined ? undefined : Buffer.from(got.algorithm)).toEqual(seal.algorithm === undefined ? undefined : Buffer.from(seal.algorithm));
        expect(got.userInformation).toBe(seal.userInformation);
        expect(got.startTimes).toEqual(seal.startTimes);
        expect(got.signature).toEqual({ offset: signatureOffset, length: seal.signatureLength });
        const covered = sealInput(meta, p, 0);
        const expected = Uint8Array.from(meta);
        expected.fill(0, signatureOffset);
        expect(Buffer.from(covered).equals(Buffer.from(expected))).toBe(true);
      }),
    );
  });

  it('repeated signing leaves what every earlier seal covers unchanged', () => {
    fc.assert(
      fc.property(surveillance, fc.array(sealSpec, { minLength: 2, maxLength: 4 }), (s, seals) => {
        let built = buildExportMeta(s, seals[0]!);
        built.meta.fill(0xa5, built.signatureOffset);
        const covers: Buffer[] = [];
        for (const seal of seals.slice(1)) {
          const before = parseExportMeta(built.meta);
          covers.push(Buffer.from(sealInput(built.meta, before, before.seals.length - 1)));
          built = appendSealInstance(built.meta, before, seal);
          built.meta.fill(0x5a, built.signatureOffset);
        }
        const after = parseExportMeta(built.meta);
        expect(after.problems).toEqual([]);
        expect(after.unsealed).toEqual([]);
        expect(after.protectionCount).toBe(1);
        expect(after.seals).toHaveLength(seals.length);
        covers.forEach((c, i) => expect(Buffer.from(sealInput(built.meta, after, i)).equals(c)).toBe(true));
        // the last seal covers the whole meta with its own signature zero
        const last = Uint8Array.from(built.meta);
        last.fill(0, built.signatureOffset);
        expect(Buffer.from(sealInput(built.meta, after, seals.length - 1)).equals(Buffer.from(last))).toBe(true);
      }),
    );
  });
});
