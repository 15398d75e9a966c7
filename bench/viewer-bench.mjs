/**
 * Viewer benchmark (issue 14): the whole system as `npm start` runs it (`keyframe up`, in a temporary directory, on
 * free ports) and the viewer web app in Debian's headless Chromium, trusting the site's operator CA through certutil.
 *
 *   live latency      glass to glass for every tile of a grid, sampled every 500 ms for DURATION: each tile's own
 *                     figure (display time − capture time from the camera's clock; live-player.ts), and every 5 s the
 *                     pixel clock read back from a screenshot of the tile (what the page really shows) — p50, p95
 *                     (goals: p50 ≤ 1.0 s, p95 ≤ 1.5 s);
 *   first frame       opening a camera's live view, from the page's start to its first frame on screen, RUNS times
 *                     (goal ≤ 1.5 s);
 *   timeline click    on a camera page with recorded video loaded, from a click on the timeline to the first frame
 *                     of the clicked time on screen, RUNS times at random recorded points (goal ≤ 1 s);
 *   the grid          CAMERAS tiles (default 9) playing for DURATION (default 120 s): stalls (waiting after
 *                     playback started), dropped frames (getVideoPlaybackQuality), and Chromium's CPU (all its
 *                     processes, from /proc) as cores used.
 * The cameras run on the same machine (their encoders compete with the browser for the cores): the result says so.
 *
 * `npm run build && node bench/viewer-bench.mjs`. Environment: BENCH_CAMERAS (9), BENCH_PATTERN (1280×720 at 25
 * fps), BENCH_DURATION_S (120), BENCH_RUNS (10), BENCH_OUT (bench/results/viewer.json), BENCH_NOTE.
 */
/* global document, performance, MouseEvent, setTimeout -- the page functions run in Chromium; setTimeout in both */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { benchNote, machine, median } from './_machine.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { readPixelClock } = await import(join(root, 'dist', 'camera', 'sources', 'pixel-clock.js'));
const CAMERAS = Number(process.env.BENCH_CAMERAS ?? 9);
const PATTERN = process.env.BENCH_PATTERN ?? 'pattern:width=1280,height=720,fps=25,gop=25,bitrate=2000000,clock=true';
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 120);
const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const OUT = process.env.BENCH_OUT ?? join(root, 'bench', 'results', 'viewer.json');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (v, p) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length === 0 ? null : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const summary = (v) => ({ n: v.length, p50: pct(v, 50), p95: pct(v, 95), max: v.length === 0 ? null : Math.max(...v), median: v.length === 0 ? null : median(v) });

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** CPU seconds used so far by every Chromium process (user + system, from /proc). */
function chromiumCpuSeconds() {
  const hz = 100;
  let ticks = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('chromium')) continue;
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone
    }
  }
  return ticks / hz;
}

/** The capture time in the picture of `selector`, from a screenshot scaled back to the video's size. */
async function screenClock(page, selector) {
  const r = await page.$eval(selector, (v) => {
    const b = v.getBoundingClientRect();
    const s = Math.min(b.width / v.videoWidth, b.height / v.videoHeight);
    return { x: b.left + (b.width - v.videoWidth * s) / 2, y: b.top + (b.height - v.videoHeight * s) / 2, w: v.videoWidth * s, h: v.videoHeight * s, vw: v.videoWidth, vh: v.videoHeight };
  });
  const t0 = Date.now();
  const png = await page.screenshot({ type: 'png', clip: { x: Math.round(r.x), y: Math.round(r.y), width: Math.floor(r.w), height: Math.floor(r.h) } });
  const at = (t0 + Date.now()) / 2;
  const gray = execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', 'pipe:0', '-vf', `scale=${r.vw}:${r.vh}:flags=area`, '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'], { input: png, maxBuffer: 1 << 28 });
  const captured = readPixelClock(gray, r.vw, r.vh);
  return captured === undefined ? undefined : at - captured;
}

const data = mkdtempSync(join(tmpdir(), 'kf-viewer-bench-'));
const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
const up = spawn(process.execPath, [join(root, 'bin', 'keyframe.js'), 'up', '--data', data, '--cameras', String(CAMERAS), '--kms-port', String(ports[0]), '--nvr-port', String(ports[1]), '--kms-browser-port', String(ports[2]), '--viewer-port', String(ports[3]), '--pattern', PATTERN], { stdio: ['ignore', 'pipe', 'pipe'] });
let text = '';
up.stdout.on('data', (d) => (text += d));
up.stderr.on('data', (d) => (text += d));
let browser;
try {
  for (let i = 0; i < 600 && !text.includes('logs: '); i++) await sleep(500);
  const url = /open the viewer: (\S+)/.exec(text)?.[1];
  const password = /with the password (\S+)/.exec(text)?.[1];
  if (url === undefined || password === undefined) throw new Error(`keyframe up did not start:\n${text}`);
  const home = join(data, 'browser-home');
  const db = join(home, '.pki', 'nssdb');
  mkdirSync(db, { recursive: true });
  execFileSync('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
  execFileSync('certutil', ['-A', '-d', `sql:${db}`, '-t', 'C,,', '-n', 'keyframe-operator', '-i', join(data, 'ca', 'operator.pem')]);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS, env: { ...process.env, HOME: home } });
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  await page.goto(url);
  await page.fill('input[name=user]', 'admin');
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForSelector('header .who');
  // let the cameras record a while (recorded video for the timeline runs)
  await sleep(20_000);

  // ---- the grid ----------------------------------------------------------------------------------------------
  const layout = CAMERAS <= 1 ? 1 : CAMERAS <= 4 ? 4 : CAMERAS <= 9 ? 9 : 16;
  await page.click(`.toolbar button:has-text("${layout === 1 ? '1 tile' : `${layout} tiles`}")`);
  await page.waitForFunction((n) => document.querySelectorAll('.tile[data-phase="playing"]').length === n, CAMERAS, { timeout: 60_000 });
  await sleep(3000);
  const quality = () => page.$$eval('.tile', (ts) => ts.map((t) => ({ serial: t.dataset.serial, stalls: Number(t.dataset.stalls), latency: t.dataset.latencyMs === '' ? null : Number(t.dataset.latencyMs), ...(() => { const q = t.querySelector('video').getVideoPlaybackQuality(); return { total: q.totalVideoFrames, dropped: q.droppedVideoFrames }; })() })));
  const q0 = await quality();
  const cpu0 = chromiumCpuSeconds();
  const t0 = Date.now();
  const tileLatency = [];
  const screenLatency = [];
  let nextShot = Date.now();
  while (Date.now() - t0 < DURATION_S * 1000) {
    for (const t of await quality()) if (t.latency !== null) tileLatency.push(t.latency);
    if (Date.now() >= nextShot) {
      nextShot += 5000;
      for (const t of q0) {
        const l = await screenClock(page, `.tile[data-serial="${t.serial}"] video`).catch(() => undefined);
        if (l !== undefined) screenLatency.push(Math.round(l));
      }
    }
    await sleep(500);
  }
  const wall = (Date.now() - t0) / 1000;
  const cpu = (chromiumCpuSeconds() - cpu0) / wall;
  const q1 = await quality();
  const grid = q1.map((t) => {
    const a = q0.find((x) => x.serial === t.serial);
    return { serial: t.serial, frames: t.total - a.total, dropped: t.dropped - a.dropped, stalls: t.stalls - a.stalls };
  });
  await page.screenshot({ path: join(data, 'grid.png') });

  // ---- first live frame ----------------------------------------------------------------------------------------
  const firstFrame = [];
  for (let i = 0; i < RUNS; i++) {
    const serial = `CAM-${String((i % CAMERAS) + 1).padStart(4, '0')}`;
    await page.goto('about:blank');
    await page.goto(`${url}#/camera/${serial}`);
    await page.waitForSelector('.tile.large[data-phase="playing"]', { timeout: 30_000 });
    firstFrame.push(Number(await page.getAttribute('.tile.large', 'data-first-frame-ms')));
  }

  // ---- timeline click to playing -------------------------------------------------------------------------------
  await page.goto('about:blank');
  await page.goto(`${url}#/camera/CAM-0001`);
  await page.waitForSelector('.timeline-bar .band');
  await page.click('button:has-text("Recorded")');
  await page.waitForFunction(() => document.querySelector('video.recorded')?.readyState >= 3, undefined, { timeout: 60_000 });
  const clicks = [];
  for (let i = 0; i < RUNS; i++) {
    const ms = await page.evaluate(async () => {
      const bar = document.querySelector('.timeline-bar');
      const v = document.querySelector('video.recorded');
      const bands = [...document.querySelectorAll('.timeline-bar .band.state-verified')].map((b) => b.getBoundingClientRect()).filter((r) => r.width > 4);
      const b = bands[Math.floor(Math.random() * bands.length)];
      const r = bar.getBoundingClientRect();
      const x = b.left + 2 + Math.random() * (b.width - 4);
      const from = Number(bar.getAttribute('aria-valuemin'));
      const to = Number(bar.getAttribute('aria-valuemax'));
      const target = (from + ((x - r.left) / r.width) * (to - from) - from) / 1000;
      const t0 = performance.now();
      bar.dispatchEvent(new MouseEvent('click', { clientX: x, clientY: r.top + r.height / 2, bubbles: true }));
      return new Promise((resolve) => {
        const onFrame = (_now, meta) => {
          if (Math.abs(meta.mediaTime - target) < 1.5) resolve(performance.now() - t0);
          else v.requestVideoFrameCallback(onFrame);
        };
        v.requestVideoFrameCallback(onFrame);
        setTimeout(() => resolve(null), 10_000);
      });
    });
    if (ms !== null) clicks.push(Math.round(ms));
    await sleep(1500);
  }

  const result = {
    benchmark: 'viewer',
    machine: machine(),
    note: benchNote(`${CAMERAS} camera agents (${PATTERN}), the KMS and the NVR on this machine beside Chromium`),
    setup: { cameras: CAMERAS, pattern: PATTERN, durationS: DURATION_S, runs: RUNS, viewport: '1280×720', layout },
    goals: { latencyP50Ms: 1000, latencyP95Ms: 1500, firstFrameMs: 1500, timelineClickMs: 1000, stalls: 0, dropped: 0 },
    liveLatencyMs: { tile: summary(tileLatency), pixelClock: summary(screenLatency) },
    firstLiveFrameMs: summary(firstFrame),
    timelineClickToPlayingMs: summary(clicks),
    grid: { tiles: grid, stalls: grid.reduce((a, t) => a + t.stalls, 0), dropped: grid.reduce((a, t) => a + t.dropped, 0), frames: grid.reduce((a, t) => a + t.frames, 0), chromiumCpuCores: Math.round(cpu * 100) / 100 },
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify({ liveLatencyMs: result.liveLatencyMs, firstLiveFrameMs: result.firstLiveFrameMs, timelineClickToPlayingMs: result.timelineClickToPlayingMs, grid: { ...result.grid, tiles: undefined } }, null, 2));
} finally {
  await browser?.close();
  up.kill('SIGTERM');
  await new Promise((r) => up.on('exit', r));
  rmSync(data, { recursive: true, force: true });
}
