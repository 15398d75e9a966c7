/**
 * Live streaming (issue 12: "fragments are sent as they are produced — CMAF chunks within a segment, streamed — so
 * live view need not wait for a GOP to close"): a camera pipeline in real time (GOPs of 2 s, chunks of 200 ms) into
 * its ring, the uploader streaming the segment being recorded to a real NVR over mutual TLS. The NVR's live feed
 * sees each segment's first bytes long before the camera closes that GOP; every segment ends up stored and
 * verified, almost all of them by their stream; a stream broken off (the NVR stopped mid-segment) costs nothing —
 * the uploader sends that segment from the ring, and the NVR holds the whole session.
 */
import { readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devicePipelineOptions } from '../../src/camera/device.js';
import { FileSource } from '../../src/camera/file-source.js';
import { runPipeline } from '../../src/camera/pipeline.js';
import { Ring } from '../../src/camera/ring.js';
import { Uploader } from '../../src/camera/uploader.js';
import { loadNvrConfig } from '../../src/nvr/config.js';
import type { HaveAnswer } from '../../src/nvr/protocol.js';
import { startNvr, type RunningNvr } from '../../src/nvr/server.js';
import { openDevice } from '../../src/pki/device.js';
import { parseCertificates } from '../../src/pki/pem.js';
import { loadTlsIdentity, tlsClientOptions } from '../../src/pki/tls.js';
import { clip } from '../helpers/media.js';
import { stablePort } from '../helpers/ports.js';
import { CameraClient, makeNvrSite, type NvrSite } from '../nvr/_setup.js';

let site: NvrSite;
let nvr: RunningNvr | undefined;
const SERIAL = 'CAM-LIVE-1';

beforeAll(async () => {
  site = await makeNvrSite([SERIAL]);
  // the NVR is restarted on the same port mid-test (test/helpers/ports.ts)
  site.writeConfig({ listen: { host: '127.0.0.1', port: await stablePort() } });
  nvr = await startNvr(loadNvrConfig(site.configPath), { createDatabase: true });
}, 240_000);

afterAll(async () => {
  await nvr?.close();
  await site?.caStore.close();
});

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

/**
 * A TCP relay to the NVR that can hold back the NVR's answers on one connection (a slow link back to the camera):
 * `holdBusiest()` queues what the NVR sends on the connection that carried the most bytes from the camera in the last
 * 1.5 s — the live stream of a segment, next to the uploader's small objects — until `release()`.
 */
function slowReturnRelay(target: () => number): { server: Server; port: () => number; holdBusiest: () => void; release: () => void } {
  interface Link {
    readonly camera: Socket;
    recent: { at: number; bytes: number }[];
    held: Buffer[] | undefined;
  }
  const links = new Set<Link>();
  const server = createServer((c) => {
    const s = connect(target(), '127.0.0.1');
    const link: Link = { camera: c, recent: [], held: undefined };
    links.add(link);
    c.on('data', (d: Buffer) => {
      link.recent.push({ at: Date.now(), bytes: d.length });
      s.write(d);
    });
    s.on('data', (d: Buffer) => (link.held !== undefined ? link.held.push(d) : c.write(d)));
    const close = (): void => {
      links.delete(link);
      c.destroy();
      s.destroy();
    };
    for (const x of [c, s]) {
      x.on('error', close);
      x.on('close', close);
    }
  });
  server.listen(0, '127.0.0.1');
  const recentBytes = (l: Link): number => l.recent.filter((r) => r.at > Date.now() - 1_500).reduce((n, r) => n + r.bytes, 0);
  return {
    server,
    port: () => (server.address() as { port: number }).port,
    holdBusiest: () => {
      const busiest = [...links].sort((a, b) => recentBytes(b) - recentBytes(a))[0];
      if (busiest !== undefined) busiest.held = [];
    },
    release: () => {
      for (const l of links) {
        for (const d of l.held ?? []) l.camera.write(d);
        l.held = undefined;
      }
    },
  };
}

describe('live streaming of the segment being recorded', () => {
  it('the NVR gets each segment chunk by chunk while its GOP is recorded; every segment stored and verified; a broken stream is resent from the ring', async () => {
    const running = nvr as RunningNvr;
    const camDir = site.cameraDirs.get(SERIAL) as string;
    const op = join(site.caDir, 'operator.pem');
    const ring = await Ring.open(join(site.work, 'ring'), 64 << 20);
    const tls = await tlsClientOptions(loadTlsIdentity(camDir), { roots: parseCertificates(readFileSync(op), op) }, 'localhost');
    const relay = slowReturnRelay(() => (nvr as RunningNvr).port);
    await new Promise((r) => relay.server.once('listening', r));
    const events: string[] = [];
    const up = new Uploader({ url: `https://localhost:${relay.port()}`, tls, serial: SERIAL, ring, backfillBytesPerSecond: 10_000_000, onEvent: (e) => events.push(e) });
    let stop = new AbortController();
    let uploading = up.run(stop.signal);

    // when each segment's first bytes reached the NVR, and when the camera had the whole segment
    const firstAtNvr = new Map<number, number>();
    const chunksAtNvr = new Map<number, number>();
    const completeAtCamera = new Map<number, number>();
    running.ingest.live.subscribe(SERIAL, (e) => {
      if (e.kind !== 'data') return;
      if (!firstAtNvr.has(e.seq)) firstAtNvr.set(e.seq, Date.now());
      chunksAtNvr.set(e.seq, (chunksAtNvr.get(e.seq) ?? 0) + 1);
    });
    let holdLast = true;
    ring.onLive((e) => {
      if (e.kind !== 'complete') return;
      completeAtCamera.set(e.seq, Date.now());
      // the NVR's answer to the last segment's stream comes late: the recording ends, the drain starts with it out
      if (e.seq === 5 && holdLast) relay.holdBusiest();
    });

    const device = await openDevice(camDir);
    const source = await clip({ width: 320, height: 240, fps: 25, seconds: 4, gop: 50 });
    // 12 s in real time: six GOPs of 2 s
    const src = new FileSource({ path: source, fps: 25, frames: 300, realTime: true, start: new Date() });
    const [s] = await runPipeline(src.events(new AbortController().signal), ring, devicePipelineOptions(device, { chunkMs: 200 }));
    await device.close();
    const session = s?.session as string;
    expect(s?.fragments).toBe(6);
    // a clean stop: the loop ends, the drain takes over; the last segment's stream is still out — the drain waits for
    // its answer, and says "complete" only with nothing pending
    holdLast = false;
    stop.abort();
    await uploading;
    expect(ring.usage().pending).toBeGreaterThanOrEqual(1);
    setTimeout(() => relay.release(), 2_000);
    expect(await up.drain(Date.now() + 30_000)).toBe(true);
    expect(ring.usage().pending).toBe(0);
    stop = new AbortController();
    uploading = up.run(stop.signal);

    // every segment but the first (its stream waits for the session's start to be acknowledged) went out live
    const streamed = [...completeAtCamera.keys()].filter((seq) => seq > 0);
    expect(up.status().streamed).toBeGreaterThanOrEqual(streamed.length - 1);
    const leads = streamed.filter((seq) => firstAtNvr.has(seq)).map((seq) => (completeAtCamera.get(seq) as number) - (firstAtNvr.get(seq) as number));
    expect(leads.length).toBeGreaterThanOrEqual(streamed.length - 1);
    // a GOP of 2 s in 200 ms chunks: its first bytes are at the NVR about 1.8 s before the camera has the whole GOP
    expect(median(leads), JSON.stringify(leads)).toBeGreaterThan(1_200);
    // and they arrived in several pieces, not as one body at the end
    expect(median(streamed.map((seq) => chunksAtNvr.get(seq) ?? 0))).toBeGreaterThanOrEqual(5);
    const cam = await CameraClient.open(running.url, camDir, op);
    expect((await cam.have(SERIAL, session)).json<HaveAnswer>()).toMatchObject({ chain: true, init: true, ended: true, segments: [[0, 6]] });
    for (let seq = 0; seq < 6; seq++) expect(running.index.segment(SERIAL, session, seq)?.state).toBe('verified');

    // a stream broken off: the NVR closes while a segment is streamed, and comes back; the uploader sends it whole
    const device2 = await openDevice(camDir);
    const src2 = new FileSource({ path: source, fps: 25, frames: 200, realTime: true, start: new Date() });
    const recording = runPipeline(src2.events(new AbortController().signal), ring, devicePipelineOptions(device2, { chunkMs: 200 }));
    await new Promise((r) => setTimeout(r, 3_000));
    const port = running.port;
    await running.close(0);
    site.writeConfig({ listen: { host: '127.0.0.1', port } });
    await new Promise((r) => setTimeout(r, 1_000));
    nvr = await startNvr(loadNvrConfig(site.configPath), {});
    const [s2] = await recording;
    await device2.close();
    stop.abort();
    await uploading;
    expect(await up.drain(Date.now() + 60_000)).toBe(true);
    expect(ring.usage().pending).toBe(0);
    up.close();
    relay.server.close();
    expect(up.status().streamReleased).toBeGreaterThanOrEqual(1);
    expect(events).toContain('stream-released');
    const cam2 = await CameraClient.open(nvr.url, camDir, op);
    expect((await cam2.have(SERIAL, s2?.session as string)).json<HaveAnswer>()).toMatchObject({ ended: true, segments: [[0, s2?.fragments as number]] });
    for (let seq = 0; seq < (s2?.fragments ?? 0); seq++) expect(nvr.index.segment(SERIAL, s2?.session as string, seq)?.state).toBe('verified');
    await ring.close();
  });
});
