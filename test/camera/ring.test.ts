/**
 * The ring buffer ("SD card") under its byte cap, on real recordings: with nothing uploaded, the oldest fragments
 * are overwritten and the camera signs a lost record for exactly them, which verify reports as lost on the
 * camera (buffer full) rather than missing; data the NVR acknowledged goes first, and then nothing is lost; a loss
 * in an older session is signed in the current session's chain and named when the older session is verified.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devicePipelineOptions } from '../../src/camera/device.js';
import { FileSource } from '../../src/camera/file-source.js';
import { StaticKeyProvider } from '../../src/camera/keys.js';
import { runPipeline, type SessionSummary } from '../../src/camera/pipeline.js';
import { Ring } from '../../src/camera/ring.js';
import { openDevice, type Device } from '../../src/pki/device.js';
import { verifyEvidence } from '../../src/recording/evidence.js';
import { LOST_FILE, RECORDS_FILE, segmentSeq } from '../../src/recording/layout.js';
import type { EvidenceReport } from '../../src/recording/report.js';
import { clip } from '../helpers/media.js';
import { makePki, type Pki } from '../signing/_setup.js';

// encrypted, as a camera records: verify then checks the fragment layer, without any key
const keys = new StaticKeyProvider({ kid: randomBytes(16), key: randomBytes(16) });
const START = new Date(Math.floor(Date.now() / 1000) * 1000 - 120_000);

let pki: Pki;
let device: Device;
let source: string;
/** Bytes of a 4-fragment session (init, chain and records included). */
let sessionBytes: number;

beforeAll(async () => {
  pki = await makePki();
  device = await openDevice(await pki.provision('SN-RING-0001'));
  // ~50 kB per 1 s GOP, so that a few hundred kB hold a few fragments
  source = await clip({ width: 320, height: 240, fps: 25, seconds: 4, gop: 25, bitrate: '400k' });
  const ring = await Ring.open(join(pki.work, 'probe'), 64 << 20);
  await record(ring, 4);
  sessionBytes = ring.bytesUsed();
  await ring.close();
}, 240_000);

afterAll(async () => {
  await device.close();
  await pki.caStore.close();
  rmSync(pki.work, { recursive: true, force: true });
});

async function record(ring: Ring, seconds: number, startOffsetS = 0): Promise<SessionSummary> {
  const src = new FileSource({ path: source, fps: 25, frames: seconds * 25, realTime: false, start: new Date(START.getTime() + startOffsetS * 1000) });
  const [s] = await runPipeline(src.events(new AbortController().signal), ring, devicePipelineOptions(device, { keys }));
  return s as SessionSummary;
}

const sessionDir = (ring: string, session: string): string => join(ring, readdirSync(ring).find((n) => n.endsWith(session)) as string);
const lostRecords = (dir: string, file = RECORDS_FILE): { of: string; from: number; to: number; start: number; end: number }[] =>
  readFileSync(join(dir, file), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { kind?: string; of: string; from: number; to: number; start: number; end: number })
    .filter((r) => r.kind === 'lost');
const storedSeqs = (dir: string): number[] =>
  readdirSync(dir)
    .map(segmentSeq)
    .filter((x): x is number => x !== undefined)
    .sort((a, b) => a - b);
const seqsOf = (ranges: readonly { from: number; to: number }[]): number[] => ranges.flatMap((r) => Array.from({ length: r.to - r.from }, (_, i) => r.from + i));
const verify = (dir: string): Promise<EvidenceReport> => verifyEvidence(dir, { roots: [pki.root] });

describe('ring buffer', () => {
  it('cap reached with nothing uploaded: the oldest fragments go, a signed lost record names exactly them, verify reports them lost on the camera', async () => {
    const dir = join(pki.work, 'ring-full');
    const ring = await Ring.open(dir, Math.floor(sessionBytes * 0.75));
    const s = await record(ring, 8);
    expect(ring.bytesUsed()).toBeLessThanOrEqual(ring.cap);
    await ring.close();
    const sdir = sessionDir(dir, s.session);
    const stored = storedSeqs(sdir);
    const lost = lostRecords(sdir);
    expect(lost.length).toBeGreaterThan(0);
    expect(lost.every((l) => l.of === s.session)).toBe(true);
    const lostSeqs = seqsOf(lost);
    // the lost ones are the oldest, and they are exactly the ones not stored
    expect([...lostSeqs, ...stored].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(lostSeqs).toEqual(Array.from({ length: lostSeqs.length }, (_, i) => i));
    expect(lost[0]?.start).toBe(0);
    const report = await verify(sdir);
    expect(report.verdict).toBe('AUTHENTIC_WITH_GAPS');
    const f = report.fragmentLayer;
    expect(f?.problems.map((p) => [p.kind, p.seq])).toEqual(lostSeqs.map((q) => ['lost', q]));
    expect(f?.problems[0]?.detail).toMatch(/lost on the camera \(buffer full\)/);
    expect(f?.authentic).toBe(stored.length);
    expect(f?.endRecord).toBe(true);
    // a lost record that claims a different range no longer verifies: tampered, NOT_AUTHENTIC
    const text = readFileSync(join(sdir, RECORDS_FILE), 'utf8').replace(/"from":0,/, '"from":1,');
    const { cpSync, writeFileSync } = await import('node:fs');
    const copy = join(pki.work, 'ring-full-tampered');
    cpSync(sdir, copy, { recursive: true });
    writeFileSync(join(copy, RECORDS_FILE), text);
    const bad = await verify(copy);
    expect(bad.verdict).toBe('NOT_AUTHENTIC');
    expect(bad.fragmentLayer?.problems.some((p) => p.kind === 'missing' && p.seq === 0)).toBe(true);
  });

  it('uploaded data is deleted first: a session the NVR acknowledged makes room and nothing is lost', async () => {
    const dir = join(pki.work, 'ring-acked');
    let ring = await Ring.open(dir, 64 << 20);
    const first = await record(ring, 4);
    for (const o of ring.pending(first.session)) await ring.markUploaded(o);
    expect(ring.pending(first.session)).toEqual([]);
    await ring.close();
    // reopened (as after a restart) with room for about one and a half sessions
    ring = await Ring.open(dir, Math.floor(sessionBytes * 1.5));
    expect(ring.pending(first.session)).toEqual([]);
    const second = await record(ring, 4, 10);
    await ring.close();
    const sdir = sessionDir(dir, second.session);
    expect(lostRecords(sdir)).toEqual([]);
    expect(storedSeqs(sdir)).toEqual([0, 1, 2, 3]);
    expect(readdirSync(dir).some((n) => n.endsWith(first.session))).toBe(false);
    expect((await verify(sdir)).verdict).toBe('AUTHENTIC');
  });

  it('a loss in an older, unacknowledged session: signed in the current chain, copied beside the older session, reported there', async () => {
    const dir = join(pki.work, 'ring-older');
    let ring = await Ring.open(dir, 64 << 20);
    const first = await record(ring, 4);
    // only part of the first session was acknowledged (its chain, init, session record and fragment 0)
    const acked = ring.pending(first.session).slice(0, 4);
    expect(acked.map((o) => o.kind)).toEqual(['chain', 'init', 'rec', 'seg']);
    for (const o of acked) await ring.markUploaded(o);
    await ring.close();
    ring = await Ring.open(dir, Math.floor(sessionBytes * 1.5));
    const second = await record(ring, 4, 10);
    await ring.close();
    const fdir = sessionDir(dir, first.session);
    const lost = lostRecords(sessionDir(dir, second.session));
    expect(lost.length).toBeGreaterThan(0);
    expect(lost.every((l) => l.of === first.session)).toBe(true);
    // fragment 0 was acknowledged: it went first and is not reported lost
    expect(existsSync(join(fdir, '000000.m4s'))).toBe(false);
    const lostSeqs = seqsOf(lost);
    expect(lostSeqs[0]).toBe(1);
    expect(lostRecords(fdir, LOST_FILE)).toEqual(lost);
    const older = await verify(fdir);
    expect(older.verdict).toBe('AUTHENTIC_WITH_GAPS');
    expect(older.fragmentLayer?.problems.map((p) => [p.kind, p.seq])).toEqual([
      ['missing', 0],
      ...lostSeqs.map((q) => ['lost', q]),
    ]);
    // the current session lost nothing of its own
    expect((await verify(sessionDir(dir, second.session))).verdict).toBe('AUTHENTIC');
    expect(statSync(fdir).isDirectory()).toBe(true);
  });
});
