/**
 * The NVR's admin API over real mutual TLS (src/nvr/admin.ts): an operator-CA administrator sees the cameras and a
 * camera's timeline — verified, missing, expired (retention), lost (the camera's signed lost record) and on the
 * camera (its ring report) — and locks and unlocks evidence, audited with its certificate; a device certificate
 * gets 403 on every admin route, an administrator 403 on ingest, an operator certificate not named in "admins"
 * 403 everywhere.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNvrConfig } from '../../src/nvr/config.js';
import { ingestPath } from '../../src/nvr/protocol.js';
import { startNvr, type RunningNvr } from '../../src/nvr/server.js';
import { openDevice } from '../../src/pki/device.js';
import { createSite } from '../../src/pki/site.js';
import { canonicalJson, recordHash, signRecord, type AnyRecord } from '../../src/recording/records.js';
import { CameraClient, PIN_ENV, makeNvrSite, readRecording, recordFor, type NvrSite, type Recording } from './_setup.js';

let site: NvrSite;
let nvr: RunningNvr;
let old: Recording;
let cur: Recording;
let cam: CameraClient;
let admin: CameraClient;
let intruder: CameraClient;
const NOW = Math.floor(Date.now() / 1000) * 1000;
const iso = (ms: number): string => new Date(ms).toISOString();

beforeAll(async () => {
  site = await makeNvrSite(['CAM-A', 'CAM-B']);
  const spec = (dir: string): string => `file:${dir};pin-env=${PIN_ENV}`;
  for (const name of ['ops', 'intruder']) {
    const dir = join(site.work, name);
    await createSite({ out: dir, ca: site.ca, caKeyStore: site.caStore, name, altNames: ['localhost'], clientAuth: true, keystore: spec(join(dir, 'keys')) });
  }
  // an old session (4 min 40 s ago — device certificates are backdated 5 minutes — expired by a 3-minute policy) and a current one (a minute ago)
  old = readRecording(await recordFor(site.cameraDirs.get('CAM-A') as string, join(site.work, 'rec-old'), 3, new Date(NOW - 280_000)));
  cur = readRecording(await recordFor(site.cameraDirs.get('CAM-A') as string, join(site.work, 'rec-cur'), 4, new Date(NOW - 60_000)));
  nvr = await startNvr(loadNvrConfig(site.writeConfig({ admins: ['ops'], retention: { interval: '1h', cameras: { 'CAM-A': { maxAge: '3m' } } } })), { createDatabase: true });
  const op = join(site.caDir, 'operator.pem');
  cam = await CameraClient.open(nvr.url, site.cameraDirs.get('CAM-A') as string, op);
  admin = await CameraClient.open(nvr.url, join(site.work, 'ops'), op);
  intruder = await CameraClient.open(nvr.url, join(site.work, 'intruder'), op);
});

afterAll(async () => {
  await nvr?.close();
});

describe('NVR admin API', () => {
  it('403 for a device certificate on admin routes, for an administrator on ingest, for an operator certificate not named', async () => {
    for (const [method, path] of [['GET', '/v1/admin/cameras'], ['GET', '/v1/admin/status'], ['GET', '/v1/admin/cameras/CAM-A/timeline'], ['POST', '/v1/admin/locks'], ['DELETE', '/v1/admin/locks/C-1'], ['GET', '/v1/admin/audit']] as const) {
      const r = await cam.send(method, path, method === 'POST' ? JSON.stringify({ camera: 'CAM-A', from: iso(NOW - 1000), to: iso(NOW), case: 'X', reason: 'r' }) : undefined);
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.json()).toEqual({ error: 'forbidden' });
    }
    expect((await admin.send('GET', ingestPath({ kind: 'have', serial: 'CAM-A', session: old.session }))).status).toBe(403);
    expect((await intruder.send('GET', '/v1/admin/cameras')).status).toBe(403);
    expect((await intruder.send('GET', ingestPath({ kind: 'sessions', serial: 'CAM-A' }))).status).toBe(403);
    expect(nvr.ops.locks.all()).toEqual([]);
    // the camera still uploads, the administrator still reads
    expect((await cam.have('CAM-A', old.session)).status).toBe(200);
    expect((await admin.send('GET', '/v1/admin/cameras')).status).toBe(200);
  });

  it('a timeline shows verified, missing, expired, lost and on-camera ranges; the camera list its numbers', async () => {
    // the old session whole; then retention (maxAge 5 minutes) expires it
    expect((await cam.upload(old)).every((s) => s === 201)).toBe(true);
    const run = await nvr.ops.retention?.run('test');
    expect(run?.byReason.age).toBe(old.segments.length);
    // the current session: segments 0 and 1, the records of 2 and 3 without their segments (still on the camera),
    // and instead of the end record a signed lost record: fragments 4–5 (4 s…6 s) overwritten on the camera
    const put = async (kind: 'chain' | 'init' | 'seg' | 'rec', body: Buffer | string, index?: number): Promise<void> => {
      const r = await cam.put('CAM-A', cur.session, kind, body, index);
      expect(r.status, `${kind} ${index ?? ''}: ${r.body}`).toBe(201);
    };
    await put('chain', cur.chain);
    await put('init', cur.init);
    for (let i = 0; i <= 4; i++) await put('rec', cur.records[i] as string, i);
    await put('seg', cur.segments[0] as Buffer, 0);
    await put('seg', cur.segments[1] as Buffer, 1);
    const device = await openDevice(site.cameraDirs.get('CAM-A') as string);
    let lost: string;
    try {
      const prev = cur.records[4] as string;
      const rec = await signRecord({ v: 1, kind: 'lost', session: cur.session, of: cur.session, from: 4, to: 6, start: 4, end: 6, reason: 'buffer-full', counter: (JSON.parse(prev) as { counter: number }).counter + 1, prev: recordHash(JSON.parse(prev) as AnyRecord) }, (d) => device.store.sign(device.config.keyLabel, d));
      lost = canonicalJson(rec);
    } finally {
      await device.close();
    }
    await put('rec', lost, 5);
    // the ring report: fragments 2 and 3 of the current session are on the camera
    expect((await cam.send('PUT', ingestPath({ kind: 'ring', serial: 'CAM-A' }), JSON.stringify({ sessions: { [cur.session]: [[2, 4]] } }))).status).toBe(204);
    expect((await cam.send('PUT', ingestPath({ kind: 'ring', serial: 'CAM-B' }), JSON.stringify({ sessions: {} }))).status).toBe(403);
    expect((await cam.send('PUT', ingestPath({ kind: 'ring', serial: 'CAM-A' }), JSON.stringify({ sessions: { [cur.session]: [[4, 2]] } }))).status).toBe(400);

    const r = await admin.send('GET', `/v1/admin/cameras/CAM-A/timeline?from=${iso(NOW - 300_000)}&to=${iso(NOW)}`);
    expect(r.status, r.body).toBe(200);
    const t = r.json<{ ranges: { state: string; from: string; to: string }[]; locks: unknown[]; totals: Record<string, number> }>();
    const at = (ms: number): string | undefined => t.ranges.find((x) => Date.parse(x.from) <= ms && ms < Date.parse(x.to))?.state;
    const oldStart = NOW - 280_000;
    const curStart = NOW - 60_000;
    expect(at(oldStart - 1000)).toBe('missing');
    expect(at(oldStart + 500)).toBe('expired');
    expect(at(oldStart + 2500)).toBe('expired');
    expect(at(oldStart + 100_000)).toBe('missing');
    expect(at(curStart - 1000)).toBe('missing');
    expect(at(curStart + 500)).toBe('verified');
    expect(at(curStart + 1500)).toBe('verified');
    expect(at(curStart + 2500)).toBe('on-camera');
    expect(at(curStart + 3500)).toBe('on-camera');
    expect(at(curStart + 4500)).toBe('lost');
    expect(at(curStart + 5500)).toBe('lost');
    expect(at(curStart + 7000)).toBe('missing');
    // exact boundaries, from the records
    expect(t.ranges.find((x) => x.state === 'verified')).toEqual({ state: 'verified', from: iso(curStart), to: iso(curStart + 2000) });
    expect(t.ranges.find((x) => x.state === 'on-camera')).toEqual({ state: 'on-camera', from: iso(curStart + 2000), to: iso(curStart + 4000) });
    expect(t.totals['expired']).toBeCloseTo(3, 3);
    expect(t.ranges.every((x, i) => i === 0 || x.from === t.ranges[i - 1]?.to)).toBe(true);

    const cams = (await admin.send('GET', '/v1/admin/cameras')).json<{ cameras: Record<string, unknown>[] }>().cameras;
    expect(cams).toHaveLength(1);
    expect(cams[0]).toMatchObject({ serial: 'CAM-A', segments: 2, latestRecorded: iso(curStart + 2000), verification: { verified: 2, unverified: 0, quarantined: 0 }, lockedRanges: 0 });
    expect(cams[0]?.['bytes']).toBe((cur.segments[0]?.length ?? 0) + (cur.segments[1]?.length ?? 0));
    expect(cams[0]?.['skewMs']).toBeGreaterThanOrEqual(60_000);
    expect(cams[0]?.['uploadLagMs']).toBeGreaterThan(0);
    // the timeline of a window is answered from a few span rows
    expect(nvr.index.sqlite.prepare("SELECT count(*) AS n FROM spans WHERE serial = 'CAM-A'").get()).toEqual({ n: 1 });
  });

  it('locks and unlocks over the API, audited with the administrator\'s certificate; bad requests are 400', async () => {
    const curStart = NOW - 60_000;
    const body = { camera: 'CAM-A', from: iso(curStart), to: iso(curStart + 10_000), case: 'CASE-42', reason: 'vandalism' };
    const made = await admin.send('POST', '/v1/admin/locks', JSON.stringify(body), { 'content-type': 'application/json' });
    expect(made.status, made.body).toBe(201);
    expect(made.json<{ lock: { created_by: string } }>().lock.created_by).toMatch(/^cert:CN=ops sha256:[0-9A-F:a-f]+$/);
    expect((await admin.send('POST', '/v1/admin/locks', JSON.stringify({ ...body, from: 'yesterday' }))).status).toBe(400);
    expect((await admin.send('POST', '/v1/admin/locks', JSON.stringify({ ...body, reason: undefined }))).status).toBe(400);
    const t = (await admin.send('GET', `/v1/admin/cameras/CAM-A/timeline?from=${iso(curStart)}&to=${iso(curStart + 20_000)}`)).json<{ locks: unknown[] }>();
    expect(t.locks).toEqual([{ case: 'CASE-42', from: iso(curStart), to: iso(curStart + 10_000) }]);
    expect((await admin.send('GET', '/v1/admin/locks?camera=CAM-A')).json<{ locks: unknown[] }>().locks).toHaveLength(1);
    expect((await admin.send('DELETE', '/v1/admin/locks/CASE-42?camera=CAM-A', JSON.stringify({})))).toMatchObject({ status: 400 });
    const released = await admin.send('DELETE', '/v1/admin/locks/CASE-42?camera=CAM-A', JSON.stringify({ reason: 'closed' }));
    expect(released.status, released.body).toBe(200);
    expect((await admin.send('DELETE', '/v1/admin/locks/CASE-42', JSON.stringify({ reason: 'again' }))).status).toBe(404);
    const audit = (await admin.send('GET', '/v1/admin/audit')).json<{ verification: { ok: boolean; entries: number }; entries: { entry: { action: string; actor: string } }[] }>();
    expect(audit.verification).toMatchObject({ ok: true, entries: 2 });
    expect(audit.entries.map((e) => e.entry.action)).toEqual(['lock', 'unlock']);
    expect(audit.entries.every((e) => e.entry.actor.startsWith('cert:CN=ops '))).toBe(true);
    const status = (await admin.send('GET', '/v1/admin/status')).json<{ storage: { full: boolean } }>();
    expect(status.storage.full).toBe(false);
  });
});
