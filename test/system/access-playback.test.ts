/**
 * Issue 13 acceptance, end to end with the real services: a camera enrolled at the KMS records under its group's
 * content key, the group is rekeyed, it records under the new key; both sessions reach the NVR over mutual TLS. An
 * investigator logs in at the KMS, gets an access token for the NVR and a ClearKey licence for the KIDs of the NVR's
 * DASH manifest — and ffmpeg decrypts the range, across the key rotation, with exactly the keys the licence returned:
 * frames equal to the source. A viewer without a playback grant gets neither the manifest nor any key, whatever KIDs
 * it asks for, and each decision is in the KMS's audit log.
 */
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { openBrowserSession } from '../../src/access/licence-client.js';
import { recordSession } from '../../src/camera/record.js';
import { ErrorCodes } from '../../src/errors.js';
import type { KmsClient } from '../../src/kms/client.js';
import { loadKmsConfig } from '../../src/kms/config.js';
import { startKms } from '../../src/kms/server.js';
import type { RunningKms } from '../../src/kms/server.js';
import { loadNvrConfig } from '../../src/nvr/config.js';
import { startNvr } from '../../src/nvr/server.js';
import type { RunningNvr } from '../../src/nvr/server.js';
import { openDevice } from '../../src/pki/device.js';
import { toPem } from '../../src/pki/pem.js';
import { createSite } from '../../src/pki/site.js';
import { clip, frameMd5s } from '../helpers/media.js';
import { makeKmsSite } from '../kms/_setup.js';
import type { KmsSite } from '../kms/_setup.js';
import { CameraClient, readRecording } from '../nvr/_setup.js';

const SERIAL = 'CAM-P';
const PASSWORD = 'correct horse battery staple';
let site: KmsSite;
let kms: RunningKms;
let nvr: RunningNvr;
let admin: KmsClient;
let ca: string;
let sourceFrames: string[] = [];
const kids: string[] = [];
const T0 = Math.floor(Date.now() / 1000) * 1000 - 120_000;
const iso = (ms: number): string => new Date(ms).toISOString();

async function get(path: string, token: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, nvr.viewerUrl), { agent: new Agent({ ca }), headers: { authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  site = await makeKmsSite([SERIAL]);
  // no grace after a rotation for live viewers: the live check below is exact
  site.writeConfig(site.port, { batchWindow: '50ms', browser: { host: '127.0.0.1', port: 0 }, nvrs: ['nvr-1'], liveGrace: '0s' });
  kms = await startKms(loadKmsConfig(site.configPath), { createDatabase: true });
  ca = toPem(site.ca.certs.operator.rawData, 'CERTIFICATE');
  // the NVR, from the same operator CA: it takes the KMS's tokens as nvr-1 and names its licence URL in manifests
  await createSite({ out: join(site.work, 'nvr'), ca: site.ca, caKeyStore: await site.ca.openKeyStore(), name: 'localhost', altNames: ['localhost', '127.0.0.1'], keystore: site.spec(join(site.work, 'nvr', 'keys')) });
  const nvrConfig = join(site.work, 'nvr.json');
  writeFileSync(
    nvrConfig,
    JSON.stringify({
      listen: { host: '127.0.0.1', port: 0 },
      identity: 'nvr',
      trust: { root: 'ca/root.pem', factory: 'ca/factory.pem', operator: 'ca/operator.pem' },
      store: 'store',
      database: 'nvr.sqlite',
      freeSpaceFloor: 0,
      viewer: { host: '127.0.0.1', port: 0 },
      kms: { chain: 'kms/chain.pem', name: 'nvr-1', licence: `${kms.browserUrl as string}/v1/licence` },
    }),
  );
  nvr = await startNvr(loadNvrConfig(nvrConfig), { createDatabase: true });

  // the camera enrols, its group is made; it records a session under epoch 1's key, the group is rekeyed, another
  admin = await site.admin(kms.url);
  const cam = await site.camera(kms.url, SERIAL);
  await cam.camera.enrol();
  await admin.json('POST', '/v1/admin/groups', { id: 'yard', members: [SERIAL] });
  const source = await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25 });
  sourceFrames = await frameMd5s(source);
  const device = await openDevice(site.cameraDirs.get(SERIAL) as string);
  const recs: string[] = [];
  try {
    for (let epoch = 1; epoch <= 2; epoch++) {
      if (epoch === 2) await admin.json('POST', '/v1/admin/groups/yard/refresh', {});
      expect((await cam.camera.sync('yard')).epoch).toBe(epoch);
      const k = await cam.camera.currentContentKey('yard');
      kids.push(Buffer.from(k.kid).toString('hex'));
      const out = join(site.work, `rec-${epoch}`);
      await recordSession({ device, source, seconds: 4, out, start: new Date(T0 + (epoch - 1) * 4000), realTime: false, key: { kid: k.kid, key: k.key }, scheme: 'cenc' });
      recs.push(out);
    }
  } finally {
    await device.close();
    await cam.close();
  }
  const up = await CameraClient.open(nvr.url, site.cameraDirs.get(SERIAL) as string, join(site.caDir, 'operator.pem'));
  for (const r of recs) await up.upload(readRecording(r));
  // an investigator with playback of the last day on the group; a viewer with live only
  await admin.json('POST', '/v1/admin/users', { name: 'ivan', role: 'investigator', password: PASSWORD });
  await admin.json('POST', '/v1/admin/users', { name: 'vera', role: 'viewer', password: PASSWORD });
  await admin.json('POST', '/v1/admin/users', { name: 'nils', role: 'investigator', password: PASSWORD });
  await admin.json('POST', '/v1/admin/grants', { user: 'ivan', group: 'yard', rights: ['playback'], lastMs: 86_400_000, caseId: 'CASE-1' });
  await admin.json('POST', '/v1/admin/grants', { user: 'vera', group: 'yard', rights: ['live'], lastMs: 3_600_000 });
}, 240_000);

afterAll(async () => {
  admin?.close();
  await nvr?.close();
  await kms?.close();
});

describe('playback across a key rotation with the keys the licence gives', () => {
  it('the investigator: token, manifest, licence for its KIDs; ffmpeg decrypts each Period to the source frames', async () => {
    const s = await openBrowserSession(kms.browserUrl as string, [ca], 'ivan', PASSWORD);
    const token = await s.token('nvr-1');
    const m = await get(`/v1/cameras/${SERIAL}/manifest.mpd?from=${iso(T0 - 1000)}&to=${iso(T0 + 10_000)}`, token);
    expect(m.status, `${m.body.toString()} ${Buffer.from(token.split('.')[1] as string, 'base64url').toString()}`).toBe(200);
    const xml = m.body.toString();
    expect(xml).toContain(`<dashif:Laurl>${kms.browserUrl as string}/v1/licence</dashif:Laurl>`);
    // the KIDs as the manifest signals them, and a licence for exactly those
    const signalled = [...xml.matchAll(/cenc:default_KID="([0-9a-f-]{36})"/g)].map((x) => (x[1] as string).replace(/-/g, ''));
    expect(signalled).toEqual(kids);
    const licence = await s.licence(signalled.map((k) => Buffer.from(k, 'hex')));
    expect([...licence.keys()]).toEqual(kids);
    const periods = [...xml.matchAll(/<Period [^>]*>[\s\S]*?<\/Period>/g)].map((p) => p[0]);
    expect(periods).toHaveLength(2);
    for (const [i, p] of periods.entries()) {
      const base = /<BaseURL>([^<]+)<\/BaseURL>/.exec(p)?.[1] as string;
      const start = Number(/startNumber="(\d+)"/.exec(p)?.[1]);
      const count = [...p.matchAll(/<S [^>]*?(?: r="(\d+)")?\/>/g)].reduce((n, x) => n + 1 + Number(x[1] ?? 0), 0);
      const parts = [await get(`${base}init.mp4`, token)];
      for (let n = start; n < start + count; n++) parts.push(await get(`${base}${String(n).padStart(6, '0')}.m4s`, token));
      const file = join(site.work, `period-${i}.mp4`);
      writeFileSync(file, Buffer.concat(parts.map((x) => x.body)));
      const key = (licence.get(kids[i] as string) as Buffer).toString('hex');
      expect(await frameMd5s(file, { key, pipe: true })).toEqual([...sourceFrames, ...sourceFrames]);
    }
    await s.logout();
  }, 120_000);

  it('a user without a playback grant: no manifest, and no key for any KID of that camera, whatever it asks for; a live viewer gets the epoch in use only; every decision audited', async () => {
    const n = await openBrowserSession(kms.browserUrl as string, [ca], 'nils', PASSWORD);
    expect((await get(`/v1/cameras/${SERIAL}/manifest.mpd?from=${iso(T0 - 1000)}&to=${iso(T0 + 10_000)}`, await n.token('nvr-1'))).status).toBe(403);
    for (const ask of [[kids[0]], [kids[1]], kids, [...kids, '00'.repeat(16)]] as string[][]) {
      await expect(n.licence(ask.map((k) => Buffer.from(k, 'hex')))).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
    }
    await n.logout();
    const s = await openBrowserSession(kms.browserUrl as string, [ca], 'vera', PASSWORD);
    const token = await s.token('nvr-1');
    expect((await get(`/v1/cameras/${SERIAL}/manifest.mpd?from=${iso(T0 - 1000)}&to=${iso(T0 + 10_000)}`, token)).status).toBe(403);
    // epoch 1's key (not live any more), and both together: refused
    await expect(s.licence([Buffer.from(kids[0] as string, 'hex')])).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
    // live gives the epoch in use only
    const got = await s.licence(kids.map((k) => Buffer.from(k, 'hex')));
    expect([...got.keys()]).toEqual([kids[1]]);
    await s.logout();
    const log = await admin.json<{ entries: { entry: string }[] }>('GET', '/v1/admin/audit?from=1&limit=10000');
    const decisions = log.entries.map((e) => JSON.parse(e.entry) as { actor: string; action: string; detail: { keys?: { kid: string; decision: string }[] } }).filter((e) => e.action.startsWith('licence'));
    expect(decisions.map((d) => `${d.actor} ${d.action} ${(d.detail.keys ?? []).map((k) => `${kids.indexOf(k.kid) + 1}:${k.decision}`).join(',')}`)).toEqual([
      'user:ivan licence 1:released,2:released',
      'user:nils licence-denied 1:denied',
      'user:nils licence-denied 2:denied',
      'user:nils licence-denied 1:denied,2:denied',
      'user:nils licence-denied 1:denied,2:denied,0:denied',
      'user:vera licence-denied 1:denied',
      'user:vera licence 1:denied,2:released',
    ]);
  }, 60_000);
});

describe('a session ended at the KMS', () => {
  it("logout and disabling: the NVR refuses the session's tokens within seconds (the KMS's signed list) and closes its live socket", async () => {
    const path = `/v1/cameras/${SERIAL}/manifest.mpd?from=${iso(T0 - 1000)}&to=${iso(T0 + 10_000)}`;
    const s = await openBrowserSession(kms.browserUrl as string, [ca], 'ivan', PASSWORD);
    const token = await s.token('nvr-1');
    expect((await get(path, token)).status).toBe(200);
    await s.logout();
    // the NVR fetches the list every 2 s; well before the token's 120 s
    const until = Date.now() + 15_000;
    let status = 200;
    while (status !== 401 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 250));
      status = (await get(path, token)).status;
    }
    expect(status).toBe(401);
    // a live viewer's open socket is closed when an administrator disables the account
    const v = await openBrowserSession(kms.browserUrl as string, [ca], 'vera', PASSWORD);
    const live = await v.token('nvr-1');
    const ws = new WebSocket(`${(nvr.viewerUrl as string).replace(/^https/, 'wss')}/v1/cameras/${SERIAL}/live`, ['keyframe-live', `bearer.${live}`], { ca });
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    await new Promise<void>((r, j) => {
      ws.once('open', () => r());
      ws.once('error', j);
    });
    await admin.json('PUT', '/v1/admin/users/vera/disabled', { disabled: true });
    try {
      expect(await closed).toEqual({ code: 4001, reason: 'session ended' });
      expect((await get(`/v1/cameras`, live)).status).toBe(401);
    } finally {
      await admin.json('PUT', '/v1/admin/users/vera/disabled', { disabled: false });
    }
  }, 60_000);
});
