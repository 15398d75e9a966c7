/** `keyframe package` / `keyframe decrypt` error paths: one line, the right exit code, no output file. */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, expectOneLineError } from '../helpers/cli.js';
import { clip } from '../helpers/media.js';

const KEY = '00112233445566778899aabbccddeeff';
const KID = '0123456789abcdef0123456789abcdef';
let work: string;
let src: string;


beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'kf-media-cli-'));
  src = await clip({ width: 320, height: 240, seconds: 2, gop: 30, format: 'h264' });
}, 240_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('package and decrypt: errors', () => {
  it('bad keys and schemes are usage errors', async () => {
    const out = join(work, 'x.mp4');
    expectOneLineError(await runCli(['package', src, '--out', out, '--key', 'abc', '--kid', KID]), 2, /--key must be 32 hex digits/);
    expectOneLineError(await runCli(['package', src, '--out', out, '--key', KEY]), 2, /--key and --kid are required/);
    expectOneLineError(await runCli(['package', src, '--out', out, '--scheme', 'cbc1', '--key', KEY, '--kid', KID]), 2, /--scheme/);
    expectOneLineError(await runCli(['decrypt', src, '--out', out]), 2, /^keyframe: --key or --licence is required$/);
    expectOneLineError(await runCli(['decrypt', src, '--out', out, '--key', KEY, '--key', `${KID}:${KEY}`]), 2, /not both/);
    expect(existsSync(out)).toBe(false);
  });

  it('missing, garbage and truncated inputs are media errors with no output', async () => {
    const out = join(work, 'y.mp4');
    expectOneLineError(await runCli(['package', join(work, 'none.h264'), '--out', out, '--key', KEY, '--kid', KID]), 2, /not found/);
    writeFileSync(join(work, 'garbage.bin'), Buffer.from('this is not video at all, not even close'));
    expectOneLineError(await runCli(['package', join(work, 'garbage.bin'), '--out', out, '--key', KEY, '--kid', KID]), 2, /neither an Annex-B H.264 stream nor an MP4/);
    const enc = join(work, 'enc.mp4');
    expect((await runCli(['package', src, '--out', enc, '--key', KEY, '--kid', KID])).code).toBe(0);
    const { readFileSync } = await import('node:fs');
    writeFileSync(join(work, 'trunc.mp4'), readFileSync(enc).subarray(0, 5000));
    const r = await runCli(['decrypt', join(work, 'trunc.mp4'), '--key', KEY, '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^keyframe: /);
    expect(existsSync(out)).toBe(false);
  });

  it('decrypting an Annex-B stream says what it is, naming the path', async () => {
    expectOneLineError(await runCli(['decrypt', src, '--key', KEY, '--out', join(work, 'h.mp4')]), 2, new RegExp(`^keyframe: ${src} is an Annex-B H.264 stream, not an MP4: there is nothing to decrypt$`));
    expect(existsSync(join(work, 'h.mp4'))).toBe(false);
  });

  it('decrypting a clear file, or packaging an encrypted one, is refused', async () => {
    const clear = join(work, 'clear.mp4');
    expect((await runCli(['package', src, '--out', clear, '--scheme', 'none'])).code).toBe(0);
    expectOneLineError(await runCli(['decrypt', clear, '--key', KEY, '--out', join(work, 'z.mp4')]), 2, /not encrypted/);
    const enc = join(work, 'enc2.mp4');
    expect((await runCli(['package', src, '--out', enc, '--key', KEY, '--kid', KID])).code).toBe(0);
    expectOneLineError(await runCli(['package', enc, '--out', join(work, 'z2.mp4'), '--key', KEY, '--kid', KID]), 2, /already encrypted/);
  });
});
