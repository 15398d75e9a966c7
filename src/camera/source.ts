/**
 * What a camera agent records from (issue 12): a looped file, an ffmpeg test pattern with a pixel clock, an RTSP(S)
 * pull of an existing camera, a V4L2 device. Every source yields H.264 access units in decode order with their
 * times; the pipeline (signer → CENC → CMAF → ring buffer) does not care where they come from.
 */
import type { AccessUnit } from '../media/h264/index.js';

/** Ticks per second of SourceFrame times (MPEG's 90 kHz, as RTP and MPEG-TS carry them). */
export const SOURCE_TIMESCALE = 90_000;

export interface SourceFrame {
  /** One access unit (Annex-B NAL units without start codes), in decode order. */
  readonly au: AccessUnit;
  /** Decode time in SOURCE_TIMESCALE ticks, increasing within a run of the source. */
  readonly dts: number;
  /** Presentation minus decode time, ticks (0 without B-frames; never negative). */
  readonly cto: number;
  /** Wall-clock time the source captured (or received) the picture, ms since the Unix epoch. */
  readonly captured: number;
}

export type SourceEvent =
  | { readonly type: 'frame'; readonly frame: SourceFrame }
  /** The source stopped delivering (RTSP server gone, device unplugged) and will retry; the next frame starts afresh at an IDR picture. */
  | { readonly type: 'lost'; readonly reason: string };

export type SourceState = 'starting' | 'running' | 'reconnecting' | 'stopped' | 'failed';

export interface SourceStatus {
  readonly state: SourceState;
  /** What it is, without secrets (an RTSP URL's password is never shown). */
  readonly description: string;
  readonly frames: number;
  readonly reconnects: number;
  readonly lastError?: string;
}

export interface VideoSource {
  /**
   * Frames until `signal` aborts (then it returns after cleaning up any child process). Transient failures are
   * retried inside, with back-off, and reported as a 'lost' event; a permanent one (no such file, a stream that is
   * not H.264) throws a typed error naming the source.
   */
  events(signal: AbortSignal): AsyncIterable<SourceEvent>;
  status(): SourceStatus;
}
