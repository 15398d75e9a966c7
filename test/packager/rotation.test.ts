/**
 * Key rotation: a new KID starts a new fragment (seig sample group + pssh + key check in that fragment); one
 * recording spans several KIDs; the decryptor takes several keys, and names the KID it lacks or whose key is wrong.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileSource } from '../../src/media/mp4/index.js';
import { decryptChunks, emptyReport } from '../../src/packager/decrypt.js';
import { writeChunksAtomic } from '../../src/packager/files.js';
import { openInput } from '../../src/packager/input.js';
import { emptyStats, packageChunks } from '../../src/packager/package.js';
import type { ContentKey } from '../../src/packager/package.js';
import { runCli } from '../helpers/cli.js';
import { clip, packetHash } from '../helpers/media.js';

let work: string;
let src: string;
const keys: ContentKey[] = [0, 1, 2].map(() => ({ kid: randomBytes(16), key: randomBytes(16) }));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'kf-rot-'));
  src = await clip({ width: 640, height: 360, seconds: 6, gop: 30, format: 'mp4' });
}, 240_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.each(['cbcs', 'cenc'] as const)('%s with three KIDs (a new one every two fragments)', (scheme) => {
  let out: string;
  beforeAll(async () => {
    out = join(work, `rot-${scheme}.mp4`);
    const input = await openInput(src);
    const stats = emptyStats();
    await writeChunksAtomic(out, packageChunks(input, { scheme, keyFor: (i) => keys[Math.floor(i / 2)] ?? keys[2] as ContentKey }, stats));
    await input.close();
    expect(stats.fragments).toBe(6);
    expect(stats.kids).toEqual(keys.map((k) => hex(k.kid)));
  });

  it('decrypts with all three keys to the clear packets, every key verified', async () => {
    const dec = join(work, `rot-${scheme}-dec.mp4`);
    const args = ['decrypt', out, '--out', dec, ...keys.flatMap((k) => ['--key', `${hex(k.kid)}:${hex(k.key)}`])];
    const r = await runCli(args);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.match(/key verified/g)?.length).toBe(3);
    expect(await packetHash(dec, { pipe: true })).toBe(await packetHash(src));
  });

  it('names the missing KID and writes nothing', async () => {
    const dec = join(work, `rot-${scheme}-missing.mp4`);
    const r = await runCli(['decrypt', out, '--out', dec, ...keys.slice(0, 2).flatMap((k) => ['--key', `${hex(k.kid)}:${hex(k.key)}`])]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`keyframe: no key for KID ${hex(keys[2]?.kid ?? new Uint8Array())}`);
    expect(existsSync(dec)).toBe(false);
  });

  it('refuses a wrong key for a rotated KID before writing anything', async () => {
    const source = await fileSource(out);
    const byKid = new Map(keys.map((k, i) => [hex(k.kid), i === 1 ? randomBytes(16) : k.key]));
    const report = emptyReport();
    await expect(writeChunksAtomic(join(work, `rot-${scheme}-wrong.mp4`), decryptChunks(source, { byKid }, report))).rejects.toThrow(
      new RegExp(`wrong key for KID ${hex(keys[1]?.kid ?? new Uint8Array())}`),
    );
    await source.close();
    expect(existsSync(join(work, `rot-${scheme}-wrong.mp4`))).toBe(false);
  });
});
