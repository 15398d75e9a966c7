/**
 * `keyframe export --format onvif` and `keyframe verify` of the file, as a user runs them (the compiled binary),
 * checked with the real tools: ffprobe reads the stream parameters and the start time, ffmpeg decodes exactly the
 * frames of the exported fragments (`-f framemd5` equal to the recording's), the exported fragments are in the file
 * byte for byte (signing SEIs and all), and the seal verifies under node:crypto computed the way the specification
 * says (all bytes of the file, the signature box's bits zero) — independently of keyframe's own sealInput. Tampered
 * exports are refused with the reason named; repeated signing keeps the first seal valid.
 */
import { constants, createPublicKey, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildExportMeta, parseExportMeta, ticksFromMs } from '../../src/media/mp4/oeff.js';
import { seconds1904 } from '../../src/media/mp4/movie-times.js';
import { openOperatorIdentity } from '../../src/pki/operator-identity.js';
import { exportOnvif } from '../../src/recording/onvif-export.js';
import { mp4Boxes } from '../helpers/browser.js';
import { expectOneLineError, runCli } from '../helpers/cli.js';
import { clip, ffmpeg, frameMd5s } from '../helpers/media.js';
import { makePki, type Pki } from '../signing/_setup.js';

const KEY = '8899aabbccddeeff0011223344556677';
const KID = 'fedcba98765432100123456789abcdef';

let pki: Pki;
let evil: Pki;
let cam: string;
let exporter: string;
let rsaExporter: string;
let registry: string;
let evilExporter: string;
let rec: string;
let encRec: string;
let whole: string;

/** The whole-file export of `rec`, made once. */
beforeAll(async () => {
  pki = await makePki();
  evil = await makePki('Acme Cameras');
  cam = await pki.provision('SN-ONVIF');
  exporter = await pki.identity('exporter', 'WS-INVESTIGATOR');
  rsaExporter = await pki.identity('exporter', 'WS-RSA', { algorithm: 'rsa-2048' });
  registry = await pki.identity('exporter', 'COURT-REGISTRY');
  evilExporter = await evil.identity('exporter', 'WS-INVESTIGATOR');
  const source = await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25, slices: 2 });
  rec = join(pki.work, 'rec');
  encRec = join(pki.work, 'rec-enc');
  const a = await runCli(['record', '--device', cam, '--source', source, '--duration', '4', '--out', rec, '--fast']);
  expect(a.code, a.stderr).toBe(0);
  const b = await runCli(['record', '--device', cam, '--source', source, '--duration', '3', '--out', encRec, '--key', KEY, '--kid', KID, '--fast']);
  expect(b.code, b.stderr).toBe(0);
  whole = join(pki.work, 'whole.mp4');
  const e = await runCli(['export', rec, '--format', 'onvif', '--out', whole, '--exporter', exporter, '--reason', 'case 7: burglary']);
  expect(e.stderr).toBe('');
  expect(e.code).toBe(0);
}, 240_000);

afterAll(async () => {
  await pki.caStore.close();
  await evil.caStore.close();
  rmSync(pki.work, { recursive: true, force: true });
  rmSync(evil.work, { recursive: true, force: true });
});

const verifyArgs = (path: string, ...more: string[]): string[] => ['verify', path, '--root', pki.rootPath, '--exporter-root', pki.operatorPath, ...more];
const segments = (dir: string): string[] => readdirSync(dir).filter((n) => /^\d{6}\.m4s$/.test(n)).sort();
const cat = (dir: string, names: string[]): Buffer => Buffer.concat(names.map((n) => readFileSync(join(dir, n))));

function ffprobe(path: string): Record<string, string> {
  const out = execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,profile,width,height,pix_fmt,nb_read_frames,r_frame_rate:format_tags=creation_time', '-of', 'flat', path], { encoding: 'utf8' });
  return Object.fromEntries(out.trim().split('\n').map((l) => {
    const [k, v] = l.split('=') as [string, string];
    return [k.replace(/^streams\.stream\.0\.|^format\./, ''), JSON.parse(v) as string];
  }));
}

/** The file-level meta box: where it starts and what it says. */
function metaOf(bytes: Buffer): { offset: number; meta: Buffer; parsed: ReturnType<typeof parseExportMeta> } {
  const b = mp4Boxes(bytes).filter((x) => x.type === 'meta').pop();
  if (b === undefined) throw new Error('no meta');
  const meta = Buffer.from(bytes.subarray(b.start, b.start + b.size));
  return { offset: b.start, meta, parsed: parseExportMeta(meta) };
}

/**
 * The specification's verification, written out independently of keyframe's sealInput: for seal `k` of `n`,
 * remove the later sinf boxes, fix the sizes of ipro and meta, zero the seal's own signature, hash everything.
 */
function specSealInput(bytes: Buffer, k: number): { data: Buffer; signature: Buffer; cert: X509Certificate } {
  const { offset, meta, parsed } = metaOf(bytes);
  const seal = parsed.seals[k]!;
  const end = seal.sinf.offset + seal.sinf.size;
  const data = Buffer.concat([bytes.subarray(0, offset), meta.subarray(0, end)]);
  const removed = meta.length - end;
  data.writeUInt32BE(meta.length - removed, offset);
  data.writeUInt32BE(parsed.ipro!.size - removed, offset + parsed.ipro!.offset);
  const at = offset + seal.signature!.offset;
  const signature = Buffer.from(data.subarray(at, at + seal.signature!.length));
  data.fill(0, at, at + seal.signature!.length);
  return { data, signature, cert: new X509Certificate(seal.certificate!) };
}

const CONTAINER_FIELDS: Record<string, number> = { meta: 4, ipro: 6 };
/** `bytes` with every box at `path` replaced by `edit(box)` (null: removed), the sizes of its ancestors fixed. */
function rewrite(bytes: Buffer, path: string[], edit: (box: Buffer) => Buffer | null, from = 0, to = bytes.length): Buffer {
  const parts: Buffer[] = [];
  for (const b of mp4Boxes(bytes, from, to)) {
    const whole = bytes.subarray(b.start, b.start + b.size);
    if (b.type !== path[0]) parts.push(whole);
    else if (path.length === 1) {
      const r = edit(Buffer.from(whole));
      if (r !== null) parts.push(r);
    } else {
      const skip = CONTAINER_FIELDS[b.type] ?? 0;
      const inner = rewrite(bytes, path.slice(1), edit, b.start + b.header + skip, b.start + b.size);
      const head = Buffer.from(bytes.subarray(b.start, b.start + b.header + skip));
      head.writeUInt32BE(head.length + inner.length, 0);
      parts.push(head, inner);
    }
  }
  return Buffer.concat(parts);
}

function flip(bytes: Buffer, at: number): Buffer {
  const out = Buffer.from(bytes);
  out[at] = (out[at] ?? 0) ^ 0x01;
  return out;
}

async function verdictOf(bytes: Buffer, name: string, ...more: string[]): Promise<{ code: number; stdout: string }> {
  const path = join(pki.work, name);
  writeFileSync(path, bytes);
  return runCli(verifyArgs(path, ...more));
}

describe('keyframe export --format onvif', () => {
  it('writes an MP4 that ffprobe reads with the recording\'s parameters, frame count and absolute start, and ffmpeg decodes to the same frames', async () => {
    const session = JSON.parse(readFileSync(join(rec, 'records.jsonl'), 'utf8').split('\n')[0]!) as { start: string };
    const p = ffprobe(whole);
    const direct = join(pki.work, 'direct.mp4');
    writeFileSync(direct, cat(rec, ['init.mp4', ...segments(rec)]));
    const q = ffprobe(direct);
    expect(p).toMatchObject({ codec_name: 'h264', width: 320, height: 240, pix_fmt: 'yuv420p', nb_read_frames: '100' });
    for (const k of ['codec_name', 'profile', 'width', 'height', 'pix_fmt', 'nb_read_frames', 'r_frame_rate']) expect(p[k], k).toEqual(q[k]);
    // the start time: mvhd creation_time, to the second (the recording's own init segment has none)
    expect(p['tags.creation_time']).toBe(`${session.start.slice(0, 19)}.000000Z`);
    expect(q['tags.creation_time']).toBeUndefined();
    const exported = await frameMd5s(whole);
    expect(exported).toHaveLength(100);
    expect(exported).toEqual(await frameMd5s(direct));
    // signed media kept as signed: every fragment file is in the export byte for byte, SEIs included
    const bytes = readFileSync(whole);
    let at = 0;
    for (const s of segments(rec)) {
      const seg = readFileSync(join(rec, s));
      const found = bytes.indexOf(seg, at);
      expect(found, s).toBeGreaterThanOrEqual(at);
      if (at > 0) expect(found, `${s} follows the fragment before it`).toBe(at);
      at = found + seg.length;
    }
    expect(bytes.subarray(0, 8).toString('latin1', 4, 8)).toBe('ftyp');
  });

  it('verify: AUTHENTIC (exit 0) with the exporter, the reason, the start time and the signed video named', async () => {
    const v = await runCli(verifyArgs(whole));
    expect(v.stderr).toBe('');
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toMatch(/^verdict: AUTHENTIC\ninput: onvif-export\n/);
    expect(v.stdout).toContain('ONVIF export file (sealed MP4): AUTHENTIC');
    expect(v.stdout).toContain("seal 1 (the exporter's): valid, ecdsa-with-SHA256, by CN=WS-INVESTIGATOR, O=Acme Cameras: trusted");
    expect(v.stdout).toContain('user information: case 7: burglary');
    expect(v.stdout).toContain('fragment records (checked without any key): AUTHENTIC');
    expect(v.stdout).toContain('video (signed SEIs): AUTHENTIC');
    expect(v.stdout).toMatch(/authentic {2}0\.000 s – 4\.000 s {2}frames 0–99/);
    const session = JSON.parse(readFileSync(join(rec, 'records.jsonl'), 'utf8').split('\n')[0]!) as { start: string };
    expect(v.stdout).toContain(`capture start (cstb): ${session.start}`);
    // without the operator CA, the exporter is not trusted: not AUTHENTIC
    const u = await runCli(['verify', whole, '--root', pki.rootPath]);
    expect(u.code).toBe(1);
    expect(u.stdout).toMatch(/^verdict: UNTRUSTED_SIGNER/);
    expect(u.stdout).toContain('no exporter root given (--exporter-root)');
  });

  it('the seal is what the specification defines: ECDSA (sigC ecdsa-with-SHA256) over every byte, its signature zero', () => {
    const bytes = readFileSync(whole);
    const { parsed } = metaOf(bytes);
    expect(parsed.problems).toEqual([]);
    expect(parsed.seals).toHaveLength(1);
    expect(parsed.seals[0]!.schemeType).toBe('oeff');
    expect(Buffer.from(parsed.seals[0]!.algorithm!).toString('hex')).toBe('300a06082a8648ce3d040302');
    const { data, signature, cert } = specSealInput(bytes, 0);
    expect(data.length).toBe(bytes.length);
    expect(cert.subject).toContain('CN=WS-INVESTIGATOR');
    expect(cryptoVerify('sha256', data, cert.publicKey, signature)).toBe(true);
    expect(cryptoVerify('sha256', flip(data, 100), cert.publicKey, signature)).toBe(false);
  });

  it('an RSA exporter seals with the default: RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 20, and no sigC', async () => {
    const out = join(pki.work, 'rsa.mp4');
    const e = await runCli(['export', rec, '--format', 'onvif', '--out', out, '--exporter', rsaExporter, '--reason', 'r']);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toContain('RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 20)');
    const bytes = readFileSync(out);
    const { parsed } = metaOf(bytes);
    expect(parsed.seals[0]!.algorithm).toBeUndefined();
    const { data, signature, cert } = specSealInput(bytes, 0);
    const key = createPublicKey(cert.publicKey.export({ format: 'pem', type: 'spki' }));
    expect(signature.length).toBe(256);
    expect(cryptoVerify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 20 }, signature)).toBe(true);
    expect(cryptoVerify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature)).toBe(false);
    const v = await runCli(verifyArgs(out));
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toContain('valid, RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 20), the default, by CN=WS-RSA');
  });

  it('a time range: whole GOPs, the same decoded frames as those fragments of the recording, verified as a range', async () => {
    const records = readFileSync(join(rec, 'records.jsonl'), 'utf8').split('\n');
    const start = Date.parse((JSON.parse(records[0]!) as { start: string }).start);
    const out = join(pki.work, 'range.mp4');
    const e = await runCli(['export', rec, '--format', 'onvif', '--out', out, '--exporter', exporter, '--reason', 'r', '--from', new Date(start + 1500).toISOString(), '--to', new Date(start + 2500).toISOString()]);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toContain('(fragments 1–2)');
    expect(e.stdout).toContain('note: the requested start is 0.500 s into a GOP');
    const part = join(pki.work, 'range-direct.mp4');
    writeFileSync(part, cat(rec, ['init.mp4', '000001.m4s', '000002.m4s']));
    const frames = await frameMd5s(out);
    expect(frames).toHaveLength(50);
    expect(frames).toEqual(await frameMd5s(part));
    expect(ffprobe(out)['nb_read_frames']).toBe('50');
    const v = await runCli(verifyArgs(out));
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toContain('exported: ');
    expect(v.stdout).toContain('(fragments 1–2)');
    expect(v.stdout).toContain('4 records, 2 authentic');
  });

  it('an encrypted recording: exported as stored; its records verify without the key, the video with it; ffmpeg decrypts it to the recording\'s frames', async () => {
    const out = join(pki.work, 'enc.mp4');
    const e = await runCli(['export', encRec, '--format', 'onvif', '--out', out, '--exporter', exporter, '--reason', 'r']);
    expect(e.code, e.stderr).toBe(0);
    const noKey = await runCli(verifyArgs(out));
    expect(noKey.code, noKey.stdout).toBe(0);
    expect(noKey.stdout).toContain('video (signed SEIs): not checked: the video is encrypted and no key was given (--key)');
    const withKey = await runCli(verifyArgs(out, '--key', KEY));
    expect(withKey.code, withKey.stdout).toBe(0);
    expect(withKey.stdout).toContain('video (signed SEIs): AUTHENTIC');
    const direct = join(pki.work, 'enc-direct.mp4');
    writeFileSync(direct, cat(encRec, ['init.mp4', ...segments(encRec)]));
    // ffmpeg reads CENC in fragmented MP4 from a pipe (as test/packager/interop.test.ts does)
    const frames = await frameMd5s(out, { key: KEY, pipe: true });
    expect(frames).toHaveLength(75);
    expect(frames).toEqual(await frameMd5s(direct, { key: KEY, pipe: true }));
    // decrypted, not garbled: the same pictures as the clear recording of the same looped source
    expect(frames).toEqual((await frameMd5s(whole)).slice(0, 75));
  });
});

describe('a tampered ONVIF export is refused, the reason named', () => {
  it('a flipped byte in mdat: the seal and the fragment record both name it', async () => {
    const bytes = readFileSync(whole);
    const mdat = mp4Boxes(bytes).filter((b) => b.type === 'mdat')[1]!;
    const v = await verdictOf(flip(bytes, mdat.start + mdat.size - 40), 't-mdat.mp4');
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/^verdict: NOT_AUTHENTIC/);
    expect(v.stdout).toContain("problem: the exporter's seal does not match the file: the file was altered after it was sealed");
    expect(v.stdout).toMatch(/tampered\s+1\.000 s – 2\.000 s {2}fragment 1 \(1–2 s\): stored bytes differ from what the camera signed/);
  });

  it('a flipped byte in the seal (sibo)', async () => {
    const bytes = readFileSync(whole);
    const v = await verdictOf(flip(bytes, bytes.length - 5), 't-sibo.mp4');
    expect(v.code).toBe(1);
    expect(v.stdout).toContain("seal 1 (the exporter's): INVALID");
    expect(v.stdout).toContain("problem: the exporter's seal does not match the file");
    // the media is untouched: the camera's layers still pass, the verdict is the worst
    expect(v.stdout).toContain('fragment records (checked without any key): AUTHENTIC');
  });

  it('a removed sinf: not sealed', async () => {
    const v = await verdictOf(rewrite(readFileSync(whole), ['meta', 'ipro', 'sinf'], () => null), 't-nosinf.mp4');
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/^verdict: NOT_AUTHENTIC/);
    expect(v.stdout).toContain("problem: no ProtectionSchemeInfoBox ('sinf') in 'ipro': the file is not sealed");
  });

  it('a swapped certificate (another exporter of the same CA): the seal does not match it', async () => {
    const other = (await openOperatorIdentity(registry, 'exporter')).chain[0]!;
    const der = Buffer.from(other.rawData);
    const v = await verdictOf(rewrite(readFileSync(whole), ['meta', 'ipro', 'sinf', 'schi', 'cert'], (b) => {
      const out = Buffer.concat([b.subarray(0, 8), der]);
      out.writeUInt32BE(out.length, 0);
      return out;
    }), 't-cert.mp4');
    expect(v.code).toBe(1);
    expect(v.stdout).toContain("seal 1 (the exporter's): INVALID, ecdsa-with-SHA256, by CN=COURT-REGISTRY");
    expect(v.stdout).toContain("problem: the exporter's seal does not match the file");
  });

  it('a re-sealed copy by a look-alike CA (same names, other keys): UNTRUSTED_SIGNER', async () => {
    const out = join(pki.work, 'evil.mp4');
    const e = await runCli(['export', rec, '--format', 'onvif', '--out', out, '--exporter', evilExporter, '--reason', 'case 7: burglary']);
    expect(e.code, e.stderr).toBe(0);
    const v = await runCli(verifyArgs(out));
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/^verdict: UNTRUSTED_SIGNER/);
    expect(v.stdout).toMatch(/seal 1 \(the exporter's\): valid, .* by CN=WS-INVESTIGATOR, O=Acme Cameras: untrusted/);
  });

  it('a box appended after the sealed meta: named as outside every seal', async () => {
    const free = Buffer.alloc(16);
    free.writeUInt32BE(16, 0);
    free.write('free', 4, 'latin1');
    const v = await verdictOf(Buffer.concat([readFileSync(whole), free]), 't-after.mp4');
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/problem: box 'free' after the file-level 'meta' at \d+: no seal covers it/);
  });
});

describe('repeated signing (keyframe seal)', () => {
  it('adds a second seal over the file and the first; both verify; each tampering names its seal', async () => {
    const twice = join(pki.work, 'twice.mp4');
    const s = await runCli(['seal', whole, '--out', twice, '--exporter', registry, '--note', 'received by the court registry, case 7']);
    expect(s.stderr).toBe('');
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/^added seal 2 by CN=COURT-REGISTRY, O=Acme Cameras/);
    const bytes = readFileSync(twice);
    const { parsed } = metaOf(bytes);
    expect(parsed.protectionCount).toBe(1);
    expect(parsed.seals).toHaveLength(2);
    // both, checked the specification's way
    for (const k of [0, 1]) {
      const { data, signature, cert } = specSealInput(bytes, k);
      expect(cryptoVerify('sha256', data, cert.publicKey, signature), `seal ${k + 1}`).toBe(true);
    }
    // the first seal's bytes are those of the export before the second was added
    expect(specSealInput(bytes, 0).data.equals(specSealInput(readFileSync(whole), 0).data)).toBe(true);
    const v = await runCli(verifyArgs(twice));
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toContain("seal 1 (the exporter's): valid");
    expect(v.stdout).toContain('seal 2 (repeated signing): valid, ecdsa-with-SHA256, by CN=COURT-REGISTRY, O=Acme Cameras: trusted');
    expect(v.stdout).toContain('user information: received by the court registry, case 7');

    // the second seal's signature altered: the first still holds, the second is named
    const bad2 = await verdictOf(flip(bytes, bytes.length - 3), 't-seal2.mp4');
    expect(bad2.code).toBe(1);
    expect(bad2.stdout).toContain("seal 1 (the exporter's): valid");
    expect(bad2.stdout).toContain('seal 2 (repeated signing): INVALID');
    expect(bad2.stdout).toContain('problem: seal 2 (repeated signing by CN=COURT-REGISTRY, O=Acme Cameras) does not match the file');
    // the first seal's signature altered: both fail (the second covers the first)
    const first = metaOf(bytes);
    const at = first.offset + first.parsed.seals[0]!.signature!.offset + 10;
    const bad1 = await verdictOf(flip(bytes, at), 't-seal1.mp4');
    expect(bad1.stdout).toContain("seal 1 (the exporter's): INVALID");
    expect(bad1.stdout).toContain('seal 2 (repeated signing): INVALID');
    // a third seal on top keeps both
    const thrice = join(pki.work, 'thrice.mp4');
    expect((await runCli(['seal', twice, '--out', thrice, '--exporter', rsaExporter])).code).toBe(0);
    const v3 = await runCli(verifyArgs(thrice));
    expect(v3.code, v3.stdout).toBe(0);
    expect(v3.stdout).toContain('seal 3 (repeated signing): valid, RSASSA-PSS');
  });

  it('refuses a file that is not a sealed export, one line, exit 2', async () => {
    const r = await runCli(['seal', join(rec, 'init.mp4'), '--out', join(pki.work, 'x.mp4'), '--exporter', registry]);
    expectOneLineError(r, 2, /has no file-level 'meta' box: not an ONVIF export file/);
    expect(existsSync(join(pki.work, 'x.mp4'))).toBe(false);
  });
});

describe('output safety', () => {
  it('never overwrites without --force; --force replaces; no temporary left; a missing directory is exit 2 naming the path', async () => {
    const out = join(pki.work, 'safe.mp4');
    writeFileSync(out, 'precious');
    const r = await runCli(['export', rec, '--format', 'onvif', '--out', out, '--exporter', exporter, '--reason', 'r']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(out);
    expect(readFileSync(out, 'utf8')).toBe('precious');
    const f = await runCli(['export', rec, '--format', 'onvif', '--out', out, '--exporter', exporter, '--reason', 'r', '--force']);
    expect(f.code, f.stderr).toBe(0);
    expect(readFileSync(out).toString('latin1', 4, 8)).toBe('ftyp');
    expect(readdirSync(pki.work).filter((n) => n.includes('.tmp'))).toEqual([]);
    const missing = await runCli(['export', rec, '--format', 'onvif', '--out', join(pki.work, 'nope', 'x.mp4'), '--exporter', exporter, '--reason', 'r']);
    expectOneLineError(missing, 2, /nope/);
    const fmt = await runCli(['export', rec, '--format', 'avi', '--out', join(pki.work, 'y.mp4'), '--exporter', exporter, '--reason', 'r']);
    expectOneLineError(fmt, 2, /--format must be bundle or onvif/);
  });

  it('a seal that cannot be made (the key store closed) leaves nothing behind', async () => {
    const id = await openOperatorIdentity(exporter, 'exporter');
    await id.close();
    const out = join(pki.work, 'failed.mp4');
    await expect(exportOnvif({ recording: rec, out, exporter: id, reason: 'r' })).rejects.toThrow();
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(pki.work).filter((n) => n.startsWith('failed'))).toEqual([]);
  });

  it('ffmpeg can remux the export (-c copy) and the signed video in it still verifies', async () => {
    const remux = join(pki.work, 'remux.mp4');
    await ffmpeg(['-y', '-i', whole, '-c', 'copy', '-map', '0:v', remux]);
    const v = await runCli(['verify', remux, '--root', pki.rootPath]);
    expect(v.stdout).toContain('video (signed SEIs): AUTHENTIC');
    expect(v.code, v.stdout).toBe(0);
  });
});

describe('an ONVIF export written by another exporter (no keyframe evidence boxes)', () => {
  /**
   * A plain MP4 (ffmpeg -c copy of a signed Annex-B stream: moov after mdat, no fragments) with a file-level meta
   * appended and sealed here, the specification's way (RSASSA-PSS salt 20 over the file with sibo zero), by the RSA
   * exporter's key: keyframe's verifier checks the seal and the signed SEIs in the file's samples.
   */
  async function foreignExport(name: string): Promise<{ path: string; bytes: Buffer; plain: Buffer }> {
    const source = await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25 });
    const signed = join(pki.work, `${name}.h264`);
    const s = await runCli(['sign', source, '--device', cam, '--out', signed]);
    expect(s.code, s.stderr).toBe(0);
    const mp4 = join(pki.work, `${name}.plain.mp4`);
    await ffmpeg(['-y', '-r', '25', '-i', signed, '-c', 'copy', mp4]);
    const body = readFileSync(mp4);
    const id = await openOperatorIdentity(rsaExporter, 'exporter');
    try {
      const { meta, signatureOffset } = buildExportMeta(
        { unitName: 'Other VMS 9.1', unitUrl: 'https://vms.example/', unitMac: '08-00-27-00-0C-15', exportTime: seconds1904(Date.now() - 60_000), operator: 'operator 12', sources: [{ trackId: 1, name: 'Entrance', url: '', mac: '', line: '1' }] },
        { certificate: new Uint8Array(id.chain[0]!.rawData), startTimes: [{ trackId: 1, startTime: ticksFromMs(Date.now() - 120_000) }], signatureLength: 256 },
      );
      const unsigned = Buffer.concat([body, meta]);
      const signature = await id.signStream((async function* () { yield unsigned; })(), { rsaPadding: 'pss', pssSaltLength: 20 });
      const bytes = Buffer.from(unsigned);
      signature.copy(bytes, body.length + signatureOffset);
      const path = join(pki.work, `${name}.mp4`);
      writeFileSync(path, bytes);
      return { path, bytes, plain: body };
    } finally {
      await id.close();
    }
  }

  it('the seal and the signed video are checked; the records layer is absent, not failed', async () => {
    const { path, bytes } = await foreignExport('foreign');
    expect(mp4Boxes(bytes).map((b) => b.type).filter((t) => t !== 'free')).toEqual(['ftyp', 'mdat', 'moov', 'meta']);
    const v = await runCli(verifyArgs(path));
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toContain("seal 1 (the exporter's): valid, RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 20), the default, by CN=WS-RSA");
    expect(v.stdout).toContain('exporting unit: Other VMS 9.1, operator operator 12; track 1: Entrance\n');
    expect(v.stdout).not.toContain('fragment records');
    expect(v.stdout).toContain('video (signed SEIs): AUTHENTIC');
    // a flipped byte in the samples: the seal and the SEI layer both catch it
    const mdat = mp4Boxes(bytes).find((b) => b.type === 'mdat')!;
    const bad = await verdictOf(flip(bytes, mdat.start + Math.floor(mdat.size / 2)), 'foreign-bad.mp4');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("problem: the exporter's seal does not match the file");
    expect(bad.stdout).toMatch(/video \(signed SEIs\): NOT_AUTHENTIC/);
  });
});

describe('an ordinary MP4 with a top-level meta of another kind', () => {
  it('stays an ordinary MP4: its signed video is verified, no seal is asked for', async () => {
    const source = await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25 });
    const signed = join(pki.work, 'itunes.h264');
    expect((await runCli(['sign', source, '--device', cam, '--out', signed])).code).toBe(0);
    const mp4 = join(pki.work, 'itunes.plain.mp4');
    await ffmpeg(['-y', '-r', '25', '-i', signed, '-c', 'copy', mp4]);
    // meta (FullBox) { hdlr 'mdir' }: iTunes-style metadata some writers put at the top level
    const hdlr = Buffer.alloc(33);
    hdlr.writeUInt32BE(33, 0);
    hdlr.write('hdlr', 4, 'latin1');
    hdlr.write('mdir', 16, 'latin1');
    const meta = Buffer.concat([Buffer.alloc(12), hdlr]);
    meta.writeUInt32BE(meta.length, 0);
    meta.write('meta', 4, 'latin1');
    const path = join(pki.work, 'itunes.mp4');
    writeFileSync(path, Buffer.concat([readFileSync(mp4), meta]));
    const v = await runCli(['verify', path, '--root', pki.rootPath]);
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toMatch(/^verdict: AUTHENTIC\ninput: mp4\n/);
  });
});

describe('unusable input', () => {
  it('an export cut short (an interrupted copy) is exit 2, one line naming the path', async () => {
    const bytes = readFileSync(whole);
    const path = join(pki.work, 'cut.mp4');
    writeFileSync(path, bytes.subarray(0, bytes.length - 100)); // inside the sealed meta box
    const r = await runCli(verifyArgs(path));
    expectOneLineError(r, 2, new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: box 'meta' at \\d+ has size \\d+: beyond the end of the file`));
  });
});

describe('the export time, by the bundle rules', () => {
  it('an export time claimed in the future is NOT_AUTHENTIC', async () => {
    const id = await openOperatorIdentity(exporter, 'exporter');
    const out = join(pki.work, 'future.mp4');
    try {
      await exportOnvif({ recording: rec, out, exporter: id, reason: 'r', now: new Date(Date.now() + 3600_000) });
    } finally {
      await id.close();
    }
    const v = await runCli(verifyArgs(out));
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/^verdict: NOT_AUTHENTIC/);
    expect(v.stdout).toMatch(/problem: the export \(suep ExportUnitTime\) claims \S+, after the verification time \S+ plus the allowed skew of 300 s/);
    // accepted when the verification time is later (the claim is checked, not the file)
    const later = await runCli(verifyArgs(out, '--max-skew', '7200'));
    expect(later.code, later.stdout).toBe(0);
  });

  it('an exporter revoked as compromised after the export: UNPROVEN_TIME, since the file cannot carry a time-stamp', async () => {
    const dir = await pki.identity('exporter', 'WS-LATER-COMPROMISED');
    const out = join(pki.work, 'compromised.mp4');
    expect((await runCli(['export', rec, '--format', 'onvif', '--out', out, '--exporter', dir, '--reason', 'r'])).code).toBe(0);
    const id = await openOperatorIdentity(dir, 'exporter');
    const serial = id.chain[0]!.serialNumber;
    await id.close();
    // the export time (suep) and CRL revocation times are whole seconds, and a revocation in the export's own second
    // counts as before it (fail closed): revoke in a later second, as "after the export" means
    const exportedSecond = Math.floor(statSync(out).mtimeMs / 1000);
    while (Math.floor(Date.now() / 1000) <= exportedSecond) await new Promise((r) => setTimeout(r, 50));
    const revoked = await runCli(['ca', 'revoke', '--ca', pki.caDir, '--cert-serial', serial, '--reason', 'keyCompromise']);
    expect(revoked.code, revoked.stderr).toBe(0);
    const crl = join(pki.work, 'crl-compromised.pem');
    expect((await runCli(['ca', 'crl', '--ca', pki.caDir, '--out', crl])).code).toBe(0);
    const v = await runCli(verifyArgs(out, '--crl', crl));
    expect(v.code).toBe(1);
    expect(v.stdout).toContain('ONVIF export file (sealed MP4): UNPROVEN_TIME');
    expect(v.stdout).toMatch(/UNPROVEN: "CN=WS-LATER-COMPROMISED, O=Acme Cameras" was revoked at \S+ \(keyCompromise\)/);
    // the same file without the CRL: revocation not checked, AUTHENTIC
    expect((await runCli(verifyArgs(out))).code).toBe(0);
  });
});
