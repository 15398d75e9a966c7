/**
 * Media inputs for the packager, read as a stream of GOPs (one CMAF fragment each), so that memory stays
 * bounded by one GOP whatever the length of the input:
 *
 * - Annex-B H.264 (`.h264`, a camera's elementary stream): read in chunks, split into NAL units, assembled into
 *   access units and GOPs; timing from the SPS VUI (or `fps`), 90 kHz timescale. B-frames need composition
 *   offsets an elementary stream does not carry, so they are refused with a hint to remux to MP4.
 * - MP4, ordinary or fragmented (ffmpeg's output): samples with their own timing, grouped at sync samples.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { InputError, MediaError, NotFoundError, errnoCode, ioError } from '../errors.js';
import { AccessUnitAssembler, AnnexBSplitter, GopAssembler, NalType, checkPicture, isVcl, nalType, parseSei, parseSliceHeader, writeLengthPrefixed } from '../media/h264/index.js';
import type { AccessUnit, Pps, Sps } from '../media/h264/index.js';
import { fileSource, openMp4 } from '../media/mp4/index.js';
import type { AvcConfig } from '../media/mp4/index.js';

export interface InputTrack {
  readonly timescale: number;
  readonly width: number;
  readonly height: number;
  readonly avcC: AvcConfig;
}

export interface InputSample {
  /** Length-prefixed access unit (avcC lengthSize). */
  readonly data: Uint8Array;
  readonly duration: number;
  readonly isSync: boolean;
  readonly compositionOffset: number;
}

export interface InputGop {
  readonly baseDecodeTime: number;
  readonly samples: readonly InputSample[];
}

export interface MediaInput {
  readonly kind: 'annexb' | 'mp4';
  readonly track: InputTrack;
  /** Filled while reading an Annex-B input: its last picture was cut (and dropped). */
  readonly end?: StreamEnd;
  gops(): AsyncGenerator<InputGop>;
  close(): Promise<void>;
}

export interface InputOptions {
  /** Frame rate of an Annex-B input whose SPS carries no timing information. */
  readonly fps?: number;
}

export const ANNEXB_TIMESCALE = 90_000;

/** The end of an Annex-B stream, as accessUnitsCheckingEnd found it. */
export interface StreamEnd {
  /** Set when the stream ends inside its last picture: which picture (from 1), and how it is cut. */
  cut?: { readonly picture: number; readonly reason: string };
}

function hasPicture(au: AccessUnit): boolean {
  return au.nals.some((n) => isVcl(nalType(n)));
}

/**
 * The access units of an Annex-B byte stream, holding back the last one until the stream ends: a file cut in
 * the middle of its last NAL unit (a camera's power cut, a copy that stopped) ends with a picture that is not
 * whole, and nothing in Annex-B says so. The last picture is walked (media/h264/completeness.ts: exact for CAVLC
 * streams, not checked for CABAC); a cut one, or a last NAL unit that does not parse, is dropped and reported in
 * `end.cut`. `onNal` sees every NAL unit first (for the parameter sets).
 */
export async function* accessUnitsCheckingEnd(
  chunks: AsyncIterable<Uint8Array>,
  assembler: AccessUnitAssembler,
  end: StreamEnd,
  onNal?: (nal: Uint8Array) => void,
): AsyncGenerator<AccessUnit> {
  const splitter = new AnnexBSplitter();
  let held: AccessUnit | undefined;
  let pictures = 0;
  function* take(aus: readonly AccessUnit[]): Generator<AccessUnit> {
    for (const au of aus) {
      if (held !== undefined) {
        if (hasPicture(held)) pictures++;
        yield held;
      }
      held = au;
    }
  }
  const push = (nal: Uint8Array): AccessUnit[] => {
    onNal?.(nal);
    return assembler.push(nal);
  };
  for await (const chunk of chunks) for (const nal of splitter.push(chunk)) yield* take(push(nal));
  const tail = splitter.flush();
  let cutNal: string | undefined;
  for (const [i, nal] of tail.entries()) {
    const last = i === tail.length - 1;
    try {
      if (last && nalType(nal) === NalType.SEI) parseSei(nal);
      yield* take(push(nal));
    } catch (e) {
      if (!(e instanceof MediaError) || !last) throw e;
      cutNal = `its last NAL unit (type ${nalType(nal)}, ${nal.length} bytes) does not parse: ${e.message}`;
    }
  }
  yield* take(assembler.flush());
  if (held === undefined) return;
  const picture = pictures + 1;
  if (!hasPicture(held)) {
    // a cut NAL unit was the first slice of a picture: what came before it in that picture goes with it
    if (cutNal !== undefined) end.cut = { picture, reason: cutNal };
    else yield held;
    return;
  }
  const check = checkPicture(held.nals, assembler.sps, assembler.pps);
  if (check.status === 'incomplete') {
    end.cut = { picture, reason: check.reason };
    return;
  }
  if (cutNal !== undefined) end.cut = { picture: picture + 1, reason: cutNal };
  yield held;
}

/** Reads an Annex-B file to its end and tells whether its last picture is cut (for `record`, before it writes). */
export async function annexBEnd(path: string): Promise<StreamEnd> {
  const end: StreamEnd = {};
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  try {
    for await (const au of accessUnitsCheckingEnd(stream as AsyncIterable<Buffer>, new AccessUnitAssembler(), end)) void au;
  } finally {
    stream.destroy();
  }
  return end;
}

/** Stats an input: one line for a missing path or a directory where a file is wanted. */
export async function statInput(path: string, what: string): Promise<Stats> {
  let st: Stats;
  try {
    st = await stat(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`${what} not found: ${path}`);
    throw ioError(e, path, 'read') ?? e;
  }
  if (st.isDirectory()) throw new InputError(`${what} is a directory, not a file: ${path}`);
  return st;
}

function sniffHead(head: Uint8Array, path: string): 'annexb' | 'mp4' {
  if (head.length >= 4 && head[0] === 0 && head[1] === 0 && (head[2] === 1 || (head[2] === 0 && head[3] === 1))) return 'annexb';
  const type = Buffer.from(head.subarray(4, 8)).toString('latin1');
  if (['ftyp', 'styp', 'moov', 'moof', 'mdat', 'free', 'skip', 'wide'].includes(type)) return 'mp4';
  throw new MediaError(`${path} is neither an Annex-B H.264 stream nor an MP4 file`);
}

/**
 * Opens `path`: a regular file (Annex-B or MP4), or a pipe or device (Annex-B only, read once as a stream:
 * `ffmpeg … -f h264 - | keyframe package /dev/stdin …`).
 */
export async function openInput(path: string, options: InputOptions = {}): Promise<MediaInput> {
  const st = await statInput(path, 'input');
  if (st.isFile()) {
    let head: Buffer;
    try {
      const fh = await open(path, 'r');
      try {
        head = Buffer.alloc(12);
        const { bytesRead } = await fh.read(head, 0, 12, 0);
        head = head.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
    } catch (e) {
      throw ioError(e, path, 'read') ?? e;
    }
    return sniffHead(head, path) === 'annexb' ? openAnnexB(path, options, createReadStream(path, { highWaterMark: 1 << 20 })) : openMp4Input(path);
  }
  // a pipe: sniff the first bytes of the one stream there is, then go on reading it
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first: Buffer[] = [];
  let have = 0;
  while (have < 12) {
    const r = await it.next().catch((e: unknown) => {
      throw ioError(e, path, 'read') ?? e;
    });
    if (r.done === true) break;
    first.push(r.value);
    have += r.value.length;
  }
  const head = Buffer.concat(first);
  if (sniffHead(head, path) === 'mp4') {
    stream.destroy();
    throw new MediaError(`${path} is an MP4 on a pipe: an MP4 input must be a regular file (it is read by offset)`);
  }
  const rest: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: () => it };
  return openAnnexB(path, options, (async function* () {
    yield head;
    yield* rest;
  })(), () => void stream.destroy());
}

/** AVCDecoderConfigurationRecord fields from the first SPS and PPS of a stream. */
export function avcConfigFrom(sps: readonly Uint8Array[], pps: readonly Uint8Array[]): AvcConfig {
  const first = sps[0];
  if (first === undefined || first.length < 4 || pps.length === 0) throw new MediaError('the stream has no SPS and PPS before its first picture');
  return { profile: first[1] ?? 0, compatibility: first[2] ?? 0, level: first[3] ?? 0, lengthSize: 4, sps: [...sps], pps: [...pps] };
}

async function openAnnexB(path: string, options: InputOptions, stream: AsyncIterable<Buffer> & { destroy?: () => void }, destroy?: () => void): Promise<MediaInput> {
  const assembler = new AccessUnitAssembler();
  const end: StreamEnd = {};
  const gopper = new GopAssembler();
  // parameter sets seen before the first picture: they go into avcC (later in-band copies stay in the samples)
  const spsNals = new Map<string, Uint8Array>();
  const ppsNals = new Map<string, Uint8Array>();
  let collecting = true;

  const collect = (nal: Uint8Array): void => {
    const t = nalType(nal);
    if (collecting && (t === NalType.SPS || t === NalType.PPS)) {
      const into = t === NalType.SPS ? spsNals : ppsNals;
      const k = Buffer.from(nal).toString('hex');
      if (!into.has(k)) into.set(k, Uint8Array.from(nal)); // a copy: the splitter's views die with their chunk
    }
  };

  const aus = accessUnitsCheckingEnd(stream, assembler, end, collect);
  const first = await aus.next();
  collecting = false;
  if (first.done === true) throw new MediaError(`${path} holds no picture`);
  const sps: Sps | undefined = [...assembler.sps.values()][0];
  if (sps === undefined) throw new MediaError(`${path}: no SPS before the first picture`);
  const fps = sps.frameRate ?? options.fps;
  if (fps === undefined || !(fps > 0 && fps <= 1000)) throw new MediaError(`${path}: the SPS carries no frame rate; give one (--fps)`);
  const duration = Math.round(ANNEXB_TIMESCALE / fps);
  const track: InputTrack = {
    timescale: ANNEXB_TIMESCALE,
    width: sps.width,
    height: sps.height,
    avcC: avcConfigFrom([...spsNals.values()], [...ppsNals.values()]),
  };

  const toSample = (au: AccessUnit): InputSample => {
    refuseBFrames(au, assembler.sps, assembler.pps);
    return { data: writeLengthPrefixed(au.nals, 4), duration, isSync: au.isIdr, compositionOffset: 0 };
  };

  let dts = 0;
  async function* gops(): AsyncGenerator<InputGop> {
    const emit = (g: { accessUnits: AccessUnit[] }): InputGop => {
      const samples = g.accessUnits.map(toSample);
      const gop = { baseDecodeTime: dts, samples };
      dts += samples.length * duration;
      return gop;
    };
    for (const g of gopper.push(first.value as AccessUnit)) yield emit(g);
    for await (const au of aus) for (const g of gopper.push(au)) yield emit(g);
    for (const g of gopper.flush()) yield emit(g);
  }

  return { kind: 'annexb', track, end, gops, close: async () => void (destroy ?? stream.destroy?.bind(stream))?.() };
}

function refuseBFrames(au: AccessUnit, sps: ReadonlyMap<number, Sps>, pps: ReadonlyMap<number, Pps>): void {
  for (const nal of au.nals) {
    const t = nalType(nal);
    if (t === NalType.SLICE || t === NalType.IDR) {
      if (parseSliceHeader(nal, sps, pps).sliceKind === 'B') {
        throw new MediaError('Annex-B input with B-frames: an elementary stream carries no composition times; remux it first (ffmpeg -i in.h264 -c copy in.mp4)');
      }
      return;
    }
  }
}

async function openMp4Input(path: string): Promise<MediaInput> {
  const source = await fileSource(path);
  try {
    const { track, samples } = await openMp4(source);
    if (track.protection !== undefined) throw new MediaError(`${path} is already encrypted (${track.protection.scheme}); decrypt it first`);
    const inputTrack: InputTrack = { timescale: track.timescale, width: track.width, height: track.height, avcC: track.avcC };
    async function* gops(): AsyncGenerator<InputGop> {
      let current: InputSample[] = [];
      let base = 0;
      for await (const s of samples()) {
        if (s.isSync && current.length > 0) {
          yield { baseDecodeTime: base, samples: current };
          current = [];
        }
        if (current.length === 0) base = s.dts;
        current.push({ data: s.data, duration: s.duration, isSync: s.isSync, compositionOffset: s.cts - s.dts });
      }
      if (current.length > 0) yield { baseDecodeTime: base, samples: current };
    }
    return { kind: 'mp4', track: inputTrack, gops, close: () => source.close() };
  } catch (e) {
    await source.close();
    throw e;
  }
}
