/**
 * The supervisor behind `npm start`, with real child processes: start order and readiness, restart after a crash,
 * a configuration error that is not retried, stop in reverse order, bounded logs, and no orphans when the
 * supervisor itself is killed outright.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import type { ChildSpec, ChildStatus } from '../../src/supervisor/supervisor.js';
import { waitFor } from '../helpers/cli.js';

let work: string;
const dist = resolve('dist/supervisor/supervisor.js');

/** A child: appends "EVENT NAME TIME" lines to events.log; prints `ready` after `delayMs`; may crash or fail. */
const CHILD = `
const { appendFileSync } = require('node:fs');
const [events, name, delayMs, mode] = process.argv.slice(2);
const note = (what) => appendFileSync(events, what + ' ' + name + ' ' + Date.now() + '\\n');
note('start');
process.on('SIGTERM', () => { note('term'); setTimeout(() => process.exit(0), 50); });
setTimeout(() => {
  if (mode === 'config-error') { console.error('keyframe: cannot read /nope/camera.json: no such file'); process.exit(2); }
  console.log('ready: ' + name);
  if (mode === 'crash-once' && !require('node:fs').existsSync(events + '.crashed')) {
    require('node:fs').writeFileSync(events + '.crashed', '');
    setTimeout(() => { console.error('boom'); process.exit(1); }, 100);
  }
  if (mode === 'chatty') { const line = 'x'.repeat(1000) + '\\n'; for (let i = 0; i < 3000; i++) process.stdout.write(line); }
}, Number(delayMs));
setInterval(() => undefined, 1000);
`;

function childSpec(dir: string, name: string, delayMs: number, extra: Partial<ChildSpec> & { mode?: string } = {}): ChildSpec {
  const { mode, ...rest } = extra;
  return { name, command: process.execPath, args: [join(work, 'child.cjs'), join(dir, 'events.log'), name, String(delayMs), mode ?? ''], ready: /^ready:/, ...rest };
}

function events(dir: string): { what: string; name: string; t: number }[] {
  const path = join(dir, 'events.log');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const [what, name, t] = l.split(' ');
      return { what: what as string, name: name as string, t: Number(t) };
    });
}

function dirFor(name: string): string {
  return mkdtempSync(join(work, `${name}-`));
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'kf-super-'));
  writeFileSync(join(work, 'child.cjs'), CHILD);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('Supervisor', () => {
  it('starts each child after those it waits for are ready, and stops them in reverse order', async () => {
    const dir = dirFor('order');
    const sup = new Supervisor([childSpec(dir, 'camera', 50, { after: ['nvr', 'kms'] }), childSpec(dir, 'nvr', 300, { after: ['kms'] }), childSpec(dir, 'kms', 300)], { logDir: join(dir, 'logs') });
    expect(sup.order()).toEqual(['kms', 'nvr', 'camera']);
    await sup.start();
    expect(sup.status().map((s) => s.state)).toEqual(['ready', 'ready', 'ready']);
    const started = events(dir).filter((e) => e.what === 'start');
    expect(started.map((e) => e.name)).toEqual(['kms', 'nvr', 'camera']);
    // nvr started no earlier than kms's ready line (300 ms after its start)
    expect((started[1] as { t: number }).t - (started[0] as { t: number }).t).toBeGreaterThanOrEqual(250);
    await sup.stop();
    expect(
      events(dir)
        .filter((e) => e.what === 'term')
        .map((e) => e.name),
    ).toEqual(['camera', 'nvr', 'kms']);
    expect(sup.status().every((s) => s.state === 'stopped' && s.pid === undefined)).toBe(true);
    expect(readFileSync(join(dir, 'logs', 'kms.log'), 'utf8')).toContain('ready: kms');
  });

  it('restarts a child that crashes, with back-off', async () => {
    const dir = dirFor('crash');
    const sup = new Supervisor([childSpec(dir, 'nvr', 10, { mode: 'crash-once' })], { logDir: join(dir, 'logs'), backoff: { initialMs: 200, maxMs: 1000, resetAfterMs: 60_000 } });
    const states: string[] = [];
    sup.on('state', (s: ChildStatus) => states.push(s.state));
    await sup.start();
    await waitFor(() => sup.status()[0]?.restarts === 1 && sup.status()[0]?.state === 'ready', 10_000, 'the restarted child to be ready');
    expect(states).toEqual(['starting', 'ready', 'restarting', 'starting', 'ready']);
    expect(events(dir).filter((e) => e.what === 'start')).toHaveLength(2);
    await sup.stop();
  });

  it('does not retry a child that fails with a configuration error before it was ready: start fails with its line, the others are stopped', async () => {
    const dir = dirFor('config');
    const sup = new Supervisor([childSpec(dir, 'kms', 10), childSpec(dir, 'camera', 10, { after: ['kms'], mode: 'config-error' })], { logDir: join(dir, 'logs') });
    await expect(sup.start()).rejects.toThrow(/camera ended \(status 2\): keyframe: cannot read \/nope\/camera\.json/);
    expect(sup.status().map((s) => [s.name, s.state])).toEqual([
      ['kms', 'stopped'],
      ['camera', 'failed'],
    ]);
    expect(events(dir).filter((e) => e.name === 'camera' && e.what === 'start')).toHaveLength(1);
  });

  it('refuses a cycle, an unknown dependency and a duplicate name', () => {
    const dir = dirFor('bad');
    expect(() => new Supervisor([childSpec(dir, 'a', 1, { after: ['b'] }), childSpec(dir, 'b', 1, { after: ['a'] })], { logDir: dir })).toThrow(/wait for each other: a → b → a/);
    expect(() => new Supervisor([childSpec(dir, 'a', 1, { after: ['zz'] })], { logDir: dir })).toThrow(/a waits for zz/);
    expect(() => new Supervisor([childSpec(dir, 'a', 1), childSpec(dir, 'a', 1)], { logDir: dir })).toThrow(/two children are named a/);
  });

  it('keeps a chatty child’s log bounded by rotating it', async () => {
    const dir = dirFor('chatty');
    const sup = new Supervisor([childSpec(dir, 'cam', 10, { mode: 'chatty' })], { logDir: join(dir, 'logs'), maxLogBytes: 1 << 20 });
    await sup.start();
    await waitFor(() => existsSync(join(dir, 'logs', 'cam.log.1')), 10_000, 'the log to rotate');
    await sup.stop();
    const size = (p: string): number => readFileSync(p).length;
    expect(size(join(dir, 'logs', 'cam.log.1'))).toBeLessThanOrEqual((1 << 20) + 70_000);
    expect(size(join(dir, 'logs', 'cam.log'))).toBeLessThanOrEqual((1 << 20) + 70_000);
  });

  it('leaves no process behind when the supervisor itself is SIGKILLed (children end with the IPC channel)', async () => {
    const dir = dirFor('orphans');
    // the children are keyframe-style processes: they call endWithSupervisor() from the built module
    const child = `
      const { endWithSupervisor } = await import(${JSON.stringify(dist)});
      const { appendFileSync } = await import('node:fs');
      const [events, name] = process.argv.slice(2);
      endWithSupervisor();
      process.on('SIGTERM', () => { appendFileSync(events, 'term ' + name + ' ' + process.pid + '\\n'); process.exit(0); });
      appendFileSync(events, 'start ' + name + ' ' + process.pid + '\\n');
      console.log('ready');
      setInterval(() => undefined, 1000);`;
    writeFileSync(join(dir, 'kf-child.mjs'), child);
    const parent = `
      const { Supervisor } = await import(${JSON.stringify(dist)});
      const spec = (name) => ({ name, command: process.execPath, args: [${JSON.stringify(join(dir, 'kf-child.mjs'))}, ${JSON.stringify(join(dir, 'events.log'))}, name], ready: /^ready/ });
      const sup = new Supervisor([spec('kms'), { ...spec('nvr'), after: ['kms'] }], { logDir: ${JSON.stringify(join(dir, 'logs'))} });
      await sup.start();
      console.log('all ready');
      setInterval(() => undefined, 1000);`;
    writeFileSync(join(dir, 'parent.mjs'), parent);
    const p = spawn(process.execPath, [join(dir, 'parent.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes('all ready'), 30_000, 'the supervisor to start its children');
    const pids = events(dir)
      .filter((e) => e.what === 'start')
      .map((e) => e.t);
    expect(pids).toHaveLength(2);
    p.kill('SIGKILL');
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await waitFor(() => pids.every((pid) => !alive(pid)), 10_000, 'the children to end');
    expect(events(dir).filter((e) => e.what === 'term')).toHaveLength(2);
  }, 60_000);
});
