/**
 * ffmpeg child processes for the video sources: spawned with MPEG-TS on stdout, stderr kept bounded (the last few
 * KiB, for the error message), killed when the consumer stops or the signal aborts, and never left behind:
 *
 * - every live child is SIGKILLed from a process 'exit' handler (a normal exit, process.exit from a signal
 *   handler, as the CLI's SIGINT/SIGTERM handling does);
 * - if this process dies without running handlers (SIGKILL), the child's stdout pipe loses its reader and ffmpeg
 *   dies of EPIPE at its next write; an RTSP pull stalled on the network is bounded by its own I/O time-out.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { MediaError } from '../../errors.js';
import { TsH264Reader, type TimedAccessUnit } from './ts-h264.js';

/** How ffmpeg is run: its path and an optional niceness (tests run it at 19). */
export interface FfmpegOptions {
  /** Path or name of the ffmpeg binary (default `ffmpeg`). */
  readonly ffmpegPath?: string;
  /** Run through `nice -n N` (a background recorder should not starve the rest of the machine). */
  readonly niceness?: number;
}

export interface FfmpegProcessOptions extends FfmpegOptions {
  /** Removes secrets (an RTSP password) from stderr before anything keeps or shows it. */
  readonly redact?: (text: string) => string;
}

/** The MPEG-TS output arguments shared by every source: copy-safe timestamps, flushed per packet, PES lengths. */
export const TS_OUTPUT_ARGS: readonly string[] = ['-f', 'mpegts', '-muxdelay', '0', '-muxpreload', '0', '-flush_packets', '1', '-omit_video_pes_length', '0', 'pipe:1'];

const STDERR_TAIL_BYTES = 8192;

const _live = new Set<ChildProcessByStdio<null, Readable, Readable>>();
let _exitHookInstalled = false;

function _installExitHook(): void {
  if (_exitHookInstalled) return;
  _exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of _live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** Process ids of the ffmpeg children alive now (for status pages and tests). */
export function liveFfmpegPids(): number[] {
  return [..._live].map((c) => c.pid).filter((p): p is number => p !== undefined);
}

/** ffmpeg ended with an error, or could not be started; `stderr` is its last output (bounded). */
export class FfmpegExitError extends MediaError {
  readonly status: number | null;
  readonly exitSignal: NodeJS.Signals | null;
  readonly stderr: string;

  constructor(message: string, exitCode: number | null, exitSignal: NodeJS.Signals | null, stderr: string) {
    super(message);
    this.name = 'FfmpegExitError';
    this.status = exitCode;
    this.exitSignal = exitSignal;
    this.stderr = stderr;
  }
}

/** ffmpeg's closing lines that say nothing about the failure. */
const _NOISE = [/^To ignore this, add a trailing '\?' to the map\.?$/, /^Exiting normally/, /^Conversion failed!?$/];

/** The last meaningful line of ffmpeg's stderr, the one that usually says what went wrong. */
export function lastLine(stderr: string): string {
  const lines = stderr
    .split(/\r?\n|\r/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !_NOISE.some((n) => n.test(l)));
  return lines.at(-1) ?? '';
}

/** A running ffmpeg with MPEG-TS on stdout. */
export class FfmpegProcess {
  private readonly child: ChildProcessByStdio<null, Readable, Readable>;
  private tail = '';
  private readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private killTimer: NodeJS.Timeout | undefined;
  private spawnError: Error | undefined;
  /** Called with each chunk of stderr (already bounded per chunk), e.g. to spot the input's codec early. */
  onStderr: ((text: string) => void) | undefined;

  private readonly redact: (text: string) => string;

  constructor(args: readonly string[], options: FfmpegProcessOptions = {}) {
    this.redact = options.redact ?? ((t) => t);
    const bin = options.ffmpegPath ?? 'ffmpeg';
    const [cmd, argv] = options.niceness !== undefined ? ['nice', ['-n', String(options.niceness), bin, ...args]] : [bin, [...args]];
    _installExitHook();
    this.child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    _live.add(this.child);
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (text: string) => {
      this.tail = this.tail + text;
      if (this.tail.length > STDERR_TAIL_BYTES) {
        // keep whole lines only, so that redaction never meets half a secret
        const cut = this.tail.indexOf('\n', this.tail.length - STDERR_TAIL_BYTES);
        this.tail = cut < 0 ? '' : this.tail.slice(cut + 1);
      }
      this.onStderr?.(this.redact(text));
    });
    this.done = new Promise((resolve) => {
      this.child.once('error', (e) => {
        this.spawnError = e;
        _live.delete(this.child);
        resolve({ code: null, signal: null });
      });
      this.child.once('close', (code, signal) => {
        _live.delete(this.child);
        if (this.killTimer !== undefined) clearTimeout(this.killTimer);
        resolve({ code, signal });
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get stdout(): Readable {
    return this.child.stdout;
  }

  /** The last STDERR_TAIL_BYTES of stderr. */
  get stderr(): string {
    return this.redact(this.tail);
  }

  /** Asks ffmpeg to stop (SIGTERM), then SIGKILL after `graceMs`; resolves when it has exited. */
  async stop(graceMs = 2000): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null && this.spawnError === undefined) {
      this.child.kill('SIGTERM');
      this.killTimer ??= setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    }
    await this.done;
  }

  /** Resolves when ffmpeg has exited; rejects with FfmpegExitError on failure (not when stopped by us). */
  async exited(stoppedByUs: boolean): Promise<void> {
    const { code, signal } = await this.done;
    if (this.spawnError !== undefined) throw new FfmpegExitError(`cannot run ffmpeg: ${this.spawnError.message}`, null, null, '');
    if (stoppedByUs || code === 0) return;
    const tail = this.stderr;
    const why = lastLine(tail) || (signal !== null ? `killed by ${signal}` : `exit status ${code}`);
    throw new FfmpegExitError(`ffmpeg failed: ${why}`, code, signal, tail);
  }
}

export interface TsRunOptions extends FfmpegProcessOptions {
  /** Stops the run: ffmpeg is stopped and the iteration ends quietly. */
  readonly signal: AbortSignal;
  /** Stop ffmpeg when no access unit came for this long (a stalled input), ms; the run then fails. */
  readonly stallMs?: number;
  /** Called once the process is started. */
  readonly onStart?: (proc: FfmpegProcess) => void;
}

/** ffmpeg ran but delivered nothing for too long. */
export class StallError extends MediaError {
  constructor(ms: number) {
    super(`no picture for ${Math.round(ms / 1000)} s`);
    this.name = 'StallError';
  }
}

/**
 * Runs ffmpeg with `args` (which must end in TS_OUTPUT_ARGS) and yields its access units with their times, until it
 * ends (returns), fails (throws FfmpegExitError, or what the demuxer throws), stalls (StallError) or `signal`
 * aborts (returns). ffmpeg is always stopped before this returns or throws.
 */
export async function* ffmpegAccessUnits(args: readonly string[], options: TsRunOptions): AsyncGenerator<TimedAccessUnit> {
  const { signal } = options;
  if (signal.aborted) return;
  const proc = new FfmpegProcess(args, options);
  options.onStart?.(proc);
  let stoppedByUs = false;
  let stalled = false;
  const stop = (): void => {
    stoppedByUs = true;
    void proc.stop();
  };
  signal.addEventListener('abort', stop, { once: true });
  let stallTimer: NodeJS.Timeout | undefined;
  const armStall = (): void => {
    if (options.stallMs === undefined) return;
    if (stallTimer !== undefined) clearTimeout(stallTimer);
    stallTimer = setTimeout(() => {
      stalled = true;
      stoppedByUs = true;
      void proc.stop();
    }, options.stallMs);
  };
  const reader = new TsH264Reader({ pesIsAccessUnit: true });
  try {
    armStall();
    for await (const chunk of proc.stdout) {
      const aus = reader.push(chunk as Buffer);
      if (aus.length > 0) armStall();
      for (const au of aus) {
        if (signal.aborted) return;
        yield au;
      }
    }
    if (!signal.aborted && !stalled) for (const au of reader.flush()) yield au;
    if (stalled && !signal.aborted) throw new StallError(options.stallMs ?? 0);
    await proc.exited(stoppedByUs);
  } finally {
    if (stallTimer !== undefined) clearTimeout(stallTimer);
    signal.removeEventListener('abort', stop);
    await proc.stop();
  }
}
