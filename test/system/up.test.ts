/**
 * `npm start` (keyframe up): the whole system from nothing — CA, KMS, NVR, two camera agents recording a test
 * pattern encrypted under their group's key — then Ctrl-C stops every process cleanly, and a rerun resumes on the
 * same CA, KMS and NVR with new sessions.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, waitFor } from '../helpers/cli.js';
import { stablePort } from '../helpers/ports.js';

const BIN = resolve('bin/keyframe.js');
const data = mkdtempSync(join(tmpdir(), 'kf-up-'));
afterAll(() => rmSync(data, { recursive: true, force: true }));

interface Up {
  out: () => string;
  exited: Promise<number | null>;
  kill: (signal: NodeJS.Signals) => void;
}

/** Starts `keyframe up`; a port taken between choosing and binding is retried with new ports. */
async function up(ports?: [number, number]): Promise<Up & { ports: [number, number] }> {
  for (let attempt = 0; ; attempt++) {
    const [kms, nvr] = ports ?? [await stablePort(), await stablePort()];
    const p = spawn(process.execPath, [BIN, 'up', '--data', data, '--kms-port', String(kms), '--nvr-port', String(nvr), '--pattern', 'pattern:width=320,height=180,fps=25,gop=25,bitrate=300000,clock=true'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.on('data', (d: Buffer) => (text += d.toString()));
    p.stderr.on('data', (d: Buffer) => (text += d.toString()));
    const exited = new Promise<number | null>((done) => p.on('exit', (code) => done(code)));
    let ended = false;
    void exited.then(() => (ended = true));
    await waitFor(() => text.includes('running: KMS') || ended, 180_000, 'keyframe up to start everything');
    if (!ended) return { out: () => text, exited, kill: (s) => p.kill(s), ports: [kms, nvr] };
    if (attempt < 3 && ports === undefined && /in use/.test(text)) continue;
    throw new Error(`keyframe up ended: ${text}`);
  }
}

function pids(text: string): number[] {
  return [...text.matchAll(/running \(pid (\d+),/g)].map((m) => Number(m[1]));
}
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function status(): Promise<{ cameras: { serial: string; segments: number; sessions: number }[]; counts: { verified: number } }> {
  const r = await runCli(['nvr', 'status', '--config', join(data, 'nvr', 'nvr.json'), '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as never;
}

describe('keyframe up (npm start)', () => {
  it('brings up KMS, NVR and two encrypting cameras; Ctrl-C stops everything; a rerun resumes', async () => {
    const first = await up();
    const children = pids(first.out());
    expect(children).toHaveLength(4);
    expect(first.out()).toMatch(/group site: created with CAM-0001, CAM-0002/);
    // both cameras' video reaches the NVR and verifies there, without any key
    let s = await status();
    const deadline = Date.now() + 120_000;
    while (!(s.cameras.length === 2 && s.cameras.every((c) => c.segments >= 3)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      s = await status();
    }
    expect(s.cameras.map((c) => c.serial).sort()).toEqual(['CAM-0001', 'CAM-0002']);
    expect(s.cameras.every((c) => c.segments >= 3)).toBe(true);
    // encrypted under the group's key: each camera's status names the group, its epoch and a KID
    const cam = await runCli(['camera', 'status', '--config', join(data, 'cameras', 'CAM-0001', 'camera.json')]);
    expect(cam.stdout).toMatch(/keys: cbcs, group site, epoch \d+, KID [0-9a-f]{32}/);

    first.kill('SIGINT');
    expect(await first.exited).toBe(0);
    expect(first.out()).toMatch(/stopping: cameras first[\s\S]*\nstopped\n/);
    for (const pid of children) expect(alive(pid), `pid ${pid}`).toBe(false);
    const afterFirst = await status();
    const ca = readFileSync(join(data, 'ca', 'root.pem'), 'utf8');

    // a rerun: the same CA, KMS and NVR; new sessions appended
    const second = await up(first.ports);
    expect(second.out()).not.toMatch(/created the CA|provisioned camera|created the KMS|created the NVR/);
    let s2 = await status();
    const deadline2 = Date.now() + 120_000;
    while (!s2.cameras.every((c) => c.sessions >= 2) && Date.now() < deadline2) {
      await new Promise((r) => setTimeout(r, 1000));
      s2 = await status();
    }
    expect(s2.cameras.every((c) => c.sessions >= 2)).toBe(true);
    expect(s2.counts.verified).toBeGreaterThan(afterFirst.counts.verified);
    expect(readFileSync(join(data, 'ca', 'root.pem'), 'utf8')).toBe(ca);
    second.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    for (const pid of pids(second.out())) expect(alive(pid)).toBe(false);
  }, 600_000);
});
