/**
 * The tamper matrix (issue 4) on real x264 streams signed by provisioned cameras: each scenario asserts the
 * verdict and the reported range. Streams are manipulated at the access-unit level (test/signing/_setup.ts).
 * The main clip: 320×240, 30 fps, GOP 30 (one unit per GOP), 6 s, 4 slices per picture (zerolatency).
 */
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clip, ffmpeg } from '../helpers/media.js';
import { buildSeiNal, NalType, nalType, splitAnnexB, userDataUnregistered, uuidBytes, writeAnnexB } from '../../src/media/h264/index.js';
import { issueAllCrls, revoke } from '../../src/pki/ca.js';
import { initDevice, openDevice, selfSignDevice } from '../../src/pki/device.js';
import { parseCrls } from '../../src/pki/pem.js';
import type { X509Crl } from '../../src/pki/x509.js';
import { isSigningSei } from '../../src/signing/sei.js';
import type { RangeStatus, ReportRange, VerificationReport } from '../../src/signing/report.js';
import { join } from 'node:path';
import { firstFrameOf, makePki, parseSigned, signWith, verify, writeSigned, type Pki, type SignedStream } from './_setup.js';

const DAY = 86_400_000;
let pki: Pki;
let source: Uint8Array;
let signedA1: Uint8Array;
let signedA2: Uint8Array;
let signedB: Uint8Array;
let devA: string;

function ranges(r: VerificationReport, status: RangeStatus): ReportRange[] {
  return r.sessions.flatMap((s) => s.ranges.filter((g) => g.status === status));
}

async function check(data: Uint8Array, crls?: X509Crl[]): Promise<VerificationReport> {
  return verify(data, { roots: [pki.root], ...(crls !== undefined ? { crls } : {}) });
}

function model(): SignedStream {
  return parseSigned(signedA1);
}

/** Flips one bit in the middle of the largest slice NAL unit of an access unit, avoiding start-code emulation. */
function flipBit(au: Uint8Array[]): void {
  let best = -1;
  au.forEach((nal, i) => {
    const t = nalType(nal);
    if ((t === NalType.SLICE || t === NalType.IDR) && (best < 0 || nal.length > (au[best] as Uint8Array).length)) best = i;
  });
  const nal = Uint8Array.from(au[best] as Uint8Array);
  let p = nal.length >> 1;
  while ((nal[p] as number) === 0 || (nal[p - 1] as number) === 0 || (nal[p + 1] as number) === 0 || ((nal[p] as number) ^ 0x10) < 4) p++;
  nal[p] = (nal[p] as number) ^ 0x10;
  au[best] = nal;
}

beforeAll(async () => {
  pki = await makePki();
  devA = await pki.provision('SN-A');
  const devB = await pki.provision('SN-B');
  source = readFileSync(await clip({ width: 320, height: 240, fps: 30, seconds: 6, gop: 30, slices: 4 }));
  signedA1 = await signWith(devA, source);
  signedA2 = await signWith(devA, source);
  signedB = await signWith(devB, source);
});

afterAll(async () => {
  await pki.caStore.close();
  rmSync(pki.work, { recursive: true, force: true });
});

describe('tamper matrix', () => {
  it('intact: AUTHENTIC, frames 0–179 authentic, signed end marker', async () => {
    const r = await check(signedA1);
    expect(r.verdict).toBe('AUTHENTIC');
    expect(r.sessions).toHaveLength(1);
    const s = r.sessions[0];
    expect(s?.serial).toBe('SN-A');
    expect(s?.chain[0]).toContain('serialNumber=SN-A');
    expect(s?.ranges).toEqual([{ status: 'authentic', start: 0, end: 6, firstFrame: 0, lastFrame: 179, inputFirst: 0, inputLast: 179 }]);
    // the model round-trips to the same bytes
    expect(Buffer.from(writeSigned(model())).equals(Buffer.from(signedA1))).toBe(true);
  });

  it('bit flipped in an I slice: NOT_AUTHENTIC, that frame only', async () => {
    const m = model();
    flipBit(m.units[2]?.aus[0] as Uint8Array[]);
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(ranges(r, 'tampered')).toMatchObject([{ firstFrame: 60, lastFrame: 60, inputFirst: 60, inputLast: 60, reason: 'frame modified' }]);
    expect(ranges(r, 'authentic').map((g) => [g.firstFrame, g.lastFrame])).toEqual([[0, 59], [61, 179]]);
  });

  it('bit flipped in a P slice: NOT_AUTHENTIC, that frame only', async () => {
    const m = model();
    flipBit(m.units[2]?.aus[15] as Uint8Array[]);
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(ranges(r, 'tampered')).toMatchObject([{ firstFrame: 75, lastFrame: 75, start: 2.5, end: 2.5 + 1 / 30 }]);
  });

  it('a P picture dropped: AUTHENTIC_WITH_GAPS, frame 75 missing', async () => {
    const m = model();
    m.units[2]?.aus.splice(15, 1);
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('AUTHENTIC_WITH_GAPS');
    expect(ranges(r, 'missing')).toMatchObject([{ firstFrame: 75, lastFrame: 75, start: 2.5 }]);
    expect(ranges(r, 'tampered')).toEqual([]);
  });

  it('an I picture dropped: AUTHENTIC_WITH_GAPS, frame 60 missing', async () => {
    const m = model();
    m.units[2]?.aus.splice(0, 1);
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('AUTHENTIC_WITH_GAPS');
    expect(ranges(r, 'missing')).toMatchObject([{ firstFrame: 60, lastFrame: 60, start: 2 }]);
  });

  it('a picture duplicated: NOT_AUTHENTIC, the inserted copy at input frame 76', async () => {
    const m = model();
    const u = m.units[2] as { aus: Uint8Array[][] };
    u.aus.splice(16, 0, u.aus[15] as Uint8Array[]);
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(ranges(r, 'tampered')).toMatchObject([{ inputFirst: 76, inputLast: 76, firstFrame: 76, reason: 'frame inserted (not in the signed unit)' }]);
    expect(ranges(r, 'missing')).toEqual([]);
  });

  it('two pictures swapped: NOT_AUTHENTIC, frame 75 missing at its place and found out of place', async () => {
    const m = model();
    const u = m.units[2] as { aus: Uint8Array[][] };
    [u.aus[15], u.aus[16]] = [u.aus[16] as Uint8Array[], u.aus[15] as Uint8Array[]];
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(ranges(r, 'missing')).toMatchObject([{ firstFrame: 75, lastFrame: 75 }]);
    expect(ranges(r, 'tampered')).toMatchObject([{ inputFirst: 76, inputLast: 76 }]);
  });

  it('a GOP dropped: AUTHENTIC_WITH_GAPS, 2.0–3.0 s (frames 60–89) missing', async () => {
    const m = model();
    m.units.splice(2, 1);
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('AUTHENTIC_WITH_GAPS');
    expect(ranges(r, 'missing')).toEqual([{ status: 'missing', start: 2, end: 3, firstFrame: 60, lastFrame: 89, reason: 'unit 2 missing (counter 2)' }]);
    expect(ranges(r, 'authentic').map((g) => [g.firstFrame, g.lastFrame, g.inputFirst, g.inputLast])).toEqual([[0, 59, 0, 59], [90, 179, 60, 149]]);
  });

  it('two GOPs reordered: NOT_AUTHENTIC, the late GOP tampered (input 90–119), its slot missing', async () => {
    const m = model();
    [m.units[2], m.units[3]] = [m.units[3] as never, m.units[2] as never];
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(ranges(r, 'missing')).toMatchObject([{ firstFrame: 60, lastFrame: 89 }]);
    expect(ranges(r, 'tampered')).toMatchObject([{ inputFirst: 90, inputLast: 119, reason: expect.stringContaining('out of order') as string }]);
  });

  it('a GOP replayed from earlier: NOT_AUTHENTIC, the replay (input 120–149) tampered', async () => {
    const m = model();
    m.units.splice(4, 0, m.units[1] as never);
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(ranges(r, 'tampered')).toMatchObject([{ inputFirst: 120, inputLast: 149, reason: expect.stringContaining('out of order') as string }]);
    expect(ranges(r, 'missing')).toEqual([]);
  });

  it('a GOP spliced from another session of the same camera: NOT_AUTHENTIC, input 60–89 tampered', async () => {
    const m = model();
    m.units[2] = parseSigned(signedA2).units[2] as never;
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(ranges(r, 'tampered')).toMatchObject([{ inputFirst: 60, inputLast: 89 }]);
    expect(ranges(r, 'missing')).toMatchObject([{ firstFrame: 60, lastFrame: 89, reason: 'unit 2 missing (counter 2)' }]);
  });

  it('a GOP spliced from another session, one of its frames dropped: NOT_AUTHENTIC, nothing of it authentic', async () => {
    const m = model();
    const foreign = parseSigned(signedA2).units[2] as { aus: Uint8Array[][]; sei: Uint8Array[] };
    foreign.aus.splice(10, 1);
    m.units[2] = foreign;
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(ranges(r, 'authentic').map((g) => [g.inputFirst, g.inputLast])).toEqual([[0, 59], [89, 178]]);
    // the signed session tag names the other session: the whole spliced unit is tampered, incomplete or not
    const t = ranges(r, 'tampered');
    expect(t.map((g) => [g.inputFirst, g.inputLast])).toEqual([[60, 88]]);
    expect(t[0]?.reason).toContain('another session');
    expect(ranges(r, 'unverified')).toEqual([]);
  });

  it('a GOP spliced from another camera: NOT_AUTHENTIC, input 60–89 tampered (signature)', async () => {
    const m = model();
    m.units[2] = parseSigned(signedB).units[2] as never;
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(ranges(r, 'tampered')).toMatchObject([{ inputFirst: 60, inputLast: 89, reason: expect.stringContaining('signature does not verify') as string }]);
  });

  it('the start cut: UNTRUSTED_SIGNER (no certificate SEI, session start missing)', async () => {
    const m = model();
    m.head = [];
    m.units.splice(0, 2);
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('UNTRUSTED_SIGNER');
    expect(ranges(r, 'unverified')).toMatchObject([{ inputFirst: 0, inputLast: 119, reason: expect.stringContaining('session start missing') as string }]);
  });

  it('the end cut at a GOP boundary: NOT_AUTHENTIC, end missing after 3 s, the unsigned tail reported', async () => {
    const m = model();
    m.units.splice(4);
    (m.units[3] as { sei: unknown }).sei = undefined;
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(r.sessions[0]?.endMissingAfter).toBe(3);
    expect(ranges(r, 'authentic')).toMatchObject([{ firstFrame: 0, lastFrame: 89 }]);
    expect(ranges(r, 'unverified')).toMatchObject([{ inputFirst: 90, inputLast: 119, firstFrame: 90, lastFrame: 119 }]);
  });

  it('the end cut mid-GOP: NOT_AUTHENTIC, end missing after 3 s', async () => {
    const m = model();
    m.units.splice(4);
    const u = m.units[3] as { sei: unknown; aus: unknown[] };
    u.sei = undefined;
    u.aus.splice(12);
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(r.sessions[0]?.endMissingAfter).toBe(3);
    expect(ranges(r, 'unverified')).toMatchObject([{ inputFirst: 90, inputLast: 101 }]);
  });

  it('the last signature cut: NOT_AUTHENTIC; the last unit cut whole: AUTHENTIC_WITH_GAPS, end missing after 5 s', async () => {
    const m = model();
    (m.units[5] as { sei: unknown }).sei = undefined;
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(r.sessions[0]?.endMissingAfter).toBe(5);
    // the last signed unit goes too: drop its frames as well and only the gap at the end remains
    m.units.splice(5);
    const r2 = await check(writeSigned(m));
    expect(r2.verdict).toBe('AUTHENTIC_WITH_GAPS');
    expect(r2.sessions[0]?.endMissingAfter).toBe(5);
    expect(ranges(r2, 'authentic')).toMatchObject([{ firstFrame: 0, lastFrame: 149 }]);
  });

  it('every SEI stripped: UNSIGNED (exit 1, fail closed)', async () => {
    const stripped = writeAnnexB(splitAnnexB(signedA1).filter((n) => !isSigningSei(n)));
    const r = await check(stripped);
    expect(r.verdict).toBe('UNSIGNED');
    expect(ranges(r, 'unverified')).toMatchObject([{ inputFirst: 0, inputLast: 179, reason: 'not signed' }]);
    // bounded memory: with a small limit on frames waiting for a signature, the same report
    const small = await verify(stripped, { roots: [pki.root], maxPendingFrames: 10 });
    expect(small.sessions).toEqual(r.sessions);
  });

  it('a foreign SEI inserted into a picture: NOT_AUTHENTIC, that frame', async () => {
    const m = model();
    const au = m.units[2]?.aus[5] as Uint8Array[];
    au.unshift(buildSeiNal([userDataUnregistered(uuidBytes('dc45e9bd-e6d9-48b7-962c-d820d923eeef'), new TextEncoder().encode('x264 - core 999'))]));
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(ranges(r, 'tampered')).toMatchObject([{ firstFrame: 65, lastFrame: 65, inputFirst: 65, inputLast: 65 }]);
  });

  it('one signing SEI dropped: NOT_AUTHENTIC, that unit (input 60–89) unverified', async () => {
    const m = model();
    (m.units[2] as { sei: unknown }).sei = undefined;
    const r = await check(writeSigned(m));
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(ranges(r, 'unverified')).toMatchObject([{ inputFirst: 60, inputLast: 89, reason: expect.stringContaining('signing SEI of unit 2') as string }]);
    expect(ranges(r, 'authentic').map((g) => [g.inputFirst, g.inputLast])).toEqual([[0, 59], [90, 179]]);
    expect(ranges(r, 'missing')).toEqual([]);
  });

  it('an SPS changed (h264_metadata video_full_range_flag=1): NOT_AUTHENTIC, every unit tampered', async () => {
    const changed = new Uint8Array(await ffmpeg(['-f', 'h264', '-i', '-', '-c', 'copy', '-bsf:v', 'h264_metadata=video_full_range_flag=1', '-f', 'h264', '-'], signedA1));
    const before = splitAnnexB(signedA1).find((n) => nalType(n) === NalType.SPS) as Uint8Array;
    const after = splitAnnexB(changed).find((n) => nalType(n) === NalType.SPS) as Uint8Array;
    expect(Buffer.from(after).equals(Buffer.from(before))).toBe(false);
    // certificate and session SEI, then keyframe's and ONVIF's SEI per unit
    expect(splitAnnexB(changed).filter(isSigningSei)).toHaveLength(14);
    const r = await check(changed);
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(ranges(r, 'authentic')).toEqual([]);
    const t = ranges(r, 'tampered');
    expect(t[0]).toMatchObject({ firstFrame: 0, inputFirst: 0 });
    expect(t.reduce((n, g) => n + (g.inputLast ?? 0) - (g.inputFirst ?? 0) + 1, 0)).toBe(180);
    // the parameter sets are bound by the digest in every unit SEI, not by the frame hashes: every frame decodes
    // with the changed SPS, and every frame is reported so
    expect(t.map((g) => [g.inputFirst, g.inputLast, g.reason])).toEqual([[0, 179, 'parameter sets differ from the signed ones']]);
  });

  it('the whole clip re-encoded: UNSIGNED', async () => {
    const reencoded = new Uint8Array(await ffmpeg(['-f', 'h264', '-i', '-', '-c:v', 'libx264', '-preset', 'ultrafast', '-f', 'h264', '-'], signedA1));
    const r = await check(reencoded);
    expect(r.verdict).toBe('UNSIGNED');
  });

  it("re-signed with an attacker's self-signed key: UNTRUSTED_SIGNER", async () => {
    const dir = join(pki.work, 'attacker');
    await initDevice({ dir, serial: 'SN-A', keystore: pki.spec(join(dir, 'keys')), org: 'Acme Cameras' });
    const dev = await openDevice(dir);
    await selfSignDevice(dev);
    await dev.close();
    const r = await check(await signWith(dir, source));
    expect(r.verdict).toBe('UNTRUSTED_SIGNER');
    expect(r.sessions[0]?.trustReason).toContain('self-signed');
  });

  it('re-signed with a key certified by another root with the same names: UNTRUSTED_SIGNER', async () => {
    const other = await makePki('Acme Cameras', pki.work);
    try {
      expect(other.root.subject).toBe(pki.root.subject);
      const dir = await other.provision('SN-A');
      const r = await check(await signWith(dir, source));
      expect(r.verdict).toBe('UNTRUSTED_SIGNER');
      expect(r.sessions[0]?.serial).toBe('SN-A');
    } finally {
      await other.caStore.close();
    }
  });
});

describe('certificate at the recording time', () => {
  const now = Date.now();
  let old: Pki;
  let oldCheck: (data: Uint8Array, crls?: X509Crl[]) => Promise<VerificationReport>;
  beforeAll(async () => {
    // a CA made 30 days ago, so that devices certified in the past chain to a CA valid then
    old = await makePki('Old Cameras', pki.work, new Date(now - 30 * DAY));
    oldCheck = (data, crls) => verify(data, { roots: [old.root], ...(crls !== undefined ? { crls } : {}) });
  });
  afterAll(async () => {
    await old.caStore.close();
  });

  it('device revoked for keyCompromise: after it NOT_AUTHENTIC with the CRL; before it UNPROVEN_TIME (a stream carries no time-stamp, and the key may have signed it later with a false start)', async () => {
    const dir = await old.provision('SN-R', { now: new Date(now - DAY) });
    const before = await signWith(dir, source, new Date(now - 2 * 3_600_000));
    await revoke(old.ca, { deviceSerial: 'SN-R', reason: 'keyCompromise', time: new Date(now - 3_600_000) });
    const crls = parseCrls(await issueAllCrls(old.ca, old.caStore), 'crl');
    const after = await signWith(dir, source);
    const r = await oldCheck(after, crls);
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(r.sessions[0]?.trustReason).toContain('revoked');
    expect(ranges(r, 'authentic')).toEqual([]);
    const b = await oldCheck(before, crls);
    expect(b.verdict).toBe('UNPROVEN_TIME');
    expect(ranges(b, 'unproven')).toMatchObject([{ inputFirst: 0, inputLast: 179, reason: expect.stringMatching(/revoked at .* \(keyCompromise\).*no RFC 3161 time-stamp proves this unit existed before the revocation/) as string }]);
    expect(b.sessions[0]?.time).toMatchObject({ compromise: { reason: 'keyCompromise' }, revocation: { checked: true, known: true } });
    // without the CRL nobody knows: the verdict depends on the CRL the verifier is given
    expect((await oldCheck(after)).verdict).toBe('AUTHENTIC');
  });

  it('device retired (superseded) later: material from before the revocation stays AUTHENTIC without a time-stamp', async () => {
    const dir = await old.provision('SN-S', { now: new Date(now - DAY) });
    const before = await signWith(dir, source, new Date(now - 2 * 3_600_000));
    await revoke(old.ca, { deviceSerial: 'SN-S', reason: 'superseded', time: new Date(now - 3_600_000) });
    const crls = parseCrls(await issueAllCrls(old.ca, old.caStore), 'crl');
    expect((await oldCheck(before, crls)).verdict).toBe('AUTHENTIC');
    expect((await oldCheck(await signWith(dir, source), crls)).verdict).toBe('NOT_AUTHENTIC');
  });

  it('certificate expired before the recording: NOT_AUTHENTIC; expired after it: AUTHENTIC', async () => {
    const dir = await old.provision('SN-E', { now: new Date(now - 3 * DAY), days: 1 });
    const expired = await oldCheck(await signWith(dir, source));
    expect(expired.verdict).toBe('NOT_AUTHENTIC');
    expect(expired.sessions[0]?.trustReason).toMatch(/expired|not valid/i);
    expect(ranges(expired, 'unverified')).toMatchObject([{ inputFirst: 0, inputLast: 179 }]);
    const inTime = await oldCheck(await signWith(dir, source, new Date(now - 2.5 * DAY)));
    expect(inTime.verdict).toBe('AUTHENTIC');
  });
});

describe('models', () => {
  it('first frame bookkeeping', () => {
    expect(firstFrameOf(model(), 2)).toBe(60);
  });
});
