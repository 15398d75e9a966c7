/**
 * Ordinary failures are one honest line naming the path (or the value), exit 2 — not "internal error" with exit
 * 1 — whatever the command: an output that is a directory, an output directory that does not exist, a source that
 * is a directory, a read-only destination, a full disk, an invalid URL, a port in use. And the process itself:
 * no command is a usage error; a closed stdout (`| head -1`) ends quietly; SIGINT/SIGTERM remove the temporaries.
 * Every case runs the real binary in a child process.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli, spawnCli, waitFor, expectOneLineError } from '../helpers/cli.js';
import type { CliResult } from '../helpers/cli.js';
import { clip } from '../helpers/media.js';

const KEY = '00112233445566778899aabbccddeeff';
const KID = '0123456789abcdef0123456789abcdef';
const PASS = 'honest errors passphrase';
let work: string;
let src: string;


/** Whether this machine lets a process make its own mount namespace (unprivileged user namespaces, or root). */
function canUnshare(): boolean {
  try {
    execFileSync('unshare', ['-rm', 'true'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs keyframe in its own mount namespace with a tmpfs (options `mountOptions`) mounted on `dir`; `left` is what
 * the command left in that tmpfs.
 */
function runWithMount(dir: string, mountOptions: string, args: readonly string[]): CliResult & { left: string[] } {
  const listing = join(work, `ls-${Math.random().toString(36).slice(2)}`);
  const script = 'mount -t tmpfs -o "$1" tmpfs "$2" || exit 99; d=$2; l=$3; shift 3; "$@"; rc=$?; ls -A "$d" > "$l"; exit $rc';
  const r = spawnSync('unshare', ['-rm', 'sh', '-c', script, 'sh', mountOptions, dir, listing, process.execPath, BIN, ...args], { encoding: 'utf8' });
  const left = existsSync(listing) ? readFileSync(listing, 'utf8').split('\n').filter((l) => l !== '') : ['(no listing)'];
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, left };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'kf-honest-'));
  src = await clip({ width: 640, height: 480, seconds: 2, gop: 30, format: 'h264' });
}, 240_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('ordinary failures: one line naming the path, exit 2', () => {
  it('--out that is a directory', async () => {
    mkdirSync(join(work, 'adir'));
    expectOneLineError(await runCli(['package', src, '--out', join(work, 'adir'), '--key', KEY, '--kid', KID]), 2, new RegExp(`cannot write ${join(work, 'adir')}: it is a directory`));
    expectOneLineError(await runCli(['ca', 'crl', '--ca', join(work, 'noca'), '--out', join(work, 'adir')]), 2, new RegExp(`cannot write ${join(work, 'adir')}: it is a directory`));
  });

  it('an output directory that does not exist', async () => {
    const out = join(work, 'missing', 'x.mp4');
    expectOneLineError(await runCli(['package', src, '--out', out, '--key', KEY, '--kid', KID]), 2, new RegExp(`cannot write ${out}: directory ${join(work, 'missing')} does not exist`));
    expectOneLineError(await runCli(['decrypt', src, '--out', out, '--key', KEY]), 2, /does not exist/);
    expect(existsSync(join(work, 'missing'))).toBe(false);
  });

  it('a source that is a directory', async () => {
    expectOneLineError(await runCli(['package', work, '--out', join(work, 'p.mp4'), '--scheme', 'none']), 2, new RegExp(`input is a directory, not a file: ${work}`));
    expectOneLineError(await runCli(['record', '--device', join(work, 'nodev'), '--source', work, '--out', join(work, 'rec'), '--duration', '1']), 2, new RegExp(`source is a directory, not a file: ${work}`));
  });

  it.runIf(canUnshare())('a read-only destination', () => {
    const ro = join(work, 'ro');
    mkdirSync(ro);
    const r = runWithMount(ro, 'ro', ['package', src, '--out', join(ro, 'x.mp4'), '--key', KEY, '--kid', KID]);
    expectOneLineError(r, 2, new RegExp(`cannot write ${join(ro, 'x.mp4')}: read-only file system`));
  });

  it.runIf(canUnshare())('a full disk names the output and leaves no temporary file', () => {
    const full = join(work, 'full');
    mkdirSync(full);
    // the packaged clip is several times 64 KiB: a tmpfs of 64 KiB fills up half-way
    expect(readFileSync(src).length).toBeGreaterThan(4 * 65536);
    const r = runWithMount(full, 'size=64k', ['package', src, '--out', join(full, 'x.mp4'), '--key', KEY, '--kid', KID]);
    expectOneLineError(r, 2, new RegExp(`cannot write ${join(full, 'x.mp4')}: no space left on the device`));
    expect(r.left).toEqual([]);
  });

  it('a port in use names the address', async () => {
    const env = { KEYFRAME_KEYSTORE_PIN: PASS };
    expect((await runCli(['ca', 'init', '--dir', join(work, 'ca')], env)).code).toBe(0);
    const busy: Server = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as AddressInfo).port;
    try {
      const init = await runCli(['kms', 'init', '--ca', join(work, 'ca'), '--dir', join(work, 'kms'), '--port', String(port)], env);
      expect(init.code, init.stderr).toBe(0);
      expectOneLineError(await runCli(['kms', 'serve', '--config', join(work, 'kms', 'kms.json')], env), 2, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use`));
    } finally {
      busy.close();
    }
  });

  it('an invalid --url is a usage error naming the value', async () => {
    expectOneLineError(await runCli(['kms', 'status', '--url', 'not a url', '--identity', join(work, 'kms', 'admin')], { KEYFRAME_KEYSTORE_PIN: PASS }), 2, /invalid URL "not a url"/);
  });
});

describe('the process', () => {
  it('no command is a usage error: help on stderr, exit 2; --help is on stdout, exit 0', async () => {
    const none = await runCli([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/^Usage: keyframe /);
    const group = await runCli(['ca']);
    expect(group.code).toBe(2);
    expect(group.stderr).toMatch(/^Usage: keyframe ca /);
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: keyframe /);
    expect(help.stderr).toBe('');
  });

  it('a closed stdout ends the command quietly, as SIGPIPE ends other tools (no stack trace)', async () => {
    for (const args of [['groupkey', 'table'], ['ca', 'list', '--ca', join(work, 'ca')]]) {
      const child = spawnCli(args, { KEYFRAME_KEYSTORE_PIN: PASS });
      child.stdout.destroy(); // the reader is gone before the command writes its first line
      const r = await child.result;
      expect(r.stderr, args.join(' ')).toBe('');
      expect(r.signal, args.join(' ')).toBe('SIGPIPE'); // the shell reports 141, as for any tool
    }
    // and through a shell pipeline, as a user types it
    const piped = spawnSync('sh', ['-c', '"$0" "$1" groupkey table --json | head -c 5', process.execPath, BIN], { encoding: 'utf8' });
    expect(piped.stdout).toBe('[\n  {');
    expect(piped.stderr).toBe('');
  });

  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    it(`${signal} during package removes the temporary output; the shell sees status ${code}`, async () => {
      const dir = mkdtempSync(join(work, 'sig-'));
      const fifo = join(dir, 'in.h264');
      execFileSync('mkfifo', [fifo]);
      const child = spawnCli(['package', fifo, '--out', join(dir, 'out.mp4'), '--scheme', 'none']);
      // a slow pipe: the first half of the clip, then nothing until the signal
      const data = readFileSync(src);
      const { open } = await import('node:fs/promises');
      const writer = await open(fifo, 'w');
      await writer.write(data.subarray(0, data.length >> 1));
      await waitFor(() => readdirSync(dir).some((n) => n.endsWith('.tmp')), 20_000, 'the temporary output');
      child.kill(signal);
      const r = await child.result;
      await writer.close().catch(() => undefined);
      expect(r.signal, r.stderr).toBe(signal);
      expect(r.stderr).toBe('');
      expect(readdirSync(dir)).toEqual(['in.h264']);
    });
  }

  it('no temporary is left by a failed write either', async () => {
    writeFileSync(join(work, 'cut.mp4'), Buffer.alloc(0));
    const dir = mkdtempSync(join(work, 'fail-'));
    const r = await runCli(['decrypt', join(work, 'cut.mp4'), '--key', KEY, '--out', join(dir, 'x.mp4')]);
    expect(r.code).toBe(2);
    expect(readdirSync(dir)).toEqual([]);
  });
});
