// Common Encryption benchmark: for cbcs and cenc, on a 1080p 4 Mbit/s and a 4K 20 Mbit/s stream (made with ffmpeg,
// cached), measures
//  - CPU seconds per second of video for the whole packager (demux MP4 → subsample maps → encrypt → CMAF), and for
//    the encryption step alone (subsample maps + cipher);
//  - the `cenc` cipher rate as a ratio to raw node:crypto AES-128-CTR over the same protected bytes, one call per
//    sample, in the same run (goal ≥ 0.6);
//  - overhead bytes per second and per frame against a clear CMAF of the same fragmentation.
// CPU time from process.cpuUsage (user+system), medians of RUNS. Results: bench/results/cenc.json.
import { execFileSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { machine, median } from './_machine.mjs';

const RUNS = Number(process.env.RUNS ?? 5);
const dist = new URL('../dist/', import.meta.url);
const { openInput } = await import(new URL('packager/input.js', dist).href);
const { packageChunks, emptyStats } = await import(new URL('packager/package.js', dist).href);
const { subsampleMap } = await import(new URL('cenc/subsamples.js', dist).href);
const { encryptSampleParts } = await import(new URL('cenc/sample.js', dist).href);
const { parsePps, parseSliceHeader, parseSps } = await import(new URL('media/h264/index.js', dist).href);

const CACHE = join(tmpdir(), 'keyframe-bench-clips');
function makeClip(name, size, seconds, bitrate, gop) {
  mkdirSync(CACHE, { recursive: true });
  const path = join(CACHE, `${name}.mp4`);
  if (existsSync(path)) return path;
  const tmp = `${path}.tmp.mp4`;
  const rate = Number.parseInt(bitrate, 10);
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=30`, '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-bf', '0', '-b:v', bitrate, '-maxrate', bitrate, '-bufsize', `${rate * 2}M`,
    '-g', String(gop), '-pix_fmt', 'yuv420p', tmp]);
  renameSync(tmp, path);
  return path;
}

const streams = [
  { name: '1080p-4M', path: makeClip('1080p-4M-10s', '1920x1080', 10, '4M', 60), seconds: 10 },
  { name: '4K-20M', path: makeClip('4K-20M-5s', '3840x2160', 5, '20M', 60), seconds: 5 },
];

const key = { kid: randomBytes(16), key: randomBytes(16) };
const cpuMs = (c) => (c.user + c.system) / 1000;

async function drain(gen) {
  let bytes = 0;
  for await (const chunk of gen) bytes += chunk.length;
  return bytes;
}

async function packageOnce(path, scheme) {
  const input = await openInput(path);
  const stats = emptyStats();
  const c0 = process.cpuUsage();
  const bytes = await drain(packageChunks(input, { scheme, ...(scheme === 'none' ? {} : { keyFor: () => key }) }, stats));
  const cpu = cpuMs(process.cpuUsage(c0));
  await input.close();
  return { cpu, bytes, stats };
}

async function loadSamples(path) {
  const input = await openInput(path);
  const samples = [];
  for await (const gop of input.gops()) for (const s of gop.samples) samples.push(s.data);
  const sps = new Map();
  const pps = new Map();
  for (const n of input.track.avcC.sps) { const s = parseSps(n); sps.set(s.spsId, s); }
  for (const n of input.track.avcC.pps) { const p = parsePps(n, sps); pps.set(p.ppsId, p); }
  await input.close();
  return { samples, sps, pps };
}

const results = {};
for (const s of streams) {
  const { samples, sps, pps } = await loadSamples(s.path);
  const frames = samples.length;
  const clear = await packageOnce(s.path, 'none');
  const entry = { frames, seconds: s.seconds, sampleBytes: clear.stats.sampleBytes, bitrateMbps: +((clear.stats.sampleBytes * 8) / s.seconds / 1e6).toFixed(2), schemes: {} };
  for (const scheme of ['cbcs', 'cenc']) {
    const pipeline = [];
    let outBytes = 0;
    for (let r = 0; r < RUNS; r++) {
      const p = await packageOnce(s.path, scheme);
      pipeline.push(p.cpu);
      outBytes = p.bytes;
    }
    // encryption alone: subsample maps (slice headers for cbcs) + cipher, one call per sample / protected run
    const clearBytes = (data) => (span) => (scheme === 'cenc' ? 1 : parseSliceHeader(data.subarray(span.offset, span.offset + span.length), sps, pps).headerBytes);
    const maps = samples.map((d) => subsampleMap(d, 4, clearBytes(d)));
    const ivs = samples.map(() => randomBytes(8));
    const encryptOnly = [];
    const rawCtr = [];
    for (let r = 0; r < RUNS; r++) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < samples.length; i++) {
        const d = samples[i];
        const m = scheme === 'cenc' ? maps[i] : subsampleMap(d, 4, clearBytes(d));
        encryptSampleParts({ scheme, key: key.key }, scheme === 'cenc' ? ivs[i] : key.kid, d, m);
      }
      encryptOnly.push(cpuMs(process.cpuUsage(c0)));
      if (scheme === 'cenc') {
        // baseline: raw node:crypto AES-128-CTR over the same protected bytes, one call per sample
        const protectedRuns = samples.map((d, i) => {
          let pos = 0;
          const runs = [];
          for (const sub of maps[i]) { pos += sub.clear; if (sub.protected > 0) runs.push(d.subarray(pos, pos + sub.protected)); pos += sub.protected; }
          return Buffer.concat(runs);
        });
        const c1 = process.cpuUsage();
        for (const [i, buf] of protectedRuns.entries()) {
          const c = createCipheriv('aes-128-ctr', key.key, Buffer.concat([ivs[i], Buffer.alloc(8)]));
          c.update(buf);
          c.final();
        }
        rawCtr.push(cpuMs(process.cpuUsage(c1)));
      }
    }
    const overhead = outBytes - clear.bytes;
    entry.schemes[scheme] = {
      pipelineCpuMsMedian: +median(pipeline).toFixed(1),
      pipelineCoreShare: +(median(pipeline) / 1000 / s.seconds).toFixed(4),
      encryptCpuMsMedian: +median(encryptOnly).toFixed(1),
      encryptCoreShare: +(median(encryptOnly) / 1000 / s.seconds).toFixed(4),
      ...(scheme === 'cenc'
        ? { rawCtrCpuMsMedian: +median(rawCtr).toFixed(1), rateVsRawCtr: +(median(rawCtr) / median(encryptOnly)).toFixed(3) }
        : {}),
      outputBytes: outBytes,
      clearCmafBytes: clear.bytes,
      overheadBytes: overhead,
      overheadPercentOfVideo: +((100 * overhead) / clear.stats.sampleBytes).toFixed(4),
      overheadBytesPerSecond: +(overhead / s.seconds).toFixed(1),
      overheadBytesPerFrame: +(overhead / frames).toFixed(2),
    };
  }
  results[s.name] = entry;
}

const out = {
  benchmark: 'Common Encryption packaging (cbcs, cenc) of H.264 into CMAF',
  method: `medians of ${RUNS} runs; CPU = process.cpuUsage user+system; coreShare = CPU seconds per second of video; output discarded (no disk I/O); rateVsRawCtr = raw node:crypto AES-128-CTR CPU over the same protected bytes (one call per sample) ÷ keyframe cenc encryption CPU (subsample maps + cipher)`,
  goals: { '4K coreShare (pipeline)': '≤ 0.03', 'cenc rateVsRawCtr': '≥ 0.6', 'overhead 1080p 4 Mbit/s': '≤ 0.2 %' },
  machine: machine(),
  results,
};
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/cenc.json', import.meta.url), JSON.stringify(out, null, 2) + '\n');
console.log(JSON.stringify(out.results, null, 2));
