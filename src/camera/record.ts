/**
 * `keyframe record`: the camera pipeline (src/camera/pipeline.ts) over a looped file, into one recording directory
 * — the camera's own recording of issue 4 (docs/signed-video.md §4): capture → signer (Media Signing SEIs, key in
 * the device's key store) → CENC encryptor → one CMAF fragment per GOP, each with a signed, hash-chained record over
 * the bytes as stored (ciphertext when encrypted). The session opens with a signed session record (identity,
 * start, scheme, KID, the init segment's hash) and a clean shutdown closes it with a signed end record, so a cut
 * end is detectable without any key.
 *
 * Crash safety: each fragment is written to a temporary name and renamed before its record is appended and
 * flushed, so after a crash the recording holds every recorded fragment; at most the last one lacks its record
 * (reported by the verifier as unrecorded, with the end missing).
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, InputError, KeyframeError, MediaError, errnoCode, withIoErrors } from '../errors.js';
import { NalType, nalType, parseSps } from '../media/h264/index.js';
import type { Device } from '../pki/device.js';
import { annexBEnd, statInput } from '../packager/input.js';
import type { ContentKey } from '../packager/package.js';
import { INFO_FILE, type RecordingInfo } from '../recording/layout.js';
import { recordHash, type AnyRecord } from '../recording/records.js';
import { appendToken } from '../recording/token-log.js';
import type { Stamper } from '../tsp/stamper.js';
import { writeFileAtomic } from '../util/fs.js';
import { loopedCapture } from './capture.js';
import { FileSource, hasBFrames } from './file-source.js';
import { devicePipelineOptions } from './device.js';
import { StaticKeyProvider } from './keys.js';
import { runPipeline, type FragmentMeta, type LostRange, type ObjectSink, type SessionStart, type SessionSummary } from './pipeline.js';
import { SessionDirWriter } from './session-dir.js';

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

/** One session into one recording directory, each record time-stamped when a stamper is given. */
class RecordingDirSink implements ObjectSink {
  private session: string | undefined;
  readonly writer: SessionDirWriter;
  timestamped = 0;
  readonly timestampFailures: string[] = [];
  constructor(
    private readonly dir: string,
    private readonly stamper: Stamper | undefined,
  ) {
    this.writer = new SessionDirWriter(dir);
  }
  async beginSession(s: SessionStart): Promise<void> {
    if (this.session !== undefined) throw new MediaError('the source was lost: a recording directory holds one session');
    this.session = s.session;
    await this.writer.chain(s.chainPem);
  }
  init(_session: string, data: Uint8Array): Promise<void> {
    return this.writer.init(data);
  }
  async segment(_session: string, seq: number, chunks: readonly Uint8Array[], _meta: FragmentMeta): Promise<readonly LostRange[]> {
    await this.writer.segment(seq, chunks);
    return [];
  }
  async record(_session: string, n: number, line: string, record: AnyRecord): Promise<void> {
    await this.writer.record(line);
    if (this.stamper === undefined) return;
    const hash = recordHash(record);
    try {
      const { token } = await this.stamper.stamp(Buffer.from(hash, 'hex'));
      await appendToken(this.dir, n, hash, token);
      this.timestamped++;
    } catch (e) {
      this.timestampFailures.push(`record ${n}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  endSession(): Promise<void> {
    return Promise.resolve();
  }
}

export async function recordSession(options: RecordOptions): Promise<RecordSummary> {
  const { device } = options;
  if (options.seconds !== undefined && !(options.seconds > 0 && Number.isFinite(options.seconds))) throw new MediaError('the duration must be a positive number of seconds');
  if (device.chain.length === 0) throw new KeyframeError(ErrorCodes.NOT_FOUND, `device ${device.config.serial} has no certificate (DEV/chain.pem): provision it first`);
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

  if (options.replace === true) await withIoErrors(options.out, 'replace', () => rm(options.out, { recursive: true, force: true }));
  await withIoErrors(options.out, 'create directory', () => mkdir(options.out, { recursive: true }));

  const source = new FileSource({ path: options.source, fps, start, realTime: options.realTime !== false, ...(frames !== undefined ? { frames } : {}) });
  const sink = new RecordingDirSink(options.out, options.stamper);
  const abort = new AbortController();
  const onAbort = (): void => abort.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted === true) abort.abort();
  let sessions: SessionSummary[];
  try {
    sessions = await runPipeline(source.events(abort.signal), sink, devicePipelineOptions(device, {
      ...(options.key !== undefined ? { keys: new StaticKeyProvider(options.key), scheme: options.scheme ?? 'cbcs' } : {}),
      fps,
      ...(options.onFragment !== undefined ? { onFragment: (f: { seq: number; seconds: number; bytes: number }) => options.onFragment?.(f.seq, f.seconds, f.bytes) } : {}),
    }));
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await sink.writer.close();
  }
  const s = sessions[0];
  if (s === undefined) throw new MediaError(`${options.source} holds no picture`);
  const info: RecordingInfo = {
    v: 1,
    serial: device.config.serial,
    session: s.session,
    start: s.start,
    scheme: s.scheme,
    ...(s.kid !== undefined ? { kid: s.kid } : {}),
    fps,
    frames: s.frames,
    fragments: s.fragments,
    seconds: s.seconds,
    endedCleanly: true,
  };
  await writeFileAtomic(join(options.out, INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);
  return { ...info, bytes: s.bytes, seiBytes: s.seiBytes, timestamped: sink.timestamped, timestampFailures: sink.timestampFailures };
}
