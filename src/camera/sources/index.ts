/**
 * The camera agent's video sources (issue 12): `createSource(camera.json's source)` → VideoSource.
 * See spec.ts for the accepted forms, pixel-clock.ts for the clock the test pattern draws.
 */
export { createSource, parseSourceSpec } from './spec.js';
export type { SourceSpec } from './spec.js';
export { SourceError, FfmpegSource } from './base.js';
export type { FfmpegSourceOptions, RetryOptions } from './base.js';
export { PatternSource, resolvePatternOptions } from './pattern.js';
export type { PatternOptions } from './pattern.js';
export { FileSource } from './file.js';
export type { FileOptions } from './file.js';
export { RtspSource, redactUrl, parseRtspUrl } from './rtsp.js';
export type { RtspOptions } from './rtsp.js';
export { V4l2Source } from './v4l2.js';
export type { V4l2Options } from './v4l2.js';
export { readPixelClock, drawPixelClock, pixelClockCell, pixelClockBits, PIXEL_CLOCK_CELLS } from './pixel-clock.js';
export { liveFfmpegPids } from './ffmpeg.js';
export { TsDemuxer, writeTs, NotH264Error } from './mpegts.js';
export { TsH264Reader } from './ts-h264.js';
export type { TimedAccessUnit } from './ts-h264.js';
export { DtsFromPts } from './dts.js';
