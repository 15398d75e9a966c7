/**
 * `keyframe nvr init | serve | status | check` as real processes: an NVR made by `nvr init` from the CA, served,
 * SIGKILLed while several cameras' uploads are in flight and started again — every object it acknowledged is
 * there, intact and indexed; the cameras resend what was not acknowledged; `nvr check` finds index and files in
 * agreement; SIGTERM stops it cleanly. Ordinary errors are one line naming the path.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NvrIndex } from '../../src/nvr/db.js';
import { sha256Hex } from '../../src/recording/records.js';
import { SegmentStore } from '../../src/nvr/store.js';
import { expectOneLineError, runCli } from '../helpers/cli.js';
import { startService, type ServiceProcess } from '../helpers/service.js';
import { CameraClient, makeNvrSite, PIN_ENV, readRecording, recordFor, type NvrSite, type Recording } from './_setup.js';

let site: NvrSite;
let dir: string;
let config: string;
let recs: Recording[];
const env = (): NodeJS.ProcessEnv => ({ KEYFRAME_KEYSTORE_PIN: 'nvr identity passphrase', [PIN_ENV]: process.env[PIN_ENV] ?? '' });
let running: ServiceProcess | undefined;

beforeAll(async () => {
  site = await makeNvrSite(['CAM-1', 'CAM-2', 'CAM-3']);
  recs = [];
  for (const s of ['CAM-1', 'CAM-2', 'CAM-3']) recs.push(readRecording(await recordFor(site.cameraDirs.get(s) as string, join(site.work, `rec-${s}`), 4)));
  dir = join(site.work, 'nvr-home');
});

afterAll(async () => {
  await running?.stop('SIGKILL');
});

interface Obj {
  readonly rec: Recording;
  readonly kind: 'chain' | 'init' | 'seg' | 'rec';
  readonly index?: number;
  readonly body: Buffer | string;
}

function objectsOf(r: Recording): Obj[] {
  const out: Obj[] = [{ rec: r, kind: 'chain', body: r.chain }, { rec: r, kind: 'init', body: r.init }, { rec: r, kind: 'rec', index: 0, body: r.records[0] as string }];
  r.segments.forEach((s, i) => out.push({ rec: r, kind: 'seg', index: i, body: s }, { rec: r, kind: 'rec', index: i + 1, body: r.records[i + 1] as string }));
  for (let i = r.segments.length + 1; i < r.records.length; i++) out.push({ rec: r, kind: 'rec', index: i, body: r.records[i] as string });
  return out;
}

describe('keyframe nvr', () => {
  it('init makes the NVR from the CA (0600 config and index) and refuses to overwrite it', async () => {
    const r = await runCli(['nvr', 'init', '--dir', dir, '--ca', site.caDir, '--free-space-floor', '0'], env());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/NVR identity CN=localhost/);
    config = join(dir, 'nvr.json');
    for (const f of [config, join(dir, 'nvr.sqlite')]) expect(statSync(f).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const again = await runCli(['nvr', 'init', '--dir', dir, '--ca', site.caDir], env());
    expectOneLineError(again, 1, /exists already/);
    // the test listens on any free port and looks at the CRL file often
    const c = JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;
    writeFileSync(config, JSON.stringify({ ...c, listen: { host: '127.0.0.1', port: 0 }, crlCheck: '200ms' }));
  });

  it('keeps every acknowledged object through a SIGKILL with uploads in flight; check is clean after the cameras resend', async () => {
    running = await startService(['nvr', 'serve', '--config', config], env());
    const url = running.url;
    const op = join(site.caDir, 'operator.pem');
    const acked = new Set<Obj>();
    const all = recs.map(objectsOf);
    let killed = false;
    const cams = await Promise.all(recs.map((r) => CameraClient.open(url, site.cameraDirs.get(r.serial) as string, op)));
    const target = Math.floor(all.flat().length / 2);
    const uploads = all.map(async (objs, i) => {
      for (const o of objs) {
        if (killed) return;
        try {
          const a = await (cams[i] as CameraClient).put(o.rec.serial, o.rec.session, o.kind, o.body, o.index);
          if (a.status === 201 || a.status === 200) acked.add(o);
          else throw new Error(`${o.kind} ${o.index ?? ''}: ${a.status} ${a.body}`);
        } catch (e) {
          if (killed) return; // the connection died with the NVR
          throw e;
        }
        if (acked.size >= target && !killed) {
          killed = true;
          await running?.stop('SIGKILL');
        }
      }
    });
    await Promise.all(uploads);
    expect(killed).toBe(true);
    expect(acked.size).toBeGreaterThanOrEqual(target);

    // started again: every acknowledged object is there, intact
    running = await startService(['nvr', 'serve', '--config', config], env());
    const cams2 = await Promise.all(recs.map((r) => CameraClient.open(running?.url as string, site.cameraDirs.get(r.serial) as string, op)));
    const store = new SegmentStore(join(dir, 'store'));
    for (const o of acked) {
      if (o.kind === 'rec') continue;
      expect(readFileSync(store.path(o.rec.serial, o.rec.session, o.kind, o.index)).equals(Buffer.from(o.body))).toBe(true);
    }
    // the index agrees (read-only, as nvr status reads it while the NVR runs)
    const index = NvrIndex.openReadOnly(join(dir, 'nvr.sqlite'));
    try {
      for (const o of acked) {
        if (o.kind === 'rec') expect(index.record(o.rec.serial, o.rec.session, o.index as number)?.hash).toBe(sha256Hex(o.body));
        if (o.kind === 'seg') expect(index.segment(o.rec.serial, o.rec.session, o.index as number)?.sha256).toBe(sha256Hex(o.body));
      }
    } finally {
      index.close();
    }
    // the cameras resend everything: an acknowledged object is answered 200 (held, the same bytes); one that was not
    // acknowledged 201 — or 200 when the NVR had made it durable and the kill took only its answer
    for (const [i, objs] of all.entries()) {
      for (const o of objs) {
        const a = await (cams2[i] as CameraClient).put(o.rec.serial, o.rec.session, o.kind, o.body, o.index);
        const what = `${o.rec.serial} ${o.kind} ${o.index ?? ''}: ${a.body}`;
        if (acked.has(o)) expect(a.status, what).toBe(200);
        else expect([200, 201], what).toContain(a.status);
      }
    }
    const status = await runCli(['nvr', 'status', '--config', config], env());
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/cameras 3, sessions 3/);
    expect(status.stdout).toMatch(/quarantined 0, conflicts 0/);
    // SIGTERM: a clean stop
    const code = await running.stop('SIGTERM');
    expect(code).toBe(0);
    expect(running.lines().some((l) => l.event === 'stopped')).toBe(true);
    running = undefined;
    const check = await runCli(['nvr', 'check', '--config', config], env());
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toMatch(/index and files agree/);
  });

  it('check finds a segment file changed, a file without a row, and temporaries; repairs only what is safe', async () => {
    const r = recs[0] as Recording;
    const store = new SegmentStore(join(dir, 'store'));
    // a crash after the rename, before the commit: a complete file without its row (simulated: the row removed)
    const Database = (await import('better-sqlite3')).default;
    const raw = new Database(join(dir, 'nvr.sqlite'));
    raw.prepare('DELETE FROM segments WHERE serial = ? AND session = ? AND seq = 1').run(r.serial, r.session);
    raw.close();
    writeFileSync(join(store.tmpDir, 'crash.part'), 'half an upload');
    const seg2 = store.path(r.serial, r.session, 'seg', 2);
    const bytes = readFileSync(seg2);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
    writeFileSync(seg2, bytes);
    const before = await runCli(['nvr', 'check', '--config', config], env());
    expect(before.code).toBe(1);
    expect(before.stdout).toMatch(/PROBLEM hash-mismatch .*000002\.m4s/);
    expect(before.stdout).toMatch(/PROBLEM file-without-row .*000001\.m4s/);
    expect(before.stdout).toMatch(/PROBLEM temporary .*crash\.part/);
    const repaired = await runCli(['nvr', 'check', '--config', config, '--repair'], env());
    expect(repaired.code).toBe(1); // the changed segment is reported, not "repaired"
    expect(repaired.stdout).toMatch(/repaired file-without-row .*000001\.m4s: re-indexed/);
    expect(repaired.stdout).toMatch(/repaired temporary/);
    expect(existsSync(join(store.tmpDir, 'crash.part'))).toBe(false);
    const after = await runCli(['nvr', 'check', '--config', config, '--json'], env());
    const report = JSON.parse(after.stdout) as { problems: { kind: string }[] };
    expect(report.problems.map((p) => p.kind)).toEqual(['hash-mismatch']);
  });

  it('names the path of an ordinary error in one line, exit 2', async () => {
    expectOneLineError(await runCli(['nvr', 'status', '--config', join(site.work, 'nowhere', 'nvr.json')]), 2, /NVR config not found: .*nowhere\/nvr\.json/);
    const file = join(site.work, 'a-file');
    writeFileSync(file, '');
    expectOneLineError(await runCli(['nvr', 'init', '--dir', join(file, 'nvr'), '--ca', site.caDir], env()), 2, /cannot create directory .*a-file\/nvr: a part of the path is not a directory/);
  });
});
