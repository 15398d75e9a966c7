/**
 * Proves the headless-Chromium playback harness (test/helpers/browser.ts): MSE playback of ffmpeg's clear fragmented
 * MP4 with pixel readback checked against ffmpeg's own decode, the ClearKey key-system probe, failure surfacing on
 * corrupt input, and EME ClearKey playback of CENC (`cenc`, `cbcs`) content made by a small reference encryptor
 * below (ffmpeg 5.1 cannot write fragmented CENC).
 *
 * The project's packager output goes through the same `checkEncryptedPlayback` in
 * test/browser/packager-playback.test.ts; the reference encryptor here proves the harness independently of it.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  checkEncryptedPlayback,
  encryptionScheme,
  frameDiff,
  mp4Boxes,
  mp4VideoMime,
  playInChromium,
  referenceFrame,
  splitFragmentedMp4,
  type PlayResult,
} from '../helpers/browser.js';
import { clip } from '../helpers/media.js';

const KID = '0123456789abcdef0123456789abcdef';
const KEY = '00112233445566778899aabbccddeeff';

let clearClip: string;
let init: Uint8Array;
let fragments: Uint8Array[];
let mime: string;

beforeAll(async () => {
  clearClip = await clip({ width: 1280, height: 720, seconds: 5, gop: 30, format: 'fmp4' });
  ({ init, fragments } = splitFragmentedMp4(new Uint8Array(readFileSync(clearClip))));
  mime = mp4VideoMime(init);
});

describe('box splitter', () => {
  it('splits ffmpeg fMP4 into ftyp+moov and one moof+mdat per GOP', () => {
    expect(mp4Boxes(init).map((b) => b.type)).toEqual(['ftyp', 'moov']);
    expect(fragments).toHaveLength(5);
    for (const f of fragments) expect(mp4Boxes(f).map((b) => b.type)).toEqual(['moof', 'mdat']);
    expect(mime).toMatch(/^video\/mp4; codecs="avc1\.[0-9a-f]{6}"$/);
    expect(encryptionScheme(init)).toBeNull();
  });

  it('reads a 64-bit largesize box header', () => {
    const big = new Uint8Array(24);
    const v = new DataView(big.buffer);
    v.setUint32(0, 1);
    big.set([0x66, 0x72, 0x65, 0x65], 4); // 'free'
    v.setBigUint64(8, 24n);
    expect(mp4Boxes(big)).toEqual([{ type: 'free', start: 0, size: 24, header: 16 }]);
  });
});

describe('clear fMP4 through MSE in headless Chromium', () => {
  let result: PlayResult;
  beforeAll(async () => {
    result = await playInChromium({ init, fragments, mime, playSeconds: 3, captureAt: [2.0] });
    console.log('clear playback timings (ms):', result.timings);
  });

  it('plays past 3 s with no errors', () => {
    expect(result.errors).toEqual([]);
    expect(result.reachedTime).toBeGreaterThan(3);
  });

  it('reads back the frame at 2.0 s, matching ffmpeg decode; 0.5 s is a clearly different picture', async () => {
    const [frame] = result.frames;
    expect(frame?.readError).toBeUndefined();
    expect(frame).toMatchObject({ time: 2, width: 1280, height: 720 });
    const rgba = frame!.rgba!;
    expect(rgba).toHaveLength(1280 * 720 * 4);
    const same = frameDiff(rgba, await referenceFrame(clearClip, 2.0, 1280, 720));
    const other = frameDiff(rgba, await referenceFrame(clearClip, 0.5, 1280, 720));
    const nextFrame = frameDiff(rgba, await referenceFrame(clearClip, 2.0 + 1 / 30, 1280, 720));
    console.log(`frameDiff vs ffmpeg: t=2.0 ${same.toFixed(2)}, t=2.033 ${nextFrame.toFixed(2)}, t=0.5 ${other.toFixed(2)}`);
    expect(same).toBeLessThan(2.5);
    expect(other).toBeGreaterThan(5);
    expect(nextFrame).toBeGreaterThan(same * 3); // even one frame off is told apart
  });

  it('ClearKey grants both the cenc and the cbcs encryption scheme', () => {
    expect(result.keySystemAccess).toEqual({ cenc: true, cbcs: true });
  });
});

describe('failures are surfaced, not hung on', () => {
  it('a garbage fragment (a moof box full of noise) yields a SourceBuffer error', async () => {
    const garbage = noise(4096);
    new DataView(garbage.buffer).setUint32(0, garbage.length);
    garbage.set([0x6d, 0x6f, 0x6f, 0x66], 4); // 'moof'
    const r = await playInChromium({ init, fragments: [fragments[0]!, garbage], mime, playSeconds: 3, timeoutMs: 10_000 });
    console.log('garbage fragment:', r.errors, r.timings);
    expect(r.errors).toContain('SourceBuffer error event');
    expect(r.reachedTime).toBeLessThan(3);
  });

  it('raw noise (Chromium waits for the rest of a huge "box") still ends in an error, not a hang', async () => {
    const garbage = noise(4096);
    garbage.set([0x7f, 0xff, 0xff, 0xff], 0); // box size 2 GiB: the parser waits for more data
    const r = await playInChromium({ init, fragments: [fragments[0]!, garbage], mime, playSeconds: 3, timeoutMs: 10_000 });
    console.log('raw noise:', r.errors, r.timings);
    expect(r.errors.join('\n')).toMatch(/playback ended at 1\.0\d* s, before 3 s/);
    expect(r.reachedTime).toBeLessThan(3);
  });

  it('encrypted content played without keys times out with a "waiting for a key" diagnosis', async () => {
    const enc = encryptFragmentedMp4(init, fragments.slice(0, 2), 'cbcs', KID, KEY);
    const r = await playInChromium({ init: enc.init, fragments: enc.fragments, mime, playSeconds: 1, timeoutMs: 3_000 });
    expect(r.errors.join('\n')).toMatch(/timeout after 3000 ms.*waiting for a key/);
    expect(r.reachedTime).toBe(0);
  });
});

describe('EME ClearKey playback of CENC fMP4 (reference encryptor)', () => {
  for (const scheme of ['cenc', 'cbcs'] as const) {
    it(`plays ${scheme} with the right key and reads frames back; a wrong key does not give the picture`, async () => {
      const enc = encryptFragmentedMp4(init, fragments, scheme, KID, KEY);
      expect(encryptionScheme(enc.init)).toBe(scheme);
      const report = await checkEncryptedPlayback({
        clearClip,
        init: enc.init,
        fragments: enc.fragments,
        keys: { [KID]: KEY },
        scheme,
        playSeconds: 2.5,
        captureAt: [2.0],
      });
      const [frame] = report.result.frames;
      console.log(`${scheme}:`, JSON.stringify(report.summary), `\n  pixels from ${frame?.source}; canvas: ${frame?.canvasError ?? 'readable'}`);
    });
  }
});

// ---- reference CENC encryptor (test-only; a stand-in until the project's packager exists) -------------------------

interface Tree {
  type: string;
  /** Bytes after the header and before the children (whole payload for leaf boxes). */
  head: Uint8Array;
  children?: Tree[];
}

/** Containers, and how many payload bytes precede their child boxes. */
const CONTAINERS: Record<string, number> = { moov: 0, trak: 0, mdia: 0, minf: 0, stbl: 0, mvex: 0, edts: 0, dinf: 0, moof: 0, traf: 0, stsd: 8, avc1: 78 };

function parseTree(bytes: Uint8Array, from = 0, to = bytes.length): Tree[] {
  return mp4Boxes(bytes, from, to).map((b) => {
    const start = b.start + b.header;
    const end = b.start + b.size;
    const prefix = CONTAINERS[b.type];
    if (prefix === undefined) return { type: b.type, head: bytes.slice(start, end) };
    return { type: b.type, head: bytes.slice(start, start + prefix), children: parseTree(bytes, start + prefix, end) };
  });
}

function serialize(trees: Tree[]): Uint8Array {
  const parts = trees.map((t) => {
    const body = concat([t.head, ...(t.children !== undefined ? [serialize(t.children)] : [])]);
    const header = new Uint8Array(8);
    new DataView(header.buffer).setUint32(0, 8 + body.length);
    header.set(Buffer.from(t.type, 'latin1'), 4);
    return concat([header, body]);
  });
  return concat(parts);
}

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function child(t: Tree, type: string): Tree {
  const c = t.children?.find((x) => x.type === type);
  if (c === undefined) throw new Error(`no ${type} in ${t.type}`);
  return c;
}

function leaf(type: string, ...parts: Uint8Array[]): Tree {
  return { type, head: concat(parts) };
}

/** Deterministic noise (xorshift32). */
function noise(n: number, seed = 0x9e3779b9): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function u8(...v: number[]): Uint8Array {
  return Uint8Array.from(v);
}
function u16(v: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, v);
  return b;
}
function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v);
  return b;
}
const hex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const CLEARKEY_SYSTEM_ID = '1077efecc0b24d02ace33c1e52e2fb4b';
const CBCS_IV = hex('000102030405060708090a0b0c0d0e0f');

/**
 * Encrypts clear H.264 fMP4 (ffmpeg layout: one track, trun with data offsets and sizes, default-base-is-moof) into
 * CENC: encv/sinf/tenc + a ClearKey pssh (v1, KID list) in the init segment, senc/saiz/saio per fragment.
 * Subsamples: per VCL NAL, the 4-byte length and the NAL header clear, the rest protected; other NALs clear.
 * 'cenc': AES-128-CTR, 8-byte per-sample IVs, one keystream per sample. 'cbcs': AES-128-CBC, pattern 1:9, constant
 * IV in tenc, chain restarted at each subsample, trailing partial blocks clear.
 */
function encryptFragmentedMp4(clearInit: Uint8Array, clearFragments: Uint8Array[], scheme: 'cenc' | 'cbcs', kidHex: string, keyHex: string): { init: Uint8Array; fragments: Uint8Array[] } {
  const kid = hex(kidHex);
  const key = hex(keyHex);
  // init: avc1 → encv + sinf; pssh in moov
  const initTree = parseTree(clearInit);
  const moov = initTree.find((t) => t.type === 'moov')!;
  const stsd = child(child(child(child(child(moov, 'trak'), 'mdia'), 'minf'), 'stbl'), 'stsd');
  const entry = child(stsd, 'avc1');
  entry.type = 'encv';
  const tenc =
    scheme === 'cenc'
      ? leaf('tenc', u32(0), u8(0, 0, 1, 8), kid)
      : leaf('tenc', u32(0x01000000), u8(0, 0x19, 1, 0), kid, u8(16), CBCS_IV);
  entry.children!.push({
    type: 'sinf',
    head: new Uint8Array(0),
    children: [leaf('frma', Buffer.from('avc1', 'latin1')), leaf('schm', u32(0), Buffer.from(scheme, 'latin1'), u32(0x00010000)), { type: 'schi', head: new Uint8Array(0), children: [tenc] }],
  });
  moov.children!.push(leaf('pssh', u32(0x01000000), hex(CLEARKEY_SYSTEM_ID), u32(1), kid, u32(0)));
  const init = serialize(initTree);

  const fragments = clearFragments.map((frag) => {
    const bytes = frag.slice();
    const boxes = mp4Boxes(bytes);
    const moofBox = boxes.find((b) => b.type === 'moof')!;
    const tree = parseTree(bytes, moofBox.start, moofBox.start + moofBox.size);
    const traf = child(tree[0]!, 'traf');
    const trun = new DataView(child(traf, 'trun').head.buffer);
    const flags = trun.getUint32(0) & 0xffffff;
    if ((flags & 0x1) === 0 || (flags & 0x200) === 0) throw new Error('reference encryptor needs trun data offsets and sample sizes');
    const count = trun.getUint32(4);
    const dataOffset = trun.getInt32(8);
    let p = 12 + ((flags & 0x4) !== 0 ? 4 : 0);
    const perSample = [0x100, 0x200, 0x400, 0x800].filter((f) => (flags & f) !== 0).length * 4;
    const sizeAt = (flags & 0x100) !== 0 ? 4 : 0;
    const sencEntries: Uint8Array[] = [];
    let at = moofBox.start + dataOffset;
    for (let i = 0; i < count; i++, p += perSample) {
      const size = trun.getUint32(p + sizeAt);
      encryptSample(bytes.subarray(at, at + size), scheme, key, sencEntries);
      at += size;
    }
    traf.children!.push(
      leaf('saiz', u32(0), u8(0), u32(count), Uint8Array.from(sencEntries, (e) => e.length)),
      leaf('saio', u32(0), u32(1), u32(0)),
      leaf('senc', u32(0x2), u32(count), ...sencEntries),
    );
    const moof = serialize(tree);
    // patch trun data_offset (the moof grew) and saio (first senc entry, relative to the moof)
    const moofView = new DataView(moof.buffer, moof.byteOffset, moof.byteLength);
    const trafBox = mp4Boxes(moof, 8, moof.length).find((b) => b.type === 'traf')!;
    const inTraf = mp4Boxes(moof, trafBox.start + 8, trafBox.start + trafBox.size);
    const trunBox = inTraf.find((b) => b.type === 'trun')!;
    moofView.setInt32(trunBox.start + 16, dataOffset + moof.length - moofBox.size);
    const sencBox = inTraf.find((b) => b.type === 'senc')!;
    moofView.setUint32(inTraf.find((b) => b.type === 'saio')!.start + 16, sencBox.start + 16);
    return concat([bytes.subarray(0, moofBox.start), moof, bytes.subarray(moofBox.start + moofBox.size)]);
  });
  return { init, fragments };
}

/** Encrypts one AVC sample (4-byte NAL lengths) in place; appends its senc entry (IV, subsamples). */
function encryptSample(sample: Uint8Array, scheme: 'cenc' | 'cbcs', key: Uint8Array, sencEntries: Uint8Array[]): void {
  const pairs: [number, number][] = [];
  let clear = 0;
  for (let p = 0; p < sample.length; ) {
    const len = new DataView(sample.buffer, sample.byteOffset + p, 4).getUint32(0);
    const type = sample[p + 4]! & 0x1f;
    if (type >= 1 && type <= 5 && len > 1) {
      pairs.push([clear + 5, len - 1]);
      clear = 0;
    } else {
      clear += 4 + len;
    }
    p += 4 + len;
  }
  if (clear > 0 || pairs.length === 0) pairs.push([clear, 0]);
  if (pairs.some(([c]) => c > 0xffff)) throw new Error('reference encryptor: clear run above 65535 bytes');

  const iv = scheme === 'cenc' ? new Uint8Array(randomBytes(8)) : new Uint8Array(0);
  const ranges: [number, number][] = [];
  let p = 0;
  for (const [c, n] of pairs) {
    p += c;
    if (n > 0) ranges.push([p, p + n]);
    p += n;
  }
  if (scheme === 'cenc') {
    // one continuous keystream over all protected bytes of the sample
    const protectedBytes = concat(ranges.map(([a, b]) => sample.subarray(a, b)));
    const cipher = createCipheriv('aes-128-ctr', key, concat([iv, new Uint8Array(8)]));
    const out = concat([cipher.update(protectedBytes), cipher.final()]);
    let o = 0;
    for (const [a, b] of ranges) {
      sample.set(out.subarray(o, o + b - a), a);
      o += b - a;
    }
  } else {
    for (const [a, b] of ranges) {
      // pattern 1:9 over whole 16-byte blocks; the encrypted blocks form one CBC chain from the constant IV
      const blocks: number[] = [];
      for (let i = 0; a + (i + 1) * 16 <= b; i++) if (i % 10 === 0) blocks.push(a + i * 16);
      if (blocks.length === 0) continue;
      const cipher = createCipheriv('aes-128-cbc', key, CBCS_IV).setAutoPadding(false);
      const out = concat([cipher.update(concat(blocks.map((s) => sample.subarray(s, s + 16)))), cipher.final()]);
      blocks.forEach((s, i) => sample.set(out.subarray(i * 16, i * 16 + 16), s));
    }
  }
  sencEntries.push(concat([iv, u16(pairs.length), ...pairs.map(([c, n]) => concat([u16(c), u32(n)]))]));
}
