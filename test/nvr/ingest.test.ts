/**
 * The NVR's ingest over real mutual TLS, in process: a genuine recording uploaded object by object is stored,
 * indexed, and — with its records materialised — verifies AUTHENTIC offline; retries, conflicts, tampering,
 * replays, order and identity are answered as src/nvr/protocol.ts says.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revoke } from '../../src/pki/ca.js';
import { loadNvrConfig } from '../../src/nvr/config.js';
import { exportSession } from '../../src/nvr/ingest.js';
import { ingestPath } from '../../src/nvr/protocol.js';
import { startNvr, type RunningNvr } from '../../src/nvr/server.js';
import { verifyEvidence } from '../../src/recording/evidence.js';
import { parseCertificates } from '../../src/pki/pem.js';
import { openDevice } from '../../src/pki/device.js';
import { canonicalJson, recordHash, signRecord, type AnyRecord } from '../../src/recording/records.js';
import { CameraClient, makeNvrSite, readRecording, recordFor, type NvrSite, type Recording } from './_setup.js';

let site: NvrSite;
let nvr: RunningNvr;
let a: Recording;
let a2: Recording;
let b: Recording;
let camA: CameraClient;
let camB: CameraClient;

beforeAll(async () => {
  site = await makeNvrSite(['CAM-A', 'CAM-B', 'CAM-R', 'CAM-K']);
  a = readRecording(await recordFor(site.cameraDirs.get('CAM-A') as string, join(site.work, 'rec-a'), 3, new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000)));
  // a later session of the same camera (starts 10 s after the first)
  const a2Start = new Date(Math.floor(Date.now() / 1000) * 1000 - 50_000);
  a2 = readRecording(await recordFor(site.cameraDirs.get('CAM-A') as string, join(site.work, 'rec-a2'), 3, a2Start));
  b = readRecording(await recordFor(site.cameraDirs.get('CAM-B') as string, join(site.work, 'rec-b')));
  nvr = await startNvr(loadNvrConfig(site.configPath), { createDatabase: true });
  const op = join(site.caDir, 'operator.pem');
  camA = await CameraClient.open(nvr.url, site.cameraDirs.get('CAM-A') as string, op);
  camB = await CameraClient.open(nvr.url, site.cameraDirs.get('CAM-B') as string, op);
});

afterAll(async () => {
  await nvr?.close();
});

describe('NVR ingest', () => {
  it('stores a genuine recording uploaded object by object; materialised, it verifies AUTHENTIC offline', async () => {
    expect(a.segments.length).toBeGreaterThanOrEqual(3);
    const statuses = await camA.upload(a);
    expect(statuses.every((s) => s === 201), statuses.join(',')).toBe(true);
    const have = (await camA.have('CAM-A', a.session)).json<{ chain: boolean; init: boolean; segments: number[][]; records: number[][]; ended: boolean }>();
    expect(have).toEqual({ session: a.session, chain: true, init: true, segments: [[0, a.segments.length]], records: [[0, a.records.length]], ended: true });
    const segs = nvr.index.segments('CAM-A', a.session);
    expect(segs.map((s) => s.state)).toEqual(a.segments.map(() => 'verified'));
    const s0 = nvr.index.session('CAM-A', a.session);
    expect(s0?.verified).toBe(1);
    // wall times computed from the session start, and the receipt skew kept
    expect(segs[1]?.wall_start).toBe((s0?.start_ms ?? 0) + (segs[1]?.media_start ?? 0) * 1000);
    expect(segs[1]?.skew_ms).toBeGreaterThan(0);
    expect(s0?.skew_ms).toBeGreaterThanOrEqual(60_000);
    // the stored files are the camera's bytes
    expect(readFileSync(nvr.store.path('CAM-A', a.session, 'seg', 1)).equals(a.segments[1] as Buffer)).toBe(true);
    const out = join(site.work, 'export-a');
    await exportSession(nvr.index, nvr.store, 'CAM-A', a.session, out);
    const root = parseCertificates(readFileSync(join(site.caDir, 'root.pem')), 'root');
    const report = await verifyEvidence(out, { roots: root });
    expect(report.verdict, JSON.stringify(report, null, 1).slice(0, 2000)).toBe('AUTHENTIC');
  });

  it('answers an identical retry 200 and different bytes under a used name 409, with an alarm', async () => {
    const before = nvr.index.counts().conflicts;
    expect((await camA.put('CAM-A', a.session, 'seg', a.segments[0] as Buffer, 0)).status).toBe(200);
    expect((await camA.put('CAM-A', a.session, 'rec', a.records[1] as string, 1)).status).toBe(200);
    expect((await camA.put('CAM-A', a.session, 'chain', a.chain)).status).toBe(200);
    expect((await camA.put('CAM-A', a.session, 'seg', a.segments[1] as Buffer, 0)).status).toBe(409);
    expect((await camA.put('CAM-A', a.session, 'rec', a.records[2] as string, 1)).status).toBe(409);
    expect(nvr.index.counts().conflicts).toBe(before + 2);
    expect(nvr.ingest.conflicts).toBeGreaterThanOrEqual(2);
    expect(readFileSync(nvr.store.path('CAM-A', a.session, 'seg', 0)).equals(a.segments[0] as Buffer)).toBe(true);
  });

  it('quarantines a segment with a flipped bit (422) and flags it, whichever of segment and record comes first', async () => {
    await camB.put('CAM-B', b.session, 'chain', b.chain);
    await camB.put('CAM-B', b.session, 'init', b.init);
    expect((await camB.put('CAM-B', b.session, 'rec', b.records[0] as string, 0)).status).toBe(201);
    // record first, then the flipped segment: 422 at once
    expect((await camB.put('CAM-B', b.session, 'rec', b.records[1] as string, 1)).status).toBe(201);
    const bad = Buffer.from(b.segments[0] as Buffer);
    bad[bad.length - 10] = (bad[bad.length - 10] as number) ^ 0x01;
    const r = await camB.put('CAM-B', b.session, 'seg', bad, 0);
    expect(r.status).toBe(422);
    expect(nvr.index.segment('CAM-B', b.session, 0)?.state).toBe('quarantined');
    // segment first (pending-record), then its record: moved to quarantine then
    const bad1 = Buffer.from(b.segments[1] as Buffer);
    bad1[200] = (bad1[200] as number) ^ 0x80;
    expect((await camB.put('CAM-B', b.session, 'seg', bad1, 1)).status).toBe(201);
    expect(nvr.index.segment('CAM-B', b.session, 1)?.state).toBe('pending-record');
    expect((await camB.put('CAM-B', b.session, 'rec', b.records[2] as string, 2)).status).toBe(201);
    expect(nvr.index.segment('CAM-B', b.session, 1)?.state).toBe('quarantined');
    expect(existsSync(nvr.store.path('CAM-B', b.session, 'seg', 1))).toBe(false);
    const q = nvr.index.quarantined().filter((x) => x.serial === 'CAM-B' && x.kind === 'seg');
    expect(q.map((x) => x.idx).sort()).toEqual([0, 1]);
    for (const x of q) expect(existsSync(join(nvr.store.root, x.path))).toBe(true);
    // the genuine bytes may still replace a quarantined segment
    expect((await camB.put('CAM-B', b.session, 'seg', b.segments[0] as Buffer, 0)).status).toBe(201);
    expect(nvr.index.segment('CAM-B', b.session, 0)?.state).toBe('verified');
  });

  it('refuses or quarantines a segment replayed from another session, and a record from another session', async () => {
    for (const [k, body, i] of [['chain', a2.chain], ['init', a2.init], ['rec', a2.records[0], 0], ['rec', a2.records[1], 1]] as const) {
      expect((await camA.put('CAM-A', a2.session, k, body as string | Buffer, i)).status).toBe(201);
    }
    // segment 0 of session a under session a2's name: its record there signs other bytes
    expect((await camA.put('CAM-A', a2.session, 'seg', a.segments[0] as Buffer, 0)).status).toBe(422);
    // a's record 2 (signed, but for session a) as a2's record 2
    expect((await camA.put('CAM-A', a2.session, 'rec', a.records[2] as string, 2)).status).toBe(422);
    expect(nvr.index.record('CAM-A', a2.session, 2)?.state).toBe('quarantined');
  });

  it('lists a camera\'s sessions newest first, paged', async () => {
    const all = (await camA.send('GET', '/ingest/v1/CAM-A/sessions')).json<{ sessions: { session: string; start: string; ended: boolean }[]; more: boolean }>();
    expect(all.sessions.map((s) => s.session)).toEqual([a2.session, a.session]);
    expect(all.more).toBe(false);
    expect(all.sessions[1]?.ended).toBe(true);
    const page = (await camA.send('GET', '/ingest/v1/CAM-A/sessions?limit=1')).json<{ sessions: { session: string; start: string }[]; more: boolean }>();
    expect(page).toMatchObject({ more: true, sessions: [{ session: a2.session }] });
    const next = (await camA.send('GET', `/ingest/v1/CAM-A/sessions?limit=1&before=${encodeURIComponent(page.sessions[0]?.start ?? '')}`)).json<{ sessions: { session: string }[]; more: boolean }>();
    expect(next).toMatchObject({ more: false, sessions: [{ session: a.session }] });
    expect((await camB.send('GET', '/ingest/v1/CAM-A/sessions')).status).toBe(403);
  });

  it("refuses another camera's name (403), and segments and records before the session record (412)", async () => {
    expect((await camB.put('CAM-A', a.session, 'seg', a.segments[0] as Buffer, 0)).status).toBe(403);
    expect((await camB.put('CAM-A', '0123456789abcdef0123456789abcdef', 'chain', b.chain)).status).toBe(403);
    expect((await camB.have('CAM-A', a.session)).status).toBe(403);
    const fresh = '00112233445566778899aabbccddeeff';
    expect((await camB.put('CAM-B', fresh, 'seg', b.segments[0] as Buffer, 0)).status).toBe(412);
    expect((await camB.put('CAM-B', fresh, 'rec', b.records[1] as string, 1)).status).toBe(412);
    expect((await camB.put('CAM-B', fresh, 'rec', b.records[0] as string, 0)).status).toBe(412);
    // the chain of another camera under one's own serial: quarantined
    expect((await camB.put('CAM-B', fresh, 'chain', a.chain)).status).toBe(422);
    expect((await camB.send('PUT', '/ingest/v1/CAM-B/nothex/chain', b.chain)).status).toBe(400);
    expect((await camB.send('PUT', `/ingest/v1/CAM-B/${fresh}/seg/01`, b.chain)).status).toBe(400);
  });

  it('takes a segment streamed chunked without Content-Length or Content-Type, hashing it as it arrives', async () => {
    const r = await camB.putChunked(ingestPath({ kind: 'seg', serial: 'CAM-B', session: b.session, index: 2 }), b.segments[2] as Buffer);
    expect(r.status, r.body).toBe(201);
    expect((await camB.put('CAM-B', b.session, 'rec', b.records[3] as string, 3)).status).toBe(201);
    expect(nvr.index.segment('CAM-B', b.session, 2)?.state).toBe('verified');
    expect(readFileSync(nvr.store.path('CAM-B', b.session, 'seg', 2)).equals(b.segments[2] as Buffer)).toBe(true);
  });

  it('indexes the range a signed lost record declares, and quarantines one signed by another camera', async () => {
    const prev = b.records[3] as string;
    const lostFor = async (serial: string, prevText: string): Promise<string> => {
      const device = await openDevice(site.cameraDirs.get(serial) as string);
      try {
        const p = JSON.parse(prevText) as { counter: number };
        const rec = await signRecord({ v: 1, kind: 'lost', session: b.session, of: b.session, from: 7, to: 9, start: 7, end: 9, reason: 'buffer-full', counter: p.counter + 1, prev: recordHash(JSON.parse(prevText) as AnyRecord) }, (d) => device.store.sign(device.config.keyLabel, d));
        return canonicalJson(rec);
      } finally {
        await device.close();
      }
    };
    const lost = await lostFor('CAM-B', prev);
    expect((await camB.put('CAM-B', b.session, 'rec', lost, 4)).status).toBe(201);
    expect(nvr.index.lost('CAM-B')).toEqual([{ serial: 'CAM-B', session: b.session, record_idx: 4, of_session: b.session, from_seq: 7, to_seq: 9, media_start: 7, media_end: 9 }]);
    expect(nvr.index.record('CAM-B', b.session, 4)?.chain_linked).toBe(1);
    // the same record signed by CAM-A's key, as record 5 of CAM-B's session: its signature fails
    const forged = await lostFor('CAM-A', lost);
    expect((await camB.put('CAM-B', b.session, 'rec', forged, 5)).status).toBe(422);
    expect(nvr.index.record('CAM-B', b.session, 5)?.state).toBe('quarantined');
  });

  it('answers 413 above the object limit without storing anything', async () => {
    const big = Buffer.alloc(70 * 1024, 1);
    expect((await camB.put('CAM-B', b.session, 'rec', big.toString('latin1'), 9)).status).toBe(413);
    expect(nvr.index.record('CAM-B', b.session, 9)).toBeUndefined();
  });

  it('refuses a camera revoked after start within the CRL check interval, without a restart', async () => {
    const op = join(site.caDir, 'operator.pem');
    const camR = await CameraClient.open(nvr.url, site.cameraDirs.get('CAM-R') as string, op);
    const fresh = 'ffeeddccbbaa99887766554433221100';
    expect((await camR.have('CAM-R', fresh)).status).toBe(200);
    await revoke(site.ca, { deviceSerial: 'CAM-R', reason: 'keyCompromise' });
    await site.publishCrls();
    const t0 = Date.now();
    let status = 200;
    while (Date.now() - t0 < 30_000) {
      try {
        status = (await camR.have('CAM-R', fresh)).status;
      } catch {
        status = -1; // refused in the handshake
      }
      if (status !== 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect([403, -1]).toContain(status);
    expect(Date.now() - t0).toBeLessThan(30_000);
    // the others still get in
    expect((await camA.have('CAM-A', a.session)).status).toBe(200);
  });

  it('refuses a revoked camera on a connection it already holds (keep-alive), without a restart', async () => {
    const { Agent } = await import('node:https');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const camK = await CameraClient.open(nvr.url, site.cameraDirs.get('CAM-K') as string, join(site.caDir, 'operator.pem'), agent);
    const fresh = '0f0e0d0c0b0a09080706050403020100';
    expect((await camK.have('CAM-K', fresh)).status).toBe(200);
    // one connection, kept open: the handshake that admitted CAM-K is not repeated
    expect(Object.values(agent.freeSockets).flat().length).toBe(1);
    await revoke(site.ca, { deviceSerial: 'CAM-K', reason: 'keyCompromise' });
    await site.publishCrls();
    const t0 = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - t0 < 30_000) {
      status = (await camK.have('CAM-K', fresh)).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 100));
    }
    // refused on that same connection (a refusal in a new handshake would have thrown)
    expect(status).toBe(403);
    agent.destroy();
  });

  it("flags a camera clock 10 minutes ahead: the session is stored, the skew kept and alarmed", async () => {
    const ahead = readRecording(await recordFor(site.cameraDirs.get('CAM-B') as string, join(site.work, 'rec-ahead'), 2, new Date(Math.floor(Date.now() / 1000) * 1000 + 600_000)));
    const statuses = await camB.upload(ahead);
    expect(statuses.every((s) => s === 201), statuses.join(',')).toBe(true);
    const s = nvr.index.session('CAM-B', ahead.session);
    expect(s?.skew_ms).toBeLessThan(-590_000);
    expect(nvr.index.alarms().filter((x) => x.kind === 'skew').map((x) => x.session)).toEqual([ahead.session]);
    expect(nvr.index.segment('CAM-B', ahead.session, 0)?.skew_ms).toBeLessThan(-590_000);
  });

  it('settles at start a segment left awaiting a record the index holds (killed between the two commits)', async () => {
    // a separate store: CAM-A's first session uploaded, then two segments put back as a crash would leave them
    mkdirSync(join(site.work, 'crash'), { recursive: true });
    const cfg = loadNvrConfig(site.writeConfig({ store: 'crash/store', database: 'crash/nvr.sqlite' }));
    try {
      let n = await startNvr(cfg, { createDatabase: true });
      const cam = await CameraClient.open(n.url, site.cameraDirs.get('CAM-A') as string, join(site.caDir, 'operator.pem'));
      expect((await cam.upload(a)).every((x) => x === 201)).toBe(true);
      n.index.sql.prepare("UPDATE segments SET state = 'pending-record', wall_start = NULL, wall_end = NULL WHERE serial = 'CAM-A' AND session = ? AND seq IN (0, 2)").run(a.session);
      await n.close();
      n = await startNvr(cfg, {});
      try {
        for (const seq of [0, 1, 2]) expect(n.index.segment('CAM-A', a.session, seq)).toMatchObject({ state: 'verified' });
        expect(n.index.segment('CAM-A', a.session, 2)?.wall_start).not.toBeNull();
      } finally {
        await n.close();
      }
    } finally {
      site.writeConfig();
    }
  });

  it('answers 507 when free space falls below the floor, and stores nothing', async () => {
    mkdirSync(join(site.work, 'full'), { recursive: true });
    const cfg = loadNvrConfig(site.writeConfig({ store: 'full/store', database: 'full/nvr.sqlite', freeSpaceFloor: Number.MAX_SAFE_INTEGER }));
    const full = await startNvr(cfg, { createDatabase: true });
    try {
      const cam = await CameraClient.open(full.url, site.cameraDirs.get('CAM-A') as string, join(site.caDir, 'operator.pem'));
      expect((await cam.put('CAM-A', a.session, 'chain', a.chain)).status).toBe(507);
      expect(full.index.session('CAM-A', a.session)).toBeUndefined();
    } finally {
      await full.close();
      site.writeConfig();
    }
  });
});
