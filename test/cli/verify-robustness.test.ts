/**
 * Issue 10 §2, through the real CLI (compiled, in a child process): recordings and bundles with huge (sparse)
 * entries are refused with one line, or verified with bounded memory (peak RSS of the verifying process measured);
 * data after a tar archive's end — where `tar -i` finds a forged fragment — is reported, not ignored; the other tar
 * tricks (repeated names, absolute and `..` names, links, devices, pax and GNU headers, bad checksums, truncation)
 * are refused with one line naming the bundle, beside what GNU tar makes of them; ordinary I/O failures
 * (permission denied, a directory where a file is expected) are one line and exit 2; the human report has no
 * empty `video (signed SEIs):` line. Sparse files take no disk: the machine needs neither 3 GiB of disk nor of RAM.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, closeSync, copyFileSync, cpSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_FRAGMENT_BYTES } from '../../src/recording/limits.js';
import { openRecordingDir, TarFiles } from '../../src/recording/files.js';
import { tarHeader } from '../../src/recording/tar.js';
import { BIN, runCli, type CliResult } from '../helpers/cli.js';
import { clip } from '../helpers/media.js';
import { makePki, type Pki } from '../signing/_setup.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
/** Peak resident memory allowed to a verifying process (a bare `keyframe verify` of this recording takes ~90 MB). */
const RSS_BOUND_KIB = 200 * 1024;

let pki: Pki;
let cam: string;
let exporter: string;
let rec: string;
let bundle: string;
let root: string;
let hook: string;

beforeAll(async () => {
  pki = await makePki();
  cam = await pki.provision('SN-ROBUST');
  exporter = await pki.identity('exporter', 'WS-ROBUST');
  const source = await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25, slices: 2 });
  rec = join(pki.work, 'rec');
  const r = await runCli(['record', '--device', cam, '--source', source, '--duration', '3', '--out', rec, '--fast']);
  expect(r.stderr).toBe('');
  bundle = join(pki.work, 'case.kfe.tar');
  const e = await runCli(['export', rec, '--out', bundle, '--exporter', exporter, '--reason', 'robustness']);
  expect(e.stderr).toBe('');
  root = join(pki.work, 'root.pem');
  copyFileSync(pki.rootPath, root);
  // preloaded into the verifying process: its peak RSS (KiB) written at exit
  hook = join(pki.work, 'rss-hook.mjs');
  writeFileSync(hook, "import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(process.env.KF_TEST_RSS_FILE, String(process.resourceUsage().maxRSS)));\n");
}, 240_000);

afterAll(async () => {
  await pki.caStore.close();
  rmSync(pki.work, { recursive: true, force: true });
});

let copies = 0;
function copyOfRec(): string {
  const to = join(pki.work, `rec-${++copies}`);
  cpSync(rec, to, { recursive: true });
  return to;
}

function copyOfBundle(): string {
  const to = join(pki.work, `bundle-${++copies}.tar`);
  copyFileSync(bundle, to);
  return to;
}

/** `path` made (or extended to) `size` bytes without writing them: a sparse file. */
function sparse(path: string, size: number): void {
  if (!existsSync(path)) writeFileSync(path, '');
  truncateSync(path, size);
}

const verify = (path: string): Promise<CliResult> => runCli(['verify', path, '--root', root, '--exporter-root', pki.operatorPath]);

/** `keyframe verify` with its peak RSS (KiB; undefined when the process died before exiting normally). */
async function verifyMeasured(path: string): Promise<CliResult & { rssKiB: number | undefined }> {
  const out = join(pki.work, `rss-${++copies}.txt`);
  const r = await runCli(['verify', path, '--root', root, '--exporter-root', pki.operatorPath], { NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import=${hook}`.trim(), KF_TEST_RSS_FILE: out });
  return { ...r, rssKiB: existsSync(out) ? Number(readFileSync(out, 'utf8')) : undefined };
}

/** One line on stderr, `keyframe: …`, naming `path`. */
function expectOneLine(r: CliResult, code: number, path: string, pattern: RegExp): void {
  expect(r.stderr.split('\n')).toHaveLength(2);
  expect(r.stderr.startsWith(`keyframe: ${path}`) || r.stderr.includes(` ${path}`)).toBe(true);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/internal error/);
  expect(r.code).toBe(code);
}

/** The archive without its end-of-archive blocks (the exporter writes exactly two, no padding). */
function withoutEnd(path: string): Buffer {
  const b = readFileSync(path);
  expect(b.subarray(b.length - 1024).every((x) => x === 0)).toBe(true);
  return b.subarray(0, b.length - 1024);
}

/** A copy of the bundle with one more member, `size` bytes of zeros, sparse (no disk), before the end blocks. */
function bundleWithSparseMember(name: string, size: number): string {
  const to = join(pki.work, `sparse-${++copies}.tar`);
  const head = withoutEnd(bundle);
  const fd = openSync(to, 'w');
  writeSync(fd, head);
  writeSync(fd, tarHeader(name, size, 0));
  closeSync(fd);
  truncateSync(to, head.length + 512 + Math.ceil(size / 512) * 512 + 1024);
  return to;
}

/** The members of a ustar archive: name, header offset, size. */
function headers(b: Buffer): { name: string; at: number; size: number }[] {
  const out: { name: string; at: number; size: number }[] = [];
  for (let at = 0; at + 512 <= b.length && !b.subarray(at, at + 512).every((x) => x === 0); ) {
    const size = Number.parseInt(b.toString('latin1', at + 124, at + 136).replace(/\0.*$/s, '').trim(), 8);
    out.push({ name: b.toString('latin1', at, at + 100).replace(/\0.*$/s, ''), at, size });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

const tar = (args: readonly string[], cwd = pki.work): string => execFileSync('tar', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
/** GNU tar's exit code and complaints. */
function tarStatus(args: readonly string[]): { code: number; stderr: string } {
  const r = spawnSync('tar', args, { cwd: pki.work, encoding: 'utf8' });
  return { code: r.status ?? -1, stderr: r.stderr };
}

describe('huge entries: refused with one line, or verified in bounded memory', () => {
  it('a recording with a 3 GiB (sparse) fragment: one line naming it, exit 2 (was: Node aborted, exit 134)', async () => {
    const dir = copyOfRec();
    sparse(join(dir, '000003.m4s'), 3 * GiB);
    const r = await verifyMeasured(dir);
    expectOneLine(r, 2, dir, /^keyframe: .*rec-\d+: 000003\.m4s is 3 GiB: larger than the 256 MiB a fragment may be\n$/);
    expect(r.rssKiB).toBeLessThan(RSS_BOUND_KIB);
  });

  it('a bundle with a 3 GiB (sparse) member: one line naming bundle and member, exit 2 (was: Node aborted); GNU tar lists it', async () => {
    const b = bundleWithSparseMember('recording/000003.m4s', 3 * GiB);
    expect(tar(['-tvf', b])).toMatch(/ 3221225472 .*recording\/000003\.m4s/);
    const r = await verifyMeasured(b);
    expectOneLine(r, 2, b, /recording\/000003\.m4s is 3 GiB: larger than the 256 MiB a fragment may be/);
    expect(r.rssKiB).toBeLessThan(RSS_BOUND_KIB);
  });

  it('a 1 GiB member: refused at once, in bounded memory (was: 1.1 GB resident, then a report)', async () => {
    const b = bundleWithSparseMember('recording/000003.m4s', 1 * GiB);
    const r = await verifyMeasured(b);
    expectOneLine(r, 2, b, /recording\/000003\.m4s is 1 GiB: larger than the 256 MiB a fragment may be/);
    expect(r.rssKiB).toBeLessThan(RSS_BOUND_KIB);
  });

  it('a fragment just within the bound (255 MiB, forged): hashed by streaming, reported unrecorded, memory bounded (was: read whole twice)', async () => {
    const dir = copyOfRec();
    sparse(join(dir, '000003.m4s'), MAX_FRAGMENT_BYTES - MiB);
    const d = await verifyMeasured(dir);
    expect(d.stderr).toBe('');
    expect(d.code).toBe(1);
    expect(d.stdout).toMatch(/^verdict: NOT_AUTHENTIC\n/);
    expect(d.stdout).toMatch(/unrecorded +stored fragment at position 3 has no signed record/);
    expect(d.rssKiB).toBeLessThan(RSS_BOUND_KIB);
    const b = bundleWithSparseMember('recording/000003.m4s', MAX_FRAGMENT_BYTES - MiB);
    const v = await verifyMeasured(b);
    expect(v.code).toBe(1);
    expect(v.stdout).toContain('problem: recording/000003.m4s is in the bundle but not in the manifest');
    expect(v.rssKiB).toBeLessThan(RSS_BOUND_KIB);
  });

  it('records.jsonl: a 200 MiB line is one tampered record, read in bounded memory; a 300 MiB file is refused', async () => {
    const dir = copyOfRec();
    const records = join(dir, 'records.jsonl');
    const size = readFileSync(records).length;
    truncateSync(records, size + 200 * MiB); // 200 MiB of zero bytes, no newline
    const r = await verifyMeasured(dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/tampered +record on line \d+ is 200 MiB long: longer than the 64 KiB a record may be/);
    expect(r.rssKiB).toBeLessThan(RSS_BOUND_KIB);
    truncateSync(records, 300 * MiB);
    expectOneLine(await verify(dir), 2, dir, /records\.jsonl is 300 MiB: larger than the 256 MiB a records file may be/);
  });

  it('a recording directory or a bundle with more entries than allowed is refused (bound lowered for the test)', async () => {
    await expect(openRecordingDir(rec, { maxEntries: 5 })).rejects.toThrow(/holds more than 5 entries: not a recording/);
    await expect(TarFiles.open(bundle, { maxEntries: 5 })).rejects.toThrow(/case\.kfe\.tar: tar archive has more than 5 members/);
    const files = await openRecordingDir(rec, { maxEntries: 7 });
    expect(files.names()).toHaveLength(7);
  });
});

describe('tar archives: data after the end, and other tricks', () => {
  it('a forged fragment appended after the end blocks, which `tar -i` extracts: reported, NOT_AUTHENTIC (was: AUTHENTIC, exit 0)', async () => {
    const forgeDir = join(pki.work, 'forge');
    mkdirSync(join(forgeDir, 'recording'), { recursive: true });
    copyFileSync(join(rec, '000001.m4s'), join(forgeDir, 'recording', '000003.m4s'));
    const forged = join(pki.work, 'forged.tar');
    tar(['--format=ustar', '-cf', forged, 'recording/000003.m4s'], forgeDir);
    const b = join(pki.work, 'trailing.tar');
    writeFileSync(b, Buffer.concat([readFileSync(bundle), readFileSync(forged)]));
    // GNU tar stops at the end blocks; with -i (--ignore-zeros) it reads on and finds the forged fragment
    expect(tar(['-tf', b])).not.toContain('000003.m4s');
    expect(tar(['-i', '-tf', b])).toContain('recording/000003.m4s');
    const r = await verify(b);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^verdict: NOT_AUTHENTIC\n/);
    expect(r.stdout).toContain('evidence bundle: NOT_AUTHENTIC');
    expect(r.stdout).toMatch(/problem: data after the end of the archive \(.* from the end-of-archive blocks at byte \d+ to the end of the file\): `tar -i` reads a member recording\/000003\.m4s \(\d+ bytes\) there/);
    // the untouched bundle, padded to a tar record as GNU tar would, is still AUTHENTIC
    const padded = copyOfBundle();
    appendFileSync(padded, Buffer.alloc(10240 - (readFileSync(padded).length % 10240)));
    expect((await verify(padded)).code).toBe(0);
  });

  it('a lone zero block and a member after it (GNU tar warns and stops), and 2 MiB of zeros after the end: reported', async () => {
    const lone = join(pki.work, 'lone.tar');
    writeFileSync(lone, Buffer.concat([withoutEnd(bundle), Buffer.alloc(512), tarHeader('recording/000003.m4s', 5, 0), Buffer.from('forge'), Buffer.alloc(507 + 1024)]));
    const t = tarStatus(['-tf', lone]);
    expect(t.stderr).toMatch(/A lone zero block/);
    const r = await verify(lone);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/problem: data after the end of the archive .*`tar -i` reads a member recording\/000003\.m4s \(5 bytes\)/);
    const zeros = copyOfBundle();
    truncateSync(zeros, readFileSync(bundle).length + 2 * MiB);
    const z = await verify(zeros);
    expect(z.code).toBe(1);
    expect(z.stdout).toMatch(/problem: data after the end of the archive \(2\.0 MiB from .*\): zeros as far as examined .*more than tar pads an archive with/);
  });

  it('a member repeated (GNU tar lists both and extracts the second over the first): refused, one line naming the bundle', async () => {
    const b = copyOfBundle();
    const dir = join(pki.work, 'dup');
    mkdirSync(join(dir, 'recording'), { recursive: true });
    copyFileSync(join(rec, '000002.m4s'), join(dir, 'recording', '000001.m4s'));
    tar(['--format=ustar', '-rf', b, 'recording/000001.m4s'], dir);
    expect(tar(['-tf', b]).split('\n').filter((n) => n === 'recording/000001.m4s')).toHaveLength(2);
    const out = join(pki.work, 'dup-x');
    mkdirSync(out);
    tar(['-xf', b, '-C', out]);
    expect(readFileSync(join(out, 'recording', '000001.m4s')).equals(readFileSync(join(rec, '000002.m4s')))).toBe(true);
    expectOneLine(await verify(b), 2, b, /: tar member "recording\/000001\.m4s" appears twice: extracting the archive would replace the first by the second/);
  });

  it('absolute and .. names, a symbolic link, a hard link, a device, a directory, pax and GNU long names: each refused, one line naming the bundle', async () => {
    const dir = join(pki.work, 'tricks');
    mkdirSync(join(dir, 'recording', 'sub'), { recursive: true });
    writeFileSync(join(dir, 'recording', 'notes.txt'), 'note');
    symlinkSync('/etc/passwd', join(dir, 'recording', '000009.m4s'));
    writeFileSync(join(dir, 'recording', '000007.m4s'), 'seven');
    linkSync(join(dir, 'recording', '000007.m4s'), join(dir, 'recording', '000008.m4s'));
    const long = `recording/${'x'.repeat(110)}.m4s`;
    writeFileSync(join(dir, long), 'long');
    const cases: [string[], RegExp][] = [
      [['--format=ustar', '-P', '-rf', '%', join(dir, 'recording', 'notes.txt')], /member name "\/.*notes\.txt" is absolute: a bundle holds relative names only/],
      [['--format=ustar', '-P', '-rf', '%', '../tricks/recording/notes.txt'], /member name "\.\.\/tricks\/recording\/notes\.txt" climbs out of the archive/],
      [['--format=ustar', '-rf', '%', 'recording/000009.m4s'], /member "recording\/000009\.m4s" is a symbolic link \(to "\/etc\/passwd"\): a bundle holds regular files only/],
      [['--format=ustar', '-rf', '%', 'recording/000007.m4s', 'recording/000008.m4s'], /member "recording\/000008\.m4s" is a hard link \(to "recording\/000007\.m4s"\)/],
      [['--format=ustar', '-rf', '%', '-C', '/', '--transform', 's,^dev/null$,recording/000010.m4s,', 'dev/null'], /member "recording\/000010\.m4s" is a character device/],
      [['--format=ustar', '--no-recursion', '-rf', '%', 'recording/sub'], /member "recording\/sub\/?" is a directory/],
      // GNU tar appends in the archive's own format: a member in another format is spliced in (-cf -, see below)
      [['--format=pax', '-cf', '-', long], /is a pax extended header: long names and extended attributes are not accepted/],
      [['--format=gnu', '-cf', '-', long], /a GNU tar header \(a GNU long name\): keyframe reads POSIX ustar archives only/],
    ];
    for (const [args, pattern] of cases) {
      const b = copyOfBundle();
      if (args.includes('-cf')) {
        const member = execFileSync('tar', args, { cwd: dir });
        writeFileSync(b, Buffer.concat([withoutEnd(bundle), member]));
      } else {
        tar(args.map((a) => (a === '%' ? b : a)), dir);
      }
      expect(tarStatus(['-tf', b]).code).toBe(0); // GNU tar reads each of them
      expectOneLine(await verify(b), 2, b, pattern);
    }
  });

  it('a damaged header (bad checksum) and a truncated member: refused like GNU tar refuses them, one line naming the bundle', async () => {
    const members = headers(readFileSync(bundle));
    const chain = members.find((m) => m.name === 'recording/chain.pem');
    const manifest = members.find((m) => m.name === 'manifest.json');
    if (chain === undefined || manifest === undefined) throw new Error('bundle layout');
    const bad = copyOfBundle();
    const bytes = readFileSync(bad);
    bytes[chain.at + 3] = 0x41; // in the member's name, checksum unchanged
    writeFileSync(bad, bytes);
    expect(tarStatus(['-tf', bad]).stderr).toMatch(/Skipping to next header/);
    expectOneLine(await verify(bad), 2, bad, new RegExp(`: tar header at ${chain.at}: checksum mismatch`));
    const cut = copyOfBundle();
    truncateSync(cut, manifest.at + 512 + 100);
    expect(tarStatus(['-tf', cut]).stderr).toMatch(/Unexpected EOF/);
    expectOneLine(await verify(cut), 2, cut, /: tar member "manifest\.json" \(\d+ bytes\) runs past the end of the archive/);
  });
});

/** Runs `keyframe args` as root without the capabilities that bypass file permissions, or as the user we are. */
function runUnprivileged(args: readonly string[]): Promise<CliResult> {
  const asRoot = process.getuid?.() === 0;
  const cmd = asRoot ? 'setpriv' : process.execPath;
  const argv = asRoot ? ['--bounding-set', '-dac_override,-dac_read_search', '--', process.execPath, BIN, ...args] : [BIN, ...args];
  const { KEYFRAME_DEBUG: _debug, ...env } = process.env;
  return new Promise((resolve) => {
    execFile(cmd, argv, { env, maxBuffer: 16 * MiB }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }));
  });
}

describe('ordinary I/O failures: one line naming the path, exit 2', () => {
  it('permission denied on a bundle, a fragment, records.jsonl, an MP4 (verify and decrypt), a recording to export (was: internal error, exit 1)', async () => {
    const b = copyOfBundle();
    chmodSync(b, 0o000);
    const probe = await runUnprivileged(['verify', b, '--root', root]);
    expectOneLine(probe, 2, b, /^keyframe: cannot read evidence .*: permission denied\n$/);

    const frag = copyOfRec();
    chmodSync(join(frag, '000001.m4s'), 0o000);
    expectOneLine(await runUnprivileged(['verify', frag, '--root', root]), 2, join(frag, '000001.m4s'), /^keyframe: cannot read file .*000001\.m4s: permission denied\n$/);
    const out = join(pki.work, 'denied.kfe.tar');
    expectOneLine(await runUnprivileged(['export', frag, '--out', out, '--exporter', exporter, '--reason', 'r']), 2, join(frag, '000001.m4s'), /permission denied\n$/);
    expect(existsSync(out)).toBe(false);

    const recs = copyOfRec();
    chmodSync(join(recs, 'records.jsonl'), 0o000);
    expectOneLine(await runUnprivileged(['verify', recs, '--root', root]), 2, join(recs, 'records.jsonl'), /records\.jsonl: permission denied\n$/);

    const mp4 = join(pki.work, 'whole.mp4');
    writeFileSync(mp4, Buffer.concat(['init.mp4', '000000.m4s', '000001.m4s', '000002.m4s'].map((n) => readFileSync(join(rec, n)))));
    expect((await verify(mp4)).code).toBe(0);
    chmodSync(mp4, 0o000);
    expectOneLine(await runUnprivileged(['verify', mp4, '--root', root]), 2, mp4, /permission denied\n$/);
    expectOneLine(await runUnprivileged(['decrypt', mp4, '--key', '00112233445566778899aabbccddeeff', '--out', join(pki.work, 'clear.mp4')]), 2, mp4, /^keyframe: cannot read (input|evidence) .*whole\.mp4: permission denied\n$/);
  });

  it('a directory where a file of the recording is expected, a file where the recording is: one line naming it, exit 2 (was: reported missing, UNSIGNED, or an internal error)', async () => {
    const a = copyOfRec();
    rmSync(join(a, '000001.m4s'));
    mkdirSync(join(a, '000001.m4s'));
    expectOneLine(await verify(a), 2, join(a, '000001.m4s'), /000001\.m4s is a directory, not a file\n$/);
    const b = copyOfRec();
    rmSync(join(b, 'records.jsonl'));
    mkdirSync(join(b, 'records.jsonl'));
    expectOneLine(await verify(b), 2, join(b, 'records.jsonl'), /records\.jsonl is a directory, not a file\n$/);
    expectOneLine(await runCli(['export', b, '--out', join(pki.work, 'x.tar'), '--exporter', exporter, '--reason', 'r']), 2, join(b, 'records.jsonl'), /is a directory, not a file\n$/);
    // and a file where the recording directory is expected (was: internal error, ENOTDIR)
    expectOneLine(await runCli(['export', bundle, '--out', join(pki.work, 'x.tar'), '--exporter', exporter, '--reason', 'r']), 2, bundle, /case\.kfe\.tar is not a directory\n$/);
    expect(existsSync(join(pki.work, 'x.tar'))).toBe(false);
  });
});

describe('the human report', () => {
  it('names the video layer verdict on its heading line, and no line ends in white space (was: an empty `video (signed SEIs):` line)', async () => {
    const r = await verify(rec);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\nvideo \(signed SEIs\): AUTHENTIC\n {2}frames in the input: 75\n\n {2}session 1 [0-9a-f]{32}: AUTHENTIC\n/);
    expect(r.stdout.split('\n').filter((l) => /\s$/.test(l))).toEqual([]);
    // a recording whose fragment layer fails while the SEIs verify: each heading gives its own layer's verdict
    const dir = copyOfRec();
    const lines = readFileSync(join(dir, 'records.jsonl'), 'utf8').trimEnd().split('\n');
    writeFileSync(join(dir, 'records.jsonl'), `${lines.slice(0, -1).join('\n')}\n`);
    const v = await verify(dir);
    expect(v.stdout).toMatch(/^verdict: AUTHENTIC_WITH_GAPS\n/);
    expect(v.stdout).toContain('fragment records (checked without any key): AUTHENTIC_WITH_GAPS');
    expect(v.stdout).toContain('\nvideo (signed SEIs): AUTHENTIC\n');
  });
});
