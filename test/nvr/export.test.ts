/**
 * Export from the NVR's store (issue 12 §2): a camera's range across two sessions, uploaded to a started NVR that
 * time-stamps each session's record chain, exported as one signed evidence bundle (one folder per session, the
 * NVR's tokens in each) — `keyframe verify` says AUTHENTIC, proves when each session existed from the NVR's tokens,
 * and names the time between the sessions as a session break. A token altered in the index, or one filed over
 * another record's hash, is named NOT VALID by verify. The CLI: `keyframe nvr export` refuses to overwrite without
 * --force, refuses an ONVIF file across sessions, writes one for a range in one session, and exits 2 on I/O errors.
 */
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNvrConfig } from '../../src/nvr/config.js';
import { exportFromNvr } from '../../src/nvr/export.js';
import { startNvr, type RunningNvr } from '../../src/nvr/server.js';
import { sessionTokens } from '../../src/nvr/stamping.js';
import { createNvrTsa } from '../../src/nvr/tsa.js';
import { createOperatorIdentity, openOperatorIdentity, type OperatorIdentity } from '../../src/pki/operator-identity.js';
import { parseCertificates } from '../../src/pki/pem.js';
import type { X509Certificate } from '../../src/pki/x509.js';
import { verifyEvidence } from '../../src/recording/evidence.js';
import { formatEvidence } from '../../src/recording/report.js';
import { expectOneLineError, runCli, waitFor } from '../helpers/cli.js';
import { CameraClient, makeNvrSite, PIN_ENV, readRecording, recordFor, type NvrSite, type Recording } from './_setup.js';

let site: NvrSite;
let nvr: RunningNvr;
let s1: Recording;
let s2: Recording;
let exporter: OperatorIdentity;
let root: X509Certificate[];
let operator: X509Certificate[];
const t0 = Math.floor(Date.now() / 1000) * 1000 - 120_000;
const env = (): NodeJS.ProcessEnv => ({ [PIN_ENV]: process.env[PIN_ENV] ?? '' });
const stamped = (r: Recording): boolean => sessionTokens(nvr.index, r.serial, r.session).some((t) => t.record_idx === r.records.length - 1);

beforeAll(async () => {
  site = await makeNvrSite(['CAM-E', 'CAM-F']);
  const spec = (d: string): string => `file:${join(d, 'keys')};pin-env=${PIN_ENV}`;
  await createNvrTsa({ out: join(site.work, 'tsa'), ca: site.ca, caKeyStore: site.caStore, name: 'NVR-E TSA', keystore: spec(join(site.work, 'tsa')) });
  await createOperatorIdentity({ kind: 'exporter', out: join(site.work, 'smith'), ca: site.ca, caKeyStore: site.caStore, name: 'J. Smith', keystore: spec(join(site.work, 'smith')) });
  exporter = await openOperatorIdentity(join(site.work, 'smith'), 'exporter');
  const cam = site.cameraDirs.get('CAM-E') as string;
  // two sessions of one camera: 4 s from t0, then 4 s from t0 + 60 s (the camera restarted in between)
  s1 = readRecording(await recordFor(cam, join(site.work, 'rec-1'), 4, new Date(t0)));
  s2 = readRecording(await recordFor(cam, join(site.work, 'rec-2'), 4, new Date(t0 + 60_000)));
  site.writeConfig({ tsa: 'tsa', tsaKeystore: spec(join(site.work, 'tsa')), stampInterval: '200ms' });
  nvr = await startNvr(loadNvrConfig(site.configPath), { createDatabase: true });
  const client = await CameraClient.open(nvr.url, cam, join(site.caDir, 'operator.pem'));
  for (const r of [s1, s2]) expect((await client.upload(r)).every((s) => s === 201)).toBe(true);
  await waitFor(() => stamped(s1) && stamped(s2), 30_000, 'both sessions stamped to their end records');
  root = parseCertificates(await import('node:fs').then((fs) => fs.readFileSync(join(site.caDir, 'root.pem'))), 'root');
  operator = [site.ca.certs.operator];
});

afterAll(async () => {
  await exporter?.close();
  await nvr?.close();
});

const span = { from: new Date(t0 + 1_500), to: new Date(t0 + 62_500) };

describe('export from the NVR store', () => {
  it('a range across two sessions: one bundle, AUTHENTIC, each session proven by the NVR tokens, the gap named a session break', async () => {
    const out = join(site.work, 'two.kfe.tar');
    const r = await exportFromNvr({ config: loadNvrConfig(site.configPath), camera: 'CAM-E', ...span, out, format: 'bundle', exporter, reason: 'case 7' });
    expect(r.sessions.map((s) => s.session)).toEqual([s1.session, s2.session]);
    expect(r.sessions.every((s) => s.tokens >= 1)).toBe(true);
    // no temporaries left beside the output
    expect(readdirSync(site.work).filter((n) => n.includes('nvr-export'))).toEqual([]);
    const report = await verifyEvidence(out, { roots: root, exporterRoots: operator });
    const text = formatEvidence(report);
    expect(report.verdict, text).toBe('AUTHENTIC');
    expect(report.parts?.map((p) => p.session)).toEqual([s1.session, s2.session]);
    // the range: session 1 from the GOP holding t0 + 1.5 s (fragment 1) to its end; session 2 from its start to the GOP holding t0 + 62.5 s
    expect(report.parts?.[0]?.exported).toMatchObject({ firstSeq: 1, lastSeq: s1.segments.length - 1 });
    expect(report.parts?.[1]?.exported).toMatchObject({ firstSeq: 0, lastSeq: 2 });
    for (const p of report.parts ?? []) {
      expect(p.fragmentLayer.verdict).toBe('AUTHENTIC');
      expect(p.video?.verdict).toBe('AUTHENTIC');
      const tokens = p.fragmentLayer.time?.tokens ?? [];
      expect(tokens.length).toBeGreaterThanOrEqual(1);
      expect(tokens.every((t) => t.valid && /^CN=NVR-E TSA\b/.test(t.tsa ?? '')), JSON.stringify(tokens)).toBe(true);
      // existed by: a time the NVR's tokens prove, after the upload and not in the future
      expect(p.existedBy).toBeDefined();
      // (genTime is whole seconds rounded up, plus 1 s accuracy: at most 2 s ahead of now)
      expect(Date.parse(p.existedBy as string)).toBeLessThanOrEqual(Date.now() + 2000);
      expect(Date.parse(p.existedBy as string)).toBeGreaterThan(t0 + 60_000);
    }
    expect(report.breaks).toHaveLength(1);
    const br = report.breaks?.[0];
    expect(br?.seconds).toBeCloseTo(56, 0);
    expect(br?.text).toMatch(/session break .* ended \(signed end record\)/);
    expect(text).toMatch(/session 1 of 2 .*\n\s+existed by 20\d\d-.*proven by RFC 3161 time-stamps/);
    expect(text).toContain('session break');
    // the range's start bounds session 1 only, its end session 2 only: no note that session 2 starts after the start
    expect(report.parts?.[1]?.exported.note ?? '').not.toMatch(/after the requested start/);
    expect(report.bundle?.requested).toEqual({ from: span.from.toISOString(), to: span.to.toISOString() });
  });

  it('a token altered in the index, and a token filed over another record, are named NOT VALID', async () => {
    const db = nvr.index.sql;
    const tokens = sessionTokens(nvr.index, s1.serial, s1.session);
    const end = tokens.find((t) => t.record_idx === s1.records.length - 1);
    expect(end).toBeDefined();
    if (end === undefined) return;
    const saved = { token: Buffer.from(end.token), sha256: end.sha256, idx: end.record_idx };
    try {
      // 1. a byte of the token's signature flipped (the last bytes of the DER are the signature)
      const bad = Buffer.from(end.token);
      bad[bad.length - 3] = (bad[bad.length - 3] as number) ^ 0x01;
      db.prepare('UPDATE tokens SET token = ? WHERE id = ?').run(bad, end.id);
      const out1 = join(site.work, 'tampered.kfe.tar');
      await exportFromNvr({ config: loadNvrConfig(site.configPath), camera: 'CAM-E', ...span, out: out1, format: 'bundle', exporter, reason: 'case 7' });
      const r1 = await verifyEvidence(out1, { roots: root, exporterRoots: operator });
      const p1 = r1.parts?.[0]?.fragmentLayer.time?.tokens.find((t) => t.record === s1.records.length - 1);
      expect(p1?.valid).toBe(false);
      expect(formatEvidence(r1)).toMatch(/time-stamp \d+: NOT VALID, over the end record/);
      // 2. the genuine token filed as covering record 1: its imprint is the end record's hash, not record 1's
      const rec1 = nvr.index.record(s1.serial, s1.session, 1);
      db.prepare('UPDATE tokens SET token = ?, sha256 = ?, record_idx = 1 WHERE id = ?').run(saved.token, rec1?.hash, end.id);
      const out2 = join(site.work, 'wrong-hash.kfe.tar');
      await exportFromNvr({ config: loadNvrConfig(site.configPath), camera: 'CAM-E', ...span, out: out2, format: 'bundle', exporter, reason: 'case 7' });
      const r2 = await verifyEvidence(out2, { roots: root, exporterRoots: operator });
      // (the NVR may also hold a genuine token over record 1, stamped while it was the head)
      const p2 = r2.parts?.[0]?.fragmentLayer.time?.tokens.find((t) => t.record === 1 && !t.valid);
      expect(p2, JSON.stringify(r2.parts?.[0]?.fragmentLayer.time?.tokens)).toBeDefined();
      expect(p2?.reason).toMatch(/imprint/i);
      expect(formatEvidence(r2)).toMatch(/time-stamp \d+: NOT VALID, over fragment 0/);
    } finally {
      db.prepare('UPDATE tokens SET token = ?, sha256 = ?, record_idx = ? WHERE id = ?').run(saved.token, saved.sha256, saved.idx, end.id);
    }
  });

  it('a range with a quarantined fragment and one never uploaded: exported with those gaps, each named, the rest AUTHENTIC', async () => {
    const cam = site.cameraDirs.get('CAM-F') as string;
    const r = readRecording(await recordFor(cam, join(site.work, 'rec-f'), 5, new Date(t0)));
    expect(r.segments.length).toBeGreaterThanOrEqual(5);
    const client = await CameraClient.open(nvr.url, cam, join(site.caDir, 'operator.pem'));
    await client.put(r.serial, r.session, 'chain', r.chain);
    await client.put(r.serial, r.session, 'init', r.init);
    for (const [i, rec] of r.records.entries()) expect((await client.put(r.serial, r.session, 'rec', rec, i)).status).toBe(201);
    for (const [seq, seg] of r.segments.entries()) {
      if (seq === 3) continue; // never uploaded (the camera lost it, or has not sent it yet)
      const body = Buffer.from(seg);
      if (seq === 2) body[body.length - 10] = (body[body.length - 10] as number) ^ 0x01;
      expect((await client.put(r.serial, r.session, 'seg', body, seq)).status).toBe(seq === 2 ? 422 : 201);
    }
    await waitFor(() => sessionTokens(nvr.index, r.serial, r.session).some((t) => t.record_idx === r.records.length - 1), 30_000, 'the session stamped to its end record');
    const out = join(site.work, 'gaps.kfe.tar');
    const e = await exportFromNvr({ config: loadNvrConfig(site.configPath), camera: 'CAM-F', out, format: 'bundle', exporter, reason: 'case 10' });
    expect(e.sessions).toHaveLength(1);
    expect(e.sessions[0]?.segments).toBe(r.segments.length - 2);
    const report = await verifyEvidence(out, { roots: root, exporterRoots: operator });
    const text = formatEvidence(report);
    expect(report.verdict, text).toBe('AUTHENTIC_WITH_GAPS');
    const problems = report.fragmentLayer?.problems ?? [];
    expect(problems.filter((p) => p.seq === 2).map((p) => p.detail).join('; '), text).toMatch(/quarantined by the recorder/);
    expect(problems.filter((p) => p.seq === 3).map((p) => p.kind), text).toEqual(['missing']);
    expect(problems.every((p) => p.kind === 'missing'), text).toBe(true);
    expect(report.fragmentLayer?.authentic).toBe(r.segments.length - 2);
    // the same range as an ONVIF export file: the fragments it holds are named by number, the gaps explained alike
    const mp4 = join(site.work, 'gaps.mp4');
    await exportFromNvr({ config: loadNvrConfig(site.configPath), camera: 'CAM-F', out: mp4, format: 'onvif', exporter, reason: 'case 10' });
    const o = await verifyEvidence(mp4, { roots: root, exporterRoots: operator });
    const otext = formatEvidence(o);
    expect(o.verdict, otext).toBe('AUTHENTIC_WITH_GAPS');
    expect(o.fragmentLayer?.authentic).toBe(r.segments.length - 2);
    expect(o.fragmentLayer?.problems.map((p) => [p.kind, p.seq]), otext).toEqual([['missing', 2], ['missing', 3]]);
    expect(otext).toMatch(/fragment 2 .*quarantined by the recorder/);
    expect(otext).toMatch(/fragment 3 .*never received by the recorder/);
  });

  it('keyframe nvr export and keyframe verify as commands: no overwrite without --force, ONVIF for one session only, I/O errors exit 2', async () => {
    const out = join(site.work, 'cli.kfe.tar');
    const base = ['nvr', 'export', '--config', site.configPath, '--camera', 'CAM-E', '--from', span.from.toISOString(), '--to', span.to.toISOString(), '--exporter', join(site.work, 'smith'), '--reason', 'case 8'];
    const made = await runCli([...base, '--out', out], env());
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/as an evidence bundle of 2 sessions/);
    const v = await runCli(['verify', out, '--root', join(site.caDir, 'root.pem'), '--exporter-root', join(site.caDir, 'operator.pem')], env());
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toMatch(/^verdict: AUTHENTIC/);
    expect(v.stdout).toMatch(/existed by .*proven by RFC 3161 time-stamps/);
    expect(v.stdout).toContain('session break');
    // exists: refused, untouched; --force replaces it
    writeFileSync(join(site.work, 'keep.tar'), 'mine');
    const again = await runCli([...base, '--out', join(site.work, 'keep.tar')], env());
    expectOneLineError(again, 1, /exists/);
    expect((await import('node:fs')).readFileSync(join(site.work, 'keep.tar'), 'utf8')).toBe('mine');
    expect((await runCli([...base, '--out', join(site.work, 'keep.tar'), '--force'], env())).code).toBe(0);
    // ONVIF across sessions: a directory of one sealed ONVIF export file per session; verify on the directory is
    // AUTHENTIC with the break named, each file alone verifies too; a file missing from the set is caught
    const roots = ['--root', join(site.caDir, 'root.pem'), '--exporter-root', join(site.caDir, 'operator.pem')];
    const set = join(site.work, 'case-onvif');
    const across = await runCli([...base, '--out', set, '--format', 'onvif'], env());
    expect(across.code, across.stderr).toBe(0);
    expect(across.stdout).toMatch(/as 2 ONVIF export files, one per session/);
    expect(readdirSync(set).sort()).toEqual(['session-01.mp4', 'session-02.mp4']);
    const vs = await runCli(['verify', set, ...roots], env());
    expect(vs.code, vs.stdout).toBe(0);
    expect(vs.stdout).toMatch(/^verdict: AUTHENTIC/);
    expect(vs.stdout).toMatch(/ONVIF export of 2 sessions, one file each: session-01\.mp4, session-02\.mp4/);
    expect(vs.stdout).toMatch(/session 1 of 2 \(session-01\.mp4\)[\s\S]*ONVIF export file: AUTHENTIC; sealed by CN=J\. Smith/);
    expect(vs.stdout).toContain('session break');
    for (const f of ['session-01.mp4', 'session-02.mp4']) expect((await runCli(['verify', join(set, f), ...roots], env())).code).toBe(0);
    expectOneLineError(await runCli([...base, '--out', set, '--format', 'onvif'], env()), 1, /exists/);
    expect((await runCli([...base, '--out', set, '--format', 'onvif', '--force'], env())).code).toBe(0);
    const partial = join(site.work, 'case-onvif-partial');
    mkdirSync(partial);
    copyFileSync(join(set, 'session-02.mp4'), join(partial, 'session-02.mp4'));
    const vp = await runCli(['verify', partial, ...roots], env());
    expect(vp.code).not.toBe(0);
    expect(vp.stdout).toMatch(/^verdict: NOT_AUTHENTIC/);
    expect(vp.stdout).toMatch(/the set names 2 sessions, but the directory holds 1 of its files/);
    const one = join(site.work, 'one.mp4');
    const o = await runCli(['nvr', 'export', '--config', site.configPath, '--camera', 'CAM-E', '--from', new Date(t0 + 60_000).toISOString(), '--to', new Date(t0 + 63_000).toISOString(), '--exporter', join(site.work, 'smith'), '--reason', 'case 9', '--format', 'onvif', '--out', one], env());
    expect(o.code, o.stderr).toBe(0);
    const vo = await runCli(['verify', one, '--root', join(site.caDir, 'root.pem'), '--exporter-root', join(site.caDir, 'operator.pem')], env());
    expect(vo.code, vo.stdout).toBe(0);
    // an output directory that does not exist: one line, exit 2
    expectOneLineError(await runCli([...base, '--out', join(site.work, 'no', 'such', 'dir.tar')], env()), 2, /no\/such/);
    // an unknown camera: one line
    const none = await runCli([...base.slice(0, 5), 'CAM-NONE', ...base.slice(6), '--out', join(site.work, 'none.tar')], env());
    expect(none.code).not.toBe(0);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(none.stderr).toMatch(/no camera CAM-NONE/);
  });
});
