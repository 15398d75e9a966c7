/**
 * Emulation prevention (7.4.1): inside a NAL unit, the byte sequences `00 00 00`..`00 00 03` are escaped as
 * `00 00 03 0x`, so that no start code can appear in the payload. Parsers read the unescaped RBSP; writers of
 * NAL units (SEI) escape it; the packager needs the mapping back from RBSP bit positions to escaped bytes to know
 * where a slice header ends in the stored NAL unit.
 */

export interface Unescaped {
  /** The RBSP bytes. A view of the input when nothing had to be removed. */
  readonly rbsp: Uint8Array;
  /** Positions, in the escaped input, of the removed emulation_prevention_three_bytes, ascending. */
  readonly epb: number[];
}

/** Whether `data[j]` is an emulation_prevention_three_byte (a 0x03 after two zero bytes). */
function _isEpb(data: Uint8Array, j: number): boolean {
  return j >= 2 && data[j] === 3 && data[j - 1] === 0 && data[j - 2] === 0;
}

/**
 * Removes emulation_prevention_three_bytes from `nal` (usually a whole NAL unit, header included; the header byte
 * never takes part in an escape). No copy is made when there is nothing to remove.
 */
export function unescapeRbsp(nal: Uint8Array): Unescaped {
  const epb: number[] = [];
  let j = 2;
  for (;;) {
    j = nal.indexOf(3, j);
    if (j < 0) break;
    if (_isEpb(nal, j)) {
      epb.push(j);
      j += 3; // the next escape needs two fresh zero bytes after this one
    } else {
      j++;
    }
  }
  if (epb.length === 0) return { rbsp: nal, epb };
  const rbsp = new Uint8Array(nal.length - epb.length);
  let src = 0;
  let dst = 0;
  for (const p of epb) {
    rbsp.set(nal.subarray(src, p), dst);
    dst += p - src;
    src = p + 1;
  }
  rbsp.set(nal.subarray(src), dst);
  return { rbsp, epb };
}

/**
 * Escapes RBSP bytes: a 0x03 goes in wherever two zero bytes would be followed by a byte ≤ 0x03, and after a
 * final `00 00` (the RBSP of a slice may end in cabac_zero_words, 7.4.1). Counting first keeps it to one
 * allocation.
 */
export function escapeRbsp(rbsp: Uint8Array): Uint8Array {
  let inserts = 0;
  let zeros = 0;
  for (let i = 0; i < rbsp.length; i++) {
    const b = rbsp[i] ?? 0;
    if (zeros >= 2 && b <= 3) {
      inserts++;
      zeros = 0;
    }
    zeros = b === 0 ? zeros + 1 : 0;
  }
  const trailing = zeros >= 2 ? 1 : 0;
  if (inserts === 0 && trailing === 0) return rbsp.slice();
  const out = new Uint8Array(rbsp.length + inserts + trailing);
  let o = 0;
  zeros = 0;
  for (let i = 0; i < rbsp.length; i++) {
    const b = rbsp[i] ?? 0;
    if (zeros >= 2 && b <= 3) {
      out[o++] = 3;
      zeros = 0;
    }
    out[o++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  if (trailing === 1) out[o] = 3;
  return out;
}

/**
 * Number of bytes of the escaped input that hold its first `rbspBytes` RBSP bytes, given the `epb` positions
 * from unescapeRbsp: each removed byte that lies before the end moves it one further.
 */
export function escapedLength(rbspBytes: number, epb: readonly number[]): number {
  let end = rbspBytes;
  for (const p of epb) {
    if (p < end) end++;
    else break;
  }
  return end;
}
