/**
 * A source as camera.json names it, and the VideoSource made from it.
 *
 * String forms:
 *   "rtsp://[user:pass@]host[:port]/path", "rtsps://…"            RTSP(S) pull
 *   "pattern" or "pattern:width=640,height=360,fps=25,gop=50,bitrate=1000000,bframes=0,clock=true"
 *   "file:/path/clip.mp4" (or a path ending .mp4/.h264/.264: "/path/clip.mp4")   looped file
 *   "v4l2:/dev/video0" or "/dev/video0"                              V4L2 device
 * Object forms (the same fields):
 *   { "type": "rtsp", "url": "rtsps://…", "ioTimeoutMs": 5000, "stallMs": 10000 }
 *   { "type": "pattern", "width": 640, "height": 360, "fps": 25, "gop": 50, "bitrate": 1000000, "bframes": 0, "clock": true }
 *   { "type": "file", "path": "/path/clip.mp4", "fps": 25, "once": false }
 *   { "type": "v4l2", "device": "/dev/video0", "width": 1280, "height": 720, "fps": 25, "gop": 50, "bitrate": 2000000, "inputFormat": "mjpeg" }
 * Anything else is an InputError naming what is wrong (never echoing an RTSP password).
 */
import { InputError } from '../../errors.js';
import type { VideoSource } from '../source.js';
import type { FfmpegSourceOptions } from './base.js';
import { FileSource, type FileOptions } from './file.js';
import { PatternSource, resolvePatternOptions, type PatternOptions } from './pattern.js';
import { parseRtspUrl, redactUrl, RtspSource, type RtspOptions } from './rtsp.js';
import { V4l2Source, type V4l2Options } from './v4l2.js';

export type SourceSpec =
  | ({ readonly type: 'rtsp'; readonly url: string } & RtspOptions)
  | ({ readonly type: 'pattern' } & PatternOptions)
  | ({ readonly type: 'file'; readonly path: string } & FileOptions)
  | ({ readonly type: 'v4l2'; readonly device: string } & V4l2Options);

type Fields = Record<string, unknown>;

function _int(o: Fields, key: string, where: string): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new InputError(`${where}: ${key} must be an integer`);
  return n;
}

function _num(o: Fields, key: string, where: string): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new InputError(`${where}: ${key} must be a number`);
  return n;
}

function _bool(o: Fields, key: string, where: string): boolean | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw new InputError(`${where}: ${key} must be true or false`);
}

function _str(o: Fields, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new InputError(`${where}: ${key} must be a non-empty string`);
  return v;
}

function _only(o: Fields, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new InputError(`${where}: unknown field ${JSON.stringify(k)}`);
}

/** Fields that may be undefined become optional ones (exactOptionalPropertyTypes). */
type Defined<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & { [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined> };

/** Drops undefined fields. */
function _defined<T extends object>(o: T): Defined<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Defined<T>;
}

function _options(text: string, where: string): Fields {
  const out: Fields = {};
  if (text === '') return out;
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new InputError(`${where}: option ${JSON.stringify(part)} is not key=value`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

function _fromObject(o: Fields): SourceSpec {
  const type = o['type'];
  switch (type) {
    case 'rtsp': {
      const where = 'RTSP source';
      _only(o, ['type', 'url', 'ioTimeoutMs', 'stallMs'], where);
      const url = _str(o, 'url', where);
      if (url === undefined) throw new InputError(`${where}: url is required`);
      let shown: string;
      try {
        shown = redactUrl(parseRtspUrl(url));
      } catch (e) {
        throw new InputError(e instanceof Error ? e.message : String(e));
      }
      const ioTimeoutMs = _int(o, 'ioTimeoutMs', shown);
      const stallMs = _int(o, 'stallMs', shown);
      if (ioTimeoutMs !== undefined && (ioTimeoutMs < 100 || ioTimeoutMs > 600_000)) throw new InputError(`${shown}: ioTimeoutMs must be 100–600000`);
      if (stallMs !== undefined && (stallMs < 100 || stallMs > 600_000)) throw new InputError(`${shown}: stallMs must be 100–600000`);
      return _defined({ type: 'rtsp' as const, url, ioTimeoutMs, stallMs });
    }
    case 'pattern': {
      const where = 'test pattern source';
      _only(o, ['type', 'width', 'height', 'fps', 'gop', 'bitrate', 'bframes', 'clock', 'pattern'], where);
      const pattern = _str(o, 'pattern', where);
      if (pattern !== undefined && !['testsrc2', 'testsrc', 'smptebars', 'mandelbrot'].includes(pattern)) throw new InputError(`${where}: pattern must be testsrc2, testsrc, smptebars or mandelbrot`);
      const spec = _defined({
        type: 'pattern' as const,
        width: _int(o, 'width', where),
        height: _int(o, 'height', where),
        fps: _num(o, 'fps', where),
        gop: _int(o, 'gop', where),
        bitrate: _int(o, 'bitrate', where),
        bframes: _int(o, 'bframes', where),
        clock: _bool(o, 'clock', where),
        pattern: pattern as PatternOptions['pattern'],
      });
      try {
        resolvePatternOptions(spec);
      } catch (e) {
        throw new InputError(e instanceof Error ? e.message : String(e));
      }
      return spec;
    }
    case 'file': {
      const where = 'file source';
      _only(o, ['type', 'path', 'fps', 'once'], where);
      const path = _str(o, 'path', where);
      if (path === undefined) throw new InputError(`${where}: path is required`);
      const fps = _num(o, 'fps', where);
      if (fps !== undefined && !(fps > 0 && fps <= 240)) throw new InputError(`${where}: fps must be in (0, 240]`);
      return _defined({ type: 'file' as const, path, fps, once: _bool(o, 'once', where) });
    }
    case 'v4l2': {
      const where = 'V4L2 source';
      _only(o, ['type', 'device', 'width', 'height', 'fps', 'gop', 'bitrate', 'bframes', 'inputFormat'], where);
      const device = _str(o, 'device', where);
      if (device === undefined || !/^\/dev\/[A-Za-z0-9_./-]+$/.test(device)) throw new InputError(`${where}: device must be a path under /dev, e.g. /dev/video0`);
      return _defined({
        type: 'v4l2' as const,
        device,
        width: _int(o, 'width', where),
        height: _int(o, 'height', where),
        fps: _num(o, 'fps', where),
        gop: _int(o, 'gop', where),
        bitrate: _int(o, 'bitrate', where),
        bframes: _int(o, 'bframes', where),
        inputFormat: _str(o, 'inputFormat', where),
      });
    }
    default:
      throw new InputError(`source type ${JSON.stringify(type)} is not one of rtsp, pattern, file, v4l2`);
  }
}

/** Checks a camera.json source (a string or an object) and returns it in object form; InputError when malformed. */
export function parseSourceSpec(spec: unknown): SourceSpec {
  if (typeof spec === 'string') {
    const s = spec.trim();
    if (/^rtsps?:\/\//i.test(s)) return _fromObject({ type: 'rtsp', url: s });
    if (s === 'pattern' || s.startsWith('pattern:')) return _fromObject({ type: 'pattern', ..._options(s.slice('pattern:'.length), 'test pattern source') });
    if (s.startsWith('file:')) return _fromObject({ type: 'file', path: s.slice('file:'.length) });
    if (s.startsWith('v4l2:')) return _fromObject({ type: 'v4l2', device: s.slice('v4l2:'.length) });
    if (s.startsWith('/dev/')) return _fromObject({ type: 'v4l2', device: s });
    if (/\.(mp4|m4v|mov|h264|264|avc)$/i.test(s)) return _fromObject({ type: 'file', path: s });
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) throw new InputError(`source URL scheme ${s.slice(0, s.indexOf(':'))} is not rtsp or rtsps`);
    throw new InputError('a source is an rtsp:// or rtsps:// URL, "pattern[:options]", "file:PATH", "v4l2:/dev/videoN", or an object with a type');
  }
  if (typeof spec === 'object' && spec !== null && !Array.isArray(spec)) return _fromObject(spec as Fields);
  throw new InputError('a source is a string or an object');
}

/** The VideoSource for a camera.json source (parsed with parseSourceSpec first). */
export function createSource(spec: unknown, ffmpeg: FfmpegSourceOptions = {}): VideoSource {
  const s = parseSourceSpec(spec);
  switch (s.type) {
    case 'rtsp': {
      const { type: _t, url, ...options } = s;
      return new RtspSource(url, options, ffmpeg);
    }
    case 'pattern': {
      const { type: _t, ...options } = s;
      return new PatternSource(options, ffmpeg);
    }
    case 'file': {
      const { type: _t, path, ...options } = s;
      return new FileSource(path, options, ffmpeg);
    }
    case 'v4l2': {
      const { type: _t, device, ...options } = s;
      return new V4l2Source(device, options, ffmpeg);
    }
  }
}
