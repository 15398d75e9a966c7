/**
 * Signing real x264 streams: decoders see the same pictures, units respect the 1 s bound, the counter never
 * repeats across sessions, the signature bytes per mode, parameter sets bound by their digest, ECDSA signatures as
 * each layer wants them (DER in ONVIF's SEIs, raw r‖s in keyframe's), and the `sign` / `verify` commands' exit codes.
 * (Random clips verifying AUTHENTIC: random-clips.test.ts.)
 */
import { generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clip, frameMd5s, type ClipOptions } from '../helpers/media.js';
import { splitAnnexB, writeAnnexB } from '../../src/media/h264/index.js';
import { OID_ECDSA_SHA256, OnvifTag, parseSigningSei } from '../../src/signing/sei.js';
import { StreamSigner } from '../../src/signing/signer.js';
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

  it('splits GOPs longer than 1 s into partial-GOP units of at most 30 frames at 30 fps, ONVIF GOPs at 2 s', async () => {
    const signed = await signWith(dev, readFileSync(await clip({ width: 320, height: 240, seconds: 5, gop: 75, slices: 2 })));
    const all = seis(signed);
    const units = all.flatMap((p) => (p.kind === 'kf-unit' ? [p] : []));
    expect(units.map((u) => u.frameHashes.length)).toEqual([30, 30, 15, 30, 30, 15]);
    expect(units.map((u) => u.firstFrame)).toEqual([0, 30, 60, 75, 105, 135]);
    expect(units[units.length - 1]?.endReason).toBe(0);
    // ONVIF (partial) GOPs: split at a keyframe-unit boundary once they hold 2 s; 2 slices per frame in the hash list
    const gops = all.flatMap((p) => (p.kind === 'onvif' && !p.certificate ? [p] : []));
    expect(gops.map((g) => [g.general?.nalCount, g.general?.partial])).toEqual([
      [120, true],
      [30, false],
      [120, true],
      [30, false],
    ]);
    // the partial-GOP counter: +1 per ONVIF SEI, from the camera's persisted counter
    const first = gops[0]?.general?.counter ?? 0;
    expect(gops.map((g) => g.general?.counter)).toEqual([first, first + 1, first + 2, first + 3]);
    const m = parseSigned(signed);
    expect(Buffer.from(writeSigned(m)).equals(Buffer.from(signed))).toBe(true);
    const r = await verify(signed, { roots: [pki.root] });
    authentic(r, 150);
    expect(r.sessions[0]?.units).toBe(6);
    expect(r.sessions[0]?.onvif).toMatchObject({ gops: 4, valid: 4, invalid: 0 });
  });

  it('the per-camera counter is reserved on disk and never repeats across sessions', async () => {
    const source = readFileSync(await clip({ width: 320, height: 240, seconds: 2, gop: 30 }));
    const first = seis(await signWith(dev, source));
    const second = seis(await signWith(dev, source));
    const counters = (s: typeof first): bigint[] => s.flatMap((p) => (p.kind === 'kf-unit' ? [BigInt(p.counter)] : []));
    const c1 = counters(first);
    const c2 = counters(second);
    expect(c1.length).toBe(2);
    expect(c1[1]).toBe((c1[0] ?? 0n) + 1n);
    expect(c2[0]).toBeGreaterThan(c1[c1.length - 1] ?? 0n);
    const m2 = second.find((p) => p.kind === 'kf-session');
    expect(m2?.kind === 'kf-session' && BigInt(m2.manifest.counterStart)).toBe(c2[0]);
    const state = JSON.parse(readFileSync(join(dev, 'counter.json'), 'utf8')) as { v: number; next: string };
    expect(state.v).toBe(1);
    expect(BigInt(state.next)).toBeGreaterThan(c2[c2.length - 1] ?? 0n);
    expect(existsSync(join(dev, '.lock'))).toBe(false);
  });

  it('signature bytes at 1080p25, 4 Mbit/s, GOP 50: each SEI as its layout says, per ONVIF mode', async () => {
    const seconds = 8;
    const source = readFileSync(await clip({ width: 1920, height: 1080, fps: 25, seconds, gop: 50, bitrate: '4M' }));
    const perSecond = async (onvifMode: 'hash-list' | 'low-bitrate'): Promise<{ kf: number; onvif: number }> => {
      const signed = await signWith(dev, source, undefined, { onvifMode });
      expect((await verify(signed, { roots: [pki.root] })).verdict).toBe('AUTHENTIC');
      const nals = splitAnnexB(signed);
      let kf = 0;
      let onvif = 0;
      for (const n of nals) {
        const p = parseSigningSei(n);
        // a 4-byte start code per SEI; escaping adds a few bytes at most
        if (p?.kind === 'kf-unit') {
          expect(p.frameHashes).toHaveLength(25);
          // header, type, size, UUID, 73 fixed bytes, 25 × 8, end reason on the last, 64-byte signature, stop bit
          const layout = 1 + 1 + 2 + 16 + 73 + 25 * 8 + (p.endReason !== undefined ? 1 : 0) + 64 + 1;
          expect(n.length).toBeGreaterThanOrEqual(layout);
          expect(n.length).toBeLessThanOrEqual(layout + 8);
          kf += n.length + 4;
        }
        if (p?.kind === 'onvif' && !p.certificate) {
          expect(p.tags).toEqual(onvifMode === 'hash-list' ? [OnvifTag.GENERAL, OnvifTag.HASH_LIST, OnvifTag.SIGNATURE] : [OnvifTag.GENERAL, OnvifTag.SIGNATURE]);
          // header, type, size, UUID, reserved, general 3 + 91, hash list 3 + 1 + 32 per slice, signature 3 + 75, stop bit
          const items = p.general?.nalCount ?? 0;
          expect(items % 50).toBe(0);
          const payload = 16 + 1 + 94 + (onvifMode === 'hash-list' ? 4 + items * 32 : 0) + 78;
          const layout = 1 + 1 + Math.floor(payload / 255) + 1 + payload + 1;
          expect(n.length).toBeGreaterThanOrEqual(layout);
          expect(n.length).toBeLessThanOrEqual(layout + 24);
          onvif += n.length + 4;
        }
      }
      return { kf: kf / seconds, onvif: onvif / seconds };
    };
    const low = await perSecond('low-bitrate');
    const list = await perSecond('hash-list');
    // keyframe's per-frame localisation: under 400 B/s whatever the ONVIF mode; ONVIF's hash list: 32 B per slice
    expect(low.kf).toBeLessThan(400);
    expect(list.kf).toBe(low.kf);
    expect(list.onvif - low.onvif).toBeGreaterThan(25 * 32);
  });

  it('parameter sets that change mid-session change the signed digest; a unit after a lost SEI still verifies', async () => {
    // two encodings of different sizes back to back: new SPS and PPS (same ids) at the second one's IDR
    const a = readFileSync(await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25 }));
    const b = readFileSync(await clip({ width: 352, height: 288, fps: 25, seconds: 2, gop: 25, slices: 2 }));
    const signed = await signWith(dev, writeAnnexB([...splitAnnexB(a), ...splitAnnexB(b)]));
    const units = seis(signed).flatMap((p) => (p.kind === 'kf-unit' ? [p] : []));
    const d = units.map((u) => Buffer.from(u.psDigest).toString('hex'));
    expect(d[1]).toBe(d[0]);
    expect(d[3]).toBe(d[2]);
    expect(d[2]).not.toBe(d[0]);
    authentic(await verify(signed, { roots: [pki.root] }), 100);
    // the SEIs of the unit with the new parameter sets are lost: its unit is unverified, the next one carries the
    // same digest and verifies
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

  it("ECDSA signatures: DER in ONVIF's SEIs, raw r‖s (64 bytes) in keyframe's, from a DER signer", async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    let counter = 0n;
    const signer = new StreamSigner({
      sign: (data) => Promise.resolve(cryptoSign('sha256', data, privateKey)),
      signatureOid: OID_ECDSA_SHA256,
      chainPem: '-----BEGIN CERTIFICATE-----\n',
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
    expect(parsed.map((p) => (p.kind === 'onvif' ? (p.certificate ? 'certificate' : 'onvif') : p.kind))).toEqual(['certificate', 'kf-session', 'kf-unit', 'onvif', 'kf-unit', 'onvif']);
    for (const p of parsed) {
      if (p.kind === 'onvif') {
        expect(cryptoVerify('sha256', p.document ?? new Uint8Array(), publicKey, p.signature ?? new Uint8Array())).toBe(true);
        expect(p.signature?.[0]).toBe(0x30);
      } else {
        expect(p.signature.length).toBe(64);
        expect(cryptoVerify('sha256', p.document, { key: publicKey, dsaEncoding: 'ieee-p1363' }, p.signature)).toBe(true);
      }
    }
  });
});

describe('keyframe sign / verify', () => {
  it('--max-unit 2 with --onvif-mode low-bitrate: one keyframe unit SEI per 2 s GOP instead of two, a dropped P picture still named to the frame; bad values refused', async () => {
    const src = await clip({ width: 320, height: 240, fps: 25, seconds: 4, gop: 50, slices: 1 });
    const one = join(pki.work, 'cli-unit-1.h264');
    const two = join(pki.work, 'cli-unit-2.h264');
    const a = await runSigningCli(['sign', src, '--device', dev, '--out', one, '--onvif-mode', 'low-bitrate']);
    const b = await runSigningCli(['sign', src, '--device', dev, '--out', two, '--onvif-mode', 'low-bitrate', '--max-unit', '2']);
    expect([a.code, b.code, a.stderr, b.stderr]).toEqual([0, 0, '', '']);
    expect(a.stdout).toMatch(/signed 100 frames in 4 units/);
    expect(b.stdout).toMatch(/signed 100 frames in 2 units/);
    expect(readFileSync(two).length).toBeLessThan(readFileSync(one).length);
    const m = parseSigned(readFileSync(two));
    // drop frame 70 (a P picture of the second GOP, which has no SEI of its own): reported missing, exactly that frame
    let k = 0;
    for (const u of m.units) {
      const at = u.aus.findIndex(() => k++ === 70);
      if (at >= 0) {
        u.aus.splice(at, 1);
        break;
      }
    }
    const dropped = join(pki.work, 'cli-unit-2-dropped.h264');
    writeFileSync(dropped, writeSigned(m));
    const r = JSON.parse((await runSigningCli(['verify', dropped, '--root', pki.rootPath, '--json'])).stdout) as VerificationReport;
    expect(r.verdict).toBe('AUTHENTIC_WITH_GAPS');
    expect(r.sessions[0]?.ranges.filter((x) => x.status === 'missing').map((x) => [x.firstFrame, x.lastFrame])).toEqual([[70, 70]]);
    for (const bad of ['0', '11', 'two']) {
      const x = await runSigningCli(['sign', src, '--device', dev, '--out', join(pki.work, 'never.h264'), '--max-unit', bad]);
      expect(x.code).toBe(2);
      expect(x.stderr).toContain('--max-unit');
      expect(existsSync(join(pki.work, 'never.h264'))).toBe(false);
    }
  });

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
