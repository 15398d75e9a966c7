/**
 * SIGINT/SIGTERM during `keyframe export --format onvif` remove the temporary export; nothing is left and the shell
 * sees the signal. The export is caught while it writes: the test process watches the output directory and stops the
 * exporter (SIGSTOP) the moment its temporary appears, then sends the signal and lets it continue. An attempt in which
 * the export finished before it could be stopped does not count; one of three must be caught.
 */
import { mkdtempSync, readdirSync, rmSync, watch } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnCli } from '../helpers/cli.js';
import { clip } from '../helpers/media.js';
import { makePki, type Pki } from '../signing/_setup.js';

let pki: Pki;
let exporter: string;
let rec: string;

beforeAll(async () => {
  pki = await makePki();
  const cam = await pki.provision('SN-SIG');
  exporter = await pki.identity('exporter', 'WS-SIG');
  const source = await clip({ width: 1280, height: 720, fps: 30, seconds: 5, gop: 30, bitrate: '8M' });
  rec = join(pki.work, 'rec');
  const r = await runCli(['record', '--device', cam, '--source', source, '--duration', '30', '--out', rec, '--fast']);
  expect(r.code, r.stderr).toBe(0);
}, 300_000);

afterAll(async () => {
  await pki.caStore.close();
  rmSync(pki.work, { recursive: true, force: true });
});

describe('interrupted ONVIF export', () => {
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    it(`${signal} while the export is written removes the temporary (the shell sees ${code})`, async () => {
      let caught = 0;
      for (let attempt = 0; attempt < 3 && caught === 0; attempt++) {
        const dir = mkdtempSync(join(pki.work, `sig-${signal}-`));
        const child = spawnCli(['export', rec, '--format', 'onvif', '--out', join(dir, 'case.mp4'), '--exporter', exporter, '--reason', 'r']);
        let stopped = false;
        const watcher = watch(dir, (_event, name) => {
          if (!stopped && name !== null && name.endsWith('.tmp')) {
            stopped = child.kill('SIGSTOP');
          }
        });
        const r = await Promise.race([
          child.result,
          new Promise<'stopped'>((resolve) => {
            const t = setInterval(() => {
              if (stopped) {
                clearInterval(t);
                resolve('stopped');
              }
            }, 5);
            void child.result.finally(() => clearInterval(t));
          }),
        ]);
        watcher.close();
        if (r !== 'stopped') continue; // finished before it could be stopped: not this attempt
        const during = readdirSync(dir);
        if (!during.some((n) => n.endsWith('.tmp'))) {
          child.kill('SIGCONT');
          await child.result;
          continue;
        }
        child.kill(signal);
        child.kill('SIGCONT');
        const done = await child.result;
        expect(done.signal, done.stderr).toBe(signal);
        expect(done.stderr).toBe('');
        expect(readdirSync(dir)).toEqual([]);
        caught++;
      }
      expect(caught, 'an export caught while writing').toBe(1);
    });
  }
});
