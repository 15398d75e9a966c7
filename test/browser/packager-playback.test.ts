/**
 * Acceptance: headless Chromium plays keyframe's encrypted CMAF through MSE and EME ClearKey — `cbcs` and `cenc`
 * — past 3 s with no decode error; a frame of the decoded video matches the clear source's (screenshot of the
 * composited video, since Chromium blocks canvas reads of EME video); with a wrong key the picture does not come.
 * Also with keys rotating mid-stream (a new KID every two fragments, seig + pssh in the fragment).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeChunksAtomic } from '../../src/packager/files.js';
import { openInput } from '../../src/packager/input.js';
import { emptyStats, packageChunks } from '../../src/packager/package.js';
import type { ContentKey } from '../../src/packager/package.js';
import { checkEncryptedPlayback, splitFragmentedMp4 } from '../helpers/browser.js';
import { clip } from '../helpers/media.js';

let work: string;
let src: string;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'kf-play-'));
  src = await clip({ width: 1280, height: 720, seconds: 5, gop: 30, format: 'mp4' });
}, 240_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function packaged(scheme: 'cbcs' | 'cenc', keys: ContentKey[], every: number): Promise<{ init: Uint8Array; fragments: Uint8Array[] }> {
  const out = join(work, `${scheme}-${keys.length}.mp4`);
  const input = await openInput(src);
  await writeChunksAtomic(out, packageChunks(input, { scheme, keyFor: (i) => keys[Math.min(keys.length - 1, Math.floor(i / every))] as ContentKey }, emptyStats()));
  await input.close();
  return splitFragmentedMp4(readFileSync(out));
}

describe.each(['cbcs', 'cenc'] as const)('Chromium plays keyframe %s', (scheme) => {
  it('with the key: plays past 3 s, the picture matches the clear source; with a wrong key it does not', async () => {
    const key: ContentKey = { kid: randomBytes(16), key: randomBytes(16) };
    const { init, fragments } = await packaged(scheme, [key], 1_000_000);
    expect(fragments.length).toBe(5);
    const report = await checkEncryptedPlayback({ clearClip: src, init, fragments, keys: { [hex(key.kid)]: hex(key.key) }, scheme, captureAt: [2] });
    expect(report.result.reachedTime).toBeGreaterThan(3);
    expect(report.diffs[0]?.diff).toBeLessThan(2.5);
  });

  it('with keys rotating every two fragments', async () => {
    const keys: ContentKey[] = [0, 1, 2].map(() => ({ kid: randomBytes(16), key: randomBytes(16) }));
    const { init, fragments } = await packaged(scheme, keys, 2);
    const report = await checkEncryptedPlayback({
      clearClip: src,
      init,
      fragments,
      keys: Object.fromEntries(keys.map((k) => [hex(k.kid), hex(k.key)])),
      scheme,
      playSeconds: 4.2,
      captureAt: [1.5, 4.5],
      wrongKeyControl: false,
    });
    expect(report.result.reachedTime).toBeGreaterThan(4.2);
    for (const d of report.diffs) expect(d.diff).toBeLessThan(2.5);
  });
});
