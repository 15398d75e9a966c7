/**
 * The camera's own recording pipeline (issue 4, docs/signed-video.md §4): capture → signer (Media Signing SEIs,
 * key in the device's key store) → CENC encryptor → one CMAF fragment per GOP on the "SD card", each with a
 * signed, hash-chained record over the bytes as stored (ciphertext when encrypted). The session opens with a
 * signed session record (identity, start, scheme, KID, the init segment's hash) and a clean shutdown closes it
 * with a signed end record, so a cut end is detectable without any key.
 *
 * Crash safety: each fragment is written to a temporary name and renamed before its record is appended and
 * flushed, so after a crash the recording holds every recorded fragment; at most the last one lacks its record
 * (reported by the verifier as unrecorded, with the end missing).
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, InputError, KeyframeError, MediaError, errnoCode, withIoErrors } from '../errors.js';
import { AccessUnitAssembler, GopAssembler, isVcl, NalType, nalType, parseSps, writeLengthPrefixed } from '../media/h264/index.js';
import type { AccessUnit } from '../media/h264/index.js';
import type { Device } from '../pki/device.js';
import { certsToPem } from '../pki/pem.js';
import { writeChunksAtomic } from '../packager/files.js';
import { ANNEXB_TIMESCALE, annexBEnd, avcConfigFrom, statInput } from '../packager/input.js';
import type { InputGop, MediaInput } from '../packager/input.js';
import { emptyStats, packageParts } from '../packager/package.js';
import type { ContentKey } from '../packager/package.js';
import { CHAIN_FILE, INFO_FILE, INIT_FILE, RECORDS_FILE, segmentName, type RecordingInfo } from '../recording/layout.js';
import { GENESIS, canonicalJson, recordHash, signRecord } from '../recording/records.js';
import { appendToken } from '../recording/token-log.js';
import type { Stamper } from '../tsp/stamper.js';
import type { AnyRecord } from '../recording/records.js';
import { deviceSigner } from '../signing/device.js';
import { isUnitSigningSei } from '../signing/sei.js';
import { openUnitCounter } from '../signing/counter-file.js';
import { writeFileAtomic } from '../util/fs.js';
import { hasPicture, loopedCapture } from './capture.js';

export interface RecordOptions {
  readonly device: Device;
  /** Annex-B H.264 file, looped as live capture. */
  readonly source: string;
  /** Seconds of video to record; without, until `signal` aborts. */
  readonly seconds?: number;
  /** The recording directory (created; must not exist or be empty, unless `replace`). */
  readonly out: string;
  /** Replace an existing recording in `out` (checked by the caller): it is removed once the source is checked. */
  readonly replace?: boolean;
  /** Encrypts with this key ('cbcs' by default); clear CMAF without. */
  readonly key?: ContentKey;
  readonly scheme?: 'cbcs' | 'cenc';
  /** Capture time of the first frame (default now). */
  readonly start?: Date;
  /** Frame rate when the SPS carries none (default 25). */
  readonly fps?: number;
  /** Pace capture in real time (default true). */
  readonly realTime?: boolean;
  /** Aborting stops the capture and closes the session cleanly (end marker, end record). */
  readonly signal?: AbortSignal;
  /** Called after each fragment and its record are on disk: its sequence number, seconds and bytes so far. */
  readonly onFragment?: (seq: number, seconds: number, bytes: number) => void;
  /**
   * Time-stamps every record as it is written (RFC 3161, the token appended to timestamps.jsonl): the recording's
   * proof of existence, which its signatures alone cannot give. A failed time-stamp does not stop the recording; it
   * is counted in the summary.
   */
  readonly stamper?: Stamper;
}

export interface RecordSummary extends RecordingInfo {
  readonly bytes: number;
  readonly seiBytes: number;
  /** Records time-stamped, and those whose time-stamp failed (with a stamper). */
  readonly timestamped: number;
  readonly timestampFailures: readonly string[];
}

const DEFAULT_FPS = 25;

/** Appends records to records.jsonl, each flushed to disk before the next fragment. */
class RecordLog {
  private prev = GENESIS;
  private count = 0;
  private constructor(private readonly fh: Awaited<ReturnType<typeof open>>) {}

  static async create(path: string): Promise<RecordLog> {
    return new RecordLog(await open(path, 'wx', 0o644));
  }

  /** Appends a signed record; returns its position in the file and its hash. */
  async append<const T extends object>(record: T, sign: (d: Uint8Array) => Promise<Uint8Array>): Promise<{ index: number; hash: string }> {
    const signed = (await signRecord({ ...record, prev: this.prev }, sign)) as unknown as AnyRecord;
    await this.fh.write(`${canonicalJson(signed)}\n`);
    await this.fh.datasync();
    this.prev = recordHash(signed);
    return { index: this.count++, hash: this.prev };
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/**
 * Each fragment carries the signature of its own pictures: the signing SEIs (ONVIF's and keyframe's) the signer puts
 * before the first slice of a GOP's first access unit (they sign the GOP before) move to the end of that previous GOP's last access
 * unit, and picture-less access units (the signer's closing SEI) join the picture before them. A deleted fragment
 * then takes its pictures and their signature with it, and is reported missing rather than leaving the GOP before
 * it unsigned; a range export needs no SEI from outside the range but the certificate SEI.
 */
function* withOwnSignatures(aus: Iterable<AccessUnit>, held: { au?: AccessUnit }): Generator<AccessUnit> {
  for (const au of aus) {
    if (held.au !== undefined && !hasPicture(au)) {
      held.au.nals.push(...au.nals);
      continue;
    }
    if (held.au !== undefined && au.isIdr) {
      // the signer puts them right before the first slice (after AUD, parameter sets and other SEIs)
      const moved: Uint8Array[] = [];
      for (let i = 0; i < au.nals.length && !isVcl(nalType(au.nals[i] as Uint8Array)); ) {
        if (isUnitSigningSei(au.nals[i] as Uint8Array)) moved.push(...au.nals.splice(i, 1));
        else i++;
      }
      held.au.nals.push(...moved);
    }
    if (held.au !== undefined) yield held.au;
    held.au = au;
  }
}

function hasBFrames(au: AccessUnit): boolean {
  return au.slices.some((s) => s.header.sliceKind === 'B');
}

async function assertEmptyDir(dir: string): Promise<void> {
  try {
    const entries = await readdir(dir);
    if (entries.length > 0) throw new KeyframeError(ErrorCodes.EXISTS, `refusing to record into ${dir}: it is not empty`);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
    if (errnoCode(e) === 'ENOTDIR') throw new KeyframeError(ErrorCodes.EXISTS, `refusing to record into ${dir}: it is a file`);
    throw e;
  }
}

export async function recordSession(options: RecordOptions): Promise<RecordSummary> {
  const { device } = options;
  if (options.seconds !== undefined && !(options.seconds > 0 && Number.isFinite(options.seconds))) throw new MediaError('the duration must be a positive number of seconds');
  if (device.chain.length === 0) throw new KeyframeError(ErrorCodes.NOT_FOUND, `device ${device.config.serial} has no certificate (DEV/chain.pem): provision it first`);
  const scheme = options.key === undefined ? 'none' : (options.scheme ?? 'cbcs');
  const start = options.start ?? new Date();
  if (options.replace !== true) await assertEmptyDir(options.out);
  const st = await statInput(options.source, 'source');
  if (!st.isFile()) throw new InputError(`source ${options.source} is not a regular file: a source is looped, so it is read from the start again`);
  // a source cut inside its last picture would put that broken picture into every loop, signed as authentic
  const end = await annexBEnd(options.source);
  if (end.cut !== undefined) {
    throw new MediaError(`${options.source} ends inside picture ${end.cut.picture}, which is cut (${end.cut.reason}): refusing to record a damaged source (cut it at a picture boundary)`);
  }

  // the stream's frame rate, from its first SPS (as the signer will see it); B-frames refused up front: an
  // elementary stream carries no composition times
  let fps = options.fps ?? DEFAULT_FPS;
  let probed = 0;
  for await (const au of loopedCapture(options.source, { frames: 300, fps: 1, realTime: false })) {
    if (hasBFrames(au)) throw new MediaError(`${options.source} has B-frames: an elementary stream carries no composition times, and a camera recording has none`);
    if (probed++ > 0) continue;
    for (const n of au.nals) {
      if (nalType(n) !== NalType.SPS) continue;
      const r = parseSps(n).frameRate;
      if (r !== undefined && r > 0 && r <= 1000) fps = r;
    }
  }
  const frames = options.seconds !== undefined ? Math.max(1, Math.round(options.seconds * fps)) : undefined;
  const signer = await deviceSigner(device, { start, fps });
  const label = device.config.keyLabel;
  const sign = (d: Uint8Array): Promise<Uint8Array> => device.store.sign(label, d);
  const counter = openUnitCounter(device.dir);

  if (options.replace === true) await withIoErrors(options.out, 'replace', () => rm(options.out, { recursive: true, force: true }));
  await withIoErrors(options.out, 'create directory', () => mkdir(options.out, { recursive: true }));
  await writeFileAtomic(join(options.out, CHAIN_FILE), certsToPem(device.chain));

  // capture → signer → access units with their signing SEIs → GOPs
  const capture = loopedCapture(options.source, { ...(frames !== undefined ? { frames } : {}), fps, realTime: options.realTime !== false, ...(options.signal !== undefined ? { signal: options.signal } : {}) });
  const signedAus = async function* (): AsyncGenerator<AccessUnit> {
    const assembler = new AccessUnitAssembler();
    const held: { au?: AccessUnit } = {};
    for await (const au of capture) {
      for (const nal of au.nals) for (const out of await signer.push(nal)) yield* withOwnSignatures(assembler.push(out), held);
    }
    for (const out of await signer.finish()) yield* withOwnSignatures(assembler.push(out), held);
    yield* withOwnSignatures(assembler.flush(), held);
    if (held.au !== undefined) yield held.au;
  };
  const aus = signedAus();
  const first = await aus.next();
  if (first.done === true) throw new MediaError(`${options.source} holds no picture`);
  const firstAu = first.value;
  const sps = firstAu.nals.filter((n) => nalType(n) === NalType.SPS);
  const pps = firstAu.nals.filter((n) => nalType(n) === NalType.PPS);
  const spsInfo = sps[0] !== undefined ? parseSps(sps[0]) : undefined;
  if (spsInfo === undefined) throw new MediaError(`${options.source}: the first picture carries no SPS`);
  const frameTicks = Math.round(ANNEXB_TIMESCALE / fps);
  const input: MediaInput = {
    kind: 'annexb',
    track: { timescale: ANNEXB_TIMESCALE, width: spsInfo.width, height: spsInfo.height, avcC: avcConfigFrom(sps, pps) },
    close: async () => undefined,
    gops: async function* (): AsyncGenerator<InputGop> {
      const gopper = new GopAssembler();
      let dts = 0;
      const emit = (g: { accessUnits: AccessUnit[] }): InputGop => {
        if (g.accessUnits.some(hasBFrames)) throw new MediaError(`${options.source} has B-frames: not supported in a camera recording`);
        const samples = g.accessUnits.map((au) => ({ data: writeLengthPrefixed(au.nals, 4), duration: frameTicks, isSync: au.isIdr, compositionOffset: 0 }));
        const gop = { baseDecodeTime: dts, samples };
        dts += samples.length * frameTicks;
        return gop;
      };
      for (const g of gopper.push(firstAu)) yield emit(g);
      for await (const au of aus) for (const g of gopper.push(au)) yield emit(g);
      for (const g of gopper.flush()) yield emit(g);
    },
  };

  const key = options.key;
  const stats = emptyStats();
  const log = await RecordLog.create(join(options.out, RECORDS_FILE));
  let timestamped = 0;
  const timestampFailures: string[] = [];
  const stamp = async (written: { index: number; hash: string }): Promise<void> => {
    if (options.stamper === undefined) return;
    try {
      const { token } = await options.stamper.stamp(Buffer.from(written.hash, 'hex'));
      await appendToken(options.out, written.index, written.hash, token);
      timestamped++;
    } catch (e) {
      timestampFailures.push(`record ${written.index}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const session = Buffer.from(signer.sessionId).toString('hex');
  let fragments = 0;
  let seconds = 0;
  try {
    const parts = packageParts(input, { scheme, ...(key !== undefined ? { keyFor: () => key } : {}) }, stats);
    for await (const part of parts) {
      if (part.kind === 'init') {
        await writeFileAtomic(join(options.out, INIT_FILE), part.data);
        const written = await log.append(
          {
            v: 1,
            kind: 'session',
            session,
            serial: device.config.serial,
            start: start.toISOString(),
            scheme,
            kid: key !== undefined ? Buffer.from(key.kid).toString('hex') : '',
            init: createHash('sha256').update(part.data).digest('hex'),
            counter: Number(await counter.reserve()),
          },
          sign,
        );
        await stamp(written);
        continue;
      }
      const h = createHash('sha256');
      for (const c of part.chunks) h.update(c);
      await writeChunksAtomic(
        join(options.out, segmentName(part.index)),
        (async function* () {
          yield* part.chunks;
        })(),
      );
      const from = part.baseDecodeTime / ANNEXB_TIMESCALE;
      const to = (part.baseDecodeTime + part.duration) / ANNEXB_TIMESCALE;
      await stamp(await log.append({ v: 1, session, seq: part.index, counter: Number(await counter.reserve()), start: from, end: to, sha256: h.digest('hex') }, sign));
      fragments = part.index + 1;
      seconds = to;
      options.onFragment?.(part.index, to, stats.outputBytes);
    }
    await stamp(await log.append({ v: 1, kind: 'end', session, seq: fragments, counter: Number(await counter.reserve()), end: seconds, reason: 0 }, sign));
  } finally {
    await log.close();
  }
  const info: RecordingInfo = {
    v: 1,
    serial: device.config.serial,
    session,
    start: start.toISOString(),
    scheme,
    ...(key !== undefined ? { kid: Buffer.from(key.kid).toString('hex') } : {}),
    fps,
    frames: signer.stats.frames,
    fragments,
    seconds,
    endedCleanly: true,
  };
  await writeFileAtomic(join(options.out, INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);
  return { ...info, bytes: stats.outputBytes, seiBytes: signer.stats.seiBytes, timestamped, timestampFailures };
}
