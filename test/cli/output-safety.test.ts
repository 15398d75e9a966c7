/**
 * Output safety, the one mechanism every writing command runs (src/util/fs.ts checkOutput): an output that is an
 * input is refused — by name, through a symbolic link, through a hard link — and an existing output is refused
 * unless --force, which replaces it only once the new one is complete (and, for a directory, only a directory of
 * the kind the command writes). The real binary in child processes.
 */
import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, snapshot, expectOneLineError } from '../helpers/cli.js';
import type { CliResult } from '../helpers/cli.js';
import { clip } from '../helpers/media.js';
import { makePki, PIN_ENV, type Pki } from '../signing/_setup.js';

const KEY = '00112233445566778899aabbccddeeff';
const KID = '0123456789abcdef0123456789abcdef';
let pki: Pki;
let cam: string;
let exporter: string;
let work: string;
let src: string;
const env = (): NodeJS.ProcessEnv => ({ [PIN_ENV]: process.env[PIN_ENV] ?? '', KEYFRAME_KEYSTORE_PIN: process.env[PIN_ENV] ?? '' });
const kf = (...args: string[]): Promise<CliResult> => runCli(args, env(), work);

function sha(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}


beforeAll(async () => {
  pki = await makePki();
  work = pki.work;
  cam = await pki.provision('CAM-SAFE');
  exporter = await pki.identity('exporter', 'WS-SAFE');
  const clipPath = await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25, format: 'h264' });
  src = join(work, 'cam.h264');
  writeFileSync(src, readFileSync(clipPath));
  expect((await kf('package', src, '--out', 'cam.mp4', '--key', KEY, '--kid', KID)).code).toBe(0);
}, 240_000);

afterAll(async () => {
  await pki.caStore.close();
});

describe('an output that is an input is refused, whatever the flags', () => {
  it('decrypt cam.mp4 --out cam.mp4 leaves the encrypted original untouched', async () => {
    const before = sha(join(work, 'cam.mp4'));
    expectOneLineError(await kf('decrypt', 'cam.mp4', '--key', KEY, '--out', 'cam.mp4'), 2, /refusing to write .*cam\.mp4: it is the input/);
    expectOneLineError(await kf('decrypt', 'cam.mp4', '--key', KEY, '--out', 'cam.mp4', '--force'), 2, /it is the input/);
    expect(sha(join(work, 'cam.mp4'))).toBe(before);
  });

  it("package x.h264 --out x.h264 leaves the camera's stream untouched, also through a symbolic or hard link", async () => {
    const before = sha(src);
    expectOneLineError(await kf('package', 'cam.h264', '--out', 'cam.h264', '--key', KEY, '--kid', KID, '--force'), 2, /it is the input/);
    symlinkSync(src, join(work, 'sym.h264'));
    expectOneLineError(await kf('package', 'cam.h264', '--out', 'sym.h264', '--key', KEY, '--kid', KID, '--force'), 2, /it is the input/);
    linkSync(src, join(work, 'hard.h264'));
    expectOneLineError(await kf('package', 'cam.h264', '--out', 'hard.h264', '--key', KEY, '--kid', KID, '--force'), 2, /it is the input/);
    expectOneLineError(await kf('sign', 'cam.h264', '--device', cam, '--out', 'hard.h264', '--force'), 2, /it is the input/);
    expect(sha(src)).toBe(before);
  });

  it('a recording cannot be written over its own source, nor an export or decryption into the recording', async () => {
    mkdirSync(join(work, 'holder'));
    writeFileSync(join(work, 'holder', 'src.h264'), readFileSync(src));
    expectOneLineError(await kf('record', '--device', cam, '--source', 'holder/src.h264', '--out', 'holder', '--duration', '1', '--fast', '--force'), 2, /it holds the input/);
    expect(readdirSync(join(work, 'holder'))).toEqual(['src.h264']);
    expect((await kf('record', '--device', cam, '--source', 'cam.h264', '--out', 'rec', '--duration', '1', '--fast')).code).toBe(0);
    const before = snapshot(join(work, 'rec'));
    expectOneLineError(await kf('decrypt', 'rec', '--key', KEY, '--out', 'rec/clear.mp4'), 2, /inside the input/);
    expectOneLineError(await kf('export', 'rec', '--out', 'rec/x.tar', '--exporter', exporter, '--reason', 'r'), 2, /inside the input/);
    expect(snapshot(join(work, 'rec'))).toEqual(before);
  });
});

describe('an existing output is refused without --force, replaced with it', () => {
  it('files: package, decrypt, sign, export, ca crl, ca token, device csr', async () => {
    writeFileSync(join(work, 'old.bin'), 'precious');
    const old = join(work, 'old.bin');
    const cases: string[][] = [
      ['package', 'cam.h264', '--out', old, '--key', KEY, '--kid', KID],
      ['decrypt', 'cam.mp4', '--key', KEY, '--out', old],
      ['sign', 'cam.h264', '--device', cam, '--out', old],
      ['export', 'rec', '--out', old, '--exporter', exporter, '--reason', 'case 1'],
      ['ca', 'crl', '--ca', pki.caDir, '--out', old],
      ['ca', 'token', '--ca', pki.caDir, '--serial', 'CAM-T', '--out', old],
      ['device', 'csr', '--device', cam, '--out', old],
    ];
    for (const args of cases) {
      expectOneLineError(await kf(...args), 1, new RegExp(`refusing to overwrite ${old}: it exists already \\(--force replaces it\\)`));
      expect(readFileSync(old, 'utf8'), args.join(' ')).toBe('precious');
    }
    for (const args of cases) {
      writeFileSync(old, 'precious');
      const r = await kf(...args, '--force');
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(readFileSync(old, 'utf8'), args.join(' ')).not.toBe('precious');
    }
    expect(readdirSync(work).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('directories: record, device provision, device init, ca init, ca site-cert', async () => {
    mkdirSync(join(work, 'full'));
    writeFileSync(join(work, 'full', 'keep.txt'), 'keep');
    const dirs: string[][] = [
      ['record', '--device', cam, '--source', 'cam.h264', '--out', 'full', '--duration', '1', '--fast'],
      ['device', 'provision', '--ca', pki.caDir, '--serial', 'CAM-D1', '--out', 'full', '--keystore', pki.spec(join(work, 'ks-d1'))],
      ['device', 'init', '--device', 'full', '--serial', 'CAM-D2', '--keystore', pki.spec(join(work, 'ks-d2'))],
      ['ca', 'init', '--dir', 'full', '--keystore', pki.spec(join(work, 'ks-ca'))],
      ['ca', 'site-cert', '--ca', pki.caDir, '--name', 'nvr.local', '--out', 'full', '--keystore', pki.spec(join(work, 'ks-site'))],
    ];
    for (const args of dirs) {
      expectOneLineError(await kf(...args), 1, /refusing to overwrite .*full: it exists already \(--force replaces it\)/);
      // --force never removes a directory of another kind
      expectOneLineError(await kf(...args, '--force'), 1, /refusing to replace .*full: it is not a keyframe (recording|device directory|CA directory|site directory)/);
      expect(readFileSync(join(work, 'full', 'keep.txt'), 'utf8')).toBe('keep');
    }
  });

  it('record --force replaces a recording; an empty directory needs no --force', async () => {
    mkdirSync(join(work, 'empty'));
    expect((await kf('record', '--device', cam, '--source', 'cam.h264', '--out', 'empty', '--duration', '1', '--fast')).code).toBe(0);
    const first = readFileSync(join(work, 'empty', 'records.jsonl'), 'utf8');
    expectOneLineError(await kf('record', '--device', cam, '--source', 'cam.h264', '--out', 'empty', '--duration', '2', '--fast'), 1, /exists already/);
    const r = await kf('record', '--device', cam, '--source', 'cam.h264', '--out', 'empty', '--duration', '2', '--fast', '--force');
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(work, 'empty', 'records.jsonl'), 'utf8')).not.toBe(first);
    expect(readdirSync(join(work, 'empty')).filter((n) => n.endsWith('.m4s'))).toEqual(['000000.m4s', '000001.m4s']);
    expect((await runCli(['verify', join(work, 'empty'), '--root', pki.rootPath])).code).toBe(0);
  });

  it('device provision --force replaces a device directory (a new key and certificate)', async () => {
    const dev = join(work, 'dev-f');
    const args = ['device', 'provision', '--ca', pki.caDir, '--serial', 'CAM-F', '--out', dev];
    expect((await kf(...args)).code).toBe(0);
    const cert = readFileSync(join(dev, 'device.pem'), 'utf8');
    const r = await kf(...args, '--force', '--reissue');
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dev, 'device.pem'), 'utf8')).not.toBe(cert);
    expect(readdirSync(work).filter((n) => n.startsWith('.dev-f'))).toEqual([]);
  });

  it('device self-sign and install-cert do not replace a certificate without --force', async () => {
    const before = readFileSync(join(cam, 'device.pem'), 'utf8');
    expectOneLineError(await kf('device', 'self-sign', '--device', cam), 1, /refusing to overwrite the certificate of .*: it has one already \(--force replaces it\)/);
    expect(readFileSync(join(cam, 'device.pem'), 'utf8')).toBe(before);
    expect(existsSync(join(cam, 'device.pem'))).toBe(true);
  });
});
