/**
 * Acceptance (issue 12): "NVR stopped for 60 s" — a real camera agent process (`keyframe camera run`, a looped
 * Annex-B file, `"clear": true`: signed, not encrypted — the KMS plays no part in buffering and backfill) records
 * to a real NVR process (`keyframe nvr serve`) over mutual TLS. The NVR is stopped (SIGTERM) for 60 s and started
 * again on the same port; the camera buffers, then sends its ring report and backfills at a throttled rate. While
 * backfill runs, the admin timeline shows the outage as "on-camera" (the camera's ring report); afterwards the
 * timeline has no "missing" in the recording, and `keyframe nvr export` of the whole range verifies AUTHENTIC
 * with no gap (`keyframe verify`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperatorIdentity } from '../../src/pki/operator-identity.js';
import { createSite } from '../../src/pki/site.js';
import { BIN, runCli } from '../helpers/cli.js';
import { clip } from '../helpers/media.js';
import { startService, type ServiceProcess } from '../helpers/service.js';
import { CameraClient, initNvrHome, makeNvrSite, PIN_ENV, type NvrSite } from '../nvr/_setup.js';

const SERIAL = 'CAM-OUTAGE-1';
const OUTAGE_MS = 60_000;
let site: NvrSite;
let source: string;
let nvr: ServiceProcess | undefined;
const procs: ChildProcess[] = [];
const env = (): NodeJS.ProcessEnv => ({ KEYFRAME_KEYSTORE_PIN: 'nvr identity passphrase', [PIN_ENV]: process.env[PIN_ENV] ?? '' });
const spec = (dir: string): string => `file:${dir};pin-env=${PIN_ENV}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Range {
  readonly state: string;
  readonly from: string;
  readonly to: string;
}

beforeAll(async () => {
  site = await makeNvrSite([SERIAL]);
  await createSite({ out: join(site.work, 'ops'), ca: site.ca, caKeyStore: site.caStore, name: 'ops', altNames: ['localhost'], clientAuth: true, keystore: spec(join(site.work, 'ops', 'keys')) });
  await createOperatorIdentity({ kind: 'exporter', out: join(site.work, 'smith'), ca: site.ca, caKeyStore: site.caStore, name: 'J. Smith', keystore: spec(join(site.work, 'smith-keys')) });
  source = await clip({ width: 320, height: 240, fps: 25, seconds: 4, gop: 25 });
}, 240_000);

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await nvr?.stop('SIGKILL');
  await site?.caStore.close();
});

describe('acceptance: NVR stopped for 60 s', () => {
  it('the camera buffers, the timeline shows the outage on the camera during backfill, the export verifies AUTHENTIC with no gap', async () => {
    const home = await initNvrHome(site, env(), { admins: ['ops'] });
    const nvrConfig = home.config;
    const listen = home.listen;
    nvr = await startService(['nvr', 'serve', '--config', nvrConfig], env(), []);
    const port = Number(new URL(nvr.url).port);
    const op = join(site.caDir, 'operator.pem');

    // the clip's byte rate (4 s looped): backfill of a 60 s outage throttled to take about 15 s
    const bytesPerSecond = statSync(source).size / 4;
    const backfillRate = Math.max(4_000, Math.round((bytesPerSecond * 60) / 15));
    const ring = join(site.work, 'ring');
    const config = join(site.work, 'camera.json');
    writeFileSync(
      config,
      JSON.stringify({ device: site.cameraDirs.get(SERIAL), source: { kind: 'file', path: source, fps: 25 }, ring: { dir: ring, cap: 256 << 20 }, clear: true, logLevel: 'debug', nvr: { url: `https://localhost:${port}`, root: op }, backfillRate, drainTimeout: '60s' }),
    );
    const agent = spawn(process.execPath, [BIN, 'camera', 'run', '--config', config], { env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(agent);
    let out = '';
    let err = '';
    agent.stdout.on('data', (d: Buffer) => (out += d.toString()));
    agent.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => agent.once('exit', (code) => r(code)));
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
    const waitLine = async (pred: (l: Record<string, unknown>) => boolean, ms: number): Promise<Record<string, unknown>> => {
      const until = Date.now() + ms;
      for (;;) {
        const l = lines().find(pred);
        if (l !== undefined) return l;
        if (agent.exitCode !== null) throw new Error(`agent exited: ${err}\n${out.slice(-2000)}`);
        if (Date.now() > until) throw new Error(`timed out; agent log:\n${out.slice(-3000)}\n${err}`);
        await sleep(100);
      }
    };
    const session = (await waitLine((l) => l['event'] === 'session', 60_000))['session'] as string;
    // recording and uploading live, the ring report sent
    await waitLine((l) => (l['event'] === 'uploaded' || l['event'] === 'streamed') && typeof l['object'] === 'string' && /\/seg\/3$/.test(l['object']), 90_000);
    await waitLine((l) => l['event'] === 'ring-report', 30_000);

    // the NVR goes away for 60 s
    await nvr.stop('SIGTERM');
    const down = Date.now();
    await waitLine((l) => l['event'] === 'upload-failed', 30_000);
    await sleep(Math.max(0, down + OUTAGE_MS - Date.now()));
    listen(port);
    nvr = await startService(['nvr', 'serve', '--config', nvrConfig], env(), []);
    const up = Date.now();
    const admin = await CameraClient.open(nvr.url, join(site.work, 'ops'), op);
    const timeline = async (from: number, to: number): Promise<Range[]> => {
      const r = await admin.send('GET', `/v1/admin/cameras/${SERIAL}/timeline?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`);
      expect(r.status, r.body).toBe(200);
      return r.json<{ ranges: Range[] }>().ranges;
    };
    const total = (ranges: Range[], state: string, from: number, to: number): number =>
      ranges.filter((x) => x.state === state).reduce((n, x) => n + Math.max(0, Math.min(to, Date.parse(x.to)) - Math.max(from, Date.parse(x.from))), 0);

    // while backfill runs: the outage is on the camera
    const pendingOf = (): number => (JSON.parse(readFileSync(join(ring, 'status.json'), 'utf8')) as { ring: { pending: number } }).ring.pending;
    let seen: Range[] | undefined;
    const until = Date.now() + 60_000;
    while (seen === undefined) {
      const t = await timeline(down - 30_000, Date.now());
      if (total(t, 'on-camera', down + 5_000, up - 5_000) >= OUTAGE_MS - 20_000) seen = t;
      else if (Date.now() > until) throw new Error(`no on-camera range over the outage: ${JSON.stringify(t)}\n${out.slice(-2000)}`);
      else await sleep(250);
    }
    const mid = down + OUTAGE_MS / 2;
    expect(seen.find((x) => Date.parse(x.from) <= mid && mid < Date.parse(x.to))?.state).toBe('on-camera');
    // seen before backfill was done: the camera still held objects the NVR lacked
    expect(pendingOf()).toBeGreaterThan(10);

    // backfill completes
    const caught = Date.now() + 150_000;
    for (;;) {
      const s = JSON.parse(readFileSync(join(ring, 'status.json'), 'utf8')) as { ring: { pending: number }; upload: { connected: boolean } };
      if (s.upload.connected && s.ring.pending <= 2) break;
      if (Date.now() > caught) throw new Error(`backfill not done: ${JSON.stringify(s)}`);
      await sleep(500);
    }
    const backfilled = Date.now();
    expect(backfilled - up).toBeGreaterThan(3_000);
    agent.kill('SIGTERM');
    expect(await exited, err).toBe(0);
    expect(lines().find((l) => l['event'] === 'drained')).toMatchObject({ complete: true, pending: 0 });
    expect(lines().filter((l) => l['event'] === 'alarm')).toEqual([]);

    // the timeline of the recording: nothing missing, nothing left on the camera
    const start = Date.parse(lines().find((l) => l['event'] === 'session')?.['start'] as string);
    const end = Date.now();
    const after = await timeline(start, end);
    // up to the recording's end (the session's end record): the window's tail after it is rightly "missing"
    const recorded = Math.max(...after.filter((x) => x.state === 'verified').map((x) => Date.parse(x.to)));
    expect(recorded).toBeGreaterThan(backfilled);
    expect(after.filter((x) => (x.state === 'missing' || x.state === 'on-camera') && Date.parse(x.from) < recorded), JSON.stringify(after)).toEqual([]);
    expect(total(after, 'verified', down, up)).toBeGreaterThan(OUTAGE_MS - 10_000);

    // the whole range exported from the NVR and verified offline: AUTHENTIC, no gap
    const bundle = join(site.work, 'outage.kfe.tar');
    const ex = await runCli(['nvr', 'export', '--config', nvrConfig, '--camera', SERIAL, '--from', new Date(start - 5_000).toISOString(), '--to', new Date(end).toISOString(), '--exporter', join(site.work, 'smith'), '--reason', 'outage acceptance', '--out', bundle], env());
    expect(ex.code, ex.stderr).toBe(0);
    const v = await runCli(['verify', bundle, '--root', join(site.caDir, 'root.pem'), '--exporter-root', op], env());
    expect(v.code, v.stdout).toBe(0);
    const verdict = /^verdict: (\S+)/m.exec(v.stdout)?.[1];
    expect(verdict, v.stdout).toBe('AUTHENTIC');
    // AUTHENTIC_WITH_GAPS is the verdict of a recording with a gap: AUTHENTIC says none
    expect(session).toMatch(/^[0-9a-f]{32}$/);
  }, 420_000);
});
