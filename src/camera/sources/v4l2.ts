/**
 * V4L2 capture device (`/dev/videoN`): ffmpeg's v4l2 input, encoded with libx264 (camera-like: no B-frames by
 * default, a fixed GOP). A device that does not exist (or is not a character device) is a permanent SourceError;
 * a device that goes away while capturing is retried ('lost', 'reconnecting') until it comes back.
 */
import { statSync } from 'node:fs';
import { FfmpegSource, SourceError, type FfmpegSourceOptions, type RunPlan } from './base.js';
import { TS_OUTPUT_ARGS } from './ffmpeg.js';
import { x264Args } from './pattern.js';

export interface V4l2Options {
  readonly width?: number;
  readonly height?: number;
  readonly fps?: number;
  readonly gop?: number;
  readonly bitrate?: number;
  readonly bframes?: number;
  /** The device's pixel format for ffmpeg's -input_format (e.g. mjpeg, yuyv422); default: the driver's. */
  readonly inputFormat?: string;
}

export class V4l2Source extends FfmpegSource {
  constructor(
    readonly device: string,
    private readonly v4l2: V4l2Options = {},
    ffmpeg: FfmpegSourceOptions = {},
  ) {
    super(`V4L2 device ${device}`, ffmpeg);
    if (!/^\/dev\/[A-Za-z0-9_./-]+$/.test(device)) throw new SourceError(this.description, 'a V4L2 device is a path under /dev, e.g. /dev/video0', { permanent: true, code: 'KF_ERR_INPUT' });
  }

  /** Throws the permanent SourceError when the device does not exist or is not a character device. */
  checkDevice(): void {
    let isChar: boolean;
    try {
      isChar = statSync(this.device).isCharacterDevice();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new SourceError(this.description, code === 'ENOENT' ? 'no such device' : `cannot open it (${code ?? String(e)})`, { permanent: true, code: code === 'ENOENT' ? 'KF_ERR_NOT_FOUND' : 'KF_ERR_IO' });
    }
    if (!isChar) throw new SourceError(this.description, 'not a character device', { permanent: true, code: 'KF_ERR_INPUT' });
  }

  private started = false;

  protected plan(): RunPlan {
    // a device missing at start is a configuration error; one that disappears later may come back (USB)
    if (!this.started) this.checkDevice();
    this.started = true;
    const o = this.v4l2;
    const fps = o.fps ?? 25;
    const input = [
      '-f', 'v4l2', ...(o.inputFormat !== undefined ? ['-input_format', o.inputFormat] : []),
      ...(o.width !== undefined && o.height !== undefined ? ['-video_size', `${o.width}x${o.height}`] : []), '-framerate', String(fps),
    ];
    const args = ['-nostdin', '-hide_banner', '-loglevel', 'error', ...input, '-i', this.device, '-map', '0:v:0', ...x264Args({ fps, gop: o.gop ?? Math.round(fps * 2), bframes: o.bframes ?? 0, bitrate: o.bitrate }), ...TS_OUTPUT_ARGS];
    return { args, stallMs: 10_000 };
  }

  protected retryAfter(): boolean {
    return true;
  }
}
