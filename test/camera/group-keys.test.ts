/**
 * The pipeline under a real KMS's group keys (in-process KMS, real mutual TLS, cameras with their own key stores):
 * a member removed mid-recording rekeys the group; GroupKeyProvider follows by long poll and the fragments after
 * the rekey carry the new KID; the removed camera holds no key for it; the KMS releases both keys and the session
 * decrypts with them to the source frames. With the KMS gone, the provider keeps the last key and raises its alarm.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devicePipelineOptions } from '../../src/camera/device.js';
import { FileSource } from '../../src/camera/file-source.js';
import type { GroupKeyCamera } from '../../src/camera/group-key.js';
import { GroupKeyProvider } from '../../src/camera/keys.js';
import { runPipeline } from '../../src/camera/pipeline.js';
import { Ring } from '../../src/camera/ring.js';
import type { KmsClient } from '../../src/kms/client.js';
import { loadKmsConfig } from '../../src/kms/config.js';
import { startKms, type RunningKms } from '../../src/kms/server.js';
import { openDevice } from '../../src/pki/device.js';
import { verifyEvidence } from '../../src/recording/evidence.js';
import { INIT_FILE, RECORDS_FILE, segmentName } from '../../src/recording/layout.js';
import { runCli } from '../helpers/cli.js';
import { clip, decodedFrameMd5s, frameMd5s } from '../helpers/media.js';
import { makeKmsSite, type KmsSite } from '../kms/_setup.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const records = (dir: string): Record<string, unknown>[] =>
  readFileSync(join(dir, RECORDS_FILE), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
let site: KmsSite;
let kms: RunningKms | undefined;
let admin: KmsClient;
const cams = new Map<string, { camera: GroupKeyCamera; close(): Promise<void> }>();
const cam = (s: string): GroupKeyCamera => (cams.get(s) as { camera: GroupKeyCamera }).camera;

beforeAll(async () => {
  site = await makeKmsSite(['CAM-A', 'CAM-B']);
  site.writeConfig(site.port, { batchWindow: '100ms' });
  kms = await startKms(loadKmsConfig(site.configPath), { refreshTickMs: 200, createDatabase: true });
  admin = await site.admin(kms.url);
  for (const s of ['CAM-A', 'CAM-B']) {
    cams.set(s, await site.camera(kms.url, s));
    await cam(s).enrol();
  }
  await admin.json('POST', '/v1/admin/groups', { id: 'lobby', members: ['CAM-A', 'CAM-B'], leader: 'CAM-A' });
}, 240_000);

afterAll(async () => {
  for (const c of cams.values()) await c.close();
  admin?.close();
  await kms?.close();
  rmSync(site.work, { recursive: true, force: true });
});

describe('group keys in the pipeline', () => {
  it('a member removed mid-recording: the fragments after the rekey carry the new KID, the removed camera cannot open them, both keys decrypt to the source', async () => {
    const alarms: string[] = [];
    const provider = new GroupKeyProvider({ camera: cam('CAM-A'), group: 'lobby', waitMs: 2_000, retryMs: 200, alarmAfterMs: 1_000, onAlarm: (raised, d) => void (raised && alarms.push(d)) });
    const first = await provider.start();
    expect(first.epoch).toBe(1);
    await cam('CAM-B').sync('lobby');
    const stop = new AbortController();
    const following = provider.run(stop.signal);
    const device = await openDevice(site.cameraDirs.get('CAM-A') as string);
    const ringDir = join(site.work, 'ring');
    const ring = await Ring.open(ringDir, 64 << 20);
    const source = await clip({ width: 320, height: 240, fps: 25, seconds: 4, gop: 25 });
    let removed: Promise<unknown> | undefined;
    const changed = new Promise<void>((r) => provider.onChange(() => r()));
    // paced in real time: 6 s, the member removed after the second fragment
    const src = new FileSource({ path: source, fps: 25, frames: 150, realTime: true, start: new Date(Date.now() - 1_000) });
    const [s] = await runPipeline(
      src.events(new AbortController().signal),
      ring,
      devicePipelineOptions(device, {
        keys: provider,
        onFragment: (f) => {
          if (f.seq === 1) removed = admin.json('DELETE', '/v1/admin/groups/lobby/members/CAM-B');
        },
      }),
    );
    await removed;
    await changed;
    await ring.close();
    await device.close();
    const second = provider.current();
    expect(second.epoch).toBeGreaterThan(1);
    expect(s?.kids).toEqual([hex(first.kid), hex(second.kid)]);
    // the removed camera: told it is out, and its keys are not the new one
    const b = await cam('CAM-B').sync('lobby');
    expect(b.status).toBe('removed');
    expect(hex((await cam('CAM-B').currentContentKey('lobby')).kid)).not.toBe(hex(second.kid));
    // the KMS releases both keys by KID (to an administrator granted them); with them the session decrypts to the
    // source frames and verifies
    await admin.json('POST', '/v1/admin/grants', { certificate: 'ops', group: 'lobby', rights: ['playback'], lastMs: 100 * 365 * 86_400_000 });
    const keys = await Promise.all([first, second].map((k) => admin.json<{ key: string }>('POST', '/v1/admin/content-key', { kid: hex(k.kid) })));
    expect(keys.map((k) => k.key)).toEqual([hex(first.key), hex(second.key)]);
    const dir = join(ringDir, readdirSync(ringDir).find((n) => n.endsWith(s?.session as string)) as string);
    const out = join(site.work, 'clear.mp4');
    const r = await runCli(['decrypt', dir, '--out', out, ...[first, second].flatMap((k) => ['--key', `${hex(k.kid)}:${hex(k.key)}`])]);
    expect(r.code, r.stderr).toBe(0);
    const sourceFrames = await frameMd5s(source);
    expect(await frameMd5s(out)).toEqual([...sourceFrames, ...sourceFrames.slice(0, 50)]);
    expect((await verifyEvidence(dir, { roots: [site.ca.certs.root] })).verdict).toBe('AUTHENTIC');
    // cbcs (the default) across the rotation, with ffmpeg itself: each epoch's part of the session (the init segment
    // and that epoch's fragments, byte for byte what an export of it holds) decrypts with its key to the source
    // pictures; with the key the removed camera still holds, the later part is garbage. (ffmpeg takes one key, and
    // Debian 12's ffmpeg 5.1 can misapply CENC sample information across fragments after a seek, so each part is
    // given to it on its own, through a pipe.)
    const looped = [...sourceFrames, ...sourceFrames.slice(0, 50)];
    const kidOf = records(dir).filter((x) => x['kind'] === undefined).map((x) => x['kid']);
    const rotatedAt = kidOf.indexOf(hex(second.kid));
    expect(rotatedAt).toBeGreaterThanOrEqual(2);
    expect(kidOf.slice(rotatedAt).every((k) => k === hex(second.kid))).toBe(true);
    const split = rotatedAt * 25;
    const part = (from: number, to: number): Buffer => Buffer.concat([readFileSync(join(dir, INIT_FILE)), ...Array.from({ length: to - from }, (_, k) => readFileSync(join(dir, segmentName(from + k))))]);
    expect(await decodedFrameMd5s(hex(first.key), part(0, rotatedAt))).toEqual(looped.slice(0, split));
    expect(await decodedFrameMd5s(hex(second.key), part(rotatedAt, kidOf.length))).toEqual(looped.slice(split));
    const held = await cam('CAM-B').currentContentKey('lobby');
    const withRemoved = await decodedFrameMd5s(hex(held.key), part(rotatedAt, kidOf.length), true);
    expect(withRemoved.filter((m) => sourceFrames.includes(m))).toEqual([]);

    // the KMS goes away: the provider keeps the last key and raises its alarm
    await kms?.close();
    kms = undefined;
    const until = Date.now() + 20_000;
    while (provider.status().alarm === undefined && Date.now() < until) await new Promise((res) => setTimeout(res, 100));
    expect(provider.status().alarm).toMatch(/the KMS has not been reachable/);
    expect(alarms).toHaveLength(1);
    expect(hex(provider.current().kid)).toBe(hex(second.kid));
    stop.abort();
    await following;
  });
});
