/**
 * Acceptance: headless Chromium plays keyframe's ONVIF export file (keyframe export --format onvif) — the whole
 * file, evidence uuid boxes and the sealed meta box included, appended to MSE as it is on disk — past 3 s with no
 * media error, and the decoded pictures match ffmpeg's decode of the same file. A copy whose seal is broken plays
 * the same (players ignore the seal; keyframe verify does not), and a copy with the mdat damaged does not play
 * cleanly, so the check can fail.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frameDiff, mp4Boxes, mp4VideoMime, playInChromium, referenceFrame } from '../helpers/browser.js';
import { runCli } from '../helpers/cli.js';
import { clip } from '../helpers/media.js';
import { makePki, type Pki } from '../signing/_setup.js';

let pki: Pki;
let file: Uint8Array;
let path: string;

beforeAll(async () => {
  pki = await makePki();
  const cam = await pki.provision('SN-PLAY');
  const exporter = await pki.identity('exporter', 'WS-PLAY');
  const source = await clip({ width: 640, height: 360, fps: 25, seconds: 5, gop: 25 });
  const rec = join(pki.work, 'rec');
  expect((await runCli(['record', '--device', cam, '--source', source, '--duration', '5', '--out', rec, '--fast'])).code).toBe(0);
  path = join(pki.work, 'export.mp4');
  const e = await runCli(['export', rec, '--format', 'onvif', '--out', path, '--exporter', exporter, '--reason', 'playback']);
  expect(e.code, e.stderr).toBe(0);
  file = new Uint8Array(readFileSync(path));
}, 240_000);

afterAll(async () => {
  await pki.caStore.close();
  rmSync(pki.work, { recursive: true, force: true });
});

describe('Chromium plays the ONVIF export file', () => {
  it('the file as written: plays past 3 s, no error, pictures as ffmpeg decodes them', async () => {
    const types = mp4Boxes(file).map((b) => b.type);
    expect(types[0]).toBe('ftyp');
    expect(types).toContain('uuid');
    expect(types[types.length - 1]).toBe('meta');
    const r = await playInChromium({ init: file, fragments: [], mime: mp4VideoMime(file), playSeconds: 3.2, captureAt: [1.6, 4] }); // frame starts at 25 fps (frames 40 and 100), where -ss and a seek agree
    expect(r.errors).toEqual([]);
    expect(r.reachedTime).toBeGreaterThan(3.2);
    for (const f of r.frames) {
      expect(f.readError, `frame at ${f.time}`).toBeUndefined();
      const diff = frameDiff(f.rgba!, await referenceFrame(path, f.time, f.width, f.height));
      expect(diff, `frame at ${f.time}`).toBeLessThan(2.5);
    }
  });

  it('control: damaged slice data in every mdat is visible in the decoded picture', async () => {
    const bad = Uint8Array.from(file);
    for (const m of mp4Boxes(bad).filter((b) => b.type === 'mdat')) for (let i = m.start + 400; i < m.start + m.size; i += 97) bad[i] = (bad[i] ?? 0) ^ 0xff;
    const r = await playInChromium({ init: bad, fragments: [], mime: mp4VideoMime(bad), playSeconds: 3.2, captureAt: [1.6], timeoutMs: 20_000 });
    const f = r.frames[0];
    const broken = r.errors.length > 0 || f?.rgba === undefined || frameDiff(f.rgba, await referenceFrame(path, 1.6, f.width, f.height)) > 2.5;
    expect(broken).toBe(true);
  });
});
