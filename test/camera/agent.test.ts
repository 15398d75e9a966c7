/**
 * `keyframe camera run` as a real process, with a real NVR process (`keyframe nvr serve`) over mutual TLS:
 * - camera.json errors name the field;
 * - SIGKILLed mid-recording: no corrupt fragment on its ring (every stored fragment is whole: it verifies or is the
 *   one fragment whose record was not yet written), and on restart a new session starts with higher counters;
 * - uploads to the NVR, which is stopped and restarted: the camera buffers meanwhile, then asks what the NVR holds
 *   and backfills; after a SIGTERM (exit 0, the session ended with its end record uploaded) the NVR holds every
 *   object of every session, none refused; `keyframe camera status` names the state, ring use and upload lag.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HaveAnswer } from '../../src/nvr/protocol.js';
import { verifyEvidence } from '../../src/recording/evidence.js';
import { RECORDS_FILE, segmentSeq } from '../../src/recording/layout.js';
import { BIN, runCli } from '../helpers/cli.js';
import { clip } from '../helpers/media.js';
import { startService, type ServiceProcess } from '../helpers/service.js';
import { CameraClient, initNvrHome, makeNvrSite, PIN_ENV, type NvrSite } from '../nvr/_setup.js';

let site: NvrSite;
let source: string;
let camDir: string;
const procs: ChildProcess[] = [];
let nvr: ServiceProcess | undefined;
const env = (): NodeJS.ProcessEnv => ({ KEYFRAME_KEYSTORE_PIN: 'nvr identity passphrase', [PIN_ENV]: process.env[PIN_ENV] ?? '' });

beforeAll(async () => {
  site = await makeNvrSite(['CAM-AGENT-1']);
  camDir = site.cameraDirs.get('CAM-AGENT-1') as string;
  source = await clip({ width: 320, height: 240, fps: 25, seconds: 4, gop: 25 });
}, 240_000);

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await nvr?.stop('SIGKILL');
  await site.caStore.close();
});

function writeCamera(name: string, extra: Record<string, unknown> = {}): string {
  const path = join(site.work, `${name}.json`);
  writeFileSync(path, JSON.stringify({ device: camDir, source: { kind: 'file', path: source, fps: 25 }, ring: { dir: join(site.work, `${name}-ring`), cap: 64 << 20 }, logLevel: 'debug', ...('kms' in extra ? {} : { clear: true }), ...extra }, null, 2));
  return path;
}

interface Agent {
  readonly proc: ChildProcess;
  lines(): Record<string, unknown>[];
  waitFor(pred: (l: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
  exit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

function startAgent(config: string): Agent {
  const proc = spawn(process.execPath, [BIN, 'camera', 'run', '--config', config], { env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  const lines = (): Record<string, unknown>[] =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  return {
    proc,
    lines,
    stderr: () => err,
    exit: () => exited,
    waitFor: async (pred, ms = 60_000) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        const l = lines().find(pred);
        if (l !== undefined) return l;
        if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`agent exited: ${err}\n${out.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`timed out waiting; log:\n${out.slice(-3000)}\n${err}`);
    },
  };
}

const sessionDirs = (ring: string): string[] =>
  readdirSync(ring)
    .filter((n) => /^\d{6}-[0-9a-f]{32}$/.test(n))
    .sort()
    .map((n) => join(ring, n));
const counters = (dir: string): number[] =>
  readFileSync(join(dir, RECORDS_FILE), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { counter: number }).counter);

describe('keyframe camera run', () => {
  it('refuses a bad camera.json naming the field', async () => {
    const r = await runCli(['camera', 'run', '--config', writeCamera('bad', { ring: { dir: 'r', cap: 10 } })], env());
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^keyframe: bad\.json: "ring\.cap" must be a whole number of bytes, at least 65536$/);
    const r2 = await runCli(['camera', 'run', '--config', writeCamera('bad2', { nvr: { url: 'http://x', root: 'ca.pem' } })], env());
    expect(r2.stderr.trim()).toMatch(/"nvr\.url" must be an https:\/\/ URL/);
  });

  it('SIGKILLed mid-recording: no corrupt fragment on its ring; restarted, a new session chains on', async () => {
    const config = writeCamera('kill');
    const ring = join(site.work, 'kill-ring');
    const a = startAgent(config);
    await a.waitFor((l) => l['event'] === 'fragment' && l['seq'] === 2);
    // half a GOP later: fragment 3 is being assembled (and, at times, written)
    await new Promise((r) => setTimeout(r, 500));
    a.proc.kill('SIGKILL');
    expect((await a.exit()).signal).toBe('SIGKILL');
    const [first] = sessionDirs(ring);
    expect(first).toBeDefined();
    const report = await verifyEvidence(first as string, { roots: [site.ca.certs.root] });
    const f = report.fragmentLayer;
    // every stored fragment is whole: signed and intact, except at most the last whose record was not yet written
    expect(f?.problems.filter((p) => p.kind !== 'unrecorded')).toEqual([]);
    expect(f?.problems.length).toBeLessThanOrEqual(1);
    expect(f?.authentic).toBeGreaterThanOrEqual(3);
    expect(f?.endRecord).toBe(false);
    expect(report.verdict).toBe('AUTHENTIC_WITH_GAPS');

    // restarted: leftovers of the killed write are gone, a new session starts and ends cleanly on SIGTERM
    const b = startAgent(config);
    await b.waitFor((l) => l['event'] === 'fragment' && l['seq'] === 1);
    b.proc.kill('SIGTERM');
    expect((await b.exit()).code).toBe(0);
    expect(readdirSync(first as string).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    const dirs = sessionDirs(ring);
    expect(dirs).toHaveLength(2);
    const second = await verifyEvidence(dirs[1] as string, { roots: [site.ca.certs.root] });
    expect(second.verdict).toBe('AUTHENTIC');
    expect(second.fragmentLayer?.endRecord).toBe(true);
    expect(Math.min(...counters(dirs[1] as string))).toBeGreaterThan(Math.max(...counters(dirs[0] as string)));
    // the status file: 0600, stopped
    const st = join(ring, 'status.json');
    expect(statSync(st).mode & 0o777).toBe(0o600);
    const status = await runCli(['camera', 'status', '--config', config], env());
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^camera CAM-AGENT-1: stopped/);
    expect(status.stdout).toMatch(/keys: none: signed, NOT encrypted/);
  });

  it('uploads to the NVR, buffers while it is stopped, backfills when it is back; SIGTERM ends the session and its end record is uploaded', async () => {
    const home = await initNvrHome(site, env(), { crlCheck: '200ms' });
    const nvrConfig = home.config;
    const listen = home.listen;
    nvr = await startService(['nvr', 'serve', '--config', nvrConfig], env(), []);
    const port = Number(new URL(nvr.url).port);
    const op = join(site.caDir, 'operator.pem');
    const config = writeCamera('up', { nvr: { url: `https://localhost:${port}`, root: op }, backfillRate: 200_000, drainTimeout: '60s' });
    const ring = join(site.work, 'up-ring');
    const a = startAgent(config);
    await a.waitFor((l) => (l['event'] === 'uploaded' || l['event'] === 'streamed') && typeof l['object'] === 'string' && /\/seg\/1$/.test(l['object']));
    // the NVR goes away for a few seconds: the camera keeps recording into its ring
    await nvr.stop('SIGTERM');
    const down = a.lines().length;
    await a.waitFor((l) => l['event'] === 'upload-failed');
    await new Promise((r) => setTimeout(r, 3_000));
    const status = await runCli(['camera', 'status', '--config', config], env());
    expect(status.stdout).toMatch(/upload: NOT connected, [1-9]\d* objects waiting, lag \d+\.\d s/);
    // back on the same port
    listen(port);
    nvr = await startService(['nvr', 'serve', '--config', nvrConfig], env(), []);
    await a.waitFor((l) => l['event'] === 'have', 30_000);
    expect(a.lines().slice(down).some((l) => l['event'] === 'have')).toBe(true);
    // caught up
    const until = Date.now() + 60_000;
    for (;;) {
      const s = JSON.parse(readFileSync(join(ring, 'status.json'), 'utf8')) as { ring: { pending: number }; upload: { connected: boolean } };
      if (s.upload.connected && s.ring.pending <= 2) break;
      if (Date.now() > until) throw new Error(`not caught up: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    a.proc.kill('SIGTERM');
    expect((await a.exit()).code, a.stderr()).toBe(0);
    expect(a.lines().find((l) => l['event'] === 'drained')).toMatchObject({ complete: true, pending: 0 });
    expect(a.lines().filter((l) => l['event'] === 'alarm')).toEqual([]);

    // the NVR holds every object of the session, the end record included
    const [dir] = sessionDirs(ring);
    const session = (dir as string).slice(-32);
    const cam = await CameraClient.open(nvr.url, camDir, op);
    const have = (await cam.have('CAM-AGENT-1', session)).json<HaveAnswer>();
    const segs = readdirSync(dir as string).filter((n) => segmentSeq(n) !== undefined).length;
    const recs = readFileSync(join(dir as string, RECORDS_FILE), 'utf8').split('\n').filter((l) => l !== '').length;
    expect(have).toMatchObject({ session, chain: true, init: true, ended: true, segments: [[0, segs]], records: [[0, recs]] });
    expect(existsSync(join(dir as string, 'uploaded.log'))).toBe(true);
  });
});
