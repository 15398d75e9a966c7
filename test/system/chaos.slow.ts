/**
 * Acceptance (issue 12), reduced and honest: "the NVR SIGKILLed at random" — 3 camera agent processes (looped
 * Annex-B files, `"clear": true`) record to one NVR process for about 45 s while the NVR is SIGKILLed every 3–7 s
 * (at random) and restarted on the same port. At the end (cameras stopped with SIGTERM, NVR stopped): `keyframe nvr
 * check` is clean, the NVR holds every object of every session each camera's ring holds (nothing acknowledged was
 * lost: an acknowledged object is never resent), and each camera's export verifies AUTHENTIC with no gap (no camera
 * was down). The 20 cameras for 2 minutes, some over RTSP, are not run here: slow suite (`npm run test:slow`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperatorIdentity } from '../../src/pki/operator-identity.js';
import type { HaveAnswer } from '../../src/nvr/protocol.js';
import { RECORDS_FILE, segmentSeq } from '../../src/recording/layout.js';
import { BIN, runCli } from '../helpers/cli.js';
import { clip } from '../helpers/media.js';
import { startService, type ServiceProcess } from '../helpers/service.js';
import { CameraClient, makeNvrSite, PIN_ENV, type NvrSite } from '../nvr/_setup.js';

const SERIALS = ['CAM-CHAOS-1', 'CAM-CHAOS-2', 'CAM-CHAOS-3'];
const CHAOS_MS = 45_000;
let site: NvrSite;
let source: string;
let nvr: ServiceProcess | undefined;
const procs: ChildProcess[] = [];
const env = (): NodeJS.ProcessEnv => ({ KEYFRAME_KEYSTORE_PIN: 'nvr identity passphrase', [PIN_ENV]: process.env[PIN_ENV] ?? '' });
const spec = (dir: string): string => `file:${dir};pin-env=${PIN_ENV}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  site = await makeNvrSite(SERIALS);
  await createOperatorIdentity({ kind: 'exporter', out: join(site.work, 'smith'), ca: site.ca, caKeyStore: site.caStore, name: 'J. Smith', keystore: spec(join(site.work, 'smith-keys')) });
  source = await clip({ width: 320, height: 240, fps: 25, seconds: 4, gop: 25 });
}, 240_000);

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await nvr?.stop('SIGKILL');
  await site?.caStore.close();
});

const sessionDirs = (ring: string): string[] =>
  readdirSync(ring)
    .filter((n) => /^\d{6}-[0-9a-f]{32}$/.test(n))
    .sort()
    .map((n) => join(ring, n));

describe('acceptance: NVR SIGKILLed at random while cameras record', () => {
  it('nothing acknowledged lost, nvr check clean, every camera exports AUTHENTIC with no gap', async () => {
    const home = join(site.work, 'nvr-home');
    const init = await runCli(['nvr', 'init', '--dir', home, '--ca', site.caDir, '--free-space-floor', '0'], env());
    expect(init.code, init.stderr).toBe(0);
    const nvrConfig = join(home, 'nvr.json');
    const base = JSON.parse(readFileSync(nvrConfig, 'utf8')) as Record<string, unknown>;
    const listen = (port: number): void => writeFileSync(nvrConfig, JSON.stringify({ ...base, listen: { host: '127.0.0.1', port } }));
    listen(0);
    nvr = await startService(['nvr', 'serve', '--config', nvrConfig], env(), []);
    const port = Number(new URL(nvr.url).port);
    listen(port);
    const op = join(site.caDir, 'operator.pem');
    const agents = SERIALS.map((serial) => {
      const ring = join(site.work, `${serial}-ring`);
      const config = join(site.work, `${serial}.json`);
      writeFileSync(config, JSON.stringify({ device: site.cameraDirs.get(serial), source: { kind: 'file', path: source, fps: 25 }, ring: { dir: ring, cap: 256 << 20 }, clear: true, logLevel: 'info', nvr: { url: `https://localhost:${port}`, root: op }, backfillRate: 5_000_000 }));
      const proc = spawn(process.execPath, [BIN, 'camera', 'run', '--config', config], { env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
      procs.push(proc);
      let out = '';
      proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
      return { serial, ring, proc, exited, log: () => out };
    });
    // random SIGKILLs of the NVR, each followed by a restart on the same port
    const until = Date.now() + CHAOS_MS;
    let kills = 0;
    while (Date.now() < until) {
      await sleep(3_000 + Math.random() * 4_000);
      await nvr.stop('SIGKILL');
      kills++;
      nvr = await startService(['nvr', 'serve', '--config', nvrConfig], env(), []);
    }
    expect(kills).toBeGreaterThanOrEqual(4);
    for (const a of agents) expect(a.proc.exitCode, a.log().slice(-2000)).toBeNull();
    // caught up, then stopped cleanly (their end records uploaded)
    const caught = Date.now() + 150_000;
    for (const a of agents) {
      for (;;) {
        const s = JSON.parse(readFileSync(join(a.ring, 'status.json'), 'utf8')) as { ring: { pending: number }; upload: { connected: boolean } };
        if (s.upload.connected && s.ring.pending <= 2) break;
        if (Date.now() > caught) throw new Error(`${a.serial} not caught up: ${JSON.stringify(s)}`);
        await sleep(500);
      }
    }
    for (const a of agents) a.proc.kill('SIGTERM');
    for (const a of agents) expect(await a.exited, a.log().slice(-2000)).toBe(0);
    // the NVR holds everything each ring holds, every session whole
    for (const a of agents) {
      expect(a.log()).not.toMatch(/"event":"alarm"/);
      const cam = await CameraClient.open(nvr.url, site.cameraDirs.get(a.serial) as string, op);
      const dirs = sessionDirs(a.ring);
      expect(dirs).toHaveLength(1);
      for (const dir of dirs) {
        const session = dir.slice(-32);
        const have = (await cam.have(a.serial, session)).json<HaveAnswer>();
        const segs = readdirSync(dir).filter((n) => segmentSeq(n) !== undefined).length;
        const recs = readFileSync(join(dir, RECORDS_FILE), 'utf8').split('\n').filter((l) => l !== '').length;
        expect(segs).toBeGreaterThan(20);
        expect(have, a.serial).toMatchObject({ session, chain: true, init: true, ended: true, segments: [[0, segs]], records: [[0, recs]] });
      }
    }
    await nvr.stop('SIGTERM');
    nvr = undefined;
    const check = await runCli(['nvr', 'check', '--config', nvrConfig], env());
    expect(check.code, `${check.stdout}${check.stderr}`).toBe(0);
    // each camera's whole recording exported and verified: AUTHENTIC, no gap
    for (const a of agents) {
      const bundle = join(site.work, `${a.serial}.kfe.tar`);
      const ex = await runCli(['nvr', 'export', '--config', nvrConfig, '--camera', a.serial, '--exporter', join(site.work, 'smith'), '--reason', 'chaos acceptance', '--out', bundle], env());
      expect(ex.code, ex.stderr).toBe(0);
      const v = await runCli(['verify', bundle, '--root', join(site.caDir, 'root.pem'), '--exporter-root', op], env());
      expect(/^verdict: (\S+)/m.exec(v.stdout)?.[1], v.stdout).toBe('AUTHENTIC');
    }
  }, 600_000);
});
