/**
 * `keyframe decrypt` of a camera recording directory and of an evidence bundle: one clear MP4 whose pictures are
 * the source's, with the keys given per KID as for a file; the same refusals as for a file (wrong key, missing
 * key) before anything is written.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { clip, frameMd5s } from '../helpers/media.js';
import { makePki, PIN_ENV, type Pki } from '../signing/_setup.js';

const KEY = '8899aabbccddeeff0011223344556677';
const KID = 'fedcba98765432100123456789abcdef';
const WRONG = '00000000000000000000000000000000';
let pki: Pki;
let cam: string;
let source: string;
let rec: string;
let bundle: string;
const env = (): NodeJS.ProcessEnv => ({ [PIN_ENV]: process.env[PIN_ENV] ?? '' });

beforeAll(async () => {
  pki = await makePki();
  cam = await pki.provision('CAM-DEC');
  source = await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25 });
  rec = join(pki.work, 'rec');
  const r = await runCli(['record', '--device', cam, '--source', source, '--duration', '3', '--out', rec, '--key', KEY, '--kid', KID, '--fast'], env());
  expect(r.code, r.stderr).toBe(0);
  bundle = join(pki.work, 'case.kfe.tar');
  const e = await runCli(['export', rec, '--out', bundle, '--exporter', await pki.identity('exporter', 'WS-DEC'), '--reason', 'decrypt test'], env());
  expect(e.code, e.stderr).toBe(0);
}, 240_000);

afterAll(async () => {
  await pki.caStore.close();
  rmSync(pki.work, { recursive: true, force: true });
});

describe('decrypt a recording or a bundle', () => {
  it('a recording directory becomes one clear MP4 with the pictures of the source', async () => {
    const out = join(pki.work, 'rec-clear.mp4');
    const r = await runCli(['decrypt', rec, '--key', `${KID}:${KEY}`, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^decrypted 75 samples in 3 fragments \(recording: 3 fragment files\)/);
    expect(r.stdout).toContain(`KID ${KID}: key verified against the key check in the file`);
    // 3 s of a looped 2 s source: the pictures are the source's, then its first second again
    const src = await frameMd5s(source);
    expect(await frameMd5s(out)).toEqual([...src, ...src.slice(0, 25)]);
  });

  it('an evidence bundle gives the same clear video', async () => {
    const fromRec = join(pki.work, 'rec-clear.mp4');
    const out = join(pki.work, 'bundle-clear.mp4');
    const r = await runCli(['decrypt', bundle, '--key', KEY, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\(evidence bundle: 3 fragment files\)/);
    expect(await frameMd5s(out)).toEqual(await frameMd5s(fromRec));
  });

  it('a wrong or missing key is refused before anything is written', async () => {
    const out = join(pki.work, 'nothing.mp4');
    const wrong = await runCli(['decrypt', rec, '--key', WRONG, '--out', out]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^keyframe: wrong key for KID fedcba98/);
    const other = await runCli(['decrypt', bundle, '--key', `${WRONG.slice(0, 31)}1:${KEY}`, '--out', out]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/^keyframe: no key for KID fedcba98/);
    expect(existsSync(out)).toBe(false);
  });

  it('a directory that is not a recording is named as such', async () => {
    const notRec = join(pki.work, 'not-a-recording');
    mkdirSync(notRec);
    const r = await runCli(['decrypt', notRec, '--key', KEY, '--out', join(pki.work, 'x.mp4')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is a directory without records\.jsonl or ONVIF export files \(session-01\.mp4 …\): not a keyframe recording or export\n$/);
  });
});
