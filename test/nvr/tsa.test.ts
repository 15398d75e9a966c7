/**
 * The NVR as its cameras' RFC 3161 time-stamping authority (issue 12 §2 "Trusted time"): a started NVR with a TSA
 * identity (operator CA, EKU timeStamping) stamps each session's record-chain head as records arrive — the newest
 * record of the contiguous verified prefix, then the end record — and `openssl ts -verify` accepts the tokens, their
 * imprint being that record's hash. A camera whose clock is 10 minutes ahead is flagged (`nvr status`), and its
 * tokens verify too. A TSA that cannot be reached fails: counted, retried, nothing stored.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNvrConfig } from '../../src/nvr/config.js';
import { NvrIndex } from '../../src/nvr/db.js';
import { startNvr, type RunningNvr } from '../../src/nvr/server.js';
import { StampingService, chainHead, sessionTokens, stampingSummary } from '../../src/nvr/stamping.js';
import { createNvrTsa } from '../../src/nvr/tsa.js';
import { silentLogger } from '../../src/server/log.js';
import { httpStamper, localStamper } from '../../src/tsp/stamper.js';
import { sha256Hex } from '../../src/recording/records.js';
import { runCli, waitFor } from '../helpers/cli.js';
import { startService } from '../helpers/service.js';
import { CameraClient, makeNvrSite, PIN_ENV, readRecording, recordFor, type NvrSite, type Recording } from './_setup.js';

let site: NvrSite;
let nvr: RunningNvr;
let rec: Recording;
let skewed: Recording;
let cam: CameraClient;
let tsaDir: string;
let tsaSpec: string;

function openssl(args: readonly string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('openssl', [...args], { cwd }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, out: stdout + stderr }));
  });
}

/** The imprint openssl reads from a token, as lower-case hex. */
async function opensslImprint(file: string, cwd: string): Promise<string> {
  const text = (await openssl(['ts', '-reply', '-token_in', '-in', file, '-text'], cwd)).out;
  const block = /Message data:\n((?:\s+[0-9a-f]{4} - [^\n]*\n)+)/.exec(text)?.[1] ?? '';
  return [...block.matchAll(/ - ((?:[0-9a-f]{2}[ -]){1,16})/g)].map((m) => (m[1] ?? '').replace(/[ -]/g, '')).join('');
}

const headOf = (serial: string, session: string): number => nvr.index.sql.prepare<[string, string], { n: number }>('SELECT stamped_idx AS n FROM stamping WHERE serial = ? AND session = ?').get(serial, session)?.n ?? -1;

beforeAll(async () => {
  site = await makeNvrSite(['CAM-T', 'CAM-S']);
  tsaDir = join(site.work, 'tsa');
  tsaSpec = `file:${join(tsaDir, 'keys')};pin-env=${PIN_ENV}`;
  await createNvrTsa({ out: tsaDir, ca: site.ca, caKeyStore: site.caStore, name: 'NVR-T TSA', keystore: tsaSpec });
  rec = readRecording(await recordFor(site.cameraDirs.get('CAM-T') as string, join(site.work, 'rec-t'), 4));
  // a camera whose clock is 10 minutes ahead: it claims its session starts 10 minutes from now
  skewed = readRecording(await recordFor(site.cameraDirs.get('CAM-S') as string, join(site.work, 'rec-s'), 3, new Date(Math.floor(Date.now() / 1000) * 1000 + 600_000)));
  site.writeConfig({ tsa: 'tsa', tsaKeystore: tsaSpec, stampInterval: '200ms' });
  nvr = await startNvr(loadNvrConfig(site.configPath), { createDatabase: true });
  cam = await CameraClient.open(nvr.url, site.cameraDirs.get('CAM-T') as string, join(site.caDir, 'operator.pem'));
});

afterAll(async () => {
  await nvr?.close();
});

describe('the NVR as TSA', () => {
  it('stamps the head of the contiguous verified prefix, then the end record; openssl ts -verify accepts each token over that record hash', async () => {
    expect(nvr.stamping).toBeDefined();
    const { serial, session } = rec;
    // chain, init, records 0–2 with their segments, then record 4 before record 3 (backfill order)
    expect((await cam.put(serial, session, 'chain', rec.chain)).status).toBe(201);
    expect((await cam.put(serial, session, 'init', rec.init)).status).toBe(201);
    expect((await cam.put(serial, session, 'rec', rec.records[0] as string, 0)).status).toBe(201);
    for (let s = 0; s < 2; s++) {
      expect((await cam.put(serial, session, 'seg', rec.segments[s] as Buffer, s)).status).toBe(201);
      expect((await cam.put(serial, session, 'rec', rec.records[s + 1] as string, s + 1)).status).toBe(201);
    }
    expect((await cam.put(serial, session, 'seg', rec.segments[3] as Buffer, 3)).status).toBe(201);
    expect((await cam.put(serial, session, 'rec', rec.records[4] as string, 4)).status).toBe(201);
    await waitFor(() => headOf(serial, session) === 2, 20_000, 'the head of the prefix 0–2 stamped');
    // record 4 is held but not chained to a held record 3: it is not the head
    await new Promise((r) => setTimeout(r, 600));
    expect(headOf(serial, session)).toBe(2);
    expect(chainHead(nvr.index.sql, serial, session, 2)).toBeUndefined();
    // the rest arrives: the head moves to the end record
    expect((await cam.put(serial, session, 'seg', rec.segments[2] as Buffer, 2)).status).toBe(201);
    expect((await cam.put(serial, session, 'rec', rec.records[3] as string, 3)).status).toBe(201);
    for (let s = 4; s < rec.segments.length; s++) {
      expect((await cam.put(serial, session, 'seg', rec.segments[s] as Buffer, s)).status).toBe(201);
      expect((await cam.put(serial, session, 'rec', rec.records[s + 1] as string, s + 1)).status).toBe(201);
    }
    const last = rec.records.length - 1;
    for (let i = rec.segments.length + 1; i <= last; i++) expect((await cam.put(serial, session, 'rec', rec.records[i] as string, i)).status).toBe(201);
    expect(JSON.parse(rec.records[last] as string)).toMatchObject({ kind: 'end' });
    await waitFor(() => headOf(serial, session) === last, 20_000, 'the end record stamped');

    const tokens = sessionTokens(nvr.index, serial, session);
    // each tick stamps the head it finds (the session record may have been one): increasing, 2 then the end
    const stampedIdx = tokens.map((t) => t.record_idx);
    expect(stampedIdx.slice(-2)).toEqual([2, last]);
    expect(stampedIdx.every((x, i) => i === 0 || x > (stampedIdx[i - 1] as number))).toBe(true);
    expect(stampedIdx.every((x) => x <= 2 || x === last)).toBe(true);
    const operatorPem = join(site.caDir, 'operator.pem');
    for (const t of tokens) {
      const held = nvr.index.record(serial, session, t.record_idx);
      expect(t.sha256).toBe(held?.hash);
      const file = join(site.work, `tok-${t.record_idx}.tsr`);
      writeFileSync(file, t.token);
      const v = await openssl(['ts', '-verify', '-digest', t.sha256, '-in', file, '-token_in', '-CAfile', operatorPem, '-untrusted', join(tsaDir, 'cert.pem')], site.work);
      expect(v.out).toContain('Verification: OK');
      expect(v.code).toBe(0);
      // the imprint is the record's hash (not merely some hash openssl was told)
      expect(await opensslImprint(file, site.work)).toBe(held?.hash);
      // and a digest of another record is refused
      const other = nvr.index.record(serial, session, t.record_idx === 0 ? 1 : t.record_idx - 1)?.hash as string;
      const bad = await openssl(['ts', '-verify', '-digest', other, '-in', file, '-token_in', '-CAfile', operatorPem, '-untrusted', join(tsaDir, 'cert.pem')], site.work);
      expect(bad.code).not.toBe(0);
      expect(bad.out).toMatch(/message imprint mismatch/);
    }
    const summary = stampingSummary(nvr.index);
    expect(summary).toMatchObject({ tokens: tokens.length, failing: 0, failures: 0 });
    expect(nvr.stamping?.stats.stamped).toBe(tokens.length);
  });

  it('flags a camera clock 10 minutes ahead; its record chain is stamped and the tokens verify with openssl', async () => {
    const camS = await CameraClient.open(nvr.url, site.cameraDirs.get('CAM-S') as string, join(site.caDir, 'operator.pem'));
    const statuses = await camS.upload(skewed);
    expect(statuses.every((s) => s === 201), statuses.join(',')).toBe(true);
    const s = nvr.index.session('CAM-S', skewed.session);
    // receipt − claimed start: about −600 s
    expect(s?.skew_ms).toBeLessThan(-590_000);
    expect(s?.skew_ms).toBeGreaterThan(-620_000);
    expect(nvr.index.alarms().some((a) => a.kind === 'skew' && a.serial === 'CAM-S')).toBe(true);
    const last = skewed.records.length - 1;
    await waitFor(() => headOf('CAM-S', skewed.session) === last, 20_000, 'the skewed camera stamped');
    const t = sessionTokens(nvr.index, 'CAM-S', skewed.session).at(-1);
    expect(t?.record_idx).toBe(last);
    // genTime is the NVR's time, ten minutes before what the camera claims
    expect((t?.gen_time ?? 0) - Date.parse((JSON.parse(skewed.records[0] as string) as { start: string }).start)).toBeLessThan(-500_000);
    const file = join(site.work, 'tok-skew.tsr');
    writeFileSync(file, t?.token ?? Buffer.alloc(0));
    const v = await openssl(['ts', '-verify', '-digest', t?.sha256 ?? '', '-in', file, '-token_in', '-CAfile', join(site.caDir, 'operator.pem'), '-untrusted', join(tsaDir, 'cert.pem')], site.work);
    expect(v.out).toContain('Verification: OK');
    expect(await opensslImprint(file, site.work)).toBe(nvr.index.record('CAM-S', skewed.session, last)?.hash);
    // the index read as `nvr status` reads it: the camera's skew
    const ro = NvrIndex.openReadOnly(loadNvrConfig(site.configPath).database);
    try {
      const camera = ro.cameraSummaries().find((c) => c.serial === 'CAM-S');
      expect(camera?.skew_ms).toBeLessThan(-590_000);
      expect(stampingSummary(ro)?.cameras.find((c) => c.serial === 'CAM-S')?.tokens).toBeGreaterThanOrEqual(1);
    } finally {
      ro.close();
    }
  });

  it('a TSA that cannot be reached fails each attempt: counted, logged, retried at the next tick, nothing stored; then stamped', async () => {
    // a second index holding the first camera's session, as a restarted NVR would find it
    const index = NvrIndex.open(join(site.work, 'second.sqlite'), { create: true });
    try {
      const s = nvr.index.session(rec.serial, rec.session);
      index.ensureSession(rec.serial, rec.session, Date.now());
      index.setSessionRecord(rec.serial, rec.session, { start: s?.start ?? '', startMs: s?.start_ms ?? 0, scheme: s?.scheme ?? 'none', kid: s?.kid ?? '', skewMs: 0 });
      for (const r of nvr.index.records(rec.serial, rec.session)) index.putRecord({ ...r });
      // an RFC 3161 TSA over HTTP on a port nothing listens on
      const dead = await new Promise<number>((resolve) => {
        const srv = createServer();
        srv.listen(0, '127.0.0.1', () => {
          const port = (srv.address() as { port: number }).port;
          srv.close(() => resolve(port));
        });
      });
      const down = new StampingService({ index, stamper: httpStamper(`http://127.0.0.1:${dead}/tsa`, { roots: [site.ca.certs.operator] }), log: silentLogger() });
      expect(await down.tick()).toEqual({ stamped: 0, failed: 1 });
      expect(await down.tick()).toEqual({ stamped: 0, failed: 1 });
      expect(down.stats).toMatchObject({ stamped: 0, failed: 2 });
      expect(stampingSummary(index)).toMatchObject({ tokens: 0, failing: 1, failures: 2, lastError: { serial: rec.serial, session: rec.session } });
      // the TSA back: the next attempt stamps the end record, and the failure is no longer current
      const stamper = await localStamper(tsaDir, { keystore: tsaSpec });
      try {
        const up = new StampingService({ index, stamper, log: silentLogger() });
        expect(await up.tick()).toEqual({ stamped: 1, failed: 0 });
        expect(await up.tick()).toEqual({ stamped: 0, failed: 0 });
      } finally {
        await stamper.close();
      }
      expect(stampingSummary(index)).toMatchObject({ tokens: 1, failing: 0, failures: 2 });
      expect(sessionTokens(index, rec.serial, rec.session)[0]?.record_idx).toBe(rec.records.length - 1);
    } finally {
      index.close();
    }
  });

  it('as commands: nvr init makes the TSA (openssl: purpose timestampsign), nvr serve stamps, nvr status shows tokens and CLOCK AHEAD', async () => {
    const dir = join(site.work, 'nvr-cli');
    const env = { KEYFRAME_KEYSTORE_PIN: 'nvr cli passphrase', [PIN_ENV]: process.env[PIN_ENV] ?? '' };
    const init = await runCli(['nvr', 'init', '--dir', dir, '--ca', site.caDir, '--free-space-floor', '0'], env);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toMatch(/TSA CN=localhost TSA.*EKU timeStamping/);
    const purpose = await openssl(['verify', '-purpose', 'timestampsign', '-CAfile', join(site.caDir, 'operator.pem'), join(dir, 'tsa', 'cert.pem')], site.work);
    expect(purpose.out).toContain(': OK');
    const config = join(dir, 'nvr.json');
    const c = JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;
    expect(c).toMatchObject({ tsa: 'tsa', stampInterval: '5s' });
    writeFileSync(config, JSON.stringify({ ...c, listen: { host: '127.0.0.1', port: 0 }, stampInterval: '300ms' }));
    const service = await startService(['nvr', 'serve', '--config', config], env);
    try {
      const camS = await CameraClient.open(service.url, site.cameraDirs.get('CAM-S') as string, join(site.caDir, 'operator.pem'));
      expect((await camS.upload(skewed)).every((x) => x === 201)).toBe(true);
      const last = skewed.records.length - 1;
      let status = '';
      await waitFor(
        () => {
          const ro = NvrIndex.openReadOnly(join(dir, 'nvr.sqlite'));
          try {
            return ro.sql.prepare<[number], { n: number }>('SELECT count(*) AS n FROM tokens WHERE record_idx = ?').get(last)?.n === 1;
          } finally {
            ro.close();
          }
        },
        30_000,
        'the NVR process stamped the end record',
      );
      status = (await runCli(['nvr', 'status', '--config', config], env)).stdout;
      expect(status).toMatch(/time-stamps [1-9]\d*, failed attempts 0/);
      expect(status).toMatch(/CAM-S .*skew -\d{3} s CLOCK AHEAD.* tokens [1-9]/);
      const json = JSON.parse((await runCli(['nvr', 'status', '--config', config, '--json'], env)).stdout) as { cameras: { serial: string; clockSkewFlagged: boolean; tokens: number }[]; stamping: { tokens: number } };
      expect(json.cameras.find((x) => x.serial === 'CAM-S')).toMatchObject({ clockSkewFlagged: true });
      expect(json.stamping.tokens).toBeGreaterThanOrEqual(1);
      // the token the NVR process made verifies with openssl over the end record's hash
      const ro = NvrIndex.openReadOnly(join(dir, 'nvr.sqlite'));
      const t = sessionTokens(ro, 'CAM-S', skewed.session).at(-1);
      ro.close();
      const file = join(site.work, 'cli-token.tsr');
      writeFileSync(file, t?.token ?? Buffer.alloc(0));
      const v = await openssl(['ts', '-verify', '-digest', t?.sha256 ?? '', '-in', file, '-token_in', '-CAfile', join(site.caDir, 'operator.pem'), '-untrusted', join(dir, 'tsa', 'cert.pem')], site.work);
      expect(v.out).toContain('Verification: OK');
      expect(await opensslImprint(file, site.work)).toBe(sha256Hex(skewed.records[last] as string));
    } finally {
      await service.stop('SIGTERM');
    }
  });
});
