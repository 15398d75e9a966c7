// Camera agent benchmark (issue 12): CPU of `keyframe camera run` per 1080p25 4 Mbit/s stream, and its memory.
//
// The agent runs as its own process with a looped file source (a 1080p25 4 Mbit/s x264 Annex-B clip, 1 s GOPs,
// paced in real time by the agent: no ffmpeg runs at all, so nothing of ffmpeg is in the figure), signing with its
// device key in the software key store, writing its ring buffer, and uploading every fragment and record to an NVR
// (`keyframe nvr serve`, own process) over mutual TLS. CPU of the agent's node process only, from /proc/PID/stat
// over SECONDS after a WARMUP; peak RSS (VmHWM) and RSS sampled each second. Medians over RUNS runs. Afterwards the
// NVR's index must hold the uploaded segments verified (checkStore clean).
//
// Two baselines in the same command, so the figure can be read on any machine: the floor (bench/_agent-floor.mjs:
// the same clip paced the same way and streamed over TLS in the same chunks, and nothing else — the least a live
// uploader in Node costs here), measured the same way; and the work (`keyframe record --fast`: the agent's
// pipeline — sign, package, write and flush its files — on WORK_SECONDS of the same clip as fast as it goes, CPU
// per second of video, the CPU of starting `keyframe` subtracted).
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:https';
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
const WORK_SECONDS = Number(process.env.WORK_SECONDS ?? 120);

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

/** CPU of a child over SECONDS after WARMUP, as a share of a core. */
async function cpuShare(child) {
  await sleep(WARMUP * 1000);
  if (child.exitCode !== null) throw new Error('the measured process exited early');
  const c0 = procCpuSplitMs(child.pid);
  const w0 = Date.now();
  await sleep(SECONDS * 1000);
  const c1 = procCpuSplitMs(child.pid);
  const wall = (Date.now() - w0) / 1000;
  return +(((c1.user + c1.system - c0.user - c0.system) / 1000 / wall) * 100).toFixed(2);
}

async function floorOnce() {
  const dir = join(ROOT, 'floor');
  mkdirSync(dir, { recursive: true });
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=127.0.0.1', '-days', '1'], { stdio: 'ignore' });
  let received = 0;
  const server = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    req.on('data', (d) => (received += d.length));
    req.on('end', () => res.end());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const child = spawn(process.execPath, [new URL('_agent-floor.mjs', import.meta.url).pathname, clipPath, String(server.address().port)], { stdio: ['ignore', 'inherit', 'inherit'] });
  try {
    const share = await cpuShare(child);
    return { coreSharePercent: share, receivedMB: +(received / 1e6).toFixed(1) };
  } finally {
    child.kill('SIGTERM');
    server.closeAllConnections();
    server.close();
  }
}

function cpuOfRun(args) {
  const t = execFileSync('/bin/sh', ['-c', `exec 3>&1; /usr/bin/time -f '%U %S' "$@" 2>&3 >/dev/null 3>&-`, 'sh', process.execPath, BIN, ...args], { encoding: 'utf8', env: process.env });
  const [u, s] = t.trim().split('\n').at(-1).split(' ').map(Number);
  return (u + s) * 1000;
}

function workOnce() {
  const out = join(ROOT, 'work-rec');
  rmSync(out, { recursive: true, force: true });
  const startMs = cpuOfRun(['--version']);
  const ms = cpuOfRun(['record', '--device', camDirOf(serialOf(0)), '--source', clipPath, '--duration', String(WORK_SECONDS), '--out', out, '--fast']);
  rmSync(out, { recursive: true, force: true });
  return { cpuMs: Math.round(ms), startupCpuMs: Math.round(startMs), coreSharePercent: +(((ms - startMs) / 1000 / WORK_SECONDS) * 100).toFixed(2) };
}

const runs = [];
for (let r = 0; r < RUNS; r++) {
  const x = await runOnce();
  console.log(`run ${r + 1}: agent ${x.coreSharePercent} % of a core (user ${x.userPercent}, system ${x.systemPercent}) over ${x.wallSeconds} s, peak RSS ${x.peakRssMB} MB (RSS ${x.rssMB.first} → ${x.rssMB.last}), exit ${JSON.stringify(x.exit)}, NVR verified ${x.nvr.segmentStates.verified ?? 0} segments, check problems ${x.nvr.problems}, load ${x.loadavg.join(' ')}`);
  runs.push(x);
}
const floors = [];
const works = [];
for (let r = 0; r < RUNS; r++) {
  const f = await floorOnce();
  const w = workOnce();
  console.log(`baselines ${r + 1}: floor ${f.coreSharePercent} % of a core (${f.receivedMB} MB received), work ${w.coreSharePercent} % (record --fast: ${w.cpuMs} ms for ${WORK_SECONDS} s of video, start-up ${w.startupCpuMs} ms)`);
  floors.push(f);
  works.push(w);
}
const shares = runs.map((x) => x.coreSharePercent);
const floorMedian = median(floors.map((f) => f.coreSharePercent));
const workMedian = median(works.map((w) => w.coreSharePercent));
const result = {
  benchmark: 'Camera agent CPU per 1080p25 4 Mbit/s stream (keyframe camera run, looped file source: no ffmpeg), and memory',
  method: `keyframe camera run (own process; file source 1080p25 4 Mbit/s x264, 1 s GOP, paced in real time; signing in the software key store; ring buffer cap ${RING_CAP} B; upload to keyframe nvr serve over mutual TLS). CPU of the agent process only from /proc/PID/stat over ${SECONDS} s after ${WARMUP} s warm-up; peak RSS = VmHWM; medians of ${RUNS} runs. No KMS: clear (signed, not encrypted) CMAF — cbcs encryption adds about 0.29 % of a core for this stream (bench/results/cenc.json).`,
  goals: { coreSharePercent: '≤ 2' },
  machine: { ...machine(), shared: true, nice: nice(), loadavgStart: loadStart, loadavgEnd: load(), note: benchNote('the NVR ran on the same 2 cores') },
  result: { coreSharePercentMedian: median(shares), range: [Math.min(...shares), Math.max(...shares)], peakRssMBMedian: median(runs.map((x) => x.peakRssMB)), peakRssMBMax: Math.max(...runs.map((x) => x.peakRssMB)) },
  baselines: {
    floor: { method: 'bench/_agent-floor.mjs: the same clip paced picture by picture and streamed over TLS in the same chunks (a chunked PUT a second, a write per 200 ms) to a TLS server in the benchmark process; nothing else', coreSharePercentMedian: floorMedian, runs: floors },
    work: { method: `keyframe record --fast over ${WORK_SECONDS} s of the clip (sign, package, write and flush, unpaced), process CPU minus keyframe --version, per second of video`, coreSharePercentMedian: workMedian, runs: works },
    agentOverFloor: +(median(shares) / floorMedian).toFixed(2),
    agentMinusFloorMinusWork: +(median(shares) - floorMedian - workMedian).toFixed(2),
  },
  goalMet: median(shares) <= 2,
  runs,
  elapsedSeconds: Math.round((Date.now() - started) / 1000),
};
writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
console.log(`${OUT}: median ${median(shares)} % of a core (${Math.min(...shares)}–${Math.max(...shares)}), peak RSS ${result.result.peakRssMBMax} MB; floor ${floorMedian} %, work ${workMedian} %: agent = ${result.baselines.agentOverFloor} × floor`);
