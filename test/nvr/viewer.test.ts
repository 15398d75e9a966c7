/**
 * The NVR's viewers' listener (issue 13 §5) on a real NVR over TLS: a camera's two encrypted sessions (two keys)
 * ingested, then a DASH manifest for the range — a Period per session and key — whose init and media segments, as
 * the manifest addresses them, ffmpeg decrypts with each Period's key to exactly the frames of the camera's own
 * files. Access tokens are signed with a KMS identity's key in its key store (the KMS's own signing code) and
 * checked offline by the NVR: none, forged, for another NVR, or without the right → refused; a window that covers
 * only the first session gets only its segments. Range and conditional requests as HTTP says.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AclEntry } from '../../src/access/acl.js';
import { recordSession } from '../../src/camera/record.js';
import { loadNvrConfig } from '../../src/nvr/config.js';
import { startNvr } from '../../src/nvr/server.js';
import type { RunningNvr } from '../../src/nvr/server.js';
import { openDevice } from '../../src/pki/device.js';
import { parseCertificates } from '../../src/pki/pem.js';
import { verifyEvidence } from '../../src/recording/evidence.js';
import { clip, frameMd5s } from '../helpers/media.js';
import { CameraClient, readRecording } from './_setup.js';
import { makeViewerSite } from './_viewer.js';
import type { NvrSite } from './_setup.js';

const SERIAL = 'CAM-V';
let site: NvrSite;
let nvr: RunningNvr;
let ca: string;
let sign: (claims: { aud?: string; sub?: string; acl: AclEntry[] }, other?: boolean) => Promise<string>;
const keys = [
  { kid: randomBytes(16), key: randomBytes(16) },
  { kid: randomBytes(16), key: randomBytes(16) },
];
const recs: string[] = [];
let sourceFrames: string[] = [];
const T0 = Math.floor(Date.now() / 1000) * 1000 - 120_000;

async function get(path: string, token?: string, headers: Record<string, string> = {}, method = 'GET', body?: unknown): Promise<{ status: number; body: Buffer; headers: Record<string, string | string[] | undefined> }> {
  const agent = new Agent({ ca });
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, nvr.viewerUrl), { agent, method, headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(JSON.stringify(body))) } : {}), ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body !== undefined ? JSON.stringify(body) : undefined);
  });
}

const iso = (ms: number): string => new Date(ms).toISOString();
const playback = (from: number, to: number): AclEntry[] => [{ cams: [SERIAL], rights: ['playback'], from, to }];

beforeAll(async () => {
  const v = await makeViewerSite([SERIAL]);
  site = v.site;
  ca = v.ca;
  sign = (c, rogue) => v.sign(c, rogue);
  nvr = await startNvr(loadNvrConfig(site.configPath), { createDatabase: true });
  // two sessions of 4 s, back to back, each under its own key (as after a group rekey)
  const source = await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25 });
  sourceFrames = await frameMd5s(source);
  const device = await openDevice(site.cameraDirs.get(SERIAL) as string);
  try {
    for (const [i, key] of keys.entries()) {
      const out = join(site.work, `rec-${i}`);
      await recordSession({ device, source, seconds: 4, out, start: new Date(T0 + i * 4000), realTime: false, key, scheme: 'cenc' });
      recs.push(out);
    }
  } finally {
    await device.close();
  }
  const cam = await CameraClient.open(nvr.url, site.cameraDirs.get(SERIAL) as string, join(site.caDir, 'operator.pem'));
  for (const r of recs) await cam.upload(readRecording(r));
}, 240_000);

afterAll(async () => {
  await nvr?.close();
});

describe('the viewers’ listener', () => {
  it('a manifest for the range: a Period per session and key; each Period decrypts with its key to the camera’s own frames', async () => {
    const token = await sign({ acl: playback(T0 - 60_000, T0 + 60_000) });
    const m = await get(`/v1/cameras/${SERIAL}/manifest.mpd?from=${iso(T0 - 1000)}&to=${iso(T0 + 10_000)}`, token);
    expect(m.status).toBe(200);
    expect(m.headers['content-type']).toBe('application/dash+xml');
    const xml = m.body.toString();
    const periods = [...xml.matchAll(/<Period [^>]*>[\s\S]*?<\/Period>/g)].map((p) => p[0]);
    expect(periods).toHaveLength(2);
    for (const [i, p] of periods.entries()) {
      const kid = keys[i]?.kid.toString('hex') as string;
      expect(p).toContain(`cenc:default_KID="${kid.slice(0, 8)}-${kid.slice(8, 12)}-${kid.slice(12, 16)}-${kid.slice(16, 20)}-${kid.slice(20)}"`);
      expect(p).toContain('<dashif:Laurl>https://127.0.0.1:8444/v1/licence</dashif:Laurl>');
      const base = /<BaseURL>([^<]+)<\/BaseURL>/.exec(p)?.[1] as string;
      const start = Number(/startNumber="(\d+)"/.exec(p)?.[1]);
      const count = [...p.matchAll(/<S [^>]*?(?: r="(\d+)")?\/>/g)].reduce((n, m) => n + 1 + Number(m[1] ?? 0), 0);
      // what the manifest addresses, fetched as a player would
      const parts = [await get(`${base}init.mp4`, token)];
      for (let n = start; n < start + count; n++) parts.push(await get(`${base}${String(n).padStart(6, '0')}.m4s`, token));
      expect(parts.map((x) => x.status)).toEqual(parts.map(() => 200));
      const served = join(site.work, `served-${i}.mp4`);
      writeFileSync(served, Buffer.concat(parts.map((x) => x.body)));
      const own = readRecording(recs[i] as string);
      expect(count).toBe(own.segments.length);
      const ownFile = join(site.work, `own-${i}.mp4`);
      writeFileSync(ownFile, Buffer.concat([own.init, ...own.segments]));
      const key = keys[i]?.key.toString('hex') as string;
      const frames = await frameMd5s(served, { key, pipe: true });
      expect(frames.length).toBe(100);
      expect(frames).toEqual(await frameMd5s(ownFile, { key, pipe: true }));
      // 4 s of the 2 s source clip, looped: the source's own frames, twice
      expect(frames).toEqual([...sourceFrames, ...sourceFrames]);
      // the other Period's key does not open it
      const wrong = keys[1 - i]?.key.toString('hex') as string;
      expect(await frameMd5s(served, { key: wrong, pipe: true, garbled: true })).not.toEqual(frames);
    }
  }, 120_000);

  it('tokens: none, forged, for another NVR, expired scope: 401; no right or outside the window: 403; unknown media 404', async () => {
    const path = `/v1/cameras/${SERIAL}/manifest.mpd?from=${iso(T0)}&to=${iso(T0 + 8000)}`;
    expect((await get(path)).status).toBe(401);
    expect((await get(path, 'not.a.token')).status).toBe(401);
    expect((await get(path, await sign({ acl: playback(T0 - 60_000, T0 + 60_000) }, true))).status).toBe(401);
    expect((await get(path, await sign({ aud: 'nvr-2', acl: playback(T0 - 60_000, T0 + 60_000) }))).status).toBe(401);
    expect((await get(path, await sign({ acl: [{ cams: [SERIAL], rights: ['live'], from: 0, to: 0 }] }))).body.toString()).toBe('{"error":"forbidden"}');
    expect((await get(path, await sign({ acl: [{ cams: ['OTHER'], rights: ['playback'], from: T0 - 60_000, to: T0 + 60_000 }] }))).status).toBe(403);
    // a window covering the first session only: its segments, not the second's
    const first = await sign({ acl: playback(T0 - 1000, T0 + 4000) });
    expect((await get(path, first)).status).toBe(403);
    const r0 = readRecording(recs[0] as string);
    const r1 = readRecording(recs[1] as string);
    expect((await get(`/v1/media/${SERIAL}/${r0.session}/000000.m4s`, first)).status).toBe(200);
    expect((await get(`/v1/media/${SERIAL}/${r1.session}/000000.m4s`, first)).status).toBe(403);
    expect((await get(`/v1/media/${SERIAL}/${r1.session}/000099.m4s`, first)).status).toBe(404);
    expect((await get(`/v1/media/${SERIAL}/../etc/000000.m4s`, first)).status).toBe(404);
    // the cameras list: only those the token names
    expect((await get('/v1/cameras', first)).body.toString()).toContain(SERIAL);
    expect(JSON.parse((await get('/v1/cameras', await sign({ acl: [] }))).body.toString())).toEqual({ cameras: [] });
  });

  it('Range and If-None-Match on media, as HTTP says', async () => {
    const token = await sign({ acl: playback(T0 - 60_000, T0 + 60_000) });
    const r0 = readRecording(recs[0] as string);
    const seg = r0.segments[1] as Buffer;
    const path = `/v1/media/${SERIAL}/${r0.session}/000001.m4s`;
    const whole = await get(path, token);
    expect(whole.body.equals(seg)).toBe(true);
    expect(whole.headers['accept-ranges']).toBe('bytes');
    const part = await get(path, token, { range: 'bytes=10-99' });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 10-99/${seg.length}`);
    expect(part.body.equals(seg.subarray(10, 100))).toBe(true);
    const tail = await get(path, token, { range: 'bytes=-16' });
    expect(tail.body.equals(seg.subarray(seg.length - 16))).toBe(true);
    expect((await get(path, token, { range: `bytes=${seg.length}-` })).status).toBe(416);
    expect((await get(path, token, { 'if-none-match': whole.headers['etag'] as string })).status).toBe(304);
  });

  it("evidence locks: the lock right over the range, the token's user audited; release needs the right over what is released", async () => {
    const locker = await sign({ acl: [{ cams: [SERIAL], rights: ['lock'], from: T0 - 60_000, to: T0 + 60_000 }] });
    const viewerOnly = await sign({ acl: playback(T0 - 60_000, T0 + 60_000) });
    const body = { from: iso(T0), to: iso(T0 + 4000), case: 'CASE-9', reason: 'incident at the gate' };
    const refused = await get(`/v1/cameras/${SERIAL}/locks`, viewerOnly, {}, 'POST', body);
    expect(refused.body.toString()).toBe('{"error":"forbidden"}');
    const outside = await get(`/v1/cameras/${SERIAL}/locks`, locker, {}, 'POST', { ...body, to: iso(T0 + 120_000) });
    expect(outside.body.toString()).toBe('{"error":"forbidden"}');
    const made = await get(`/v1/cameras/${SERIAL}/locks`, locker, {}, 'POST', body);
    expect(made.status).toBe(201);
    const lock = JSON.parse(made.body.toString()) as { lock: { case_id: string; created_by: string }; audit: { seq: number } };
    expect(lock.lock).toMatchObject({ case_id: 'CASE-9', created_by: expect.stringMatching(/^user:ivan \(token [A-Za-z0-9_-]{22}\)$/) as unknown });
    expect((JSON.parse((await get(`/v1/cameras/${SERIAL}/locks`, viewerOnly)).body.toString()) as { locks: unknown[] }).locks).toHaveLength(1);
    // a lock right over another window cannot release it
    const elsewhere = await sign({ acl: [{ cams: [SERIAL], rights: ['lock'], from: T0 + 1000, to: T0 + 60_000 }] });
    const notMine = await get(`/v1/cameras/${SERIAL}/locks/CASE-9`, elsewhere, {}, 'DELETE', { reason: 'done' });
    expect(notMine.body.toString()).toBe('{"error":"forbidden"}');
    const released = await get(`/v1/cameras/${SERIAL}/locks/CASE-9`, locker, {}, 'DELETE', { reason: 'case closed' });
    expect(released.status).toBe(200);
    expect(nvr.ops.locks.auditLog().map((r) => [r.action, r.actor])).toEqual([
      ['lock', lock.lock.created_by],
      ['unlock', lock.lock.created_by],
    ]);
  });
  it('exports: the export right over the range; the bundle, made in the background and signed by the NVR exporter, verifies AUTHENTIC; its user only; audited', async () => {
    const path = `/v1/cameras/${SERIAL}/exports`;
    const exporter = await sign({ acl: [{ cams: [SERIAL], rights: ['export'], from: T0 - 60_000, to: T0 + 60_000 }] });
    const body = { from: iso(T0), to: iso(T0 + 8000), case: 'CASE-7', reason: 'incident at the gate' };
    expect((await get(path, await sign({ acl: playback(T0 - 60_000, T0 + 60_000) }), {}, 'POST', body)).status).toBe(403);
    expect((await get(path, exporter, {}, 'POST', { ...body, to: iso(T0 + 120_000) })).status).toBe(403);
    expect((await get(path, exporter, {}, 'POST', { ...body, reason: '' })).status).toBe(400);
    const asked = await get(path, exporter, {}, 'POST', body);
    expect(asked.status, asked.body.toString()).toBe(202);
    const job = JSON.parse(asked.body.toString()) as { id: string; state: string };
    expect(asked.headers['location']).toBe(`/v1/exports/${job.id}`);
    let state = job.state;
    let done: { state: string; sha256?: string; bytes?: number; sessions?: number; error?: string } = { state };
    for (const until = Date.now() + 60_000; !['done', 'failed'].includes(state) && Date.now() < until; state = done.state) {
      await new Promise((r) => setTimeout(r, 200));
      done = JSON.parse((await get(`/v1/exports/${job.id}`, exporter)).body.toString()) as typeof done;
    }
    expect(done, JSON.stringify(done)).toMatchObject({ state: 'done', sessions: 2 });
    // another user sees no such job, nor its bundle; the owner downloads it
    const other = await sign({ sub: 'olga', acl: [{ cams: [SERIAL], rights: ['export'], from: T0 - 60_000, to: T0 + 60_000 }] });
    expect((await get(`/v1/exports/${job.id}`, other)).status).toBe(404);
    expect((await get(`/v1/exports/${job.id}/bundle.tar`, other)).status).toBe(404);
    expect(JSON.parse((await get('/v1/exports', other)).body.toString())).toEqual({ exports: [] });
    const tar = await get(`/v1/exports/${job.id}/bundle.tar`, exporter);
    expect(tar.status).toBe(200);
    expect(tar.body.length).toBe(done.bytes);
    expect(createHash('sha256').update(tar.body).digest('hex')).toBe(done.sha256);
    const file = join(site.work, 'downloaded.tar');
    writeFileSync(file, tar.body);
    const report = await verifyEvidence(file, { roots: parseCertificates(readFileSync(join(site.caDir, 'root.pem')), 'root'), exporterRoots: [site.ca.certs.operator] });
    expect(report.verdict).toBe('AUTHENTIC');
    expect(report.bundle?.exporter.subject).toContain('NVR-1 exporter');
    // the owner without the export right any more: no download
    expect((await get(`/v1/exports/${job.id}/bundle.tar`, await sign({ acl: playback(T0 - 60_000, T0 + 60_000) }))).status).toBe(403);
    // in the NVR's audit chain: who, which case, the bundle's hash
    const entries = nvr.ops.locks.auditLog().map((r) => JSON.parse(r.entry) as { action: string; actor: string; case?: string; sha256?: string; export?: string });
    expect(entries.filter((e) => e.action === 'export')).toEqual([expect.objectContaining({ actor: 'user:ivan', case: 'CASE-7', export: job.id, sha256: done.sha256 })]);
  }, 120_000);
});
