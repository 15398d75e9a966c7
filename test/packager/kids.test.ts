/**
 * encryptedKids: the KIDs whose keys a decryption needs, found without any key — the default KID, the KIDs of key
 * rotation (seig groups in later fragments), another packager's file (ffmpeg's cenc-aes-ctr, no key checks); none
 * for clear video. Exactly the KIDs decryptChunks asks for: with the keys of those KIDs it decrypts.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileSource } from '../../src/media/mp4/index.js';
import { decryptChunks, emptyReport, encryptedKids } from '../../src/packager/decrypt.js';
import { writeChunksAtomic } from '../../src/packager/files.js';
import { openInput } from '../../src/packager/input.js';
import { emptyStats, packageChunks } from '../../src/packager/package.js';
import type { ContentKey, PackageOptions } from '../../src/packager/package.js';
import { clip, ffmpeg } from '../helpers/media.js';

let work: string;
let src: string;
const keys: ContentKey[] = [0, 1, 2].map(() => ({ kid: randomBytes(16), key: randomBytes(16) }));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

async function packaged(name: string, options: PackageOptions): Promise<string> {
  const out = join(work, name);
  const input = await openInput(src);
  try {
    await writeChunksAtomic(out, packageChunks(input, options, emptyStats()));
  } finally {
    await input.close();
  }
  return out;
}

async function kidsOf(path: string): Promise<string[]> {
  const source = await fileSource(path);
  try {
    return await encryptedKids(source);
  } finally {
    await source.close();
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'kf-kids-'));
  src = await clip({ width: 320, height: 240, fps: 25, seconds: 4, gop: 25, format: 'mp4' });
}, 240_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('encryptedKids', () => {
  it('one KID: the track default', async () => {
    const out = await packaged('one.mp4', { scheme: 'cbcs', keyFor: () => keys[0] as ContentKey });
    expect(await kidsOf(out)).toEqual([hex(keys[0]?.kid ?? new Uint8Array())]);
  });

  it.each(['cbcs', 'cenc'] as const)('%s with key rotation: every KID in the order first met, and those keys decrypt it', async (scheme) => {
    // fragments 0,1 under KID 0; 2 under KID 1; 3 under KID 2
    const out = await packaged(`rot-${scheme}.mp4`, { scheme, keyFor: (i) => keys[Math.max(0, i - 1)] ?? (keys[2] as ContentKey) });
    const kids = await kidsOf(out);
    expect(kids).toEqual(keys.map((k) => hex(k.kid)));
    const source = await fileSource(out);
    const byKid = new Map(keys.filter((k) => kids.includes(hex(k.kid))).map((k) => [hex(k.kid), k.key]));
    const report = emptyReport();
    await writeChunksAtomic(join(work, `rot-${scheme}-dec.mp4`), decryptChunks(source, { byKid }, report));
    await source.close();
    expect(report.kids.map((k) => k.kid).sort()).toEqual([...kids].sort());
  });

  it("another packager's file (ffmpeg cenc-aes-ctr, no key check): its KID", async () => {
    const kid = randomBytes(16).toString('hex');
    const enc = join(work, 'ffmpeg-cenc.mp4');
    await ffmpeg(['-y', '-i', src, '-c', 'copy', '-encryption_scheme', 'cenc-aes-ctr', '-encryption_key', randomBytes(16).toString('hex'), '-encryption_kid', kid, enc]);
    expect(await kidsOf(enc)).toEqual([kid]);
  });

  it('clear video: no KID', async () => {
    expect(await kidsOf(await packaged('clear.mp4', { scheme: 'none' }))).toEqual([]);
    expect(await kidsOf(src)).toEqual([]);
  });
});
