/**
 * `npm start` (keyframe up) and the viewer web app (issue 14), end to end: from nothing, the whole system — CA, KMS,
 * NVR, four cameras recording a test pattern with a pixel clock, encrypted under their group's key — and its URL and
 * one-time administrator password. In Debian's Chromium, trusting the site's operator CA as a user is told to: the
 * live grid plays four cameras with their latency (checked against the pixel clock in what the page shows); an
 * export from the camera page verifies AUTHENTIC offline and is in the NVR's audit chain; a range across a group
 * rekey plays without a stall, each picture the one recorded at the playhead; a viewer without a playback grant
 * gets a clear refusal and no key, and the refusal is in the KMS's audit log. Ctrl-C stops every process; a rerun
 * resumes on the same CA, KMS and NVR.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAdminClient } from '../../src/kms/open.js';
import { loadNvrConfig } from '../../src/nvr/config.js';
import { NvrIndex } from '../../src/nvr/db.js';
import { LockStore } from '../../src/nvr/locks.js';
import { SegmentStore } from '../../src/nvr/store.js';
import { runCli, waitFor } from '../helpers/cli.js';
import { stablePort } from '../helpers/ports.js';
import { browserTrusting, logIn, shownCaptureTime } from '../helpers/viewer.js';

const BIN = resolve('bin/keyframe.js');
const data = mkdtempSync(join(tmpdir(), 'kf-up-'));
const PATTERN = 'pattern:width=320,height=180,fps=25,gop=25,bitrate=300000,clock=true';
const CAMERAS = ['CAM-0001', 'CAM-0002', 'CAM-0003', 'CAM-0004'];
/** Where to save screenshots of the pages (the README's, docs/screenshots/), when set. */
const SHOTS = process.env['KEYFRAME_SCREENSHOTS'];
const shot = async (page: Page, name: string): Promise<void> => {
  if (SHOTS !== undefined && SHOTS !== '') await page.screenshot({ path: join(SHOTS, name) });
};

interface Up {
  out: () => string;
  exited: Promise<number | null>;
  kill: (signal: NodeJS.Signals) => void;
  ports: number[];
}

/** Starts `keyframe up`; a port taken between choosing and binding is retried with new ports. */
async function up(ports?: number[]): Promise<Up> {
  for (let attempt = 0; ; attempt++) {
    const p4 = ports ?? [await stablePort(), await stablePort(), await stablePort(), await stablePort()];
    const [kms, nvr, kmsBrowser, viewer] = p4.map(String) as [string, string, string, string];
    const p = spawn(process.execPath, [BIN, 'up', '--data', data, '--kms-port', kms, '--nvr-port', nvr, '--kms-browser-port', kmsBrowser, '--viewer-port', viewer, '--pattern', PATTERN], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.on('data', (d: Buffer) => (text += d.toString()));
    p.stderr.on('data', (d: Buffer) => (text += d.toString()));
    const exited = new Promise<number | null>((done) => p.on('exit', (code) => done(code)));
    let ended = false;
    void exited.then(() => (ended = true));
    await waitFor(() => text.includes('logs: ') || ended, 180_000, 'keyframe up to start everything');
    if (!ended) return { out: () => text, exited, kill: (s) => p.kill(s), ports: p4 };
    if (attempt < 3 && ports === undefined && /in use/.test(text)) continue;
    throw new Error(`keyframe up ended: ${text}`);
  }
}

function pids(text: string): number[] {
  return [...text.matchAll(/running \(pid (\d+),/g)].map((m) => Number(m[1]));
}
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
/** The little of the DOM the page functions below touch (the tests compile without the DOM library). */
interface DocEl {
  readonly dataset: Record<string, string | undefined>;
  readonly readyState?: number;
  readonly textContent: string | null;
  querySelector(s: string): DocEl | null;
  getAttribute(name: string): string | null;
  getBoundingClientRect(): { left: number; top: number; width: number; height: number };
}
interface Doc {
  readonly document: { querySelectorAll(s: string): { length: number }; querySelector(s: string): DocEl | null };
  readonly el: DocEl;
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function status(): Promise<{ cameras: { serial: string; segments: number; sessions: number }[]; counts: { verified: number } }> {
  const r = await runCli(['nvr', 'status', '--config', join(data, 'nvr', 'nvr.json'), '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as never;
}

const admin = (): Promise<Awaited<ReturnType<typeof openAdminClient>>> => openAdminClient(kmsUrl(), join(data, 'kms', 'admin'));
const kmsUrl = (): string => `https://127.0.0.1:${first.ports[0] ?? 0}`;

let first: Up;
let second: Up | undefined;
let url: string;
let password: string;
let browser: Browser;
/** The KID of the group's first epoch, and when the rekey after it happened. */
let firstKid: string;
let rekeyAt: number;

beforeAll(async () => {
  first = await up();
  url = /open the viewer: (https:\/\/\S+)/.exec(first.out())?.[1] ?? '';
  password = /log in as admin with the password (\S+)/.exec(first.out())?.[1] ?? '';
  browser = await browserTrusting(join(data, 'browser-home'), join(data, 'ca', 'operator.pem'));
}, 240_000);

afterAll(async () => {
  await browser?.close();
  for (const u of [first, second]) {
    u?.kill('SIGTERM');
    await u?.exited;
  }
  rmSync(data, { recursive: true, force: true });
});

async function tiles(page: Page): Promise<{ serial: string; phase: string; frames: number; latency: number | undefined; firstFrame: number | undefined }[]> {
  return page.$$eval('.tile', (ts) =>
    ts.map((t) => {
      const d = (t as unknown as { dataset: Record<string, string | undefined> }).dataset;
      return { serial: d['serial'] ?? '', phase: d['phase'] ?? '', frames: Number(d['frames']), latency: d['latencyMs'] === '' ? undefined : Number(d['latencyMs']), firstFrame: d['firstFrameMs'] === '' ? undefined : Number(d['firstFrameMs']) };
    }),
  );
}

describe('npm start and the viewer', () => {
  it('npm start: the site from nothing, its viewer URL and a one-time administrator password; four cameras record and verify at the NVR', async () => {
    expect(pids(first.out())).toHaveLength(6);
    expect(first.out()).toMatch(/group site: created with CAM-0001, CAM-0002, CAM-0003, CAM-0004/);
    expect(url).toBe(`https://127.0.0.1:${first.ports[3]}/`);
    expect(password).toMatch(/^[a-z2-9]{20}$/);
    // the password is nowhere on disk in clear
    expect(runCliText(['grep', '-rl', password, data])).toBe('');
    let s = await status();
    const deadline = Date.now() + 120_000;
    while (!(s.cameras.length === 4 && s.cameras.every((c) => c.segments >= 3)) && Date.now() < deadline) {
      await sleep(1000);
      s = await status();
    }
    expect(s.cameras.map((c) => c.serial).sort()).toEqual(CAMERAS);
    const cam = await runCli(['camera', 'status', '--config', join(data, 'cameras', 'CAM-0001', 'camera.json')]);
    firstKid = /KID ([0-9a-f]{32})/.exec(cam.stdout)?.[1] ?? '';
    expect(cam.stdout).toMatch(/keys: cbcs, group site, epoch \d+, KID [0-9a-f]{32}/);
  }, 180_000);

  it('log in; the grid plays the four cameras, frames advancing, each tile with its latency — which the pixel clock in the page confirms', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    try {
      await logIn(page, url, 'admin', password);
      await page.waitForFunction((n) => (globalThis as unknown as Doc).document.querySelectorAll('.tile[data-phase="playing"]').length === n, CAMERAS.length, { timeout: 60_000 });
      const before = await tiles(page);
      await sleep(2000);
      const after = await tiles(page);
      expect(after.map((t) => t.serial).sort()).toEqual(CAMERAS);
      for (const t of after) {
        const b = before.find((x) => x.serial === t.serial);
        // 25 frames a second: two seconds advance every tile by well over 20 frames
        expect(t.frames - (b?.frames ?? 0), t.serial).toBeGreaterThan(20);
        expect(t.latency, t.serial).toBeGreaterThan(0);
        expect(t.latency, t.serial).toBeLessThan(5000);
      }
      // glass to glass from the pixels: the capture time drawn by the camera, read back from what the page shows
      const measured: string[] = [];
      for (const serial of CAMERAS) {
        const shot = await shownCaptureTime(page, `.tile[data-serial="${serial}"] video`);
        expect(shot.captured, `${serial}: a pixel clock in the picture`).toBeDefined();
        const pixels = shot.at - (shot.captured ?? 0);
        const tile = (await tiles(page)).find((t) => t.serial === serial)?.latency ?? NaN;
        measured.push(`${serial}: pixel clock ${pixels} ms, tile ${tile} ms`);
        expect(pixels).toBeGreaterThan(0);
        expect(pixels).toBeLessThan(5000);
        // the tile's own figure (capture clock from the signed records × the frame's media time) agrees
        expect(Math.abs(pixels - tile), measured.join('; ')).toBeLessThan(1000);
      }
      await shot(page, 'grid.png');
      console.log(`live latency (1280×720 page, 4 tiles): ${measured.join('; ')}; first frames ${after.map((t) => t.firstFrame).join(', ')} ms`);
    } finally {
      await page.close();
    }
  }, 180_000);

  it('plays a recorded range across a group rekey without a stall, each picture the one recorded at the playhead', async () => {
    const refresh = await runCli(['kms', 'group', 'refresh', 'site', '--url', kmsUrl(), '--identity', join(data, 'kms', 'admin')]);
    expect(refresh.code, refresh.stderr).toBe(0);
    rekeyAt = Date.now();
    await sleep(15_000);
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    try {
      await logIn(page, `${url}#/camera/CAM-0001`, 'admin', password);
      await page.waitForSelector('.timeline-bar .band');
      await page.click('button:has-text("Recorded")');
      await page.waitForFunction(() => (globalThis as unknown as Doc).document.querySelector('video.recorded')?.readyState === 4, undefined, { timeout: 60_000 });
      // from 8 s before the rekey: click the timeline there
      const bar = await page.$eval('.timeline-bar', (el) => {
        const b = el as unknown as DocEl;
        const r = b.getBoundingClientRect();
        return { x: r.left, y: r.top, w: r.width, h: r.height, from: Number(b.getAttribute('aria-valuemin')), to: Number(b.getAttribute('aria-valuemax')) };
      });
      const start = rekeyAt - 8000;
      const playhead = async (): Promise<number> => Number(await page.$eval('video.recorded', (v) => (v as unknown as Doc['el']).dataset['playhead']));
      const stalls = async (): Promise<number> => Number(await page.$eval('video.recorded', (v) => (v as unknown as Doc['el']).dataset['stalls']));
      // click there until playback is there (a click while the player is still busy with its first load may be lost)
      for (let attempt = 0; attempt < 3; attempt++) {
        await page.mouse.click(bar.x + ((start - bar.from) / (bar.to - bar.from)) * bar.w, bar.y + bar.h / 2);
        await sleep(1500);
        const at = await playhead();
        if (at >= start - 2000 && at <= start + 4000) break;
      }
      // from here on playback runs across the rekey: it must not stall
      const stallsBefore = await stalls();
      const checks: string[] = [];
      for (let i = 0; i < 6; i++) {
        await sleep(2500);
        // what the page shows against where playback is: the picture's own capture time is the playhead's
        const before = await playhead();
        const shot = await shownCaptureTime(page, 'video.recorded');
        const after = await playhead();
        expect(shot.captured, `a pixel clock in the played picture; ${checks.join('; ')}`).toBeDefined();
        checks.push(`${(before - rekeyAt) / 1000}s: ${(shot.captured ?? 0) - before} ms`);
        expect(shot.captured ?? 0, checks.join('; ')).toBeGreaterThanOrEqual(before - 200);
        expect(shot.captured ?? 0, checks.join('; ')).toBeLessThanOrEqual(after + 200);
      }
      // what a failure below needs to be understood: the samples, the stalls, any message on the page
      const state = async (): Promise<string> => `samples ${checks.join('; ')}; playhead ${((await playhead()) - rekeyAt) / 1000}s after the rekey; stalls ${await page.$eval('video.recorded', (v) => (v as unknown as Doc['el']).dataset['stalls'])}; page says ${JSON.stringify(await page.$eval('.camera-page', (m) => (m as unknown as Doc['el']).querySelector('.error')?.textContent ?? ''))}`;
      expect(await playhead(), await state()).toBeGreaterThan(rekeyAt + 4000);
      // the browser's own check of what it played: each fragment's bytes against the camera's signed records, the
      // records' signatures and chain, the camera's certificate chain to the manufacturer root
      const own = await page.$eval('.authenticity', (el) => ({ state: (el as unknown as DocEl).dataset['state'], verified: Number((el as unknown as DocEl).dataset['verified']), text: (el as unknown as DocEl).textContent }));
      expect(own.state, own.text ?? '').toBe('verified');
      expect(own.verified).toBeGreaterThanOrEqual(5);
      expect(own.text).toMatch(/certificate chain to the manufacturer root holds/);
      await shot(page, 'camera.png');
      expect((await stalls()) - stallsBefore, await state()).toBe(0);
      expect(await page.$eval('.camera-page', (m) => (m as unknown as Doc['el']).querySelector('.error')?.textContent ?? ''), await state()).toBe('');
    } finally {
      await page.close();
    }
  }, 180_000);

  it("tampering with a stored segment on the NVR's disk: the viewer's own check marks that range not verified", async () => {
    // a segment of CAM-0001 from before the rekey, verified by the NVR when it arrived
    const config = loadNvrConfig(join(data, 'nvr', 'nvr.json'));
    const ix = NvrIndex.openReadOnly(config.database);
    let seg: { session: string; seq: number; wall_start: number } | undefined;
    try {
      seg = ix.sqlite.prepare<[string, number], { session: string; seq: number; wall_start: number }>("SELECT session, seq, wall_start FROM segments WHERE serial = ? AND state = 'verified' AND wall_start < ? ORDER BY wall_start DESC LIMIT 1 OFFSET 3").get('CAM-0001', rekeyAt);
    } finally {
      ix.close();
    }
    expect(seg).toBeDefined();
    const { session, seq, wall_start: at } = seg as { session: string; seq: number; wall_start: number };
    const file = new SegmentStore(config.store).path('CAM-0001', session, 'seg', seq);
    const bytes = readFileSync(file);
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 0x01;
    writeFileSync(file, bytes);
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    try {
      await logIn(page, `${url}#/camera/CAM-0001`, 'admin', password);
      await page.waitForSelector('.timeline-bar .band');
      await page.click('button:has-text("Recorded")');
      await page.waitForSelector('.authenticity');
      const bar = await page.$eval('.timeline-bar', (el) => {
        const b = el as unknown as DocEl;
        const r = b.getBoundingClientRect();
        return { x: r.left, y: r.top, w: r.width, h: r.height, from: Number(b.getAttribute('aria-valuemin')), to: Number(b.getAttribute('aria-valuemax')) };
      });
      await page.mouse.click(bar.x + ((at - 3000 - bar.from) / (bar.to - bar.from)) * bar.w, bar.y + bar.h / 2);
      await page.waitForSelector('.authenticity[data-state="failed"]', { timeout: 60_000 });
      expect(await page.textContent('.authenticity')).toContain(`fragment ${seq}: its bytes differ from what the camera signed`);
      await page.waitForSelector('.timeline-bar .own-unverified');
      await shot(page, 'tampered.png');
    } finally {
      await page.close();
    }
  }, 180_000);

  it('a viewer without a playback grant sees a clear refusal and gets no key; the refusal is in the KMS audit log', async () => {
    // an investigator (her role allows playback) with no grant yet
    const add = await runCli(['user', 'add', 'vera', '--role', 'investigator', '--url', kmsUrl(), '--identity', join(data, 'kms', 'admin')], {}, undefined, 'vera has a long password 1\n');
    expect(add.code, add.stderr).toBe(0);
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    try {
      await logIn(page, url, 'vera', 'vera has a long password 1');
      await page.waitForSelector('.grid-page .notice');
      expect(await page.textContent('.grid-page .notice')).toMatch(/no live right/);
      await page.goto(`${url}#/camera/CAM-0001`);
      await page.waitForSelector('.camera-page .notice');
      expect(await page.textContent('.camera-page .notice')).toMatch(/no playback grant/);
      expect(await page.isDisabled('button:has-text("Recorded")')).toBe(true);
      await shot(page, 'refused-phone.png');
      // a key of the recording, asked for with this browser's session anyway: refused
      const r = await page.evaluate(
        async ([kms, kid]) => {
          const s = (await (await fetch(`${kms}/v1/session`, { credentials: 'include' })).json()) as { csrf: string };
          const b64 = btoa(String.fromCharCode(...(kid.match(/../g) ?? []).map((h) => parseInt(h, 16)))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
          const l = await fetch(`${kms}/v1/licence`, { method: 'POST', credentials: 'include', headers: { 'x-csrf-token': s.csrf }, body: JSON.stringify({ kids: [b64], type: 'temporary' }) });
          return { status: l.status, body: await l.text() };
        },
        [kmsBrowserUrl(), firstKid] as const,
      );
      expect(r.status).toBe(403);
      expect(r.body).not.toMatch(/"k"/);
    } finally {
      await page.close();
    }
    const a = await admin();
    try {
      const log = await a.json<{ entries: { entry: string }[] }>('GET', '/v1/admin/audit?from=1&limit=10000');
      const denied = log.entries.map((e) => JSON.parse(e.entry) as { actor: string; action: string; detail: { keys?: { kid: string; decision: string }[] } }).filter((e) => e.actor === 'user:vera' && e.action === 'licence-denied');
      expect(denied).toEqual([expect.objectContaining({ detail: expect.objectContaining({ keys: [expect.objectContaining({ kid: firstKid, decision: 'denied', reason: 'no grant covers this camera' })] }) as unknown })]);
    } finally {
      a.close();
    }
  }, 120_000);

  it('an administrator removes a camera from the group in the UI: the group is rekeyed, the page shows the new epoch, and the removed camera holds no key of it', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    page.on('dialog', (d) => void d.accept());
    try {
      await logIn(page, `${url}#/admin/groups`, 'admin', password);
      await page.waitForSelector('.group[data-group="site"] tr[data-member="CAM-0004"]');
      const before = Number(await page.getAttribute('.group[data-group="site"]', 'data-epoch'));
      await page.click('.group[data-group="site"] tr[data-member="CAM-0004"] button');
      await page.waitForFunction((e) => {
        const g = (globalThis as unknown as Doc).document.querySelector('.group[data-group="site"]');
        return g !== null && Number(g.dataset['epoch']) > e && g.querySelector('tr[data-member="CAM-0004"]') === null;
      }, before, { timeout: 60_000 });
      const after = Number(await page.getAttribute('.group[data-group="site"]', 'data-epoch'));
      expect(after).toBeGreaterThan(before);
      await shot(page, 'admin-groups.png');
      // the members record under the new epoch's key; the removed camera never got it
      let member = '';
      const deadline = Date.now() + 30_000;
      while (!new RegExp(`epoch ${after}, KID`).test(member) && Date.now() < deadline) {
        member = (await runCli(['camera', 'status', '--config', join(data, 'cameras', 'CAM-0001', 'camera.json')])).stdout;
        await sleep(1000);
      }
      const newKid = new RegExp(`epoch ${after}, KID ([0-9a-f]{32})`).exec(member)?.[1];
      expect(newKid, member).toBeDefined();
      const removed = (await runCli(['camera', 'status', '--config', join(data, 'cameras', 'CAM-0004', 'camera.json')])).stdout;
      expect(removed).not.toContain(newKid);
      expect(removed).not.toMatch(new RegExp(`epoch ${after}\\b`));
      // audited as the session's account
      const a = await admin();
      try {
        const log = await a.json<{ entries: { entry: string }[] }>('GET', '/v1/admin/audit?from=1&limit=10000');
        expect(log.entries.map((e) => JSON.parse(e.entry) as { actor: string }).filter((e) => e.actor === 'admin:user:admin').length).toBeGreaterThan(0);
      } finally {
        a.close();
      }
      // the other pages an administrator has: users and grants, the audit log checked in this browser, health
      await page.goto(`${url}#/admin/users`);
      await page.waitForSelector('tr[data-user="admin"]');
      await shot(page, 'admin-users.png');
      await page.goto(`${url}#/admin/audit`);
      await page.waitForSelector('[data-chain]');
      expect(await page.getAttribute('[data-chain]', 'data-chain')).toBe('verified');
      await shot(page, 'admin-audit.png');
      await page.goto(`${url}#/admin/cameras`);
      await page.waitForSelector('tr[data-camera="CAM-0004"]');
      await shot(page, 'admin-cameras.png');
    } finally {
      await page.close();
    }
  }, 180_000);

  it('Ctrl-C stops every process; a rerun resumes on the same CA, KMS and NVR without a new password', async () => {
    const children = pids(first.out());
    const afterFirst = await status();
    first.kill('SIGINT');
    expect(await first.exited).toBe(0);
    expect(first.out()).toMatch(/stopping: cameras first[\s\S]*\nstopped\n/);
    for (const pid of children) expect(alive(pid), `pid ${pid}`).toBe(false);
    const ca = readFileSync(join(data, 'ca', 'root.pem'), 'utf8');
    second = await up(first.ports);
    expect(second.out()).not.toMatch(/created the CA|provisioned camera|created the KMS|created the NVR|with the password/);
    let s2 = await status();
    const deadline = Date.now() + 120_000;
    while (!s2.cameras.every((c) => c.sessions >= 2) && Date.now() < deadline) {
      await sleep(1000);
      s2 = await status();
    }
    expect(s2.cameras.every((c) => c.sessions >= 2)).toBe(true);
    expect(s2.counts.verified).toBeGreaterThan(afterFirst.counts.verified);
    expect(readFileSync(join(data, 'ca', 'root.pem'), 'utf8')).toBe(ca);
  }, 300_000);

  it('exports a range of the first run from the camera page: the downloaded bundle verifies AUTHENTIC with keyframe verify and the export is in the NVR audit chain', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 }, acceptDownloads: true });
    try {
      await logIn(page, `${url}#/camera/CAM-0002`, 'admin', password);
      await page.waitForSelector('.range-actions');
      // a range of the first run, whose sessions ended cleanly at Ctrl-C (a session still recording has no end yet)
      await page.fill('.range-actions input[type=datetime-local] >> nth=0', localInput(rekeyAt - 5000));
      await page.fill('.range-actions input[type=datetime-local] >> nth=1', localInput(rekeyAt + 5000));
      await page.fill('.range-actions input[name=case]', 'CASE-42');
      await page.fill('.range-actions input[name=reason]', 'incident at the gate');
      await page.click('button:has-text("Export evidence bundle")');
      await page.waitForSelector('tr[data-state="done"]', { timeout: 120_000 });
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('tr[data-state="done"] button')]);
      const file = join(data, 'export.tar');
      await download.saveAs(file);
      const v = await runCli(['verify', file, '--root', join(data, 'ca', 'root.pem'), '--exporter-root', join(data, 'ca', 'operator.pem')]);
      expect(v.code, v.stdout + v.stderr).toBe(0);
      expect(v.stdout).toMatch(/AUTHENTIC/);
      const sha = runCliText(['sha256sum', file]).split(' ')[0];
      const ix = NvrIndex.openReadOnly(loadNvrConfig(join(data, 'nvr', 'nvr.json')).database);
      try {
        const entries = new LockStore(ix).auditLog().map((r) => JSON.parse(r.entry) as { action: string; actor: string; case?: string; sha256?: string });
        expect(entries.filter((e) => e.action === 'export')).toEqual([expect.objectContaining({ actor: 'user:admin', case: 'CASE-42', sha256: sha })]);
      } finally {
        ix.close();
      }
    } finally {
      await page.close();
    }
    // SIGTERM stops the rerun cleanly
    const rerun = second as Up;
    rerun.kill('SIGTERM');
    expect(await rerun.exited).toBe(0);
    for (const pid of pids(rerun.out())) expect(alive(pid)).toBe(false);
  }, 240_000);
});

/** ms → what a datetime-local input takes (local time, seconds), as the page's own conversion does. */
function localInput(ms: number): string {
  return new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
}

const kmsBrowserUrl = (): string => `https://127.0.0.1:${first.ports[2] ?? 0}`;

function runCliText(argv: string[]): string {
  try {
    return execFileSync(argv[0] as string, argv.slice(1), { encoding: 'utf8' });
  } catch {
    return '';
  }
}
