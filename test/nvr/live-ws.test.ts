/**
 * Live view over a WebSocket (issue 13 §5) with a camera recording in real time (GOPs of 2 s, CMAF chunks of 200 ms)
 * and uploading to a real NVR over mutual TLS: a viewer with a `live` token gets the init segment and then each
 * segment chunk by chunk — its first bytes long before the camera has closed that GOP — and what it got of every
 * segment it saw from the start is byte for byte what the NVR stored. Without a token, with one lacking `live`, or
 * signed by another key, the upgrade is refused; a token renewed on the socket keeps it open, one that expires
 * closes it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devicePipelineOptions } from '../../src/camera/device.js';
import { FileSource } from '../../src/camera/file-source.js';
import { runPipeline } from '../../src/camera/pipeline.js';
import { Ring } from '../../src/camera/ring.js';
import { Uploader } from '../../src/camera/uploader.js';
import { loadNvrConfig } from '../../src/nvr/config.js';
import { startNvr, type RunningNvr } from '../../src/nvr/server.js';
import { openDevice } from '../../src/pki/device.js';
import { parseCertificates } from '../../src/pki/pem.js';
import { loadTlsIdentity, tlsClientOptions } from '../../src/pki/tls.js';
import { clip } from '../helpers/media.js';
import { makeViewerSite, type ViewerSite } from './_viewer.js';

const SERIAL = 'CAM-LIVE-WS';
let v: ViewerSite;
let nvr: RunningNvr;
const live = (): Promise<string> => v.sign({ acl: [{ cams: [SERIAL], rights: ['live'], from: 0, to: 0 }] });

beforeAll(async () => {
  v = await makeViewerSite([SERIAL]);
  nvr = await startNvr(loadNvrConfig(v.site.configPath), { createDatabase: true });
}, 240_000);

afterAll(async () => {
  await nvr?.close();
});

type Message = { at: number; text?: Record<string, unknown>; bytes?: Buffer };

function open(token: string | undefined): { ws: WebSocket; messages: Message[]; opened: Promise<void>; closed: Promise<{ code: number; reason: string }>; refused: Promise<number> } {
  const url = `${(nvr.viewerUrl as string).replace(/^https/, 'wss')}/v1/cameras/${SERIAL}/live`;
  const ws = new WebSocket(url, token === undefined ? ['keyframe-live'] : ['keyframe-live', `bearer.${token}`], { ca: v.ca });
  const messages: Message[] = [];
  ws.on('message', (data, isBinary) => messages.push(isBinary ? { at: Date.now(), bytes: Buffer.from(data as Buffer) } : { at: Date.now(), text: JSON.parse((data as Buffer).toString('utf8')) as Record<string, unknown> }));
  return {
    ws,
    messages,
    opened: new Promise((r, j) => {
      ws.once('open', () => r());
      ws.once('error', j);
    }),
    closed: new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: String(reason) }))),
    refused: new Promise((r) => ws.once('unexpected-response', (_req, res) => r(res.statusCode ?? 0))),
  };
}

describe('live view over a WebSocket', () => {
  it('refuses an upgrade without a token, without live, or signed by another key', async () => {
    expect(await open(undefined).refused).toBe(401);
    expect(await open(await v.sign({ acl: [{ cams: [SERIAL], rights: ['playback'], from: 0, to: Date.now() }] })).refused).toBe(403);
    expect(await open(await v.sign({ acl: [{ cams: [SERIAL], rights: ['live'], from: 0, to: 0 }] }, true)).refused).toBe(401);
    expect(await open(await v.sign({ acl: [{ cams: ['OTHER'], rights: ['live'], from: 0, to: 0 }] })).refused).toBe(403);
  });

  it('pushes the init segment and each segment chunk by chunk as the camera records it, the bytes the NVR stores', async () => {
    const viewer = open(await live());
    await viewer.opened;
    expect(viewer.ws.protocol).toBe('keyframe-live');

    const camDir = v.site.cameraDirs.get(SERIAL) as string;
    const op = join(v.site.caDir, 'operator.pem');
    const ring = await Ring.open(join(v.site.work, 'ring'), 64 << 20);
    const tls = await tlsClientOptions(loadTlsIdentity(camDir), { roots: parseCertificates(readFileSync(op), op) }, 'localhost');
    const up = new Uploader({ url: nvr.url, tls, serial: SERIAL, ring, backfillBytesPerSecond: 10_000_000 });
    const stop = new AbortController();
    const uploading = up.run(stop.signal);
    const completeAtCamera = new Map<number, number>();
    ring.onLive((e) => {
      if (e.kind === 'complete') completeAtCamera.set(e.seq, Date.now());
    });
    const device = await openDevice(camDir);
    const source = await clip({ width: 320, height: 240, fps: 25, seconds: 4, gop: 50 });
    // 8 s in real time: four GOPs of 2 s
    const src = new FileSource({ path: source, fps: 25, frames: 200, realTime: true, start: new Date() });
    // a second viewer joins in the middle of a segment (2 s GOPs): it gets that segment from its first byte at once
    let late: ReturnType<typeof open> | undefined;
    let lateAt = 0;
    const joining = (async () => {
      await new Promise((r) => setTimeout(r, 3000));
      while (!viewer.messages.some((x) => x.text?.['type'] === 'segment' && x.at < Date.now() - 300)) await new Promise((r) => setTimeout(r, 50));
      lateAt = Date.now();
      late = open(await live());
      await late.opened;
    })();
    const [s] = await runPipeline(src.events(new AbortController().signal), ring, devicePipelineOptions(device, { chunkMs: 200 }));
    await joining;
    await device.close();
    const session = s?.session as string;
    // the drain sends what is left; then the viewer has seen the last segment's end
    await new Promise((r) => setTimeout(r, 1_500));
    stop.abort();
    await uploading;
    viewer.ws.close();
    await viewer.closed;
    await ring.close();

    // hello, then the init segment of the session, then segments from their first byte
    const m = viewer.messages;
    expect(m[0]?.text).toMatchObject({ type: 'hello', serial: SERIAL });
    const initAt = m.findIndex((x) => x.text?.['type'] === 'init');
    // with what MSE (and EME, for encrypted video: this is clear) need to set up: the codecs and the picture size
    expect(m[initAt]?.text).toEqual({ type: 'init', session, codecs: expect.stringMatching(/^avc1\.[0-9a-f]{6}$/) as unknown, width: 320, height: 240 });
    const stored = (kind: string, seq?: number): Buffer => readFileSync(nvr.store.path(SERIAL, session, kind as 'init', seq));
    expect(m[initAt + 1]?.bytes?.equals(stored('init'))).toBe(true);
    const segments = new Map<number, { bytes: Buffer[]; first: number; status?: number }>();
    let cur: number | undefined;
    for (const x of m.slice(initAt + 2)) {
      if (x.text?.['type'] === 'segment') {
        cur = x.text['seq'] as number;
        segments.set(cur, { bytes: [], first: 0 });
      } else if (x.text?.['type'] === 'end') segments.get(x.text['seq'] as number)!.status = x.text['status'] as number;
      else if (x.bytes !== undefined && cur !== undefined) {
        const seg = segments.get(cur)!;
        if (seg.bytes.length === 0) seg.first = x.at;
        seg.bytes.push(x.bytes);
      }
    }
    expect([...segments.keys()]).toEqual([0, 1, 2, 3]);
    // once a segment of the session is verified, each segment's announcement carries its capture clock: wall time at
    // media time 0, as the camera's signed records place the segments
    const offsets = m.filter((x) => x.text?.['type'] === 'segment' && x.text['wallOffsetMs'] !== undefined).map((x) => x.text?.['wallOffsetMs'] as number);
    expect(offsets.length).toBeGreaterThan(0);
    const row = nvr.index.sqlite.prepare<[string, string], { w: number; m: number }>("SELECT wall_start AS w, media_start AS m FROM segments WHERE serial = ? AND session = ? AND state = 'verified' ORDER BY seq LIMIT 1").get(SERIAL, session);
    for (const o of offsets) expect(o).toBe(Math.round((row?.w ?? NaN) - (row?.m ?? NaN) * 1000));
    const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    const leads: number[] = [];
    for (const [seq, seg] of segments) {
      expect(seg.status, `segment ${seq}`).toBe(201);
      expect(sha(Buffer.concat(seg.bytes)), `segment ${seq}`).toBe(sha(stored('seg', seq)));
      leads.push((completeAtCamera.get(seq) as number) - seg.first);
    }
    // the late viewer: init, then the segment that was in progress when it joined (its first bytes reached the NVR
    // before the viewer connected), whole, as stored
    const lm = (late as ReturnType<typeof open>).messages;
    late?.ws.close();
    const lateInit = lm.findIndex((x) => x.text?.['type'] === 'init');
    expect(lateInit).toBeGreaterThanOrEqual(0);
    const firstSeg = lm.find((x) => x.text?.['type'] === 'segment')?.text?.['seq'] as number;
    expect(segments.get(firstSeg)?.first ?? Infinity, 'the segment had begun before the late viewer joined').toBeLessThan(lateAt);
    const lateBytes: Buffer[] = [];
    for (const x of lm.slice(lm.findIndex((y) => y.text?.['type'] === 'segment') + 1)) {
      if (x.text !== undefined) break;
      if (x.bytes !== undefined) lateBytes.push(x.bytes);
    }
    expect(sha(Buffer.concat(lateBytes))).toBe(sha(stored('seg', firstSeg)));
    // a segment's first bytes reach the viewer while the camera still records that GOP (the median segment's: a
    // loaded machine may delay one)
    expect([...leads].sort((a, b) => a - b)[Math.floor(leads.length / 2)]).toBeGreaterThan(0);
  }, 120_000);

  it('a token renewed on the socket keeps it open; one that expires closes it (4001)', async () => {
    const short = await v.sign({ acl: [{ cams: [SERIAL], rights: ['live'], from: 0, to: 0 }], exp: Math.floor(Date.now() / 1000) + 2 });
    const a = open(short);
    await a.opened;
    const b = open(short);
    await b.opened;
    a.ws.send(JSON.stringify({ type: 'token', token: await live() }));
    expect(await b.closed).toEqual({ code: 4001, reason: 'token expired' });
    expect(a.messages.some((x) => x.text?.['type'] === 'token')).toBe(true);
    expect(a.ws.readyState).toBe(WebSocket.OPEN);
    a.ws.close();
    await a.closed;
  }, 30_000);
});
