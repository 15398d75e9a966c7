/**
 * The uploader against a real NVR process: the same bytes sent again are acknowledged (200, idempotent); different
 * bytes under a name the NVR holds are refused (409), alarmed and never resent; after an outage the uploader asks
 * the NVR what it holds and sends only the difference.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devicePipelineOptions } from '../../src/camera/device.js';
import { FileSource } from '../../src/camera/file-source.js';
import { runPipeline } from '../../src/camera/pipeline.js';
import { Ring } from '../../src/camera/ring.js';
import { Uploader } from '../../src/camera/uploader.js';
import type { HaveAnswer } from '../../src/nvr/protocol.js';
import { openDevice } from '../../src/pki/device.js';
import { parseCertificates } from '../../src/pki/pem.js';
import { loadTlsIdentity, tlsClientOptions } from '../../src/pki/tls.js';
import { clip } from '../helpers/media.js';
import { startService, type ServiceProcess } from '../helpers/service.js';
import { CameraClient, initNvrHome, makeNvrSite, PIN_ENV, type NvrSite } from '../nvr/_setup.js';

let site: NvrSite;
let nvr: ServiceProcess | undefined;
const env = (): NodeJS.ProcessEnv => ({ KEYFRAME_KEYSTORE_PIN: 'nvr identity passphrase', [PIN_ENV]: process.env[PIN_ENV] ?? '' });

beforeAll(async () => {
  site = await makeNvrSite(['CAM-UP-1']);
  const home = await initNvrHome(site, env());
  nvr = await startService(['nvr', 'serve', '--config', home.config], env());
}, 240_000);

afterAll(async () => {
  await nvr?.stop('SIGKILL');
  await site.caStore.close();
  rmSync(site.work, { recursive: true, force: true });
});

describe('uploader', () => {
  it('an identical object again is 200 (idempotent); different bytes under a used name is 409: alarm, never resent; have after an outage sends only the difference', async () => {
    const camDir = site.cameraDirs.get('CAM-UP-1') as string;
    const op = join(site.caDir, 'operator.pem');
    const ring = await Ring.open(join(site.work, 'ring'), 64 << 20);
    const alarms: string[] = [];
    const events: { event: string; fields: Record<string, unknown> }[] = [];
    const tls = await tlsClientOptions(loadTlsIdentity(camDir), { roots: parseCertificates(readFileSync(op), op) }, 'localhost');
    const up = new Uploader({ url: nvr?.url as string, tls, serial: 'CAM-UP-1', ring, backfillBytesPerSecond: 10_000_000, onAlarm: (d) => alarms.push(d), onEvent: (event, fields) => events.push({ event, fields }) });
    // connected, nothing to send yet
    expect(await up.drain(Date.now() + 10_000)).toBe(true);
    const device = await openDevice(camDir);
    const source = await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25 });
    const src = new FileSource({ path: source, fps: 25, frames: 100, realTime: false, start: new Date(Math.floor(Date.now() / 1000) * 1000 - 30_000) });
    const [s] = await runPipeline(src.events(new AbortController().signal), ring, devicePipelineOptions(device, {}));
    await device.close();
    const session = s?.session as string;
    expect(s?.fragments).toBe(4);
    // meanwhile the NVR got the session's start, and fragment 1's bytes under fragment 0's name
    const cam = await CameraClient.open(nvr?.url as string, camDir, op);
    const read = async (o: Parameters<Ring['read']>[0]): Promise<Buffer> => (await ring.read(o)) as Buffer;
    expect((await cam.put('CAM-UP-1', session, 'chain', await read({ session, kind: 'chain' }))).status).toBe(201);
    expect((await cam.put('CAM-UP-1', session, 'init', await read({ session, kind: 'init' }))).status).toBe(201);
    expect((await cam.put('CAM-UP-1', session, 'rec', await read({ session, kind: 'rec', index: 0 }), 0)).status).toBe(201);
    expect((await cam.put('CAM-UP-1', session, 'seg', await read({ session, kind: 'seg', index: 1 }), 0)).status).toBe(201);

    expect(await up.drain(Date.now() + 60_000)).toBe(true);
    const status = (o: string): unknown => events.find((e) => e.event === 'uploaded' && e.fields['object'] === `${session}/${o}`)?.fields['status'];
    // the live session's objects went without a have (no outage): the same bytes again are 200
    expect(events.some((e) => e.event === 'have')).toBe(false);
    expect([status('chain'), status('init'), status('rec/0')]).toEqual([200, 200, 200]);
    expect(status('seg/3')).toBe(201);
    // different bytes under a used name: 409, an alarm, not uploaded, never resent
    expect(status('seg/0')).toBeUndefined();
    expect(alarms[0]).toMatch(new RegExp(`refused ${session}/seg/0 with 409`));
    const refused = up.status().refused;
    expect(refused).toBeGreaterThanOrEqual(1);
    expect(ring.pending(session)).toEqual([]);
    expect(await up.drain(Date.now() + 5_000)).toBe(true);
    expect(up.status().refused).toBe(refused);
    up.close();

    // an outage: the acknowledgements are lost (a fresh ring index), the NVR is asked what it holds, nothing is resent
    rmSync(join(ring.dir, readdirSync(ring.dir).find((n) => n.endsWith(session)) as string, 'uploaded.log'));
    await ring.close();
    const again = await Ring.open(join(site.work, 'ring'), 64 << 20);
    expect(again.pending(session).length).toBeGreaterThan(10);
    const events2: string[] = [];
    const up2 = new Uploader({ url: nvr?.url as string, tls, serial: 'CAM-UP-1', ring: again, backfillBytesPerSecond: 10_000_000, onEvent: (event) => events2.push(event) });
    expect(await up2.drain(Date.now() + 30_000)).toBe(true);
    up2.close();
    // after the have round only the ring report (informational) goes out: nothing is resent
    expect(events2.filter((e) => e !== 'ring-report')).toEqual(['have']);
    expect(again.pending(session)).toEqual([]);
    const have = (await cam.have('CAM-UP-1', session)).json<HaveAnswer>();
    expect(have).toMatchObject({ chain: true, init: true, ended: true, segments: [[0, 4]] });
    await again.close();
  });
});
