/**
 * The uploader's ring report (src/camera/uploader.ts, PUT /ingest/v1/{serial}/ring) against a real NVR over mutual
 * TLS: a ring holding a recorded session of which the NVR has only the start and fragment 0 — after its `have`
 * round the uploader reports fragments 1… as held and not acknowledged, and the NVR's admin timeline shows them
 * as "on-camera" (backfill throttled to a byte a second: nothing else reaches the NVR meanwhile).
 */
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ring } from '../../src/camera/ring.js';
import { Uploader } from '../../src/camera/uploader.js';
import { readRoots, servername } from '../../src/kms/open.js';
import { loadNvrConfig } from '../../src/nvr/config.js';
import { startNvr, type RunningNvr } from '../../src/nvr/server.js';
import { createSite } from '../../src/pki/site.js';
import { loadTlsIdentity, tlsClientOptions } from '../../src/pki/tls.js';
import { CameraClient, PIN_ENV, makeNvrSite, readRecording, recordFor, type NvrSite } from '../nvr/_setup.js';

let site: NvrSite;
let nvr: RunningNvr;
const iso = (ms: number): string => new Date(ms).toISOString();

beforeAll(async () => {
  site = await makeNvrSite(['CAM-R']);
  await createSite({ out: join(site.work, 'ops'), ca: site.ca, caKeyStore: site.caStore, name: 'ops', altNames: ['localhost'], clientAuth: true, keystore: `file:${join(site.work, 'ops', 'keys')};pin-env=${PIN_ENV}` });
  nvr = await startNvr(loadNvrConfig(site.writeConfig({ admins: ['ops'] })), { createDatabase: true });
}, 240_000);

afterAll(async () => {
  await nvr?.close();
  await site?.caStore.close();
});

describe('the ring report', () => {
  it("is sent after the uploader's have round; the NVR's timeline shows the unacknowledged fragments on the camera", async () => {
    const camDir = site.cameraDirs.get('CAM-R') as string;
    const start = Math.floor(Date.now() / 1000) * 1000 - 30_000;
    const tmp = await recordFor(camDir, join(site.work, 'rec'), 4, new Date(start));
    const rec = readRecording(tmp);
    expect(rec.segments.length).toBe(4);
    const op = join(site.caDir, 'operator.pem');
    // the NVR holds the session's start, its records and fragment 0
    const cam = await CameraClient.open(nvr.url, camDir, op);
    for (const [kind, body] of [['chain', rec.chain], ['init', rec.init]] as const) expect((await cam.put('CAM-R', rec.session, kind, body)).status).toBe(201);
    for (let i = 0; i < rec.records.length; i++) expect((await cam.put('CAM-R', rec.session, 'rec', rec.records[i] as string, i)).status).toBe(201);
    expect((await cam.put('CAM-R', rec.session, 'seg', rec.segments[0] as Buffer, 0)).status).toBe(201);
    const admin = await CameraClient.open(nvr.url, join(site.work, 'ops'), op);
    const timeline = async (): Promise<{ state: string; from: string; to: string }[]> => {
      const r = await admin.send('GET', `/v1/admin/cameras/CAM-R/timeline?from=${iso(start - 1000)}&to=${iso(start + 5000)}`);
      expect(r.status, r.body).toBe(200);
      return r.json<{ ranges: { state: string; from: string; to: string }[] }>().ranges;
    };
    // no report yet: fragments 1–3 are missing
    expect((await timeline()).find((x) => x.state === 'missing' && Date.parse(x.from) <= start + 1500 && start + 1500 < Date.parse(x.to))).toBeDefined();

    // the camera's ring holds the whole session (as after a restart)
    const ringDir = join(site.work, 'ring');
    const ring = await Ring.open(ringDir, 64 << 20);
    await ring.close();
    renameSync(tmp, join(ringDir, `000001-${rec.session}`));
    const reopened = await Ring.open(ringDir, 64 << 20);
    const events: { event: string; fields: Record<string, unknown> }[] = [];
    const uploader = new Uploader({
      url: nvr.url,
      tls: await tlsClientOptions(loadTlsIdentity(camDir), { roots: readRoots(op) }, servername(nvr.url)),
      serial: 'CAM-R',
      ring: reopened,
      backfillBytesPerSecond: 1,
      ringReportMs: 500,
      onEvent: (event, fields) => events.push({ event, fields }),
    });
    const stop = new AbortController();
    const running = uploader.run(stop.signal);
    try {
      const until = Date.now() + 60_000;
      while (!events.some((e) => e.event === 'ring-report')) {
        if (Date.now() > until) throw new Error(`no ring report: ${JSON.stringify(events)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      // the have round marked what the NVR holds; the rest is reported
      expect(events.find((e) => e.event === 'have')?.fields).toMatchObject({ session: rec.session, pending: 3 });
      expect(events.find((e) => e.event === 'ring-report')?.fields).toMatchObject({ status: 204, sessions: 1, ranges: 1 });
      expect(uploader.ringReport()).toEqual({ sessions: { [rec.session]: [[1, 4]] } });
      const t = await timeline();
      expect(t.find((x) => x.state === 'verified')).toEqual({ state: 'verified', from: iso(start), to: iso(start + 1000) });
      expect(t.find((x) => x.state === 'on-camera')).toEqual({ state: 'on-camera', from: iso(start + 1000), to: iso(start + 4000) });
      // sent again while connected
      const until2 = Date.now() + 30_000;
      while (events.filter((e) => e.event === 'ring-report').length < 2) {
        if (Date.now() > until2) throw new Error('the ring report was not repeated');
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(events.some((e) => e.event === 'uploaded')).toBe(false);
    } finally {
      stop.abort();
      await running;
      uploader.close();
      await reopened.close();
    }
  }, 240_000);
});
