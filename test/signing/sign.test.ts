/**
 * Signing real x264 streams: decoders see the same pictures, units respect the 1 s bound, the counter never
 * repeats across sessions, the signature bytes stay within 400 B/s at 25 fps, parameter sets are sent when they
 * change, ECDSA signatures are raw r‖s, and the `sign` / `verify` commands' exit codes. (Random clips verifying
 * AUTHENTIC: random-clips.test.ts.)
 */
import { generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clip, frameMd5s, type ClipOptions } from '../helpers/media.js';
import { splitAnnexB, writeAnnexB } from '../../src/media/h264/index.js';
import { FLAG_PARTIAL_GOP, OID_ECDSA_SHA256, parseSigningSei, Tag } from '../../src/signing/sei.js';
import { StreamSigner } from '../../src/signing/signer.js';
import { decodeTlvs } from '../../src/signing/tlv.js';
import type { VerificationReport } from '../../src/signing/report.js';
import { makePki, parseSigned, runSigningCli, signWith, verify, writeSigned, type Pki } from './_setup.js';

let pki: Pki;
let dev: string;

beforeAll(async () => {
  pki = await makePki();
  dev = await pki.provision('SN-0001');
});

afterAll(async () => {
  await pki.caStore.close();
  rmSync(pki.work, { recursive: true, force: true });
});

function seis(data: Uint8Array): NonNullable<ReturnType<typeof parseSigningSei>>[] {
  return splitAnnexB(data).flatMap((n) => {
    const p = parseSigningSei(n);
    return p === undefined ? [] : [p];
  });
}

function authentic(r: VerificationReport, frames: number): void {
  expect(r.verdict).toBe('AUTHENTIC');
  expect(r.frames).toBe(frames);
  expect(r.sessions).toHaveLength(1);
  expect(r.sessions[0]?.ranges).toMatchObject([{ status: 'authentic', firstFrame: 0, lastFrame: frames - 1, inputFirst: 0, inputLast: frames - 1 }]);
}

describe('sign', () => {
  it.each([
    ['multi-slice zerolatency', { width: 320, height: 240, seconds: 3, gop: 30, slices: 4 }],
    ['plain (B-frames, one slice)', { width: 320, height: 240, seconds: 3, gop: 50, zerolatency: false }],
  ] as [string, ClipOptions][])('%s: ffmpeg decodes the signed stream to the same frames as the source', async (_name, options) => {
    const path = await clip(options);
    const source = readFileSync(path);
    const signed = await signWith(dev, source);
    const out = join(pki.work, `signed-${Math.random().toString(36).slice(2)}.h264`);
    writeFileSync(out, signed);
    const [a, b] = await Promise.all([frameMd5s(path), frameMd5s(out)]);
    expect(b).toEqual(a);
    expect(a.length).toBe(90);
    authentic(await verify(signed, { roots: [pki.root] }), 90);
    // the signed stream is the source plus Media Signing SEIs, nothing else changed
    const plain = splitAnnexB(signed).filter((n) => parseSigningSei(n) === undefined);
    expect(Buffer.concat(plain).equals(Buffer.concat(splitAnnexB(source)))).toBe(true);
  });

  it('splits GOPs longer than 1 s into partial-GOP units of at most 30 frames at 30 fps', async () => {
    const signed = await signWith(dev, readFileSync(await clip({ width: 320, height: 240, seconds: 5, gop: 75, slices: 2 })));
    const units = seis(signed).filter((p) => p.kind === 'unit');
    expect(units.map((u) => (u.kind === 'unit' ? u.general.frameCount : 0))).toEqual([30, 30, 15, 30, 30, 15]);
    expect(units.map((u) => (u.kind === 'unit' ? u.general.flags & FLAG_PARTIAL_GOP : -1))).toEqual([1, 1, 1, 1, 1, 1]);
    const last = units[units.length - 1];
    expect(last?.kind === 'unit' && last.endReason).toBe(0);
    const m = parseSigned(signed);
    expect(Buffer.from(writeSigned(m)).equals(Buffer.from(signed))).toBe(true);
    const r = await verify(signed, { roots: [pki.root] });
    authentic(r, 150);
    expect(r.sessions[0]?.units).toBe(6);
  });

  it('the per-camera counter is reserved on disk and never repeats across sessions', async () => {
    const source = readFileSync(await clip({ width: 320, height: 240, seconds: 2, gop: 30 }));
    const first = seis(await signWith(dev, source));
    const second = seis(await signWith(dev, source));
    const counters = (s: typeof first): bigint[] => s.flatMap((p) => (p.kind === 'unit' ? [p.general.counter] : []));
    const c1 = counters(first);
    const c2 = counters(second);
    expect(c1.length).toBe(2);
    expect(c1[1]).toBe((c1[0] ?? 0n) + 1n);
    expect(c2[0]).toBeGreaterThan(c1[c1.length - 1] ?? 0n);
    const m2 = second[0];
    expect(m2?.kind === 'certificate' && BigInt(m2.manifest.counterStart)).toBe(c2[0]);
    const state = JSON.parse(readFileSync(join(dev, 'counter.json'), 'utf8')) as { v: number; next: string };
    expect(state.v).toBe(1);
    expect(BigInt(state.next)).toBeGreaterThan(c2[c2.length - 1] ?? 0n);
    expect(existsSync(join(dev, '.lock'))).toBe(false);
  });

  it('signature bytes: at most 400 B/s at 25 fps (1080p25, 4 Mbit/s, GOP 50, 1 s units)', async () => {
    const seconds = 8;
    const source = readFileSync(await clip({ width: 1920, height: 1080, fps: 25, seconds, gop: 50, bitrate: '4M' }));
    const signed = await signWith(dev, source);
    const nals = splitAnnexB(signed);
    const units = nals.flatMap((n) => {
      const p = parseSigningSei(n);
      return p?.kind === 'unit' ? [{ p, bytes: n.length }] : [];
    });
    const certificate = nals.find((n) => parseSigningSei(n)?.kind === 'certificate');
    expect(units.map((u) => u.p.general.frameCount)).toEqual(Array<number>(seconds).fill(25));
    // the parameter sets go once, in the first unit (they do not change)
    expect(units.map((u) => u.p.parameterSets !== undefined)).toEqual([true, ...Array<boolean>(seconds - 1).fill(false)]);
    // the steady state, with a 4-byte start code per SEI: every unit after the first (whose frames last 1 s each)
    const steady = units.slice(1).reduce((n, u) => n + u.bytes + 4, 0) / (seconds - 1);
    expect(steady).toBeLessThanOrEqual(400);
    // and per TLV: general 93, hash list 3 + 25 × 8, signature 3 + 64 (raw r‖s)
    for (const { p } of units.slice(1)) {
      const tlvs = decodeTlvs(p.signedData.subarray(17)).map((t) => [t.tag, t.value.length]);
      expect(tlvs.slice(0, 2)).toEqual([
        [Tag.GENERAL, 90],
        [Tag.HASH_LIST, 200],
      ]);
      expect(p.signature.length).toBe(64);
    }
    // once per session: the certificate SEI and the parameter sets
    expect((certificate?.length ?? 0) + (units[0]?.bytes ?? 0) - (units[1]?.bytes ?? 0)).toBeLessThan(2500);
    expect((await verify(signed, { roots: [pki.root] })).verdict).toBe('AUTHENTIC');
  });

  it('parameter sets that change mid-session are sent again; a unit after a lost SEI still verifies', async () => {
    // two encodings of different sizes back to back: new SPS and PPS (same ids) at the second one's IDR
    const a = readFileSync(await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25 }));
    const b = readFileSync(await clip({ width: 352, height: 288, fps: 25, seconds: 2, gop: 25, slices: 2 }));
    const signed = await signWith(dev, writeAnnexB([...splitAnnexB(a), ...splitAnnexB(b)]));
    const units = seis(signed).flatMap((p) => (p.kind === 'unit' ? [p] : []));
    expect(units.map((u) => u.parameterSets !== undefined)).toEqual([true, false, true, false]);
    expect(units[0]?.parameterSets?.map((x) => [x.type, x.id])).toEqual([[7, 0], [8, 0]]);
    authentic(await verify(signed, { roots: [pki.root] }), 100);
    // the SEI that carried the new parameter sets is lost: its unit is unverified, the next one (which does not
    // repeat them) is bound by its unit hash, which covers the parameter sets in full
    const m = parseSigned(signed);
    (m.units[2] as { sei: unknown }).sei = undefined;
    const r = await verify(writeSigned(m), { roots: [pki.root] });
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(r.sessions[0]?.ranges.map((g) => [g.status, g.inputFirst, g.inputLast])).toEqual([
      ['authentic', 0, 49],
      ['unverified', 50, 74],
      ['authentic', 75, 99],
    ]);
  });

  it('ECDSA signatures go into the SEIs as raw r‖s (64 bytes), converted from a DER signer', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    let counter = 0n;
    const signer = new StreamSigner({
      sign: (data) => Promise.resolve(cryptoSign('sha256', data, privateKey)),
      signatureOid: OID_ECDSA_SHA256,
      chainPem: '',
      serial: 'SN-DER',
      kid: '00'.repeat(32),
      reserveCounter: () => Promise.resolve(counter++),
    });
    const out: Uint8Array[] = [];
    for (const nal of splitAnnexB(readFileSync(await clip({ width: 320, height: 240, seconds: 2, gop: 30 })))) out.push(...(await signer.push(nal)));
    out.push(...(await signer.finish()));
    const parsed = out.flatMap((n) => {
      const p = parseSigningSei(n);
      return p === undefined || p.kind === 'malformed' ? [] : [p];
    });
    expect(parsed.map((p) => p.kind)).toEqual(['certificate', 'unit', 'unit']);
    for (const p of parsed) {
      expect(p.signature.length).toBe(64);
      expect(cryptoVerify('sha256', p.signedData, { key: publicKey, dsaEncoding: 'ieee-p1363' }, p.signature)).toBe(true);
    }
  });
});

describe('keyframe sign / verify', () => {
  it('signs atomically, verifies AUTHENTIC (exit 0), reports JSON, and fails closed (exit 1 / 2)', async () => {
    const src = await clip({ width: 320, height: 240, seconds: 2, gop: 30, slices: 2 });
    const out = join(pki.work, 'cli-signed.h264');
    const s = await runSigningCli(['sign', src, '--device', dev, '--out', out]);
    expect(s.stderr).toBe('');
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/signed 60 frames in 2 units as SN-0001/);
    const v = await runSigningCli(['verify', out, '--root', pki.rootPath]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^verdict: AUTHENTIC\n/);
    expect(v.stdout).toContain('camera serial: SN-0001');
    expect(v.stdout).toMatch(/authentic +0\.000 s – 2\.000 s +frames 0–59/);
    const j = await runSigningCli(['verify', out, '--root', pki.rootPath, '--json']);
    const report = JSON.parse(j.stdout) as VerificationReport;
    expect(report.verdict).toBe('AUTHENTIC');
    expect(report.sessions[0]?.chain).toHaveLength(3);
    // unsigned input: exit 1
    const u = await runSigningCli(['verify', src, '--root', pki.rootPath]);
    expect(u.code).toBe(1);
    expect(u.stdout).toMatch(/^verdict: UNSIGNED/);
    // a cut end: exit 1, "end missing after"
    const m = parseSigned(readFileSync(out));
    m.units.splice(1);
    const cut = join(pki.work, 'cli-cut.h264');
    writeFileSync(cut, writeSigned(m));
    const c = await runSigningCli(['verify', cut, '--root', pki.rootPath]);
    expect(c.code).toBe(1);
    expect(c.stdout).toContain('end missing after 1.000 s');
    // unusable input: exit 2
    const junk = join(pki.work, 'junk.h264');
    writeFileSync(junk, 'not a video');
    const g = await runSigningCli(['verify', junk, '--root', pki.rootPath]);
    expect(g.code).toBe(2);
    expect(g.stderr).toMatch(/^keyframe: /);
    expect((await runSigningCli(['verify', join(pki.work, 'nope.h264'), '--root', pki.rootPath])).code).toBe(2);
  });
});
