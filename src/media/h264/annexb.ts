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

/** Index of the 0x01 of the first `00 00 01` whose first zero is at or after `from`, or −1. */
function _findStartCode(data: Uint8Array, from: number): number {
  // Buffer's native substring search: several times faster than TypedArray indexOf on video data
  const i = Buffer.from(data.buffer, data.byteOffset, data.length).indexOf(_START_CODE, from);
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
  let start = i + 1;
  for (;;) {
    const sc = _findStartCode(data, start);
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
 */
export class AnnexBSplitter {
  private readonly maxNalBytes: number;
  private buf = new Uint8Array(0);
  /** Bytes in `buf` that are valid; the pending NAL unit is `buf[0, len)`. */
  private len = 0;
  /** Positions below this were already checked for a start code's 0x01. */
  private scanFrom = 2;
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
    this.append(rest);
    const out = this.drain();
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
    this.scanFrom = 2;
    this.started = false;
    this.leadingZeros = 0;
    this.consumed = 0;
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

  private drain(): Uint8Array[] {
    const out: Uint8Array[] = [];
    const view = this.buf.subarray(0, this.len);
    let start = 0;
    let from = Math.max(this.scanFrom - 2, 0);
    for (;;) {
      const sc = _findStartCode(view, from);
      if (sc < 0) break;
      const end = _trimZeros(view, start, sc - 2);
      if (end > start) out.push(view.slice(start, end));
      start = sc + 1;
      from = start;
    }
    if (start > 0) {
      this.buf.copyWithin(0, start, this.len);
      this.len -= start;
    }
    this.scanFrom = Math.max(this.len, 2);
    return out;
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
