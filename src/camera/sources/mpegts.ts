/**
 * MPEG-2 transport stream (ISO/IEC 13818-1) as ffmpeg writes it to a pipe: the container that keeps each video
 * packet's PTS and DTS when ffmpeg copies H.264 without re-encoding. Pure, no I/O:
 *
 * - TsDemuxer: 188-byte packets → PAT → PMT → the PES packets of the program's first video stream, with PTS/DTS.
 * - writeTs: the reverse, for tests (one PES per access unit, PAT/PMT before the first, as ffmpeg does).
 *
 * Only what a single-program stream from ffmpeg needs: no CRC check (a local pipe), no scrambling, no PCR use.
 */
import { MediaError } from '../../errors.js';

export const TS_PACKET_SIZE = 188;
const SYNC = 0x47;
/** 2^33: PTS and DTS are 33-bit counters of 90 kHz ticks and wrap about every 26.5 hours. */
export const PTS_WRAP = 2 ** 33;

/** ISO/IEC 13818-1 table 2-34 stream types of video formats that are not H.264 (named in the error). */
const VIDEO_STREAM_TYPES: Readonly<Record<number, string>> = {
  0x01: 'MPEG-1 video',
  0x02: 'MPEG-2 video',
  0x10: 'MPEG-4 part 2 video',
  0x1b: 'H.264',
  0x20: 'H.264 SVC',
  0x24: 'H.265/HEVC',
  0x42: 'AVS video',
  0xd1: 'Dirac',
  0xea: 'VC-1',
};
export const STREAM_TYPE_H264 = 0x1b;

export interface TsPes {
  readonly pid: number;
  readonly streamType: number;
  /** 33-bit PTS in 90 kHz ticks, when the PES header has one. */
  readonly pts: number | undefined;
  /** 33-bit DTS; equal to pts when the header carries only a PTS. */
  readonly dts: number | undefined;
  /** The PES payload (the elementary stream bytes), a fresh buffer. */
  readonly payload: Uint8Array;
}

/** ffmpeg's codec names of the same formats, so that a source names a wrong codec the same way whoever noticed it first. */
const FFMPEG_CODEC_NAMES: Readonly<Record<string, string>> = {
  mpeg1video: 'MPEG-1 video',
  mpeg2video: 'MPEG-2 video',
  mpeg4: 'MPEG-4 part 2 video',
  hevc: 'H.265/HEVC',
  cavs: 'AVS video',
  dirac: 'Dirac',
  vc1: 'VC-1',
};

/** The display name of a video codec that ffmpeg reported by its codec name (e.g. `hevc` → `H.265/HEVC`). */
export function videoCodecName(ffmpegCodec: string): string {
  return FFMPEG_CODEC_NAMES[ffmpegCodec] ?? ffmpegCodec;
}

/** The sentence naming a video stream that is not H.264, the same from the demuxer and from ffmpeg's stream report. */
export function notH264Message(codec: string): string {
  return `the video stream is ${codec}, not H.264`;
}

/** The PMT names a video stream, but it is not H.264: a permanent condition, not a glitch. */
export class NotH264Error extends MediaError {
  readonly streamType: number;
  /** The format's name, e.g. "H.265/HEVC" (the stream type's hex value when it is not a known video format). */
  readonly codec: string;

  constructor(streamType: number, what: string) {
    super(`${notH264Message(what)} (MPEG-TS stream type 0x${streamType.toString(16).padStart(2, '0')})`);
    this.name = 'NotH264Error';
    this.streamType = streamType;
    this.codec = what;
  }
}

export function streamTypeName(type: number): string | undefined {
  return VIDEO_STREAM_TYPES[type];
}

/** The 33-bit time stamp of a PES header at `p` (5 bytes with marker bits). */
function _readTimestamp(b: Uint8Array, p: number): number {
  const b0 = b[p] as number;
  const b1 = b[p + 1] as number;
  const b2 = b[p + 2] as number;
  const b3 = b[p + 3] as number;
  const b4 = b[p + 4] as number;
  return ((b0 >> 1) & 0x07) * 2 ** 30 + b1 * 2 ** 22 + (b2 >> 1) * 2 ** 15 + b3 * 2 ** 7 + (b4 >> 1);
}

interface PesHeader {
  readonly pts: number | undefined;
  readonly dts: number | undefined;
  /** Offset of the payload in the PES packet. */
  readonly payloadStart: number;
  /** Total PES packet length (header included), or 0 when unbounded. */
  readonly total: number;
}

/** Parses a PES packet header (2.4.3.6); undefined while fewer bytes than the header are at hand. */
function _pesHeader(b: Uint8Array): PesHeader | undefined {
  if (b.length < 9) return undefined;
  if (b[0] !== 0 || b[1] !== 0 || b[2] !== 1) throw new MediaError('PES packet does not begin with a start code prefix');
  const streamId = b[3] as number;
  const length = ((b[4] as number) << 8) | (b[5] as number);
  const total = length === 0 ? 0 : 6 + length;
  // stream ids without the optional header: program_stream_map, padding, private_stream_2, ECM, EMM, directory, DSMCC, H.222.1 E
  if ([0xbc, 0xbe, 0xbf, 0xf0, 0xf1, 0xff, 0xf2, 0xf8].includes(streamId)) return { pts: undefined, dts: undefined, payloadStart: 6, total };
  if (((b[6] as number) & 0xc0) !== 0x80) throw new MediaError('PES header has no 10 marker bits');
  const flags = (b[7] as number) >> 6;
  const headerLength = b[8] as number;
  const payloadStart = 9 + headerLength;
  if (b.length < payloadStart) return undefined;
  if (flags === 1) throw new MediaError('PES header has the forbidden PTS_DTS_flags value 01');
  const pts = flags >= 2 ? _readTimestamp(b, 9) : undefined;
  const dts = flags === 3 ? _readTimestamp(b, 14) : pts;
  if (total !== 0 && total < payloadStart) throw new MediaError('PES packet shorter than its header');
  return { pts, dts, payloadStart, total };
}

/** A growable byte buffer. */
class Bytes {
  buf = new Uint8Array(4096);
  len = 0;
  append(b: Uint8Array): void {
    if (this.len + b.length > this.buf.length) {
      const next = new Uint8Array(Math.max(this.len + b.length, this.buf.length * 2));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  view(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
  clear(): void {
    this.len = 0;
  }
}

export interface TsDemuxerOptions {
  /** An unbounded PES packet longer than this is a MediaError (a stream that never ends one cannot exhaust memory). */
  readonly maxPesBytes?: number;
}

/**
 * Streaming demuxer: `push` bytes in any chunking, get the complete PES packets of the first video stream (H.264)
 * of the first program back. A PES packet with a length in its header is complete as soon as its bytes are in (no
 * latency; ffmpeg writes lengths with `-omit_video_pes_length 0` for PES packets under 64 KiB); an unbounded one
 * is complete when the next one begins, or at `flush`. A video stream that is not H.264 throws NotH264Error.
 */
export class TsDemuxer {
  private readonly maxPesBytes: number;
  private readonly pending = new Bytes();
  private pmtPid: number | undefined;
  private videoPid: number | undefined;
  private streamType = 0;
  private readonly sections = new Map<number, Bytes>();
  private pes: Bytes | undefined;
  private consumed = 0;

  constructor(options: TsDemuxerOptions = {}) {
    this.maxPesBytes = options.maxPesBytes ?? 64 * 1024 * 1024;
  }

  /** The PID and stream type of the video stream, once the PMT has been read. */
  get video(): { pid: number; streamType: number } | undefined {
    return this.videoPid === undefined ? undefined : { pid: this.videoPid, streamType: this.streamType };
  }

  push(chunk: Uint8Array): TsPes[] {
    const out: TsPes[] = [];
    let data = chunk;
    if (this.pending.len > 0) {
      this.pending.append(chunk);
      data = this.pending.view();
    }
    let p = 0;
    while (data.length - p >= TS_PACKET_SIZE) {
      if (data[p] !== SYNC) {
        // lost sync: skip to the next byte that starts a run of sync bytes
        const next = this.resync(data, p + 1);
        if (next < 0) {
          p = Math.max(p + 1, data.length - TS_PACKET_SIZE + 1);
          continue;
        }
        p = next;
        continue;
      }
      this.packet(data.subarray(p, p + TS_PACKET_SIZE), out);
      p += TS_PACKET_SIZE;
      this.consumed += TS_PACKET_SIZE;
    }
    const rest = data.subarray(p);
    if (this.pending.len > 0) {
      const copy = rest.slice();
      this.pending.clear();
      this.pending.append(copy);
    } else {
      this.pending.append(rest);
    }
    return out;
  }

  /** End of stream: the unbounded PES packet in progress, if any. */
  flush(): TsPes[] {
    const out: TsPes[] = [];
    this.finishPes(out);
    this.pending.clear();
    return out;
  }

  private resync(data: Uint8Array, from: number): number {
    for (let i = from; i < data.length; i++) {
      if (data[i] !== SYNC) continue;
      if (i + TS_PACKET_SIZE >= data.length || data[i + TS_PACKET_SIZE] === SYNC) return i;
    }
    return -1;
  }

  private packet(pkt: Uint8Array, out: TsPes[]): void {
    const b1 = pkt[1] as number;
    if (b1 & 0x80) return; // transport_error_indicator: the packet is damaged
    const pusi = (b1 & 0x40) !== 0;
    const pid = ((b1 & 0x1f) << 8) | (pkt[2] as number);
    const afc = ((pkt[3] as number) >> 4) & 0x03;
    if (((pkt[3] as number) >> 6) !== 0) throw new MediaError('scrambled transport stream packet', this.consumed);
    let p = 4;
    if (afc === 2 || afc === 3) p += 1 + (pkt[4] as number);
    if (afc === 0 || afc === 2 || p >= TS_PACKET_SIZE) return;
    const payload = pkt.subarray(p);
    if (pid === 0 || pid === this.pmtPid) this.section(pid, pusi, payload);
    else if (pid === this.videoPid) this.pesPayload(pusi, payload, out);
  }

  private section(pid: number, pusi: boolean, payload: Uint8Array): void {
    let buf = this.sections.get(pid);
    if (pusi) {
      const pointer = payload[0] as number;
      if (buf !== undefined && buf.len > 0) buf.append(payload.subarray(1, 1 + pointer));
      if (buf !== undefined && buf.len > 0) this.tryTable(pid, buf);
      buf = new Bytes();
      this.sections.set(pid, buf);
      buf.append(payload.subarray(1 + pointer));
    } else {
      if (buf === undefined || buf.len === 0) return;
      buf.append(payload);
    }
    this.tryTable(pid, buf);
  }

  private tryTable(pid: number, buf: Bytes): void {
    const s = buf.view();
    if (s.length < 3) return;
    if (s[0] === 0xff) {
      buf.clear();
      return;
    }
    const length = (((s[1] as number) & 0x0f) << 8) | (s[2] as number);
    if (s.length < 3 + length) return;
    const section = s.slice(0, 3 + length);
    buf.clear();
    if (length < 9) throw new MediaError('PSI section too short');
    if (pid === 0 && section[0] === 0x00) this.pat(section);
    else if (pid === this.pmtPid && section[0] === 0x02) this.pmt(section);
  }

  private pat(s: Uint8Array): void {
    const end = s.length - 4;
    for (let p = 8; p + 4 <= end; p += 4) {
      const program = ((s[p] as number) << 8) | (s[p + 1] as number);
      const pid = (((s[p + 2] as number) & 0x1f) << 8) | (s[p + 3] as number);
      if (program !== 0) {
        this.pmtPid = pid;
        return;
      }
    }
  }

  private pmt(s: Uint8Array): void {
    const end = s.length - 4;
    const infoLength = (((s[10] as number) & 0x0f) << 8) | (s[11] as number);
    let firstVideo: { pid: number; type: number } | undefined;
    for (let p = 12 + infoLength; p + 5 <= end; ) {
      const type = s[p] as number;
      const pid = (((s[p + 1] as number) & 0x1f) << 8) | (s[p + 2] as number);
      const esInfo = (((s[p + 3] as number) & 0x0f) << 8) | (s[p + 4] as number);
      if (type === STREAM_TYPE_H264) {
        firstVideo = { pid, type };
        break;
      }
      if (firstVideo === undefined && VIDEO_STREAM_TYPES[type] !== undefined) firstVideo = { pid, type };
      p += 5 + esInfo;
    }
    if (firstVideo === undefined) throw new MediaError('the transport stream has no video stream');
    if (firstVideo.type !== STREAM_TYPE_H264) throw new NotH264Error(firstVideo.type, VIDEO_STREAM_TYPES[firstVideo.type] ?? 'unknown');
    if (this.videoPid !== firstVideo.pid) {
      this.pes = undefined;
      this.videoPid = firstVideo.pid;
      this.streamType = firstVideo.type;
    }
  }

  private pesPayload(pusi: boolean, payload: Uint8Array, out: TsPes[]): void {
    if (pusi) {
      this.finishPes(out);
      this.pes = new Bytes();
    }
    if (this.pes === undefined) return; // joined in the middle of a PES packet
    this.pes.append(payload);
    if (this.pes.len > this.maxPesBytes) {
      this.pes = undefined;
      throw new MediaError(`PES packet longer than ${this.maxPesBytes} bytes`, this.consumed);
    }
    const header = _pesHeader(this.pes.view());
    if (header !== undefined && header.total !== 0 && this.pes.len >= header.total) this.finishPes(out);
  }

  private finishPes(out: TsPes[]): void {
    const pes = this.pes;
    this.pes = undefined;
    if (pes === undefined || pes.len === 0 || this.videoPid === undefined) return;
    const b = pes.view();
    const header = _pesHeader(b);
    if (header === undefined) throw new MediaError('truncated PES header', this.consumed);
    const end = header.total !== 0 ? Math.min(header.total, b.length) : b.length;
    out.push({ pid: this.videoPid, streamType: this.streamType, pts: header.pts, dts: header.dts, payload: b.slice(header.payloadStart, end) });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Writer (tests, fixtures): one program, one H.264 stream on PID 0x100, PMT on 0x1000, like ffmpeg's muxer.

const PMT_PID = 0x1000;
export const WRITER_VIDEO_PID = 0x100;

/** CRC-32/MPEG-2 of PSI sections. */
function _crc32Mpeg(b: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of b) {
    crc ^= byte << 24;
    for (let k = 0; k < 8; k++) crc = crc & 0x80000000 ? ((crc << 1) ^ 0x04c11db7) >>> 0 : (crc << 1) >>> 0;
  }
  return crc >>> 0;
}

function _section(tableId: number, idExt: number, body: readonly number[]): Uint8Array {
  const length = 5 + body.length + 4;
  const s = [tableId, 0xb0 | (length >> 8), length & 0xff, idExt >> 8, idExt & 0xff, 0xc1, 0x00, 0x00, ...body];
  const crc = _crc32Mpeg(Uint8Array.from(s));
  return Uint8Array.from([...s, crc >>> 24, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff]);
}

function _writeTimestamp(out: number[], prefix: number, t: number): void {
  const v = ((t % PTS_WRAP) + PTS_WRAP) % PTS_WRAP;
  const hi = Math.floor(v / 2 ** 30);
  const mid = Math.floor(v / 2 ** 15) & 0x7fff;
  const lo = v & 0x7fff;
  out.push((prefix << 4) | (hi << 1) | 1, mid >> 7, ((mid & 0x7f) << 1) | 1, lo >> 7, ((lo & 0x7f) << 1) | 1);
}

export interface TsWriteUnit {
  /** The elementary stream bytes of one PES packet (an access unit in Annex-B form). */
  readonly payload: Uint8Array;
  readonly pts: number;
  /** Written only when it differs from pts (as muxers do). */
  readonly dts: number;
}

export interface TsWriteOptions {
  /** PES packets carry their length when it fits 16 bits (default true); otherwise 0, unbounded. */
  readonly pesLength?: boolean;
  /** Stream type written in the PMT (default H.264). */
  readonly streamType?: number;
}

/** Packets of `data` on `pid`, the first with payload_unit_start_indicator, the last padded with adaptation-field stuffing. */
function _packets(pid: number, data: Uint8Array, cc: { n: number }, out: Uint8Array[]): void {
  let p = 0;
  let first = true;
  while (p < data.length || first) {
    const pkt = new Uint8Array(TS_PACKET_SIZE).fill(0xff);
    const room = TS_PACKET_SIZE - 4;
    const n = Math.min(room, data.length - p);
    pkt[0] = SYNC;
    pkt[1] = (first ? 0x40 : 0) | (pid >> 8);
    pkt[2] = pid & 0xff;
    if (n < room) {
      const af = room - n; // adaptation field incl. its length byte
      pkt[3] = 0x30 | (cc.n & 0x0f);
      pkt[4] = af - 1;
      if (af > 1) pkt[5] = 0x00;
      pkt.set(data.subarray(p, p + n), 4 + af);
    } else {
      pkt[3] = 0x10 | (cc.n & 0x0f);
      pkt.set(data.subarray(p, p + n), 4);
    }
    cc.n++;
    p += n;
    first = false;
    out.push(pkt);
  }
}

/** A transport stream holding `units` as one H.264 stream, PAT and PMT first. */
export function writeTs(units: readonly TsWriteUnit[], options: TsWriteOptions = {}): Uint8Array {
  const pkts: Uint8Array[] = [];
  const pat = _section(0x00, 1, [0x00, 0x01, 0xe0 | (PMT_PID >> 8), PMT_PID & 0xff]);
  const pmt = _section(0x02, 1, [0xe0 | (WRITER_VIDEO_PID >> 8), WRITER_VIDEO_PID & 0xff, 0xf0, 0x00, options.streamType ?? STREAM_TYPE_H264, 0xe0 | (WRITER_VIDEO_PID >> 8), WRITER_VIDEO_PID & 0xff, 0xf0, 0x00]);
  _packets(0, Uint8Array.from([0, ...pat]), { n: 0 }, pkts);
  _packets(PMT_PID, Uint8Array.from([0, ...pmt]), { n: 0 }, pkts);
  const cc = { n: 0 };
  for (const u of units) {
    const header: number[] = [0, 0, 1, 0xe0, 0, 0, 0x80];
    const withDts = u.dts !== u.pts;
    header.push(withDts ? 0xc0 : 0x80, withDts ? 10 : 5);
    _writeTimestamp(header, withDts ? 3 : 2, u.pts);
    if (withDts) _writeTimestamp(header, 1, u.dts);
    const length = header.length - 6 + u.payload.length;
    if (options.pesLength !== false && length <= 0xffff) {
      header[4] = length >> 8;
      header[5] = length & 0xff;
    }
    const pes = new Uint8Array(header.length + u.payload.length);
    pes.set(header);
    pes.set(u.payload, header.length);
    _packets(WRITER_VIDEO_PID, pes, cc, pkts);
  }
  const out = new Uint8Array(pkts.length * TS_PACKET_SIZE);
  pkts.forEach((p, i) => out.set(p, i * TS_PACKET_SIZE));
  return out;
}
