/**
 * The camera pipeline on real x264 video into the real ring buffer: a looped clip becomes fragments and records
 * that the offline verifier finds AUTHENTIC; a key rotation mid-session puts the new KID on the fragments after it
 * (in their records too), the session decrypts with both keys to the source frames (keyframe decrypt; ffmpeg itself,
 * one epoch's part per key, for cbcs and cenc); CMAF chunks reach the sink before their GOP closes; a source loss
 * ends the session with an end record and the next frames open a new session.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devicePipelineOptions } from '../../src/camera/device.js';
import { FileSource } from '../../src/camera/file-source.js';
import type { EpochKey, KeyProvider } from '../../src/camera/keys.js';
import { runPipeline, END_SOURCE_LOST, type ObjectSink, type SessionSummary } from '../../src/camera/pipeline.js';
import { Ring } from '../../src/camera/ring.js';
import { SOURCE_TIMESCALE, type SourceEvent } from '../../src/camera/source.js';
import { openDevice, type Device } from '../../src/pki/device.js';
import { AccessUnitAssembler, splitLengthPrefixed, type AccessUnit } from '../../src/media/h264/index.js';
import { openInput } from '../../src/packager/input.js';
import { verifyEvidence } from '../../src/recording/evidence.js';
import { INIT_FILE, RECORDS_FILE } from '../../src/recording/layout.js';
import type { EvidenceReport } from '../../src/recording/report.js';
import { runCli } from '../helpers/cli.js';
import { clip, decodedFrameMd5s, frameMd5s } from '../helpers/media.js';
import { makePki, type Pki } from '../signing/_setup.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const START = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);

/** Two epochs' keys: the second from fragment `at` on (as GroupKeyProvider switches after a rekey). */
class Rotation implements KeyProvider {
  readonly keys: EpochKey[] = [1, 2].map((epoch) => ({ kid: randomBytes(16), key: randomBytes(16), epoch }));
  fragments = 0;
  constructor(private readonly at: number) {}
  current(): EpochKey {
    return this.keys[this.fragments >= this.at ? 1 : 0] as EpochKey;
  }
  onChange(): () => void {
    return () => undefined;
  }
}

let pki: Pki;
let cam: string;
let device: Device;
let source: string;
let sourceFrames: string[];

beforeAll(async () => {
  pki = await makePki();
  cam = await pki.provision('SN-PIPE-0001');
  device = await openDevice(cam);
  source = await clip({ width: 320, height: 240, fps: 25, seconds: 4, gop: 25 });
  sourceFrames = await frameMd5s(source);
}, 240_000);

afterAll(async () => {
  await device.close();
  await pki.caStore.close();
  rmSync(pki.work, { recursive: true, force: true });
});

const verify = (dir: string): Promise<EvidenceReport> => verifyEvidence(dir, { roots: [pki.root] });
const sessionDir = (ring: string, session: string): string => join(ring, readdirSync(ring).find((n) => n.endsWith(session)) as string);
const records = (dir: string): Record<string, unknown>[] =>
  readFileSync(join(dir, RECORDS_FILE), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** init + the given fragments as one file. */
function joined(dir: string, seqs: readonly number[]): Buffer {
  return Buffer.concat([readFileSync(join(dir, INIT_FILE)), ...seqs.map((s) => readFileSync(join(dir, `${s.toString().padStart(6, '0')}.m4s`)))]);
}

describe('camera pipeline → ring buffer', () => {
  let ringDir: string;
  let summary: SessionSummary;
  let rotation: Rotation;

  beforeAll(async () => {
    ringDir = join(pki.work, 'ring-rot');
    const ring = await Ring.open(ringDir, 64 << 20);
    rotation = new Rotation(3);
    const src = new FileSource({ path: source, fps: 25, frames: 150, realTime: false, start: START });
    const sessions = await runPipeline(src.events(new AbortController().signal), ring, devicePipelineOptions(device, { keys: rotation, scheme: 'cbcs', onFragment: () => void rotation.fragments++ }));
    await ring.close();
    expect(sessions).toHaveLength(1);
    summary = sessions[0] as SessionSummary;
  });

  it('a looped clip: one fragment per GOP with its record, AUTHENTIC offline without any key', async () => {
    expect(summary).toMatchObject({ scheme: 'cbcs', fragments: 6, seconds: 6, frames: 150, endReason: 0 });
    const dir = sessionDir(ringDir, summary.session);
    const report = await verify(dir);
    expect(report.verdict).toBe('AUTHENTIC');
    expect(report.fragmentLayer).toMatchObject({ verdict: 'AUTHENTIC', serial: 'SN-PIPE-0001', fragments: 6, records: 6, authentic: 6, coveredSeconds: 6, endRecord: true, problems: [] });
    // a changed byte in one fragment is caught without the key
    const copy = join(pki.work, 'ring-rot-tampered');
    cpSync(dir, copy, { recursive: true });
    const f = join(copy, '000004.m4s');
    const b = readFileSync(f);
    b[b.length - 10] = (b[b.length - 10] as number) ^ 1;
    writeFileSync(f, b);
    const bad = await verify(copy);
    expect(bad.verdict).toBe('NOT_AUTHENTIC');
    expect(bad.fragmentLayer?.problems.map((p) => [p.kind, p.seq])).toEqual([['tampered', 4]]);
  });

  it('a key rotation mid-session: the fragments after it carry the new KID, and each key decrypts its part to the source frames', async () => {
    const [a, b] = rotation.keys as [EpochKey, EpochKey];
    expect(summary.kids).toEqual([hex(a.kid), hex(b.kid)]);
    const dir = sessionDir(ringDir, summary.session);
    const recs = records(dir);
    expect(recs[0]).toMatchObject({ kind: 'session', kid: hex(a.kid) });
    expect(recs.slice(1, 7).map((r) => r['kid'])).toEqual([a, a, a, b, b, b].map((k) => hex(k.kid)));
    const looped = [...sourceFrames, ...sourceFrames.slice(0, 50)];
    // cbcs: keyframe decrypt with a key per KID, then ffmpeg decodes the source pictures
    const clearOut = join(pki.work, 'rot-clear.mp4');
    const r = await runCli(['decrypt', dir, '--out', clearOut, ...[a, b].flatMap((k) => ['--key', `${hex(k.kid)}:${hex(k.key)}`])]);
    expect(r.code, r.stderr).toBe(0);
    expect(await frameMd5s(clearOut)).toEqual(looped);
    // ffmpeg itself decrypts cbcs across the rotation too, each epoch's part with its key (one constant IV per track:
    // ffmpeg 5.1 ignores the seig entry's IV), and the other key gives garbage
    expect(await decodedFrameMd5s(hex(a.key), joined(dir, [0, 1, 2]))).toEqual(looped.slice(0, 75));
    expect(await decodedFrameMd5s(hex(b.key), joined(dir, [3, 4, 5]))).toEqual(looped.slice(75));
    expect((await decodedFrameMd5s(hex(a.key), joined(dir, [3, 4, 5]), true)).filter((m) => sourceFrames.includes(m))).toEqual([]);
    // cenc (per-sample IVs): ffmpeg decrypts each part with its own key to the source frames, the other key gives garbage
    const cencRing = await Ring.open(join(pki.work, 'ring-rot-cenc'), 64 << 20);
    const rot = new Rotation(3);
    const src = new FileSource({ path: source, fps: 25, frames: 150, realTime: false, start: START });
    const [s] = await runPipeline(src.events(new AbortController().signal), cencRing, devicePipelineOptions(device, { keys: rot, scheme: 'cenc', onFragment: () => void rot.fragments++ }));
    await cencRing.close();
    const cdir = sessionDir(join(pki.work, 'ring-rot-cenc'), (s as SessionSummary).session);
    const [ca, cb] = rot.keys as [EpochKey, EpochKey];
    expect(records(cdir).slice(1, 7).map((x) => x['kid'])).toEqual([ca, ca, ca, cb, cb, cb].map((k) => hex(k.kid)));
    expect(await decodedFrameMd5s(hex(ca.key), joined(cdir, [0, 1, 2]))).toEqual(looped.slice(0, 75));
    expect(await decodedFrameMd5s(hex(cb.key), joined(cdir, [3, 4, 5]))).toEqual(looped.slice(75));
    const wrong = await decodedFrameMd5s(hex(ca.key), joined(cdir, [3, 4, 5]), true);
    expect(wrong.filter((m) => sourceFrames.includes(m))).toEqual([]);
    // and the whole session verifies with both keys, SEI layer included
    const both = await verifyEvidence(dir, { roots: [pki.root], keys: { byKid: new Map([a, b].map((k) => [hex(k.kid), k.key])) } });
    expect(both.verdict).toBe('AUTHENTIC');
    expect(both.videoLayer).toBe('checked');
  });

  it('CMAF chunks (chunkMs): each chunk reaches the sink before its GOP closes; the segment is its chunks, several moofs; verified and decrypted as before', async () => {
    const dir0 = join(pki.work, 'ring-chunks');
    const ring = await Ring.open(dir0, 64 << 20);
    const calls: string[] = [];
    const chunkBytes = new Map<number, Buffer[]>();
    const sink: ObjectSink = {
      beginSession: (x) => ring.beginSession(x),
      init: (a, b) => ring.init(a, b),
      chunk: (_session, seq, index, data) => {
        calls.push(`chunk ${seq}.${index}`);
        const list = chunkBytes.get(seq) ?? [];
        // the sink may keep the buffers: they are not reused
        list.push(Buffer.concat(data));
        chunkBytes.set(seq, list);
      },
      segment: async (session, seq, chunks, meta) => {
        calls.push(`segment ${seq}`);
        expect(Buffer.concat(chunks)).toEqual(Buffer.concat(chunkBytes.get(seq) ?? []));
        return ring.segment(session, seq, chunks, meta);
      },
      record: (a, b, c, d) => ring.record(a, b, c, d),
      endSession: (a, b) => ring.endSession(a, b),
    };
    for (const scheme of ['cbcs', 'cenc'] as const) {
      calls.length = 0;
      chunkBytes.clear();
      const rot = new Rotation(3);
      const src = new FileSource({ path: source, fps: 25, frames: 150, realTime: false, start: START });
      const [s] = await runPipeline(src.events(new AbortController().signal), sink, devicePipelineOptions(device, { keys: rot, scheme, chunkMs: 200, onFragment: () => void rot.fragments++ }));
      expect(s).toMatchObject({ fragments: 6, frames: 150 });
      // 25 pictures a GOP, 5 a chunk: five chunks per segment, every one handed over before its segment is complete
      for (let seq = 0; seq < 6; seq++) {
        const at = calls.indexOf(`segment ${seq}`);
        expect(calls.slice(0, at).filter((c) => c.startsWith(`chunk ${seq}.`))).toEqual([0, 1, 2, 3, 4].map((k) => `chunk ${seq}.${k}`));
      }
      const dir = sessionDir(dir0, (s as SessionSummary).session);
      const seg = readFileSync(join(dir, '000004.m4s'));
      expect(seg.toString('latin1').split('moof').length - 1).toBe(5);
      const [a, b] = rot.keys as [EpochKey, EpochKey];
      const report = await verifyEvidence(dir, { roots: [pki.root], keys: { byKid: new Map([a, b].map((k) => [hex(k.kid), k.key])) } });
      expect(report.verdict).toBe('AUTHENTIC');
      expect(report.fragmentLayer).toMatchObject({ fragments: 6, authentic: 6 });
      expect(report.videoLayer).toBe('checked');
      const looped = [...sourceFrames, ...sourceFrames.slice(0, 50)];
      if (scheme === 'cenc') {
        // ffmpeg decrypts the chunked segments of each epoch with its key to the source pictures
        expect(await decodedFrameMd5s(hex(a.key), joined(dir, [0, 1, 2]))).toEqual(looped.slice(0, 75));
        expect(await decodedFrameMd5s(hex(b.key), joined(dir, [3, 4, 5]))).toEqual(looped.slice(75));
      } else {
        const clearOut = join(pki.work, 'chunks-clear.mp4');
        const r = await runCli(['decrypt', dir, '--out', clearOut, ...[a, b].flatMap((k) => ['--key', `${hex(k.kid)}:${hex(k.key)}`])]);
        expect(r.code, r.stderr).toBe(0);
        expect(await frameMd5s(clearOut)).toEqual(looped);
      }
    }
    await ring.close();
  });

  it('B-frames: the source\'s composition offsets go into the samples, and the session decodes to the source frames in presentation order', async () => {
    // an MP4 with B-frames (composition times), as an RTSP source delivers them: access units in decode order with dts/cto
    const mp4 = await clip({ width: 320, height: 240, fps: 25, seconds: 4, gop: 25, zerolatency: false, preset: 'veryfast', format: 'mp4' });
    const input = await openInput(mp4);
    const scale = SOURCE_TIMESCALE / input.track.timescale;
    const ps = [...input.track.avcC.sps, ...input.track.avcC.pps];
    const events = async function* (): AsyncGenerator<SourceEvent> {
      let n = 0;
      const asm = new AccessUnitAssembler();
      const times: { dts: number; cto: number }[] = [];
      const out = (au: AccessUnit): SourceEvent => {
        const t = times.shift() as { dts: number; cto: number };
        return { type: 'frame', frame: { au, dts: Math.round(t.dts * scale), cto: Math.round(t.cto * scale), captured: START.getTime() + (n++ * 1000) / 25 } };
      };
      for await (const gop of input.gops()) {
        let dts = gop.baseDecodeTime;
        for (const smp of gop.samples) {
          times.push({ dts, cto: smp.compositionOffset });
          dts += smp.duration;
          // parameter sets in band at each IDR picture, as a camera's stream carries them
          for (const nal of [...(smp.isSync ? ps : []), ...splitLengthPrefixed(smp.data, input.track.avcC.lengthSize)]) for (const au of asm.push(nal)) yield out(au);
        }
      }
      for (const au of asm.flush()) yield out(au);
      expect(times).toEqual([]);
    };
    const ringDir = join(pki.work, 'ring-b');
    const ring = await Ring.open(ringDir, 64 << 20);
    const [s] = await runPipeline(events(), ring, devicePipelineOptions(device, {}));
    await ring.close();
    await input.close();
    expect(s).toMatchObject({ fragments: 4, frames: 100 });
    const dir = sessionDir(ringDir, (s as SessionSummary).session);
    const ctos: number[] = [];
    const whole = join(pki.work, 'ring-b.mp4');
    writeFileSync(whole, joined(dir, [0, 1, 2, 3]));
    const src = await openInput(whole);
    for await (const g of src.gops()) for (const smp of g.samples) ctos.push(smp.compositionOffset);
    await src.close();
    expect(ctos.some((c) => c > 0)).toBe(true);
    const decoded = await decodedFrameMd5s(undefined, joined(dir, [0, 1, 2, 3]));
    expect(decoded).toEqual(await frameMd5s(mp4));
    expect((await verify(dir)).verdict).toBe('AUTHENTIC');
  });

  it("a source 'lost' event ends the session (end record) and the next frames start a new one", async () => {
    const ring = await Ring.open(join(pki.work, 'ring-lost'), 64 << 20);
    const inner = new FileSource({ path: source, fps: 25, frames: 150, realTime: false, start: START });
    // the source loses its stream after 2 s and comes back at an IDR picture (as an RTSP source does)
    const events = async function* (): AsyncGenerator<SourceEvent> {
      let n = 0;
      for await (const e of inner.events(new AbortController().signal)) {
        if (e.type === 'frame' && n === 50) yield { type: 'lost', reason: 'test: stream gone' };
        if (e.type === 'frame') n++;
        yield e;
      }
    };
    const sessions = await runPipeline(events(), ring, devicePipelineOptions(device, {}));
    await ring.close();
    expect(sessions.map((s) => [s.fragments, s.endReason])).toEqual([
      [2, END_SOURCE_LOST],
      [4, 0],
    ]);
    expect(sessions[0]?.session).not.toBe(sessions[1]?.session);
    for (const s of sessions) {
      const r = await verify(sessionDir(join(pki.work, 'ring-lost'), s.session));
      expect(r.verdict).toBe('AUTHENTIC');
      expect(r.fragmentLayer?.endRecord).toBe(true);
    }
    // the counters go on across sessions
    const c0 = records(sessionDir(join(pki.work, 'ring-lost'), sessions[0]?.session as string)).map((r) => r['counter'] as number);
    const c1 = records(sessionDir(join(pki.work, 'ring-lost'), sessions[1]?.session as string)).map((r) => r['counter'] as number);
    expect(Math.min(...c1)).toBeGreaterThan(Math.max(...c0));
  });
});
