/**
 * The ustar reader of evidence bundles (src/recording/tar.ts) on archives built in memory: what follows the
 * end-of-archive blocks is reported — the members `tar -i` would read there, other data, more zeros than tar pads
 * with — and padding is not; bounds on members and sizes; names and types refused with a message naming them.
 * The same tricks through the real CLI, next to GNU tar, are in test/cli/verify-robustness.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { MediaError } from '../../src/errors.js';
import { LineSplitter } from '../../src/recording/lines.js';
import { MAX_FRAGMENT_BYTES, MAX_RECORDS_BYTES, MAX_SMALL_FILE_BYTES, formatBytes, limitFor, oversize } from '../../src/recording/limits.js';
import { MANIFEST_FILE, SIGNATURE_FILE, EXPORTER_FILE, SESSION_SEI_FILE } from '../../src/recording/bundle.js';
import { indexTar, nameProblem, tarHeader, type TarIndex } from '../../src/recording/tar.js';

const BLOCK = 512;

function member(name: string, data: Uint8Array | string): Buffer {
  const bytes = Buffer.from(data);
  return Buffer.concat([tarHeader(name, bytes.length, 0), bytes, Buffer.alloc((BLOCK - (bytes.length % BLOCK)) % BLOCK)]);
}

const END = Buffer.alloc(2 * BLOCK);

function index(archive: Buffer, options: Parameters<typeof indexTar>[2] = {}): Promise<TarIndex> {
  return indexTar(async (offset, length) => Uint8Array.from(archive.subarray(offset, offset + length)), archive.length, options);
}

/** A header with any name, type and link name, its checksum right: what another tar, or an attacker, writes. */
function rawHeader(name: string, type: string, size = 0, linkname = ''): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'latin1');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write(linkname, 157, 100, 'latin1');
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

const bundle = Buffer.concat([member('manifest.json', '{}'), member('recording/000000.m4s', 'fragment zero')]);

describe('what follows the end of a tar archive', () => {
  it('the two end blocks, and zero padding up to the record size tar writes: nothing to report', async () => {
    const plain = await index(Buffer.concat([bundle, END]));
    expect(plain.entries.map((e) => e.name)).toEqual(['manifest.json', 'recording/000000.m4s']);
    expect(plain.trailer).toBeUndefined();
    // GNU tar pads to a multiple of 10240 bytes (-b 20)
    const padded = Buffer.concat([bundle, END]);
    const gnu = Buffer.concat([padded, Buffer.alloc(10240 - (padded.length % 10240))]);
    expect((await index(gnu)).trailer).toBeUndefined();
  });

  it('a second archive appended after the end blocks: its members, which `tar -i` reads, are reported', async () => {
    const forged = Buffer.concat([member('recording/000001.m4s', 'forged fragment'), END]);
    const r = await index(Buffer.concat([bundle, END, forged]));
    expect(r.entries.map((e) => e.name)).toEqual(['manifest.json', 'recording/000000.m4s']);
    expect(r.trailer).toMatchObject({ end: bundle.length, firstData: bundle.length + 2 * BLOCK, members: [{ name: 'recording/000001.m4s', size: 15, offset: bundle.length + 3 * BLOCK }] });
  });

  it('a lone zero block followed by a member (GNU tar warns and stops): reported', async () => {
    const r = await index(Buffer.concat([bundle, Buffer.alloc(BLOCK), member('recording/000001.m4s', 'x'), END]));
    expect(r.trailer?.members.map((m) => m.name)).toEqual(['recording/000001.m4s']);
    expect(r.trailer?.firstData).toBe(bundle.length + BLOCK);
  });

  it('bytes that are not tar headers after the end, and more zeros than tar pads with: reported', async () => {
    const junk = await index(Buffer.concat([bundle, END, Buffer.alloc(3000), Buffer.from('hidden words'), Buffer.alloc(500)]));
    expect(junk.trailer).toMatchObject({ firstData: bundle.length + 2 * BLOCK + 5 * BLOCK, members: [] });
    const zeros = await index(Buffer.concat([bundle, END, Buffer.alloc(3 * BLOCK)]), { maxPadding: 2 * BLOCK });
    expect(zeros.trailer).toMatchObject({ end: bundle.length, length: 5 * BLOCK, members: [] });
    expect(zeros.trailer?.firstData).toBeUndefined();
    // a tail shorter than a block counts too
    expect((await index(Buffer.concat([bundle, END, Buffer.from('xy')]))).trailer?.firstData).toBe(bundle.length + 2 * BLOCK);
  });

  it('the scan for hidden members stops at its bound; the trailer is reported all the same', async () => {
    const far = Buffer.concat([bundle, END, Buffer.alloc(8 * BLOCK), member('recording/000001.m4s', 'x'), END]);
    const r = await index(far, { trailerScan: 4 * BLOCK, maxPadding: 2 * BLOCK });
    expect(r.trailer).toMatchObject({ members: [], scanned: 5 * BLOCK });
    expect(r.trailer?.firstData).toBeUndefined();
    expect((await index(far, { maxPadding: 2 * BLOCK })).trailer?.members.map((m) => m.name)).toEqual(['recording/000001.m4s']);
    // zeros are accepted as padding only where they were seen: the scan always covers the padding allowance
    expect((await index(far, { trailerScan: 4 * BLOCK, maxPadding: 16 * BLOCK })).trailer?.members.map((m) => m.name)).toEqual(['recording/000001.m4s']);
  });
});

describe('what the index refuses', () => {
  const refused = async (archive: Buffer, pattern: RegExp, options: Parameters<typeof indexTar>[2] = {}): Promise<void> => {
    const e = await index(archive, options).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(MediaError);
    expect((e as Error).message).toMatch(pattern);
  };

  it('repeated names, absolute names, names with .., links, devices, directories, pax and GNU headers', async () => {
    await refused(Buffer.concat([bundle, member('recording/000000.m4s', 'again'), END]), /tar member "recording\/000000\.m4s" appears twice: extracting the archive would replace the first by the second/);
    await refused(Buffer.concat([bundle, rawHeader('/etc/cron.d/x', '0'), END]), /member name "\/etc\/cron\.d\/x" is absolute/);
    await refused(Buffer.concat([bundle, rawHeader('recording/../../x', '0'), END]), /member name "recording\/\.\.\/\.\.\/x" climbs out of the archive/);
    await refused(Buffer.concat([bundle, rawHeader('recording/000001.m4s', '2', 0, '/etc/passwd'), END]), /member "recording\/000001\.m4s" is a symbolic link \(to "\/etc\/passwd"\): a bundle holds regular files only/);
    await refused(Buffer.concat([bundle, rawHeader('recording/000001.m4s', '1', 0, 'recording/000000.m4s'), END]), /is a hard link \(to "recording\/000000\.m4s"\)/);
    await refused(Buffer.concat([bundle, rawHeader('recording/000001.m4s', '3'), END]), /is a character device/);
    await refused(Buffer.concat([bundle, rawHeader('recording', '5'), END]), /member "recording" is a directory/);
    await refused(Buffer.concat([bundle, rawHeader('PaxHeaders/x', 'x', 0), END]), /is a pax extended header: long names and extended attributes are not accepted/);
  });

  it('a bad checksum and a member running past the end', async () => {
    const bad = Buffer.concat([bundle, END]);
    bad[5] = 0x41; // the first header's name, checksum unchanged
    await refused(bad, /tar header at 0: checksum mismatch/);
    await refused(Buffer.concat([bundle, rawHeader('recording/000001.m4s', '0', 100_000), Buffer.alloc(BLOCK), END]), /"recording\/000001\.m4s" \(100000 bytes\) runs past the end of the archive/);
  });

  it('more members than allowed, and members larger than their bound', async () => {
    await refused(Buffer.concat([bundle, END]), /more than 1 members/, { maxEntries: 1 });
    await expect(index(Buffer.concat([bundle, END]), { maxEntries: 2 })).resolves.toMatchObject({ entries: [{}, {}] });
    await refused(Buffer.concat([bundle, rawHeader('recording/000001.m4s', '0', 3 * 2 ** 30), END]), /recording\/000001\.m4s is 3 GiB: larger than the 256 MiB a fragment may be/, { sizeProblem: oversize });
  });

  it('names keyframe writes and reads: short, relative, plain', () => {
    expect(nameProblem('recording/000001.m4s')).toBeUndefined();
    expect(nameProblem('')).toMatch(/empty/);
    expect(nameProblem('./x')).toMatch(/not a plain relative path/);
    expect(nameProblem('a//b')).toMatch(/not a plain relative path/);
    expect(nameProblem('x'.repeat(100))).toMatch(/longer than 99/);
    expect(() => tarHeader('../x', 1, 0)).toThrow(/climbs out of the archive/);
  });
});

describe('bounds', () => {
  it('every file of a recording or bundle has a bound by its name', () => {
    expect(limitFor('000003.m4s').bytes).toBe(MAX_FRAGMENT_BYTES);
    expect(limitFor('recording/000003.m4s').bytes).toBe(MAX_FRAGMENT_BYTES);
    expect(limitFor('recording/records.jsonl').bytes).toBe(MAX_RECORDS_BYTES);
    for (const n of [EXPORTER_FILE, SIGNATURE_FILE, `recording/${SESSION_SEI_FILE}`, 'recording/chain.pem', 'recording/init.mp4', 'recording/recording.json']) expect(limitFor(n).bytes).toBe(MAX_SMALL_FILE_BYTES);
    expect(limitFor(MANIFEST_FILE).what).toBe('a bundle manifest');
    expect(oversize('000003.m4s', MAX_FRAGMENT_BYTES)).toBeUndefined();
    expect(oversize('000003.m4s', MAX_FRAGMENT_BYTES + 1)).toBe('000003.m4s is 256.0 MiB: larger than the 256 MiB a fragment may be');
    expect([formatBytes(3 * 2 ** 30), formatBytes(1536), formatBytes(10)]).toEqual(['3 GiB', '1.5 KiB', '10 bytes']);
  });

  it('lines: a line longer than the bound is not kept, only its length; chunk boundaries do not matter', () => {
    const s = new LineSplitter(8);
    const text = Buffer.from('short\n123456789 too long\nnäh\nlast');
    const lines = [];
    for (let i = 0; i < text.length; i += 3) lines.push(...s.push(text.subarray(i, i + 3)));
    lines.push(...s.flush());
    expect(lines).toEqual([
      { lineNo: 1, text: 'short' },
      { lineNo: 2, tooLong: 18 },
      { lineNo: 3, text: 'näh' },
      { lineNo: 4, text: 'last' },
    ]);
  });
});
