/**
 * The camera's "sensor" for tests and demos: an Annex-B H.264 file played as live capture, looped until the
 * wanted number of pictures, optionally paced in real time. Each loop restarts at the file's first access unit,
 * which must be an IDR picture, so the looped stream stays decodable (IDR resets frame numbers and POC).
 */
import { createReadStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { MediaError } from '../errors.js';
import { AccessUnitAssembler, AnnexBSplitter, isVcl, nalType } from '../media/h264/index.js';
import type { AccessUnit } from '../media/h264/index.js';

export interface CaptureOptions {
  /** Pictures to deliver in all (the file is looped as often as needed); without, until the signal aborts. */
  readonly frames?: number;
  /** Pictures per second, for pacing. */
  readonly fps: number;
  /** Deliver picture i no earlier than i / fps seconds after the first (default true). */
  readonly realTime?: boolean;
  /** Stops the capture after the current picture (a clean shutdown). */
  readonly signal?: AbortSignal;
}

export function hasPicture(au: AccessUnit): boolean {
  return au.nals.some((n) => isVcl(nalType(n)));
}

async function* accessUnitsOf(path: string): AsyncGenerator<AccessUnit> {
  const splitter = new AnnexBSplitter();
  const assembler = new AccessUnitAssembler();
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  try {
    for await (const chunk of stream) for (const nal of splitter.push(chunk as Buffer)) yield* assembler.push(nal);
    for (const nal of splitter.flush()) yield* assembler.push(nal);
    yield* assembler.flush();
  } finally {
    stream.destroy();
  }
}

/** The access units of `path`, looped, until `frames` pictures have been delivered or the signal aborts. */
export async function* loopedCapture(path: string, options: CaptureOptions): AsyncGenerator<AccessUnit> {
  const wanted = options.frames ?? Number.POSITIVE_INFINITY;
  if (options.frames !== undefined && (!Number.isSafeInteger(options.frames) || options.frames < 1)) throw new MediaError('capture needs at least one picture');
  if (!(options.fps > 0 && options.fps <= 1000)) throw new MediaError(`capture frame rate ${options.fps} is out of range`);
  const aborted = (): boolean => options.signal?.aborted === true;
  const t0 = performance.now();
  let delivered = 0;
  for (let loop = 0; delivered < wanted; loop++) {
    let first = true;
    let pictures = 0;
    for await (const au of accessUnitsOf(path)) {
      if (aborted()) return;
      const picture = hasPicture(au);
      if (first && picture) {
        if (!au.isIdr) throw new MediaError(`${path}: the first picture is not an IDR picture, so the file cannot be looped as live capture`);
        first = false;
      }
      if (picture) {
        if (options.realTime !== false) {
          const due = t0 + (delivered * 1000) / options.fps;
          const wait = due - performance.now();
          if (wait > 1) await sleep(wait);
          if (aborted()) return;
        }
        delivered++;
        pictures++;
      }
      yield au;
      if (delivered >= wanted) return;
    }
    if (pictures === 0) throw new MediaError(`${path} holds no picture`);
  }
}
