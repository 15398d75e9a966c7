/**
 * The write helpers services use every second (src/util/fs.ts): writevAll / writevAllSync (every byte, in order,
 * however the chunks are cut and however many there are: more than one writev takes), writeChunksDurable (atomic:
 * the target holds the old bytes or the new, never a half file or a leftover temporary), replaceFileSync (a status
 * file: same, without a flush). Compared by hash against the concatenation, on real files.
 */
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { replaceFileSync, writeChunksDurable, writevAll, writevAllSync } from '../../src/util/fs.js';
import { KeyframeError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'kf-fs-writes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const chunksArb = fc.array(fc.uint8Array({ minLength: 0, maxLength: 300 }), { minLength: 0, maxLength: 1500 });
let n = 0;
const fresh = (): string => join(dir, `f${n++}`);

describe('writevAll and writevAllSync', () => {
  it('write every byte in order, also past the writev limit of buffers (property)', async () => {
    await fc.assert(
      fc.asyncProperty(chunksArb, async (chunks) => {
        const want = sha(Buffer.concat(chunks));
        const total = chunks.reduce((s, c) => s + c.length, 0);
        const a = fresh();
        const fh = await open(a, 'w');
        try {
          expect(await writevAll(fh, chunks)).toBe(total);
        } finally {
          await fh.close();
        }
        expect(sha(readFileSync(a))).toBe(want);
        const b = fresh();
        const fd = openSync(b, 'w');
        try {
          expect(writevAllSync(fd, chunks)).toBe(total);
        } finally {
          closeSync(fd);
        }
        expect(sha(readFileSync(b))).toBe(want);
      }),
      { numRuns: 40 },
    );
  });

  it('continue after what was written: 2000 views into one buffer, 3 MiB in all', async () => {
    const big = Buffer.alloc(3 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 11)) & 255;
    const views: Uint8Array[] = [];
    for (let off = 0, k = 0; off < big.length; k++) {
      const len = Math.min(big.length - off, 1 + ((k * 2654435761) % 3100));
      views.push(big.subarray(off, off + len));
      off += len;
    }
    expect(views.length).toBeGreaterThan(1024);
    const p = fresh();
    const fh = await open(p, 'w');
    await writevAll(fh, views);
    await fh.close();
    expect(sha(readFileSync(p))).toBe(sha(big));
  });
});

describe('writeChunksDurable', () => {
  it('writes the file whole, replaces an older one, and leaves no temporary', async () => {
    const d = join(dir, 'durable');
    mkdirSync(d);
    const target = join(d, '000001.m4s');
    writeFileSync(target, 'old');
    const chunks = [Buffer.from('moof'), Buffer.alloc(100_000, 1), Buffer.from('end')];
    expect(await writeChunksDurable(target, chunks)).toBe(100_007);
    expect(sha(readFileSync(target))).toBe(sha(Buffer.concat(chunks)));
    expect(readdirSync(d)).toEqual(['000001.m4s']);
  });

  it('a missing directory is one error naming the target; nothing is created', async () => {
    const target = join(dir, 'no-such-dir', 'x.m4s');
    const e = await writeChunksDurable(target, [Buffer.from('x')]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(KeyframeError);
    expect((e as Error).message).toContain(target);
    expect((e as Error).message).not.toContain('.tmp');
  });

  it('a failed rename (the target is a directory) removes the temporary and keeps what was there', async () => {
    const d = join(dir, 'rename-fails');
    mkdirSync(join(d, 'seg.m4s'), { recursive: true });
    writeFileSync(join(d, 'seg.m4s', 'inside'), 'kept');
    const e = await writeChunksDurable(join(d, 'seg.m4s'), [Buffer.from('new')]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(KeyframeError);
    expect((e as Error).message).toContain(join(d, 'seg.m4s'));
    expect(readdirSync(d)).toEqual(['seg.m4s']);
    expect(readFileSync(join(d, 'seg.m4s', 'inside'), 'utf8')).toBe('kept');
  });
});

describe('replaceFileSync', () => {
  it('replaces the file at once with the mode asked for, one fixed temporary name, none left', () => {
    const d = join(dir, 'status');
    mkdirSync(d);
    const p = join(d, 'status.json');
    for (let i = 0; i < 5; i++) {
      replaceFileSync(p, `{"i":${i}}\n`, 0o600);
      expect(readFileSync(p, 'utf8')).toBe(`{"i":${i}}\n`);
    }
    expect(readdirSync(d)).toEqual(['status.json']);
    expect(statSync(p).mode & 0o777).toBe(0o600);
  });

  it('a path through a regular file is one error naming the file, and nothing else changes', () => {
    const d = join(dir, 'not-a-dir');
    mkdirSync(d);
    writeFileSync(join(d, 'ring'), 'a file where a directory should be');
    const p = join(d, 'ring', 'status.json');
    expect(() => replaceFileSync(p, 'new')).toThrow(KeyframeError);
    expect(() => replaceFileSync(p, 'new')).toThrow(p);
    expect(readdirSync(d)).toEqual(['ring']);
  });

  it('a missing directory is one error naming the file', () => {
    const p = join(dir, 'gone', 'status.json');
    expect(() => replaceFileSync(p, 'x')).toThrow(KeyframeError);
    expect(() => replaceFileSync(p, 'x')).toThrow(p);
  });
});
