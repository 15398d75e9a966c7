/**
 * Annex-B byte streams (B.1): NAL units separated by start codes `00 00 01` (or `00 00 00 01`). Cameras, RTP
 * depacketisers and `.h264` files speak this; MP4 speaks length prefixes (see length-prefixed.ts).
 *
 * A NAL unit ends where the next start code begins; zero bytes before a start code are trailing_zero_8bits (or the
 * zero_byte of a 4-byte start code) and are stripped, because a NAL unit never ends in 0x00. Only `00 00 01`
 * delimits: a stray `00 00 00` inside a NAL unit (illegal, but seen in ciphertext written as Annex-B) stays in it.
 */
import { MediaError } from '../../errors.js';

const _START_CODE = Buffer.from([0, 0, 1]);

/** A Buffer view of `data` (no copy), for Buffer's native substring search. */
function _asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
}

/** Index of the 0x01 of the first `00 00 01` whose first zero is at or after `from`, or −1. */
function _findStartCode(data: Buffer, from: number): number {
  // Buffer's native substring search: several times faster than TypedArray indexOf on video data
  const i = data.indexOf(_START_CODE, from);
  return i < 0 ? -1 : i + 2;
}

/** End of a NAL unit's payload in `data[start, end)` with trailing zero bytes removed. */
function _trimZeros(data: Uint8Array, start: number, end: number): number {
  while (end > start && data[end - 1] === 0) end--;
  return end;
}

/**
 * Splits an Annex-B stream into NAL units (header byte first). The results are views into `data`, not copies:
 * the packager and signer touch every byte of a recording, and copying would double the memory traffic.
 * Leading zero bytes are allowed (leading_zero_8bits); anything else before the first start code is a MediaError.
 * Empty NAL units (a start code followed only by zeros) are skipped.
 */
export function splitAnnexB(data: Uint8Array): Uint8Array[] {
  const nals: Uint8Array[] = [];
  const n = data.length;
  let i = 0;
  while (i < n && data[i] === 0) i++;
  if (i === n) return nals;
  if (data[i] !== 1 || i < 2) throw new MediaError('Annex-B stream does not begin with a start code', i);
  const search = _asBuffer(data);
  let start = i + 1;
  for (;;) {
    const sc = _findStartCode(search, start);
    const end = _trimZeros(data, start, sc < 0 ? n : sc - 2);
    if (end > start) nals.push(data.subarray(start, end));
    if (sc < 0) return nals;
    start = sc + 1;
  }
}

/** Default limit on one NAL unit in AnnexBSplitter: far above any real picture (a 4K I slice is < 1 MB). */
export const DEFAULT_MAX_NAL_BYTES = 64 * 1024 * 1024;

export interface AnnexBSplitterOptions {
  /** A pending NAL unit longer than this is a MediaError, so a peer that never sends a start code cannot exhaust memory. */
  readonly maxNalBytes?: number;
}

/**
 * Streaming Annex-B splitter for live input (sockets, pipes): `push` returns the NAL units that are certainly
 * complete, i.e. followed by a start code; `flush` returns the last one at end of stream. The emitted NAL units
 * are copies, so callers may reuse their chunk buffers. Memory is bounded by the largest NAL unit plus one chunk,
 * and by `maxNalBytes`. After `flush`, or after a MediaError, the splitter starts over as for a new stream.
 *
 * Start codes are searched in the pushed chunk itself, and each NAL unit is copied once, straight from the chunk
 * (and from the pending bytes of a NAL unit that began in an earlier chunk); only the incomplete tail is kept.
 * The NAL units of one push are views of one new buffer (see split): keep a copy (`slice`) of a NAL unit that is
 * kept for long, or it keeps that buffer alive.
 */
export class AnnexBSplitter {
  private readonly maxNalBytes: number;
  /** The bytes of the incomplete NAL unit after the last start code: `buf[0, len)`. No start code ends in them. */
  private buf = new Uint8Array(0);
  private len = 0;
  private started = false;
  private leadingZeros = 0;
  /** Stream offset of the next pushed byte, for error messages. */
  private consumed = 0;

  constructor(options: AnnexBSplitterOptions = {}) {
    this.maxNalBytes = options.maxNalBytes ?? DEFAULT_MAX_NAL_BYTES;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    try {
      return this.pushChunk(chunk);
    } catch (e) {
      this.reset();
      throw e;
    }
  }

  private pushChunk(chunk: Uint8Array): Uint8Array[] {
    let rest = chunk;
    if (!this.started) {
      let k = 0;
      for (; k < chunk.length; k++) {
        const b = chunk[k];
        if (b === 0) this.leadingZeros++;
        else if (b === 1 && this.leadingZeros >= 2) break;
        else throw new MediaError('Annex-B stream does not begin with a start code', this.consumed + k);
      }
      this.consumed += chunk.length;
      if (k === chunk.length) return [];
      this.started = true;
      rest = chunk.subarray(k + 1);
    } else {
      this.consumed += chunk.length;
    }
    const out = this.split(rest);
    if (this.len > this.maxNalBytes) throw new MediaError(`NAL unit longer than ${this.maxNalBytes} bytes`, this.consumed - this.len);
    return out;
  }

  flush(): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (this.started) {
      const end = _trimZeros(this.buf, 0, this.len);
      if (end > 0) out.push(this.buf.slice(0, end));
    }
    this.reset();
    return out;
  }

  private reset(): void {
    this.buf = new Uint8Array(0);
    this.len = 0;
    this.started = false;
    this.leadingZeros = 0;
    this.consumed = 0;
  }

  /**
   * Splits the pending bytes followed by `chunk` (positions below `p` are pending bytes, the others the chunk's):
   * complete NAL units out, the incomplete tail kept as the new pending bytes. The NAL units of one push are
   * copied into one new buffer and returned as views of it: an allocation per NAL unit costs several times more
   * than the copy (a NAL unit kept alive keeps that buffer, about one chunk, alive).
   */
  private split(chunk: Uint8Array): Uint8Array[] {
    if (chunk.length === 0) return [];
    const pending = this.buf;
    const p = this.len;
    const total = p + chunk.length;
    const search = _asBuffer(chunk);
    const at = (i: number): number => (i < p ? (pending[i] as number) : (chunk[i - p] as number));
    /** [start, end) of each complete NAL unit, in positions of the pending bytes followed by the chunk. */
    const bounds: number[] = [];
    let bytes = 0;
    /** Start of the current NAL unit. */
    let start = 0;
    /** A start code's first zero lies at or after this (no start code ends in the pending bytes). */
    let from = Math.max(p - 2, 0);
    for (;;) {
      let sc = -1;
      // a start code that begins in the pending bytes and ends in the chunk
      for (let k = from; k < p && k + 2 < total; k++) {
        if (at(k) === 0 && at(k + 1) === 0 && at(k + 2) === 1) {
          sc = k + 2;
          break;
        }
      }
      if (sc < 0) {
        const i = _findStartCode(search, Math.max(from - p, 0));
        if (i < 0) break;
        sc = p + i;
      }
      let end = sc - 2;
      while (end > start && at(end - 1) === 0) end--;
      if (end > start) {
        bounds.push(start, end);
        bytes += end - start;
      }
      start = sc + 1;
      from = start;
    }
    const out: Uint8Array[] = [];
    if (bytes > 0) {
      // every byte is written below, so the buffer need not be zeroed first; a plain Uint8Array over it, so that
      // `slice` on a NAL unit copies as usual
      const copy = new Uint8Array(Buffer.allocUnsafeSlow(bytes).buffer, 0, bytes);
      let o = 0;
      for (let b = 0; b < bounds.length; b += 2) {
        const s = bounds[b] as number;
        const e = bounds[b + 1] as number;
        if (s < p) {
          // only the first NAL unit can begin in the pending bytes
          copy.set(pending.subarray(s, Math.min(e, p)), o);
          if (e > p) copy.set(chunk.subarray(0, e - p), o + p - s);
        } else {
          copy.set(chunk.subarray(s - p, e - p), o);
        }
        out.push(copy.subarray(o, o + e - s));
        o += e - s;
      }
    }
    if (start === 0) {
      this.append(chunk);
    } else {
      // start > p: a start code ended in the chunk, and only the chunk's tail is pending
      this.len = 0;
      this.append(chunk.subarray(start - p));
    }
    return out;
  }

  private append(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const need = this.len + bytes.length;
    if (need > this.buf.length) {
      const next = new Uint8Array(Math.max(need, this.buf.length * 2, 4096));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    this.buf.set(bytes, this.len);
    this.len = need;
  }
}

/**
 * Writes NAL units as an Annex-B stream with 4-byte start codes, in one allocation. The NAL units must be escaped
 * (no `00 00 0x` emulation, see escapeRbsp) and must not end in 0x00, or a reader will split or trim them:
 * encrypted slice data does not meet this, so keep ciphertext in length-prefixed form.
 */
export function writeAnnexB(nals: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const nal of nals) {
    if (nal.length === 0) throw new MediaError('cannot write an empty NAL unit');
    total += 4 + nal.length;
  }
  const out = new Uint8Array(total);
  let pos = 0;
  for (const nal of nals) {
    out[pos + 3] = 1;
    out.set(nal, pos + 4);
    pos += 4 + nal.length;
  }
  return out;
}
