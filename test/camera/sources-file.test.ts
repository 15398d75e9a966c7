/**
 * The looped-file source (MP4 and Annex-B): the file's pictures over and over, each loop from its IDR picture, DTS
 * increasing across loops by one frame each, paced in real time; a missing file is a permanent error naming it.
 * And the child processes: stopped on abort, and gone when the process that ran them is SIGKILLed.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourceError } from '../../src/camera/sources/base.js';
import { liveFfmpegPids } from '../../src/camera/sources/ffmpeg.js';
import { FileSource } from '../../src/camera/sources/file.js';
import { AccessUnitAssembler, isVcl, nalType, splitAnnexB, type AccessUnit } from '../../src/media/h264/index.js';
import { collect, ffmpegRun, makeClip, tempDir } from './_sources.js';

function vclHash(au: AccessUnit): string {
  const h = createHash('sha256');
  for (const n of au.nals) if (isVcl(nalType(n))) h.update(n);
  return h.digest('hex');
}

async function pictureHashes(path: string): Promise<string[]> {
  const annexB = await ffmpegRun(['-i', path, '-map', '0:v', '-c', 'copy', '-bsf:v', 'h264_mp4toannexb', '-f', 'h264', '-']);
  const asm = new AccessUnitAssembler();
  return [...splitAnnexB(annexB).flatMap((n) => asm.push(n)), ...asm.flush()].filter((a) => a.sliceCount > 0).map(vclHash);
}

describe('looped file source', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => {
    tmp = tempDir('file');
  });
  afterAll(() => tmp.remove());

  for (const format of ['mp4', 'h264'] as const) {
    it(`loops a ${format} file with increasing times, in real time`, async () => {
      // 1 s, 25 pictures, GOP 10: loops end in the middle of a GOP
      const path = await makeClip(join(tmp.dir, `clip.${format}`), { seconds: 1, gop: 10, format });
      const pictures = await pictureHashes(path);
      expect(pictures).toHaveLength(25);
      const source = new FileSource(path, { fps: 25 }, { niceness: 19 });
      const t0 = Date.now();
      const got = await collect(source, (c) => c.frames.length >= 70, 60_000);
      const elapsed = Date.now() - t0;
      expect(got.error).toBeUndefined();
      expect(got.frames).toHaveLength(70);
      // the file's pictures in order, over and over
      got.frames.forEach((f, i) => expect(vclHash(f.au)).toBe(pictures[i % 25]));
      got.frames.forEach((f, i) => expect(f.au.isIdr).toBe((i % 25) % 10 === 0));
      // one frame (3600 ticks at 25 fps) between every two, across loops too
      for (let i = 1; i < got.frames.length; i++) expect((got.frames[i]?.dts ?? 0) - (got.frames[i - 1]?.dts ?? 0)).toBe(3600);
      expect(got.frames.every((f) => f.cto === 0)).toBe(true);
      // 70 pictures at 25 fps take at least 2.7 s in real time
      expect(elapsed).toBeGreaterThan(2500);
      // captured follows the stream's clock
      expect((got.frames[69]?.captured ?? 0) - (got.frames[0]?.captured ?? 0)).toBeGreaterThan(2500);
      expect(source.status()).toMatchObject({ state: 'stopped', frames: 70, reconnects: 0 });
      expect(liveFfmpegPids()).toEqual([]);
    });
  }

  it('loops an MP4 file with B-frames, keeping its composition offsets', async () => {
    const path = await makeClip(join(tmp.dir, 'bframes.mp4'), { seconds: 1, gop: 10, bframes: 2 });
    const pictures = await pictureHashes(path);
    const source = new FileSource(path, {}, { niceness: 19 });
    const got = await collect(source, (c) => c.frames.length >= 60, 60_000);
    expect(got.error).toBeUndefined();
    got.frames.forEach((f, i) => expect(vclHash(f.au)).toBe(pictures[i % 25]));
    for (let i = 1; i < got.frames.length; i++) expect((got.frames[i]?.dts ?? 0) - (got.frames[i - 1]?.dts ?? 0)).toBe(3600);
    // the same composition offsets in every loop, and some B-frames among them
    got.frames.forEach((f, i) => expect(f.cto).toBe(got.frames[i % 25]?.cto));
    expect(new Set(got.frames.map((f) => f.cto)).size).toBeGreaterThan(1);
  });

  it('refuses a missing file for good, naming it', async () => {
    const path = join(tmp.dir, 'no-such.mp4');
    const source = new FileSource(path, {}, { niceness: 19 });
    const got = await collect(source, () => false, 10_000);
    expect(got.error).toBeInstanceOf(SourceError);
    expect((got.error as SourceError).permanent).toBe(true);
    expect((got.error as SourceError).message).toBe(`file ${path} (looped): no such file`);
    expect(source.status().state).toBe('failed');
  });

  it('refuses a file ffmpeg cannot read for good, with ffmpeg\'s reason', async () => {
    const path = join(tmp.dir, 'garbage.mp4');
    await ffmpegRun(['-y', '-f', 'lavfi', '-i', 'anullsrc', '-t', '0.5', '-f', 'mp4', path]);
    const got = await collect(new FileSource(path, {}, { niceness: 19 }), () => false, 20_000);
    expect(got.error).toBeInstanceOf(SourceError);
    expect((got.error as SourceError).message).toMatch(/^file .*garbage\.mp4 \(looped\): ffmpeg failed: .*matches no streams/);
  });

  it('leaves no ffmpeg behind when the process that ran it is SIGKILLed', async () => {
    const path = await makeClip(join(tmp.dir, 'orphan.mp4'), { seconds: 1 });
    const script = join(tmp.dir, 'run-source.mts');
    const module = fileURLToPath(new URL('../../src/camera/sources/index.ts', import.meta.url));
    // a child vitest-free node process: the source runs, prints ffmpeg's pid after the first frame, then waits
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      script,
      `import { FileSource, liveFfmpegPids } from ${JSON.stringify(module)};\n` +
        `const s = new FileSource(${JSON.stringify(path)}, {}, { niceness: 19 });\n` +
        `for await (const e of s.events(new AbortController().signal)) { console.log('pid ' + liveFfmpegPids().join(',')); await new Promise(() => {}); }\n`,
    );
    const tsx = spawn(process.execPath, ['--import', fileURLToPath(new URL('./_ts-loader.mjs', import.meta.url)), script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((resolve, reject) => {
      let out = '';
      tsx.stdout.setEncoding('utf8');
      tsx.stdout.on('data', (t: string) => {
        out += t;
        const m = /pid (\d+)/.exec(out);
        if (m !== null) resolve(Number(m[1]));
      });
      tsx.once('exit', (code) => reject(new Error(`runner exited with ${code}: ${out}`)));
    });
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    tsx.kill('SIGKILL');
    // ffmpeg dies of EPIPE at its next write (a frame every 40 ms)
    const until = Date.now() + 5000;
    while (existsSync(`/proc/${pid}`) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    const stat = existsSync(`/proc/${pid}/stat`) ? (await import('node:fs')).readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
    // gone, or a zombie waiting for init to reap it
    expect(stat === '' || / Z /.test(stat)).toBe(true);
  });
});
