/**
 * The recording commands as a user runs them (the compiled binary in a child process): `keyframe record`,
 * `keyframe verify` over a recording, an encrypted MP4 and a bundle (exit codes 0 / 1 / 2, human and JSON
 * reports), and `keyframe export`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli, snapshot, spawnCli, waitFor } from '../helpers/cli.js';
import { clip } from '../helpers/media.js';
import { makePki, type Pki } from '../signing/_setup.js';

const KEY = '8899aabbccddeeff0011223344556677';
const KID = 'fedcba98765432100123456789abcdef';

let pki: Pki;
let cam: string;
let exporter: string;
let source: string;
let rec: string;

beforeAll(async () => {
  pki = await makePki();
  cam = await pki.provision('SN-CLI-REC');
  exporter = await pki.identity('exporter', 'WS-INVESTIGATOR');
  source = await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25, slices: 2 });
  rec = join(pki.work, 'rec');
}, 240_000);

afterAll(async () => {
  await pki.caStore.close();
  rmSync(pki.work, { recursive: true, force: true });
});

describe('keyframe record / verify / export', () => {
  it('records 3 s, signed and encrypted, and verify passes without the key (exit 0)', async () => {
    const r = await runCli(['record', '--device', cam, '--source', source, '--duration', '3', '--out', rec, '--key', KEY, '--kid', KID, '--fast']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/recorded 3\.000 s \(75 frames, 3 fragments\) as SN-CLI-REC/);
    expect(r.stdout).toContain(`encrypted cbcs, KID ${KID}`);
    expect(r.stdout.split('\n').filter((l) => l !== '')).toHaveLength(1); // a one-line summary
    const v = await runCli(['verify', rec, '--root', pki.rootPath]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^verdict: AUTHENTIC\n/);
    expect(v.stdout).toContain('fragment records (checked without any key): AUTHENTIC');
    expect(v.stdout).toContain('video (signed SEIs): not checked: the video is encrypted and no key was given (--key)');
    const k = await runCli(['verify', rec, '--root', pki.rootPath, '--key', KEY, '--json']);
    expect(k.code).toBe(0);
    const report = JSON.parse(k.stdout) as { verdict: string; videoLayer: string; frames: number; fragmentLayer: { authentic: number } };
    expect(report).toMatchObject({ verdict: 'AUTHENTIC', videoLayer: 'checked', frames: 75, fragmentLayer: { authentic: 3 } });
  });

  it('a flipped bit in an encrypted fragment: exit 1, the fragment and its time range named', async () => {
    const bad = join(pki.work, 'rec-bad');
    await runCli(['record', '--device', cam, '--source', source, '--duration', '3', '--out', bad, '--key', KEY, '--kid', KID, '--fast']);
    const p = join(bad, '000001.m4s');
    const b = readFileSync(p);
    b[b.length - 50] = (b[b.length - 50] ?? 0) ^ 0x10;
    writeFileSync(p, b);
    const v = await runCli(['verify', bad, '--root', pki.rootPath]);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/^verdict: NOT_AUTHENTIC/);
    expect(v.stdout).toMatch(/tampered\s+1\.000 s – 2\.000 s {2}fragment 1 \(1–2 s\): stored bytes differ from what the camera signed/);
  });

  it('exports a bundle that verifies offline (exit 0) and names the exporter and the reason', async () => {
    const bundle = join(pki.work, 'case.kfe.tar');
    const e = await runCli(['export', rec, '--out', bundle, '--exporter', exporter, '--reason', 'case 7: burglary']);
    expect(e.stderr).toBe('');
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/fragments 0–2/);
    const v = await runCli(['verify', bundle, '--root', pki.rootPath, '--exporter-root', pki.operatorPath, '--key', KEY]);
    expect(v.code).toBe(0);
    expect(v.stdout).toContain('evidence bundle: AUTHENTIC');
    expect(v.stdout).toContain('exporter: CN=WS-INVESTIGATOR, O=Acme Cameras (issuer CN=Acme Cameras Operator CA, O=Acme Cameras): trusted');
    expect(v.stdout).toContain('reason: case 7: burglary');
    expect(v.stdout).toContain('exporter signature: valid');
  });

  it('without --duration it records until stopped: Ctrl-C closes the session cleanly', async () => {
    const open = join(pki.work, 'rec-open');
    const child = spawnCli(['record', '--device', cam, '--source', source, '--out', open, '--key', KEY, '--kid', KID]);
    const records = join(open, 'records.jsonl');
    // the session record and two fragment records: two seconds of paced capture
    await waitFor(() => existsSync(records) && readFileSync(records, 'utf8').split('\n').length > 3, 30_000, 'two fragments');
    child.kill('SIGINT');
    const r = await child.result;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^recorded \d+\.\d{3} s \(\d+ frames, \d+ fragments\) as SN-CLI-REC, .*closed with a signed end record → /);
    const v = await runCli(['verify', open, '--root', pki.rootPath]);
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toMatch(/^verdict: AUTHENTIC\n/);
  });

  it.runIf(existsSync('/usr/bin/script'))('on a terminal it shows progress (fragments, seconds, bytes) and ends with the summary', () => {
    const out = join(pki.work, 'rec-tty');
    const cmd = [process.execPath, BIN, 'record', '--device', cam, '--source', source, '--duration', '3', '--out', out, '--fast'].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env: { ...process.env, KEYFRAME_DEBUG: '' } });
    expect(r.status, r.stdout).toBe(0);
    expect(r.stdout).toContain(`recording SN-CLI-REC → ${out}`);
    expect(r.stdout).toMatch(/\r {2}1 fragments, 1\.0 s, [\d.]+ (KiB|MiB)/);
    expect(r.stdout).toMatch(/\r {2}3 fragments, 3\.0 s, [\d.]+ (KiB|MiB)/);
    expect(r.stdout).toMatch(/recorded 3\.000 s \(75 frames, 3 fragments\)/);
  });

  it('unusable input exits 2 with one clear line, nothing written', async () => {
    const before = snapshot(pki.work);
    const missing = await runCli(['verify', join(pki.work, 'nope'), '--root', pki.rootPath]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^keyframe: evidence not found: .*nope\n$/);
    const keyOnly = await runCli(['record', '--device', cam, '--source', source, '--duration', '1', '--out', join(pki.work, 'r2'), '--key', KEY, '--fast']);
    expect(keyOnly.code).toBe(2);
    expect(keyOnly.stderr).toContain('--key and --kid go together');
    const badDuration = await runCli(['record', '--device', cam, '--source', source, '--duration', 'ten', '--out', join(pki.work, 'r3'), '--fast']);
    expect(badDuration.code).toBe(2);
    mkdirSync(join(pki.work, 'not-a-recording'));
    const notRec = await runCli(['export', join(pki.work, 'not-a-recording'), '--out', join(pki.work, 'x.tar'), '--exporter', exporter, '--reason', 'r']);
    expect(notRec.code).toBe(2);
    expect(notRec.stderr).toMatch(/not a keyframe recording/);
    expect(snapshot(pki.work)).toEqual(before);
  });
});
