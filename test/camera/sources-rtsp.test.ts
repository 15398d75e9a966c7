/**
 * RTSP pull against a real RTSP server (GStreamer's gst-rtsp-server from Debian, test/fixtures/rtsp-server.py):
 * the pictures arrive as the file holds them (no re-encode) with the file's decode and composition times (B-frames
 * too), the server going away is a 'lost' event and state 'reconnecting', its return resumes the frames at an IDR
 * picture with DTS still increasing; a stream that is not H.264 is a permanent error naming the source; a
 * password in the URL is never shown.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RtspSource } from '../../src/camera/sources/rtsp.js';
import { SourceError } from '../../src/camera/sources/base.js';
import { AccessUnitAssembler, isVcl, nalType, splitAnnexB, type AccessUnit } from '../../src/media/h264/index.js';
import type { SourceFrame } from '../../src/camera/source.js';
import { RtspServer } from './_rtsp.js';
import { collect, ffmpegRun, makeClip, niced, tempDir } from './_sources.js';

const PASSWORD = 'pa55-Wörd%21secret';
const URL_CREDENTIALS = `viewer:${encodeURIComponent(PASSWORD)}@`;

function vclHash(au: AccessUnit): string {
  const h = createHash('sha256');
  for (const n of au.nals) if (isVcl(nalType(n))) h.update(n);
  return h.digest('hex');
}

interface SourcePacket {
  readonly pts: number;
  readonly dts: number;
}

/** The clip's access units (by hash of their slices) with their times in 90 kHz ticks, as ffprobe reports them. */
async function clipIndex(path: string): Promise<Map<string, SourcePacket>> {
  const annexB = await ffmpegRun(['-i', path, '-map', '0:v', '-c', 'copy', '-bsf:v', 'h264_mp4toannexb', '-f', 'h264', '-']);
  const asm = new AccessUnitAssembler();
  const aus = [...splitAnnexB(annexB).flatMap((n) => asm.push(n)), ...asm.flush()].filter((a) => a.sliceCount > 0);
  const probe = (await niced('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_packets', '-show_entries', 'packet=pts_time,dts_time', '-of', 'csv=p=0', path])).toString();
  const times = probe.split('\n').filter((l) => l.trim() !== '').map((l) => l.split(',').map((x) => Math.round(Number(x) * 90_000)));
  expect(times.length).toBe(aus.length);
  const index = new Map<string, SourcePacket>();
  aus.forEach((au, i) => {
    const [pts, dts] = times[i] as number[];
    index.set(vclHash(au), { pts: pts as number, dts: dts as number });
  });
  return index;
}

function checkTimeline(frames: readonly SourceFrame[]): void {
  for (let i = 1; i < frames.length; i++) expect((frames[i] as SourceFrame).dts).toBeGreaterThan((frames[i - 1] as SourceFrame).dts);
  for (const f of frames) expect(f.cto).toBeGreaterThanOrEqual(0);
}

describe('RTSP source', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => {
    tmp = tempDir('rtsp');
  });
  afterAll(() => tmp.remove());

  for (const bframes of [0, 2]) {
    it(`pulls the file's pictures with its times (${bframes} B-frames), loses the server, resumes when it returns`, async () => {
      const clipPath = await makeClip(join(tmp.dir, `b${bframes}.mp4`), { bframes, seconds: 30, gop: 12 });
      const index = await clipIndex(clipPath);
      const server = await RtspServer.start({ file: clipPath });
      const source = new RtspSource(server.url(URL_CREDENTIALS), { ioTimeoutMs: 2000, stallMs: 5000 }, { niceness: 19, retry: { initialMs: 200, maxMs: 1000 } });
      let stateAtLost: string | undefined;
      let lostAt = -1;
      let restarting: Promise<void> | undefined;
      try {
        const got = await collect(
          source,
          (c) => lostAt >= 0 && c.frames.length >= lostAt + 30,
          120_000,
          async (e, c) => {
            if (e.type === 'frame' && c.frames.length === 30) await server.stop();
            if (e.type === 'lost') {
              stateAtLost = source.status().state;
              lostAt = c.frames.length;
              // the source keeps trying (connection refused) for a while before the server is back
              restarting = new Promise((resolve) => setTimeout(resolve, 1500)).then(() => server.restart());
            }
          },
        );
        await restarting;
        expect(got.error).toBeUndefined();
        expect(got.timedOut).toBe(false);
        // what was in flight when the server died still arrives
        expect(lostAt).toBeGreaterThanOrEqual(30);
        expect(lostAt).toBeLessThan(60);
        expect(stateAtLost).toBe('reconnecting');
        expect(got.events.filter((e) => e.type === 'lost')).toHaveLength(1);
        const frames = got.frames;
        checkTimeline(frames);
        // every run begins at an IDR picture
        expect(frames[0]?.au.isIdr).toBe(true);
        expect(frames[lostAt]?.au.isIdr).toBe(true);
        // the file's own pictures, and within a run the file's decode-time steps and composition offsets
        for (const [from, to] of [
          [0, lostAt],
          [lostAt, frames.length],
        ] as const) {
          const run = frames.slice(from, to);
          const packets = run.map((f) => index.get(vclHash(f.au)));
          expect(packets.every((p) => p !== undefined)).toBe(true);
          const p = packets as SourcePacket[];
          for (let i = 1; i < run.length; i++) {
            expect((run[i] as SourceFrame).dts - (run[i - 1] as SourceFrame).dts).toBe((p[i] as SourcePacket).dts - (p[i - 1] as SourcePacket).dts);
          }
          // composition offsets: equal to the file's up to one constant shift of the DTS (the reorder delay)
          const shift = (run[0] as SourceFrame).cto - ((p[0] as SourcePacket).pts - (p[0] as SourcePacket).dts);
          run.forEach((f, i) => expect(f.cto - ((p[i] as SourcePacket).pts - (p[i] as SourcePacket).dts)).toBe(shift));
          if (bframes > 0) expect(run.some((f) => f.cto > (run[0] as SourceFrame).cto)).toBe(true);
        }
        const status = source.status();
        expect(status.state).toBe('stopped');
        expect(status.reconnects).toBe(1);
        expect(status.frames).toBe(frames.length);
        expect(status.description).toBe(`rtsp://***@127.0.0.1:${server.port}/cam`);
        for (const shown of [status.description, status.lastError ?? '', ...got.events.map((e) => (e.type === 'lost' ? e.reason : ''))]) {
          expect(shown).not.toContain(PASSWORD);
          expect(shown).not.toContain(encodeURIComponent(PASSWORD));
          expect(shown).not.toContain('viewer');
        }
      } finally {
        await server.stop();
      }
    });
  }

  it('refuses a stream that is not H.264, permanently, naming the source', async () => {
    const hevc = join(tmp.dir, 'hevc.mp4');
    await ffmpegRun(['-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-t', '20', '-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error', '-tag:v', 'hvc1', hevc]);
    const server = await RtspServer.start({ file: hevc, h265: true });
    try {
      const source = new RtspSource(server.url(URL_CREDENTIALS), {}, { niceness: 19, retry: { initialMs: 200, maxMs: 500 } });
      const got = await collect(source, () => false, 60_000);
      expect(got.timedOut).toBe(false);
      expect(got.frames).toHaveLength(0);
      expect(got.error).toBeInstanceOf(SourceError);
      const e = got.error as SourceError;
      expect(e.permanent).toBe(true);
      expect(e.message).toBe(`rtsp://***@127.0.0.1:${server.port}/cam: the video stream is H.265/HEVC, not H.264`);
      expect(source.status().state).toBe('failed');
    } finally {
      await server.stop();
    }
  });

  it('pulls from a server that asks for credentials, and keeps a refusal out of sight of the password', async () => {
    const clipPath = await makeClip(join(tmp.dir, 'auth.mp4'), { seconds: 20, gop: 12 });
    const server = await RtspServer.start({ file: clipPath, user: 'viewer', password: PASSWORD });
    try {
      const good = new RtspSource(server.url(URL_CREDENTIALS), {}, { niceness: 19 });
      const got = await collect(good, (c) => c.frames.length >= 10, 60_000);
      expect(got.error).toBeUndefined();
      expect(got.frames).toHaveLength(10);

      const wrong = new RtspSource(server.url(`viewer:${encodeURIComponent(`${PASSWORD}x`)}@`), {}, { niceness: 19, retry: { initialMs: 100, maxMs: 300 } });
      // no event comes (nothing was being delivered, so nothing is lost): watch the status for a few seconds
      const refused = await collect(wrong, () => false, 4000);
      expect(refused.events).toHaveLength(0);
      expect(wrong.status().state).toBe('stopped');
      expect(refused.frames).toHaveLength(0);
      const last = wrong.status().lastError ?? '';
      expect(last).toMatch(/401 Unauthorized/);
      expect(last).not.toContain(PASSWORD);
      expect(last).not.toContain(encodeURIComponent(PASSWORD));
    } finally {
      await server.stop();
    }
  });

  it('pulls over RTSPS (RTSP over TLS)', async () => {
    const clipPath = await makeClip(join(tmp.dir, 'tls.mp4'), { seconds: 20, gop: 12 });
    const cert = join(tmp.dir, 'cert.pem');
    const key = join(tmp.dir, 'key.pem');
    await niced('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    const server = await RtspServer.start({ file: clipPath, tlsCert: cert, tlsKey: key });
    try {
      expect(server.url()).toMatch(/^rtsps:/);
      const index = await clipIndex(clipPath);
      const source = new RtspSource(server.url(), {}, { niceness: 19 });
      const got = await collect(source, (c) => c.frames.length >= 10, 60_000);
      expect(got.error).toBeUndefined();
      expect(got.frames).toHaveLength(10);
      expect(got.frames.every((f) => index.has(vclHash(f.au)))).toBe(true);
      // a plain RTSP client gets nothing from the TLS port
      const plain = new RtspSource(server.url().replace(/^rtsps/, 'rtsp'), { ioTimeoutMs: 1000 }, { niceness: 19, retry: { initialMs: 100, maxMs: 300 } });
      const refused = await collect(plain, () => false, 4000);
      expect(refused.frames).toHaveLength(0);
    } finally {
      await server.stop();
    }
  });

  it('keeps retrying, with the error shown without the password, while nothing listens', async () => {
    const server = await RtspServer.start({ file: await makeClip(join(tmp.dir, 'gone.mp4'), { seconds: 1 }) });
    await server.stop();
    const source = new RtspSource(server.url(URL_CREDENTIALS), {}, { niceness: 19, retry: { initialMs: 100, maxMs: 300 } });
    const states: string[] = [];
    const timer = setInterval(() => states.push(source.status().state), 50);
    const got = await collect(source, () => false, 3000);
    clearInterval(timer);
    expect(got.error).toBeUndefined();
    expect(got.events).toHaveLength(0);
    expect(states).toContain('reconnecting');
    const last = source.status().lastError ?? '';
    expect(last).toMatch(/Connection refused/);
    expect(last).not.toContain(PASSWORD);
    expect(last).not.toContain(encodeURIComponent(PASSWORD));
    expect(source.status().state).toBe('stopped');
  });
});
