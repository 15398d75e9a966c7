/**
 * Test-pattern source: ffmpeg's testsrc2 encoded with libx264, paced in real time, with the capture time of every
 * picture drawn into it as a pixel clock (pixel-clock.ts). Each frame's time stamp is the wall clock at the moment
 * the frame leaves the filter graph (setpts from RTCTIME), so the drawn time, SourceFrame.captured and the PTS
 * all say the same thing: when the picture was "captured".
 */
import { SourceError, FfmpegSource, type FfmpegSourceOptions, type RunPlan } from './base.js';
import { TS_OUTPUT_ARGS } from './ffmpeg.js';
import { pixelClockCell, pixelClockFilter } from './pixel-clock.js';

export interface PatternOptions {
  readonly width?: number;
  readonly height?: number;
  readonly fps?: number;
  /** Keyframe interval in pictures (default 2 s worth). */
  readonly gop?: number;
  /** Target bitrate in bit/s (default: x264's CRF 23). */
  readonly bitrate?: number;
  /** B-frames between references (default 0: baseline profile, as cameras stream; > 0: main profile). */
  readonly bframes?: number;
  /** Draw the pixel clock (default true; needs a picture at least 256 pixels wide). */
  readonly clock?: boolean;
  /** The lavfi source (default testsrc2). */
  readonly pattern?: 'testsrc2' | 'testsrc' | 'smptebars' | 'mandelbrot';
}

export type ResolvedPatternOptions = Required<Omit<PatternOptions, 'bitrate'>> & { readonly bitrate: number | undefined };

export function resolvePatternOptions(o: PatternOptions): ResolvedPatternOptions {
  const r = { width: o.width ?? 640, height: o.height ?? 360, fps: o.fps ?? 25, bframes: o.bframes ?? 0, clock: o.clock ?? true, pattern: o.pattern ?? 'testsrc2', bitrate: o.bitrate };
  const gop = o.gop ?? Math.max(1, Math.round(r.fps * 2));
  const bad = (what: string): never => {
    throw new SourceError(describePattern({ ...r, gop }), what, { permanent: true, code: 'KF_ERR_INPUT' });
  };
  if (!Number.isInteger(r.width) || !Number.isInteger(r.height) || r.width < 16 || r.height < 16 || r.width > 7680 || r.height > 4320 || r.width % 2 !== 0 || r.height % 2 !== 0) bad(`picture size ${r.width}×${r.height} must be even and 16–7680 × 16–4320`);
  if (!(r.fps > 0 && r.fps <= 120)) bad(`frame rate ${r.fps} is out of range (0–120]`);
  if (!Number.isInteger(gop) || gop < 1 || gop > 3000) bad(`GOP ${gop} is out of range 1–3000`);
  if (!Number.isInteger(r.bframes) || r.bframes < 0 || r.bframes > 4) bad(`bframes ${r.bframes} is out of range 0–4`);
  if (r.bitrate !== undefined && !(Number.isInteger(r.bitrate) && r.bitrate >= 10_000 && r.bitrate <= 100_000_000)) bad(`bitrate ${r.bitrate} is out of range 10 kbit/s–100 Mbit/s`);
  if (r.clock && pixelClockCell(r.width) === 0) bad(`a picture ${r.width} wide is too narrow for the pixel clock (256 or more)`);
  return { ...r, gop };
}

function describePattern(o: { pattern: string; width: number; height: number; fps: number; gop: number; bframes: number }): string {
  return `test pattern ${o.pattern} ${o.width}x${o.height}@${o.fps} gop ${o.gop}${o.bframes > 0 ? ` bframes ${o.bframes}` : ''}`;
}

/** libx264 arguments shared by the sources that encode (test pattern, V4L2). */
export function x264Args(o: { fps: number; gop: number; bframes: number; bitrate: number | undefined }): string[] {
  const rate = o.bitrate !== undefined ? ['-b:v', String(o.bitrate), '-maxrate', String(o.bitrate), '-bufsize', String(o.bitrate * 2)] : [];
  return [
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-bf', String(o.bframes), '-profile:v', o.bframes > 0 ? 'main' : 'baseline',
    '-g', String(o.gop), '-keyint_min', String(o.gop), '-sc_threshold', '0', ...rate, '-pix_fmt', 'yuv420p',
  ];
}

export class PatternSource extends FfmpegSource {
  readonly settings: ResolvedPatternOptions;

  constructor(options: PatternOptions = {}, ffmpeg: FfmpegSourceOptions = {}) {
    const r = resolvePatternOptions(options);
    super(describePattern(r), ffmpeg);
    this.settings = r;
  }

  protected plan(): RunPlan {
    const o = this.settings;
    // the time stamps count 90 kHz ticks of wall clock since `origin`, from RTCTIME (µs) as each frame is filtered
    const origin = Date.now();
    const timed = `[0:v]settb=1/90000,setpts='(RTCTIME-${origin * 1000})*0.09',format=yuv420p`;
    const graph = o.clock ? `${timed}[kf_t];${pixelClockFilter(o.width, 'kf_t', 'kf_out', origin)}` : `${timed}[kf_out]`;
    const args = [
      '-nostdin', '-hide_banner', '-loglevel', 'error', '-re',
      '-f', 'lavfi', '-i', `${o.pattern}=size=${o.width}x${o.height}:rate=${o.fps}`,
      '-filter_complex', graph, '-map', '[kf_out]',
      '-fps_mode', 'passthrough', '-enc_time_base', '1/90000', '-copyts',
      ...x264Args(o), ...TS_OUTPUT_ARGS,
    ];
    return { args, capturedAt: (pts) => origin + Math.round(pts / 90), stallMs: 10_000 };
  }

  /** ffmpeg making a test pattern should not fail; if it does (killed, out of memory), try again. */
  protected retryAfter(): boolean {
    return true;
  }
}
