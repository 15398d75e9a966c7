/**
 * Reading ISO BMFF box headers (ISO/IEC 14496-12 §4.2) from a buffer. Every header is checked against the end
 * of its parent before anything is trusted: a box that does not fit is a MediaError naming the box and its
 * offset, never a short read further down. `size == 1` (64-bit largesize) and `size == 0` (to the end of the
 * parent: only legal at top level, accepted anywhere because it cannot loop) are supported.
 */
import { MediaError } from '../../errors.js';
import { _Reader, _copy, _show } from './_bytes.js';

export interface BoxHeader {
  /** Four-character code, latin1. */
  type: string;
  /** Offset of the box's first byte in the buffer it was read from. */
  offset: number;
  /** Size of the whole box, header included. */
  size: number;
  /**
   * 8, or 16 with a largesize. For `uuid` boxes the 16-byte extended type follows the header (it is the first
   * 16 bytes of the payload) and is also given as `userType`.
   */
  headerSize: number;
  /** The extended type of a `uuid` box (a copy). */
  userType?: Uint8Array;
}

/**
 * Header of the box at `buf[offset]`, which must end by `end`. `base` is the absolute position of `buf[0]` in
 * the input, for error messages (the demuxer reads boxes out of a file). `parentEnd` (default `end`) bounds the
 * box itself when only its header was read into `buf`.
 */
export function _readBoxHeader(buf: Uint8Array, offset: number, end: number, base: number, parentEnd = end): BoxHeader {
  if (!(offset >= 0 && end <= buf.length && offset <= end)) throw new MediaError(`box header at ${offset}: outside the buffer`, base + Math.max(0, offset));
  if (end - offset < 8) throw new MediaError(`box header needs 8 bytes, ${end - offset} left in the parent`, base + offset);
  const r = new _Reader(buf, offset, end, 'box header', base);
  let size = r.u32('box size');
  const type = r.fourcc();
  let headerSize = 8;
  if (size === 1) {
    if (end - offset < 16) throw new MediaError(`box ${_show(type)}: largesize header needs 16 bytes, ${end - offset} left in the parent`, base + offset);
    size = r.u64(`box ${_show(type)} largesize`);
    headerSize = 16;
  } else if (size === 0) {
    size = parentEnd - offset;
  }
  if (size < headerSize) throw new MediaError(`box ${_show(type)}: size ${size} is smaller than its ${headerSize}-byte header`, base + offset);
  if (size > parentEnd - offset) throw new MediaError(`box ${_show(type)}: size ${size} runs past the end of its parent (${parentEnd - offset} bytes left)`, base + offset);
  const h: BoxHeader = { type, offset, size, headerSize };
  if (type === 'uuid') {
    if (size < headerSize + 16) throw new MediaError(`box 'uuid': size ${size} leaves no room for the 16-byte extended type`, base + offset);
    if (end - offset < headerSize + 16) throw new MediaError("box 'uuid': the header is cut short before its extended type", base + offset);
    h.userType = _copy(buf.subarray(offset + headerSize, offset + headerSize + 16));
  }
  return h;
}

/** Header of the box at `buf[offset]`, which must fit before `end`. MediaError if it does not. */
export function readBoxHeader(buf: Uint8Array, offset: number, end: number): BoxHeader {
  return _readBoxHeader(buf, offset, end, 0);
}

/** True when the bytes from `pos` to `end` are fewer than a header and all zero: QuickTime's 32-bit terminator. */
function _isTerminator(buf: Uint8Array, pos: number, end: number): boolean {
  if (end - pos >= 8) return false;
  for (let i = pos; i < end; i++) if (buf[i] !== 0) return false;
  return true;
}

export function* _iterateBoxes(buf: Uint8Array, start: number, end: number, base: number): Generator<BoxHeader> {
  let pos = start;
  while (pos < end) {
    if (_isTerminator(buf, pos, end)) return;
    const h = _readBoxHeader(buf, pos, end, base);
    yield h;
    pos += h.size; // size >= 8, so this always advances
  }
}

/**
 * The boxes that tile `buf[start, end)`, in order. Trailing zero bytes too short for a header (the terminator
 * some QuickTime writers put at the end of `udta`) end the iteration; any other leftover is a MediaError.
 */
export function iterateBoxes(buf: Uint8Array, start: number, end: number): Generator<BoxHeader> {
  return _iterateBoxes(buf, start, end, 0);
}

/**
 * Bytes between a box's header and its first child, for boxes whose children follow some fields: sample
 * description tables, data reference tables, `meta`, and the visual/audio sample entries.
 */
const _CHILD_PREFIX: Readonly<Record<string, number>> = {
  stsd: 8,
  dref: 8,
  meta: 4,
  avc1: 78,
  avc3: 78,
  encv: 78,
  hvc1: 78,
  hev1: 78,
  mp4a: 28,
  enca: 28,
};

/** Where the children of a box start. For a `uuid` box, after its extended type. */
export function childrenStart(h: BoxHeader): number {
  return h.offset + h.headerSize + (h.type === 'uuid' ? 16 : (_CHILD_PREFIX[h.type] ?? 0));
}

/** The payload of a box: everything after the 8- or 16-byte header (for `uuid`, starting with the extended type). */
export function boxPayload(buf: Uint8Array, h: BoxHeader): Uint8Array {
  return buf.subarray(h.offset + h.headerSize, h.offset + h.size);
}

export function _findBoxes(buf: Uint8Array, path: readonly string[], start: number, end: number, base: number): BoxHeader[] {
  const [first, ...rest] = path;
  if (first === undefined) return [];
  const found: BoxHeader[] = [];
  for (const h of _iterateBoxes(buf, start, end, base)) {
    if (h.type !== first) continue;
    if (rest.length === 0) {
      found.push(h);
      continue;
    }
    const from = childrenStart(h);
    if (from > h.offset + h.size) throw new MediaError(`box ${_show(h.type)}: too small (${h.size} bytes) to hold children`, base + h.offset);
    for (const f of _findBoxes(buf, rest, from, h.offset + h.size, base)) found.push(f);
  }
  return found;
}

/**
 * All boxes at `path` below `buf[start, end)`, e.g. `['moov','trak','mdia','minf','stbl','stsd']`, in file
 * order. Sample descriptions and sample entries are descended into after their fixed fields
 * (`['moov', …, 'stsd', 'encv', 'sinf', 'schi', 'tenc']` works).
 */
export function findBoxes(buf: Uint8Array, path: readonly string[], start = 0, end = buf.length): BoxHeader[] {
  return _findBoxes(buf, path, start, end, 0);
}

/** First child of type `type` directly inside `parent`, or undefined. */
export function _child(buf: Uint8Array, parent: BoxHeader, type: string, base: number): BoxHeader | undefined {
  for (const h of _iterateBoxes(buf, childrenStart(parent), parent.offset + parent.size, base)) if (h.type === type) return h;
  return undefined;
}

/** All children of `parent` of type `type`. */
export function _children(buf: Uint8Array, parent: BoxHeader, type: string, base: number): BoxHeader[] {
  const out: BoxHeader[] = [];
  for (const h of _iterateBoxes(buf, childrenStart(parent), parent.offset + parent.size, base)) if (h.type === type) out.push(h);
  return out;
}

export interface FullBoxReader {
  version: number;
  flags: number;
  /** Positioned after version and flags, bounded by the box. */
  reader: _Reader;
}

/** Version, flags and a bounded reader over the rest of a full box (§4.2.2). */
export function _openFullBox(buf: Uint8Array, h: BoxHeader, base: number): FullBoxReader {
  const reader = new _Reader(buf, h.offset + h.headerSize, h.offset + h.size, `box ${_show(h.type)}`, base);
  const version = reader.u8('version');
  const flags = reader.u24('flags');
  return { version, flags, reader };
}

/** A bounded reader over a box's payload (for boxes that are not full boxes). */
export function _openBox(buf: Uint8Array, h: BoxHeader, base: number): _Reader {
  return new _Reader(buf, h.offset + h.headerSize, h.offset + h.size, `box ${_show(h.type)}`, base);
}

/** Version and flags of a full box. */
export function readFullBoxHeader(buf: Uint8Array, h: BoxHeader): { version: number; flags: number } {
  const { version, flags } = _openFullBox(buf, h, 0);
  return { version, flags };
}

