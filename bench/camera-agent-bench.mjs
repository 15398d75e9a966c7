// Camera agent benchmark (issue 12): CPU of `keyframe camera run` per 1080p25 4 Mbit/s stream, and its memory.
//
// The agent runs as its own process with a looped file source (a 1080p25 4 Mbit/s x264 Annex-B clip, 1 s GOPs,
// paced in real time by the agent: no ffmpeg runs at all, so nothing of ffmpeg is in the figure), signing with its
// device key in the software key store, writing its ring buffer, and uploading every fragment and record to an NVR
// (`keyframe nvr serve`, own process) over mutual TLS. CPU of the agent's node process only, from /proc/PID/stat
// over SECONDS after a WARMUP; peak RSS (VmHWM) and RSS sampled each second. Medians over RUNS runs. Afterwards the
// NVR's index must hold the uploaded segments verified (checkStore clean).
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout } from 'node:timers';
import { benchNote, machine, median } from './_machine.mjs';
import { ROOT, checkNvr, clipPath, load, nice, procCpuSplitMs, procHwmKb, site, startNvrProcess, template, siteDir, camDirOf, serialOf } from './_nvr-load.mjs';

const SECONDS = Number(process.env.SECONDS ?? 60);
const WARMUP = Number(process.env.WARMUP ?? 15);
const RUNS = Number(process.env.RUNS ?? 3);
const BIN = process.env.KF_AGENT_BIN ?? new URL('../bin/keyframe.js', import.meta.url).pathname;
const OUT = process.env.OUT ?? new URL('results/camera-agent.json', import.meta.url).pathname;
const RING_CAP = 2 * 1024 ** 3;

const loadStart = load();
const started = Date.now();
await site(1);
await template(); // makes the clip
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function runOnce() {
  const dir = join(ROOT, 'run-agent');
  const nvr = await startNvrProcess(join(dir, 'nvr'));
  const camDir = join(dir, 'cam');
  mkdirSync(camDir, { recursive: true });
  const config = join(camDir, 'camera.json');
  writeFileSync(
    config,
    JSON.stringify({
      device: camDirOf(serialOf(0)),
      source: { kind: 'file', path: clipPath, fps: 25 },
      clear: true, // no KMS in this benchmark: signed, not encrypted (camera.json refuses that unless said)
      nvr: { url: nvr.url, root: join(siteDir, 'ca', 'operator.pem') },
      ring: { dir: join(camDir, 'ring'), cap: RING_CAP },
      logLevel: 'warn',
      ...JSON.parse(process.env.AGENT_CONFIG ?? '{}'),
    }),
  );
  const prof = process.env.AGENT_PROF !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${process.env.AGENT_PROF}`] : [];
  const child = spawn(process.execPath, [...prof, BIN, 'camera', 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, sig })));
  await sleep(WARMUP * 1000);
  if (child.exitCode !== null) throw new Error(`camera run exited: ${out}`);
  const c0 = procCpuSplitMs(child.pid);
  const w0 = Date.now();
  const rss = [];
  for (let s = 0; s < SECONDS; s++) {
    await sleep(1000);
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
    if (m) rss.push(Number(m[1]) / 1024);
  }
  const c1 = procCpuSplitMs(child.pid);
  const cpu = c1.user + c1.system - (c0.user + c0.system);
  const wall = (Date.now() - w0) / 1000;
  const hwm = procHwmKb(child.pid);
  let status;
  try {
    status = JSON.parse(readFileSync(join(camDir, 'ring', 'status.json'), 'utf8'));
  } catch {
    status = undefined;
  }
  child.kill('SIGTERM');
  const ex = await exited;
  await nvr.stop();
  const check = await checkNvr(nvr);
  rmSync(dir, { recursive: true, force: true });
  return {
    cpuMs: Math.round(cpu),
    wallSeconds: +wall.toFixed(1),
    coreSharePercent: +((cpu / 1000 / wall) * 100).toFixed(2),
    userPercent: +(((c1.user - c0.user) / 1000 / wall) * 100).toFixed(2),
    systemPercent: +(((c1.system - c0.system) / 1000 / wall) * 100).toFixed(2),
    peakRssMB: hwm !== undefined ? +(hwm / 1024).toFixed(1) : undefined,
    rssMB: { first: +rss[0]?.toFixed(1), last: +rss.at(-1)?.toFixed(1), max: +Math.max(...rss).toFixed(1) },
    exit: ex,
    nvr: check,
    agentStatus: status === undefined ? undefined : { keys: Object.keys(status) },
    warnings: out.split('\n').filter((l) => l !== '').slice(0, 5),
    loadavg: load(),
  };
}

const runs = [];
for (let r = 0; r < RUNS; r++) {
  const x = await runOnce();
  console.log(`run ${r + 1}: agent ${x.coreSharePercent} % of a core (user ${x.userPercent}, system ${x.systemPercent}) over ${x.wallSeconds} s, peak RSS ${x.peakRssMB} MB (RSS ${x.rssMB.first} → ${x.rssMB.last}), exit ${JSON.stringify(x.exit)}, NVR verified ${x.nvr.segmentStates.verified ?? 0} segments, check problems ${x.nvr.problems}, load ${x.loadavg.join(' ')}`);
  runs.push(x);
}
const shares = runs.map((x) => x.coreSharePercent);
const result = {
  benchmark: 'Camera agent CPU per 1080p25 4 Mbit/s stream (keyframe camera run, looped file source: no ffmpeg), and memory',
  method: `keyframe camera run (own process; file source 1080p25 4 Mbit/s x264, 1 s GOP, paced in real time; signing in the software key store; ring buffer cap ${RING_CAP} B; upload to keyframe nvr serve over mutual TLS). CPU of the agent process only from /proc/PID/stat over ${SECONDS} s after ${WARMUP} s warm-up; peak RSS = VmHWM; medians of ${RUNS} runs. No KMS: clear (signed, not encrypted) CMAF — cbcs encryption adds about 0.29 % of a core for this stream (bench/results/cenc.json).`,
  goals: { coreSharePercent: '≤ 2' },
  machine: { ...machine(), shared: true, nice: nice(), loadavgStart: loadStart, loadavgEnd: load(), note: benchNote('the NVR ran on the same 2 cores') },
  result: { coreSharePercentMedian: median(shares), range: [Math.min(...shares), Math.max(...shares)], peakRssMBMedian: median(runs.map((x) => x.peakRssMB)), peakRssMBMax: Math.max(...runs.map((x) => x.peakRssMB)) },
  goalMet: median(shares) <= 2,
  runs,
  elapsedSeconds: Math.round((Date.now() - started) / 1000),
};
writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
console.log(`${OUT}: median ${median(shares)} % of a core (${Math.min(...shares)}–${Math.max(...shares)}), peak RSS ${result.result.peakRssMBMax} MB`);
