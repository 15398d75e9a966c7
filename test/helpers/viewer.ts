/**
 * Driving the viewer web app in Debian's Chromium for the system tests: a browser that trusts the site's operator
 * CA the way a user is told to (certutil into the NSS database Chromium reads under $HOME), and the pixel clock read
 * back from what the page shows — a screenshot of a video's picture, scaled back to the video's own size, decoded by
 * the camera code's reader. (A page cannot read the pixels of EME-decrypted video itself; a screenshot can.)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { readPixelClock } from '../../src/camera/sources/pixel-clock.js';
import { CHROMIUM, CHROMIUM_ARGS } from './browser.js';
import { ffmpeg } from './media.js';

/** Chromium with `caPem` trusted as an authority: an NSS database under a home directory of its own (`home`). */
export async function browserTrusting(home: string, caPem: string): Promise<Browser> {
  const db = join(home, '.pki', 'nssdb');
  mkdirSync(db, { recursive: true });
  execFileSync('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
  execFileSync('certutil', ['-A', '-d', `sql:${db}`, '-t', 'C,,', '-n', 'keyframe-operator', '-i', caPem]);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS], env: { ...process.env, HOME: home } });
}

export async function logIn(page: Page, url: string, user: string, password: string): Promise<void> {
  await page.goto(url);
  await page.fill('input[name=user]', user);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForSelector('header .who', { timeout: 30_000 });
}

/** The part of the page where `video`'s picture is drawn (object-fit: contain), in CSS pixels. */
async function pictureRect(page: Page, selector: string): Promise<{ x: number; y: number; width: number; height: number; videoWidth: number; videoHeight: number }> {
  return page.$eval(selector, (el) => {
    const v = el as unknown as { getBoundingClientRect(): { left: number; top: number; width: number; height: number }; videoWidth: number; videoHeight: number };
    const r = v.getBoundingClientRect();
    const scale = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
    const width = v.videoWidth * scale;
    const height = v.videoHeight * scale;
    return { x: r.left + (r.width - width) / 2, y: r.top + (r.height - height) / 2, width, height, videoWidth: v.videoWidth, videoHeight: v.videoHeight };
  });
}

/**
 * The capture time drawn in the picture `selector` (a video element) shows now, and when the screenshot was taken
 * (the middle of the call), or undefined time when no clock could be read.
 */
export async function shownCaptureTime(page: Page, selector: string): Promise<{ captured: number | undefined; at: number }> {
  const r = await pictureRect(page, selector);
  const t0 = Date.now();
  const png = await page.screenshot({ type: 'png', clip: { x: Math.round(r.x), y: Math.round(r.y), width: Math.floor(r.width), height: Math.floor(r.height) } });
  const at = Math.round((t0 + Date.now()) / 2);
  const gray = await ffmpeg(['-i', 'pipe:0', '-vf', `scale=${r.videoWidth}:${r.videoHeight}:flags=area`, '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'], png);
  return { captured: readPixelClock(gray, r.videoWidth, r.videoHeight), at };
}
