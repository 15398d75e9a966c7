/**
 * A looped Annex-B file as a VideoSource (tests, demos, `keyframe record`): src/camera/capture.ts's looped capture,
 * its pictures timed by the frame rate from a start time. An elementary stream carries no composition times, so
 * a file with B-frames is refused (remux it to MP4, or serve it over RTSP, whose source gives them).
 */
import { MediaError } from '../errors.js';
import type { AccessUnit } from '../media/h264/index.js';
import { hasPicture, loopedCapture } from './capture.js';
import { SOURCE_TIMESCALE, type SourceEvent, type SourceStatus, type VideoSource } from './source.js';

export interface FileSourceOptions {
  readonly path: string;
  readonly fps: number;
  /** Pictures in all (the file is looped as often as needed); without, until the signal aborts. */
  readonly frames?: number;
  /** Pace in real time (default true). */
  readonly realTime?: boolean;
  /** Capture time of the first picture (default: when the first picture is delivered). */
  readonly start?: Date;
}

export function hasBFrames(au: AccessUnit): boolean {
  return au.slices.some((s) => s.header.sliceKind === 'B');
}

export class FileSource implements VideoSource {
  private state: SourceStatus['state'] = 'starting';
  private frames = 0;
  private lastError: string | undefined;
  constructor(private readonly o: FileSourceOptions) {}

  async *events(signal: AbortSignal): AsyncIterable<SourceEvent> {
    const ticks = SOURCE_TIMESCALE / this.o.fps;
    let startMs = this.o.start?.getTime();
    let i = 0;
    this.state = 'running';
    try {
      for await (const au of loopedCapture(this.o.path, { fps: this.o.fps, realTime: this.o.realTime !== false, signal, ...(this.o.frames !== undefined ? { frames: this.o.frames } : {}) })) {
        if (hasBFrames(au)) throw new MediaError(`${this.o.path} has B-frames: an elementary stream carries no composition times`);
        startMs ??= Date.now();
        const picture = hasPicture(au);
        yield { type: 'frame', frame: { au, dts: Math.round(i * ticks), cto: 0, captured: startMs + (i * 1000) / this.o.fps } };
        if (picture) {
          i++;
          this.frames++;
        }
      }
      this.state = 'stopped';
    } catch (e) {
      this.state = 'failed';
      this.lastError = e instanceof Error ? e.message : String(e);
      throw e;
    }
  }

  status(): SourceStatus {
    return { state: this.state, description: `file ${this.o.path} (looped, ${this.o.fps} fps)`, frames: this.frames, reconnects: 0, ...(this.lastError !== undefined ? { lastError: this.lastError } : {}) };
  }
}
