/**
 * What every ffmpeg-backed source shares: runs of ffmpeg turned into one SourceFrame sequence whose DTS keep
 * increasing across runs (reconnects, restarts), each run starting at an IDR picture; retries with exponential
 * back-off and a 'lost' event when a run that delivered pictures ends; status; errors that name the source.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyframeError, MediaError } from '../../errors.js';
import { isVcl, nalType } from '../../media/h264/index.js';
import type { SourceEvent, SourceState, SourceStatus, VideoSource } from '../source.js';
import { DEFAULT_REORDER_DEPTH, DtsFromPts, reorderDepthOf } from './dts.js';
import { ffmpegAccessUnits, FfmpegExitError, type FfmpegOptions, type FfmpegProcess } from './ffmpeg.js';
import type { TimedAccessUnit } from './ts-h264.js';

/** A source failed for good (no such file or device, a stream that is not H.264): retrying will not help. */
export class SourceError extends KeyframeError {
  /** The source's description (never with credentials). */
  readonly source: string;
  readonly permanent: boolean;

  constructor(source: string, message: string, options: { permanent: boolean; code?: KeyframeError['code']; cause?: unknown }) {
    super(options.code ?? 'KF_ERR_MEDIA', `${source}: ${message}`, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'SourceError';
    this.source = source;
    this.permanent = options.permanent;
  }
}

export interface RetryOptions {
  /** First back-off delay, ms (default 500). */
  readonly initialMs?: number;
  /** Longest back-off delay, ms (default 10 000). */
  readonly maxMs?: number;
}

export interface FfmpegSourceOptions extends FfmpegOptions {
  readonly retry?: RetryOptions;
}

/** One run of ffmpeg as a source subclass defines it. */
export interface RunPlan {
  readonly args: readonly string[];
  /** Capture time (ms since the epoch) of an access unit with this unwrapped PTS, when the run knows it exactly. */
  readonly capturedAt?: (pts: number) => number;
  /** Stop the run when no picture came for this long, ms. */
  readonly stallMs?: number;
  /**
   * The run's DTS are placeholders (an RTSP pull, see rtsp.ts): only the PTS count, DTS are derived from them
   * (DtsFromPts), and an access unit whose PTS equals its placeholder DTS had no time stamp and is dropped.
   */
  readonly ptsOnly?: boolean;
  /** A run that ends normally after delivering pictures is the end of one loop: start the next at once, nothing lost. */
  readonly endIsLoop?: boolean;
}

/** Maps run-local times to the source's increasing timeline. */
class Timeline {
  private lastDts: number | undefined;
  private lastStep = 3000;
  /** Added to a run's DTS. */
  private offset = 0;
  private runFirstDts: number | undefined;

  startRun(): void {
    this.runFirstDts = undefined;
  }

  /** The source DTS of a run-local DTS. */
  map(dts: number): number {
    if (this.runFirstDts === undefined) {
      this.runFirstDts = dts;
      this.offset = this.lastDts === undefined ? -dts : this.lastDts + this.lastStep - dts;
    }
    let out = dts + this.offset;
    if (this.lastDts !== undefined) {
      if (out <= this.lastDts) {
        // a run-local step backwards (a loop that did not add its duration, a broken stream): keep increasing
        this.offset += this.lastDts + this.lastStep - out;
        out = this.lastDts + this.lastStep;
      } else {
        this.lastStep = Math.min(out - this.lastDts, 90_000);
      }
    }
    this.lastDts = out;
    return out;
  }
}

/** Wall-clock anchoring of PTS for sources that do not know their capture time: arrival of the first picture. */
class Anchor {
  private wall = 0;
  private pts = 0;
  private set = false;

  reset(): void {
    this.set = false;
  }

  captured(pts: number, now: number): number {
    if (this.set) {
      const predicted = this.wall + (pts - this.pts) / 90;
      // a picture cannot arrive before it was captured (allowing for B-frame reordering), and a source clock that has
      // drifted far from ours (or a stall) re-anchors
      if (predicted <= now + 1000 && predicted >= now - 5000) return Math.round(predicted);
    }
    this.wall = now;
    this.pts = pts;
    this.set = true;
    return now;
  }
}

function _hasPicture(t: TimedAccessUnit): boolean {
  return t.au.nals.some((n) => isVcl(nalType(n)));
}

/** The base of the ffmpeg-backed sources: subclasses say what to run and which failures are permanent. */
export abstract class FfmpegSource implements VideoSource {
  protected state: SourceState = 'stopped';
  protected frames = 0;
  protected reconnects = 0;
  protected lastError: string | undefined;
  private readonly timeline = new Timeline();
  private readonly anchor = new Anchor();
  private running = false;

  constructor(
    readonly description: string,
    protected readonly options: FfmpegSourceOptions,
  ) {}

  /** What to run next (called before each run); may throw a permanent SourceError (a missing file). */
  protected abstract plan(): RunPlan | Promise<RunPlan>;

  /** Whether a run that ended (normally, or with `error`) should be retried after back-off. */
  protected abstract retryAfter(error: unknown): boolean;

  /** A permanent error for `error`, or undefined if it is transient. Default: a KeyframeError that is not an ffmpeg exit. */
  protected permanentError(error: unknown): SourceError | undefined {
    if (error instanceof SourceError) return error.permanent ? error : undefined;
    return undefined;
  }

  /** Called with each ffmpeg process as it starts (to watch its stderr). */
  protected onStart(_proc: FfmpegProcess): void {}

  /** The message of an error as it may be shown (subclasses remove secrets). */
  protected redact(text: string): string {
    return text;
  }

  status(): SourceStatus {
    return {
      state: this.state,
      description: this.description,
      frames: this.frames,
      reconnects: this.reconnects,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  async *events(signal: AbortSignal): AsyncGenerator<SourceEvent> {
    if (this.running) throw new SourceError(this.description, 'events() is already running', { permanent: true, code: 'KF_ERR_INTERNAL' });
    this.running = true;
    this.state = 'starting';
    let attempt = 0;
    try {
      while (!signal.aborted) {
        let delivered = 0;
        let failure: unknown;
        try {
          const plan = await this.plan();
          this.timeline.startRun();
          this.anchor.reset();
          let sawIdr = false;
          let derive: DtsFromPts | undefined;
          for await (const t of ffmpegAccessUnits(plan.args, {
            ...this.options,
            signal,
            redact: (text) => this.redact(text),
            onStart: (proc) => this.onStart(proc),
            ...(plan.stallMs !== undefined ? { stallMs: plan.stallMs } : {}),
          })) {
            if (!_hasPicture(t)) continue;
            if (plan.ptsOnly === true && t.pts === t.dts) continue;
            if (!sawIdr) {
              if (!t.au.isIdr) continue;
              sawIdr = true;
              if (plan.ptsOnly === true) derive = new DtsFromPts(reorderDepthOf(t.au) ?? DEFAULT_REORDER_DEPTH);
            }
            const runDts = derive !== undefined ? derive.next(t.pts) : t.dts;
            const dts = this.timeline.map(runDts);
            const cto = Math.max(0, t.pts - runDts);
            const captured = plan.capturedAt !== undefined ? plan.capturedAt(t.pts) : this.anchor.captured(t.pts, Date.now());
            this.frames++;
            delivered++;
            this.state = 'running';
            attempt = 0;
            yield { type: 'frame', frame: { au: t.au, dts, cto, captured } };
            if (signal.aborted) break;
          }
          if (signal.aborted) break;
          if (plan.endIsLoop === true && delivered > 0) continue;
          failure = new MediaError('the stream ended');
        } catch (e) {
          if (signal.aborted) break;
          failure = e;
        }
        const permanent = this.permanentError(failure);
        if (permanent !== undefined) {
          this.lastError = this.redact(permanent.message);
          this.state = 'failed';
          throw permanent;
        }
        const message = this.redact(failure instanceof Error ? failure.message : String(failure));
        this.lastError = message;
        if (!this.retryAfter(failure)) {
          this.state = 'failed';
          if (failure instanceof SourceError) throw failure;
          throw new SourceError(this.description, message, { permanent: true, cause: failure instanceof FfmpegExitError ? undefined : failure });
        }
        this.state = 'reconnecting';
        if (delivered > 0) {
          this.reconnects++;
          yield { type: 'lost', reason: message };
        }
        const initial = this.options.retry?.initialMs ?? 500;
        const max = this.options.retry?.maxMs ?? 10_000;
        const delay = Math.min(max, initial * 2 ** Math.min(attempt, 20));
        attempt++;
        try {
          await sleep(delay, undefined, { signal });
        } catch {
          break;
        }
      }
      this.state = 'stopped';
    } finally {
      if (this.state !== 'failed') this.state = 'stopped';
      this.running = false;
    }
  }
}
