/**
 * Looped file: an MP4 (or Annex-B .h264) file played as live capture by ffmpeg (`-re -c copy`), paced in real
 * time. An MP4 file loops inside ffmpeg (`-stream_loop -1`, which adds each loop's duration to the times of the
 * next); ffmpeg cannot loop a raw Annex-B file, so each loop of one is a new ffmpeg run, numbering its pictures at
 * `fps`. Either way the source's timeline keeps DTS increasing by one frame across loops.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { FfmpegSource, SourceError, type FfmpegSourceOptions, type RunPlan } from './base.js';
import { FfmpegExitError, TS_OUTPUT_ARGS } from './ffmpeg.js';
import { NotH264Error } from './mpegts.js';

export interface FileOptions {
  /** Frame rate of an Annex-B file (default 25); an MP4 file's own times are used. */
  readonly fps?: number;
  /** Play the file once instead of looping (the source then ends with a permanent 'the stream ended'). */
  readonly once?: boolean;
}

function _isAnnexB(path: string): boolean {
  return /\.(h264|264|avc)$/i.test(path);
}

export class FileSource extends FfmpegSource {
  constructor(
    readonly path: string,
    private readonly file: FileOptions = {},
    ffmpeg: FfmpegSourceOptions = {},
  ) {
    super(`file ${path}${file.once === true ? '' : ' (looped)'}`, ffmpeg);
    const fps = file.fps ?? 25;
    if (!(fps > 0 && fps <= 240)) throw new SourceError(this.description, `frame rate ${fps} is out of range (0–240]`, { permanent: true, code: 'KF_ERR_INPUT' });
  }

  private check(): void {
    try {
      if (!statSync(this.path).isFile()) throw new SourceError(this.description, 'not a regular file', { permanent: true, code: 'KF_ERR_INPUT' });
      accessSync(this.path, constants.R_OK);
    } catch (e) {
      if (e instanceof SourceError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      throw new SourceError(this.description, code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : `cannot read it (${code ?? String(e)})`, { permanent: true, code: code === 'ENOENT' ? 'KF_ERR_NOT_FOUND' : 'KF_ERR_IO' });
    }
  }

  protected plan(): RunPlan {
    this.check();
    const input = _isAnnexB(this.path) ? ['-f', 'h264', '-framerate', String(this.file.fps ?? 25)] : [];
    const annexB = _isAnnexB(this.path);
    const loop = this.file.once === true || annexB ? [] : ['-stream_loop', '-1'];
    const args = ['-nostdin', '-hide_banner', '-loglevel', 'error', '-re', ...loop, ...input, '-i', this.path, '-map', '0:v:0', '-c', 'copy', ...TS_OUTPUT_ARGS];
    return { args, stallMs: 10_000, endIsLoop: annexB && this.file.once !== true };
  }

  protected override permanentError(error: unknown): SourceError | undefined {
    if (error instanceof SourceError) return error.permanent ? error : undefined;
    if (error instanceof NotH264Error) return new SourceError(this.description, error.message, { permanent: true });
    // a file ffmpeg cannot read now will not be readable on the next try either
    if (error instanceof FfmpegExitError) return new SourceError(this.description, error.message, { permanent: true });
    return undefined;
  }

  /** A file played once ends for good; a looped one that ends early (killed ffmpeg) is restarted. */
  protected retryAfter(): boolean {
    return this.file.once !== true;
  }
}
