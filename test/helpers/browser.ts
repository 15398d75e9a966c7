/**
 * Headless-Chromium playback harness: plays fragmented MP4 through Media Source Extensions, with Encrypted Media
 * Extensions (`org.w3.clearkey`) for Common Encryption (`cenc`, `cbcs`), and reads decoded pixels back.
 *
 * - Chromium is Debian's (`/usr/bin/chromium`, see scripts/system-deps.sh), driven by playwright-core; one browser
 *   per call (Playwright gives it a fresh, empty profile directory), always closed.
 * - The page (test/helpers/player.html) and the segments are served from a throw-away HTTP server on 127.0.0.1 at a
 *   random port: `file://` gets no EME, while http://127.0.0.1 counts as a secure context.
 * - Nothing here fakes success: every media-element, MSE, EME and console error lands in `PlayResult.errors`, and a
 *   frame that cannot be read back carries `readError` instead of pixels.
 * - Pixel readback: clear MSE video is read from a canvas (drawImage + getImageData). Chromium never lets a page read
 *   EME video, ClearKey included (measured, Chromium 156: drawImage draws black, createImageBitmap(video) and
 *   new VideoFrame(video) throw InvalidStateError), so for those frames the harness takes a screenshot of the
 *   composited <video> element through the DevTools protocol instead (`source: 'screenshot'`, the canvas failure
 *   kept in `canvasError`). Both paths give the same pixels for the same decoded frame.
 *
 * Typical use (clear content):
 * ```ts
 * const { init, fragments } = splitFragmentedMp4(readFileSync(path));
 * const r = await playInChromium({ init, fragments, mime: mp4VideoMime(init), playSeconds: 3, captureAt: [2] });
 * const f = r.frames[0]!;
 * frameDiff(f.rgba!, await referenceFrame(path, 2, f.width, f.height)) < 2.5; // measured ≈0.9; one frame off ≈5.6
 * ```
 * For CENC output use `checkEncryptedPlayback`, which plays with the keys, checks frames against the clear source,
 * and plays again with wrong keys as a control.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ffmpeg } from './media.js';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * Flags that work for Debian's Chromium as root on these machines (see .library/env/machines/node.md). Playwright adds
 * its own fresh `--user-data-dir` per launch (it refuses one in `args`).
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const PLAYER_HTML = join(import.meta.dirname, 'player.html');

export interface PlayOptions {
  /** Init segment (ftyp+moov). */
  init: Uint8Array;
  /** Media fragments (moof+mdat), appended in order. */
  fragments: Uint8Array[];
  /** SourceBuffer type, e.g. 'video/mp4; codecs="avc1.640028"' (see mp4VideoMime). */
  mime: string;
  /**
   * ClearKey keys: KID hex → key hex (turned into a base64url JWK set in the page); omit for clear content. The
   * `encryptionScheme` asked of `requestMediaKeySystemAccess` is read from the init segment's `schm` box.
   */
  keys?: Record<string, string>;
  /** Wait until currentTime passes this many seconds (an error is recorded if it does not before the timeout). */
  playSeconds: number;
  /**
   * Media times (s) to seek to, after playing, and read back (canvas, else screenshot; see screenshotFallback);
   * each yields RGBA or a `readError`.
   */
  captureAt?: number[];
  /** Budget for everything in the page (EME setup, appends, playback, captures). Default 30 000 ms. */
  timeoutMs?: number;
  /**
   * When the canvas gives no pixels (always the case for EME video in Chromium: drawImage yields black,
   * createImageBitmap and new VideoFrame(video) throw), take a screenshot of the composited video element
   * instead (`source: 'screenshot'`, the canvas failure in `canvasError`). Default true; false keeps the canvas
   * result only.
   */
  screenshotFallback?: boolean;
}

export interface CapturedFrame {
  /** Requested media time (s). */
  time: number;
  /** RGBA, width × height × 4 bytes; absent when the frame could not be read. */
  rgba?: Uint8Array;
  width: number;
  height: number;
  /**
   * Why there are no (or no trustworthy) pixels: seek failure, no decoded frame, canvas failure without the
   * screenshot fallback, or a picture that is entirely black (then `rgba` is still given, as read).
   */
  readError?: string;
  /** video.currentTime after the seek (s). */
  currentTime?: number;
  /** Where `rgba` comes from: the page's canvas (drawImage + getImageData), or a screenshot of the page. */
  source?: 'canvas' | 'screenshot';
  /** Why the canvas gave no pixels, when the screenshot fallback was used instead. */
  canvasError?: string;
}

export interface PlayResult {
  /** Highest currentTime seen while playing (s). */
  reachedTime: number;
  /** Media element errors, EME errors, SourceBuffer errors, page console errors and uncaught page exceptions. */
  errors: string[];
  frames: CapturedFrame[];
  /** Whether `org.w3.clearkey` grants this mime with `encryptionScheme` 'cenc' / 'cbcs' (probed on every call). */
  keySystemAccess?: { cenc: boolean; cbcs: boolean };
  /** Milliseconds since the page started: setup, appended, played, captured (plus 'launch' and 'total' in Node). */
  timings: Record<string, number>;
}

interface PageFrame {
  time: number;
  width: number;
  height: number;
  rgbaBase64?: string;
  readError?: string;
  currentTime?: number;
  canvasError?: string;
  /** Index into the screenshots taken through kfScreenshot. */
  screenshot?: number;
}
interface PageResult {
  reachedTime: number;
  errors: string[];
  frames: PageFrame[];
  keySystemAccess: { cenc: boolean; cbcs: boolean };
  timings: Record<string, number>;
}
interface PageConfig {
  segments: number;
  mime: string;
  keys: Record<string, string> | null;
  scheme: string | null;
  playSeconds: number;
  captureAt: number[];
  timeoutMs: number;
  screenshotFallback: boolean;
}

/** Plays `init` + `fragments` in headless Chromium through MSE (and EME ClearKey when `keys` is given). */
export async function playInChromium(options: PlayOptions): Promise<PlayResult> {
  const t0 = performance.now();
  const timeoutMs = options.timeoutMs ?? 90_000;
  const segments = [options.init, ...options.fragments];
  const page = readFileSync(PLAYER_HTML);
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const seg = /^\/seg\/(\d+)$/.exec(url);
    const body = url === '/' ? page : seg !== null ? segments[Number(seg[1])] : undefined;
    if (url === '/favicon.ico') {
      res.writeHead(204).end();
    } else if (body === undefined) {
      res.writeHead(404).end();
    } else {
      res.writeHead(200, {
        'content-type': url === '/' ? 'text/html; charset=utf-8' : 'application/octet-stream',
        'content-length': body.byteLength,
        'cache-control': 'no-store',
      });
      res.end(body);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS] });
    const launched = performance.now();
    const size = videoSize(options.init) ?? { width: 1280, height: 720 };
    const context = await browser.newContext({ viewport: size, deviceScaleFactor: 1 });
    const tab = await context.newPage();
    const screenshots: Buffer[] = [];
    const shoot = async (width: number, height: number): Promise<Buffer> => {
      const viewport = tab.viewportSize();
      if (viewport === null || viewport.width < width || viewport.height < height) await tab.setViewportSize({ width, height });
      return tab.screenshot({ type: 'png', clip: { x: 0, y: 0, width, height } });
    };
    // what the element showed before a seek (kfBeforeSeek), so that the shot after it can wait for a change
    let before: Buffer | undefined;
    await tab.exposeFunction('kfBeforeSeek', async (width: number, height: number): Promise<void> => {
      before = await shoot(width, height);
    });
    await tab.exposeFunction('kfScreenshot', async (width: number, height: number): Promise<number> => {
      // After a seek the compositor may show the previous frame for a while (longer on a loaded machine): take
      // shots until the picture differs from the one before the seek and two in a row agree; a seek to the frame
      // already shown never differs, so after 5 s the settled picture is taken as it is.
      const deadline = Date.now() + 5_000;
      let shot = await shoot(width, height);
      for (;;) {
        await new Promise((r) => setTimeout(r, 50));
        const next = await shoot(width, height);
        const settled = next.equals(shot);
        shot = next;
        if (settled && (before === undefined || !shot.equals(before) || Date.now() > deadline)) break;
        if (Date.now() > deadline + 5_000) break;
      }
      screenshots.push(shot);
      before = shot;
      return screenshots.length - 1;
    });
    const pageErrors: string[] = [];
    tab.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()}`);
    });
    tab.on('pageerror', (err) => pageErrors.push(`page exception: ${err.message}`));
    await tab.goto(`http://127.0.0.1:${port}/`);
    const config: PageConfig = {
      segments: segments.length,
      mime: options.mime,
      keys: options.keys ?? null,
      scheme: options.keys !== undefined ? encryptionScheme(options.init) : null,
      playSeconds: options.playSeconds,
      captureAt: options.captureAt ?? [],
      timeoutMs,
      screenshotFallback: options.screenshotFallback ?? true,
    };
    let timer: NodeJS.Timeout | undefined;
    const guard = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`playInChromium: the page did not answer within ${timeoutMs + 15_000} ms`)), timeoutMs + 15_000);
    });
    let r: PageResult;
    try {
      r = await Promise.race([
        tab.evaluate(async (c: PageConfig) => {
          // Runs in the page: kfPlay is defined by player.html.
          const g = globalThis as unknown as { kfPlay: (c: PageConfig) => Promise<PageResult> };
          return g.kfPlay(c);
        }, config),
        guard,
      ]);
    } finally {
      clearTimeout(timer);
    }
    const frames: CapturedFrame[] = [];
    for (const f of r.frames) {
      const frame: CapturedFrame = { time: f.time, width: f.width, height: f.height };
      if (f.currentTime !== undefined) frame.currentTime = f.currentTime;
      if (f.rgbaBase64 !== undefined) {
        frame.rgba = new Uint8Array(Buffer.from(f.rgbaBase64, 'base64'));
        frame.source = 'canvas';
      }
      if (f.canvasError !== undefined) frame.canvasError = f.canvasError;
      const shot = f.screenshot !== undefined ? screenshots[f.screenshot] : undefined;
      if (shot !== undefined) {
        frame.rgba = await pngToRgba(shot, f.width, f.height);
        frame.source = 'screenshot';
        if (isBlack(frame.rgba)) frame.readError = 'screenshot of the video element is entirely black';
      }
      if (f.readError !== undefined) frame.readError = f.readError;
      frames.push(frame);
    }
    return {
      reachedTime: r.reachedTime,
      errors: [...r.errors, ...pageErrors],
      frames,
      keySystemAccess: r.keySystemAccess,
      timings: { launch: Math.round(launched - t0), ...r.timings, total: Math.round(performance.now() - t0) },
    };
  } finally {
    await browser?.close().catch(() => undefined);
    await new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  }
}

async function pngToRgba(png: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  const out = await ffmpeg(['-f', 'png_pipe', '-i', '-', '-f', 'rawvideo', '-pix_fmt', 'rgba', '-'], png);
  if (out.length !== width * height * 4) throw new Error(`screenshot: expected ${width}x${height} RGBA, got ${out.length} bytes`);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

function isBlack(rgba: Uint8Array): boolean {
  for (let i = 0; i < rgba.length; i += 4) if (rgba[i]! > 4 || rgba[i + 1]! > 4 || rgba[i + 2]! > 4) return false;
  return true;
}

/** Mean absolute difference per colour channel (R, G, B; alpha ignored) of two equal-size RGBA images, 0..255. */
export function frameDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length || a.length % 4 !== 0) throw new Error(`frameDiff: sizes differ or are not RGBA (${a.length} vs ${b.length})`);
  if (a.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < a.length; i += 4) {
    sum += Math.abs(a[i]! - b[i]!) + Math.abs(a[i + 1]! - b[i + 1]!) + Math.abs(a[i + 2]! - b[i + 2]!);
  }
  return sum / ((a.length / 4) * 3);
}

/**
 * RGBA of the clear source at `time` (s), decoded by ffmpeg (`-ss time -frames:v 1 -f rawvideo -pix_fmt rgba`),
 * scaled to width × height. YUV→RGB uses BT.709 limited range — what Chromium assumes for untagged H.264 — since
 * ffmpeg's default (BT.601) differs from Chromium's output by about 3 levels per channel on testsrc2.
 */
export async function referenceFrame(clipPath: string, time: number, width: number, height: number): Promise<Uint8Array> {
  const out = await ffmpeg([
    '-ss', String(time), '-i', clipPath, '-frames:v', '1',
    '-vf', `scale=${width}:${height}:in_color_matrix=bt709:in_range=tv:out_range=pc:flags=bilinear`,
    '-f', 'rawvideo', '-pix_fmt', 'rgba', '-',
  ]);
  if (out.length !== width * height * 4) throw new Error(`referenceFrame: expected ${width * height * 4} bytes, ffmpeg gave ${out.length}`);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

// ---- MP4 helpers ---------------------------------------------------------------------------------------------------

export interface Mp4Box {
  type: string;
  /** Offset of the box header in the buffer. */
  start: number;
  /** Total size including the header. */
  size: number;
  /** Header length (8, or 16 with a 64-bit largesize). */
  header: number;
}

/** The boxes directly inside `bytes[from, to)` (size 1 = 64-bit largesize, size 0 = to the end). */
export function mp4Boxes(bytes: Uint8Array, from = 0, to = bytes.length): Mp4Box[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const boxes: Mp4Box[] = [];
  let p = from;
  while (p < to) {
    if (to - p < 8) throw new Error(`mp4: truncated box header at ${p}`);
    let size = view.getUint32(p);
    const type = String.fromCharCode(bytes[p + 4]!, bytes[p + 5]!, bytes[p + 6]!, bytes[p + 7]!);
    let header = 8;
    if (size === 1) {
      if (to - p < 16) throw new Error(`mp4: truncated largesize at ${p}`);
      const big = view.getBigUint64(p + 8);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`mp4: box '${type}' too large`);
      size = Number(big);
      header = 16;
    } else if (size === 0) {
      size = to - p;
    }
    if (size < header || p + size > to) throw new Error(`mp4: box '${type}' at ${p} has bad size ${size}`);
    boxes.push({ type, start: p, size, header });
    p += size;
  }
  return boxes;
}

/**
 * Splits a fragmented MP4 into its init segment (every top-level box before the first `moof`: ftyp, moov, …) and
 * its fragments (each `moof` with the boxes up to the next one: its `mdat`, and any `styp`/`sidx`/`prft` of the
 * next fragment are moved to it). A trailing `mfra` (random-access index) is dropped.
 */
export function splitFragmentedMp4(bytes: Uint8Array): { init: Uint8Array; fragments: Uint8Array[] } {
  const boxes = mp4Boxes(bytes).filter((b) => b.type !== 'mfra');
  const firstMoof = boxes.findIndex((b) => b.type === 'moof');
  if (firstMoof < 0) throw new Error('mp4: no moof box: not a fragmented MP4');
  const slice = (list: Mp4Box[]): Uint8Array => {
    const out = new Uint8Array(list.reduce((n, b) => n + b.size, 0));
    let o = 0;
    for (const b of list) {
      out.set(bytes.subarray(b.start, b.start + b.size), o);
      o += b.size;
    }
    return out;
  };
  const leading = new Set(['styp', 'sidx', 'prft', 'emsg']);
  let initEnd = firstMoof;
  while (initEnd > 0 && leading.has(boxes[initEnd - 1]!.type)) initEnd--;
  const init = slice(boxes.slice(0, initEnd));
  const fragments: Uint8Array[] = [];
  let current: Mp4Box[] = [];
  for (let i = initEnd; i < boxes.length; i++) {
    const b = boxes[i]!;
    // A fragment ends after its mdat(s); the next styp/sidx/moof starts a new one.
    if (current.some((c) => c.type === 'moof') && (b.type === 'moof' || leading.has(b.type))) {
      fragments.push(slice(current));
      current = [];
    }
    current.push(b);
  }
  if (current.length > 0) fragments.push(slice(current));
  return { init, fragments };
}

const SAMPLE_ENTRIES = ['avc1', 'avc3', 'encv', 'hvc1', 'hev1'];

/** The first video track's sample entry (avc1/avc3/hvc1/hev1/encv) in an init segment. */
function sampleEntry(init: Uint8Array): Mp4Box | undefined {
  const moov = mp4Boxes(init).find((b) => b.type === 'moov');
  if (moov === undefined) return undefined;
  for (const trak of mp4Boxes(init, ...inner(moov)).filter((b) => b.type === 'trak')) {
    const stsd = findBoxIn(init, trak, ['mdia', 'minf', 'stbl', 'stsd']);
    if (stsd === undefined) continue;
    const entry = mp4Boxes(init, stsd.start + stsd.header + 8, stsd.start + stsd.size)[0];
    if (entry !== undefined && SAMPLE_ENTRIES.includes(entry.type)) return entry;
  }
  return undefined;
}

/** Payload range of a box ([start, end) after the header). */
function inner(box: Mp4Box): [number, number] {
  return [box.start + box.header, box.start + box.size];
}

/** Follows `path` (box types) down from `parent`, skipping the stsd header and the VisualSampleEntry fields. */
function findBoxIn(bytes: Uint8Array, parent: Mp4Box, path: readonly string[]): Mp4Box | undefined {
  let box = parent;
  for (const type of path) {
    const range = inner(box);
    if (box.type === 'stsd') range[0] += 8; // version/flags + entry_count
    if (SAMPLE_ENTRIES.includes(box.type)) range[0] += 78; // SampleEntry + VisualSampleEntry fields
    const next = mp4Boxes(bytes, ...range).find((b) => b.type === type);
    if (next === undefined) return undefined;
    box = next;
  }
  return box;
}

/**
 * The protection scheme of the first video track (`schm` scheme_type in encv/sinf: 'cenc', 'cbcs', …), or null
 * for clear content.
 */
export function encryptionScheme(init: Uint8Array): string | null {
  const entry = sampleEntry(init);
  if (entry?.type !== 'encv') return null;
  const schm = findBoxIn(init, entry, ['sinf', 'schm']);
  if (schm === undefined) return null;
  const p = schm.start + schm.header + 4;
  return String.fromCharCode(...init.subarray(p, p + 4));
}

/** Width and height of the first video sample entry (VisualSampleEntry fields), or undefined. */
export function videoSize(init: Uint8Array): { width: number; height: number } | undefined {
  const entry = sampleEntry(init);
  if (entry === undefined) return undefined;
  const p = entry.start + entry.header + 24;
  const width = (init[p]! << 8) | init[p + 1]!;
  const height = (init[p + 2]! << 8) | init[p + 3]!;
  return width > 0 && height > 0 ? { width, height } : undefined;
}

/** 'video/mp4; codecs="avc1.PPCCLL"' from the init segment's avcC (also for an `encv` entry wrapping avc1). */
export function mp4VideoMime(init: Uint8Array): string {
  const entry = sampleEntry(init);
  if (entry === undefined) throw new Error('mp4: no AVC/HEVC video sample entry in the init segment');
  const avcC = findBoxIn(init, entry, ['avcC']);
  if (avcC === undefined) throw new Error(`mp4: sample entry '${entry.type}' has no avcC (only H.264 is supported here)`);
  const p = avcC.start + avcC.header;
  const hex = (i: number): string => init[p + i]!.toString(16).padStart(2, '0');
  return `video/mp4; codecs="avc1.${hex(1)}${hex(2)}${hex(3)}"`;
}

// ---- encrypted-content check (the hook for the CENC packager's tests) ----------------------------------------------

export interface EncryptedPlaybackCheck {
  /** Path of the clear source the content was packaged from (reference frames are decoded from it by ffmpeg). */
  clearClip: string;
  /** Encrypted init segment (encv/sinf/tenc, ClearKey pssh) and fragments (moof with senc/saiz/saio + mdat). */
  init: Uint8Array;
  fragments: Uint8Array[];
  /** KID hex → key hex. */
  keys: Record<string, string>;
  /** Expected `schm` scheme; checked against the init segment. */
  scheme?: 'cenc' | 'cbcs';
  /** Default: mp4VideoMime(init). */
  mime?: string;
  /** Default 3 (s). */
  playSeconds?: number;
  /** Default [2] (s); each frame must be readable and within maxDiff of ffmpeg's decode of the clear source. */
  captureAt?: number[];
  /** Largest frameDiff accepted against the reference frame. Default 2.5 (clear ffmpeg fMP4 measures ≈0.9). */
  maxDiff?: number;
  /**
   * Also play once with every key inverted and require that this does NOT give the picture (errors, no progress,
   * or frames far from the reference): proves the content is really encrypted. Default true.
   */
  wrongKeyControl?: boolean;
  timeoutMs?: number;
}

export interface EncryptedPlaybackReport {
  result: PlayResult;
  wrongKey?: PlayResult;
  diffs: { time: number; diff: number }[];
  summary: Record<string, unknown>;
}

/**
 * Plays CENC content through EME ClearKey and checks it end to end; throws an Error describing every failed
 * check (with the PlayResult's errors and timings) instead of returning a verdict to forget.
 */
export async function checkEncryptedPlayback(c: EncryptedPlaybackCheck): Promise<EncryptedPlaybackReport> {
  const playSeconds = c.playSeconds ?? 3;
  const captureAt = c.captureAt ?? [2];
  const maxDiff = c.maxDiff ?? 2.5;
  const mime = c.mime ?? mp4VideoMime(c.init);
  const failures: string[] = [];
  const scheme = encryptionScheme(c.init);
  if (scheme === null) failures.push('init segment has no encv/sinf/schm: content is not CENC');
  else if (c.scheme !== undefined && scheme !== c.scheme) failures.push(`init segment scheme is '${scheme}', expected '${c.scheme}'`);

  const base = { init: c.init, fragments: c.fragments, mime, playSeconds, captureAt, ...(c.timeoutMs !== undefined ? { timeoutMs: c.timeoutMs } : {}) };
  const result = await playInChromium({ ...base, keys: c.keys });
  if (scheme === 'cenc' || scheme === 'cbcs') {
    if (result.keySystemAccess?.[scheme] !== true) failures.push(`ClearKey does not grant encryptionScheme '${scheme}'`);
  }
  if (result.errors.length > 0) failures.push(`playback errors: ${result.errors.join(' | ')}`);
  if (!(result.reachedTime > playSeconds)) failures.push(`reached ${result.reachedTime.toFixed(3)} s, not past ${playSeconds} s`);
  const diffs: { time: number; diff: number }[] = [];
  for (const f of result.frames) {
    if (f.readError !== undefined || f.rgba === undefined) {
      failures.push(`frame at ${f.time} s: ${f.readError ?? 'no pixels'}`);
      continue;
    }
    const diff = frameDiff(f.rgba, await referenceFrame(c.clearClip, f.time, f.width, f.height));
    diffs.push({ time: f.time, diff });
    if (!(diff < maxDiff)) failures.push(`frame at ${f.time} s differs from the clear source by ${diff.toFixed(2)} (max ${maxDiff})`);
  }

  let wrongKey: PlayResult | undefined;
  const wrongDiffs: number[] = [];
  if (c.wrongKeyControl ?? true) {
    const inverted = Object.fromEntries(Object.entries(c.keys).map(([kid, key]) => [kid, Buffer.from(Buffer.from(key, 'hex').map((b) => b ^ 0xff)).toString('hex')]));
    wrongKey = await playInChromium({ ...base, keys: inverted, timeoutMs: Math.min(c.timeoutMs ?? 30_000, 10_000) });
    for (const f of wrongKey.frames) {
      if (f.rgba !== undefined) wrongDiffs.push(frameDiff(f.rgba, await referenceFrame(c.clearClip, f.time, f.width, f.height)));
    }
    const gavePicture = wrongKey.errors.length === 0 && wrongKey.reachedTime > playSeconds && wrongDiffs.length > 0 && wrongDiffs.every((d) => d < maxDiff * 3);
    if (gavePicture) failures.push(`with wrong keys the content still plays and matches the clear source (diffs ${wrongDiffs.map((d) => d.toFixed(2)).join(', ')}): not encrypted?`);
  }

  const summary = {
    scheme,
    mime,
    reachedTime: result.reachedTime,
    diffs,
    timings: result.timings,
    ...(wrongKey !== undefined ? { wrongKey: { errors: wrongKey.errors, reachedTime: wrongKey.reachedTime, diffs: wrongDiffs, timings: wrongKey.timings } } : {}),
  };
  if (failures.length > 0) throw new Error(`checkEncryptedPlayback failed:\n- ${failures.join('\n- ')}\n${JSON.stringify(summary, null, 2)}`);
  return { result, ...(wrongKey !== undefined ? { wrongKey } : {}), diffs, summary };
}
