/**
 * A truncated H.264 input — a real x264 clip cut inside its last access unit, as a camera's power cut or an
 * interrupted copy leaves it. `package` warns on stderr (exit 0) and drops the cut picture, so the output ends
 * with the last whole one; `record` refuses the source before it writes anything (its broken picture would be
 * looped and signed as authentic). Cut inside the slice data, inside the slice header, and at a slice boundary
 * of a two-slice picture (a whole slice missing).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitAnnexB } from '../../src/media/h264/index.js';
import { runCli } from '../helpers/cli.js';
import { clip, frameMd5s } from '../helpers/media.js';
import { makePki, PIN_ENV, type Pki } from '../signing/_setup.js';

let work: string;
let pki: Pki;
let cam: string;
let whole: string;
let twoSlices: string;
const FRAMES = 50;

/** Byte offset in `data` of each NAL unit's first byte (after its start code). */
function nalOffsets(data: Buffer): number[] {
  return splitAnnexB(data).map((n) => n.byteOffset - data.byteOffset);
}

function cutCopy(src: string, name: string, at: (data: Buffer, offsets: number[]) => number): string {
  const data = readFileSync(src);
  const out = join(work, name);
  writeFileSync(out, data.subarray(0, at(data, nalOffsets(data))));
  return out;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'kf-trunc-'));
  pki = await makePki();
  cam = await pki.provision('CAM-TRUNC');
  whole = await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25 });
  twoSlices = await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25, slices: 2 });
}, 240_000);

afterAll(async () => {
  await pki.caStore.close();
  rmSync(work, { recursive: true, force: true });
  rmSync(pki.work, { recursive: true, force: true });
});

describe('a cut last access unit', () => {
  const cases: [string, () => string][] = [
    ['cut inside the slice data', () => cutCopy(whole, 'mid.h264', (d, o) => ((o[o.length - 1] as number) + d.length) >> 1)],
    ['cut inside the slice header', () => cutCopy(whole, 'head.h264', (_d, o) => (o[o.length - 1] as number) + 2)],
    ['the second slice of the last picture missing', () => cutCopy(twoSlices, 'slice.h264', (_d, o) => (o[o.length - 1] as number) - 4)],
  ];

  for (const [title, make] of cases) {
    it(`package warns and drops it; record refuses the source: ${title}`, async () => {
      const cut = make();
      const out = join(work, `${title.replace(/\W+/g, '-')}.mp4`);
      const p = await runCli(['package', cut, '--out', out, '--scheme', 'none']);
      expect(p.code, p.stderr).toBe(0);
      expect(p.stderr).toMatch(new RegExp(`^keyframe: warning: ${cut} ends inside picture ${FRAMES}, which is cut \\(.+\\): it was dropped; the output ends with picture ${FRAMES - 1}\\n$`));
      expect(p.stdout).toMatch(new RegExp(`^packaged ${FRAMES - 1} samples`));
      // the output is the source's first 49 pictures, exactly
      const source = await frameMd5s(title.includes('second slice') ? twoSlices : whole);
      expect(await frameMd5s(out)).toEqual(source.slice(0, FRAMES - 1));

      const rec = join(work, `rec-${title.replace(/\W+/g, '-')}`);
      const r = await runCli(['record', '--device', cam, '--source', cut, '--duration', '1', '--out', rec, '--fast'], { [PIN_ENV]: process.env[PIN_ENV] ?? '' });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^keyframe: ${cut} ends inside picture ${FRAMES}, which is cut \\(.+\\): refusing to record a damaged source`));
      expect(r.stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
      expect(existsSync(rec)).toBe(false);
    });
  }

  it('a whole clip packages and records without a word on stderr', async () => {
    for (const src of [whole, twoSlices]) {
      const p = await runCli(['package', src, '--out', join(work, `whole-${src === whole ? 1 : 2}.mp4`), '--scheme', 'none']);
      expect(p.code).toBe(0);
      expect(p.stderr).toBe('');
      expect(p.stdout).toMatch(new RegExp(`^packaged ${FRAMES} samples`));
    }
    const r = await runCli(['record', '--device', cam, '--source', whole, '--duration', '1', '--out', join(work, 'rec-whole'), '--fast'], { [PIN_ENV]: process.env[PIN_ENV] ?? '' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
  });
});
