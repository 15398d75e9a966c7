/**
 * H.264 access units with their times out of an MPEG-TS byte stream (pure): TsDemuxer → Annex-B NAL units →
 * AccessUnitAssembler. An access unit takes the PTS/DTS of the PES packet in which its first NAL unit began.
 * The 33-bit PES times are unwrapped into a continuous count, so a source can run for more than 26.5 hours.
 */
import { MediaError } from '../../errors.js';
import { AccessUnitAssembler, splitAnnexB } from '../../media/h264/index.js';
import type { AccessUnit } from '../../media/h264/index.js';
import { PTS_WRAP, TsDemuxer } from './mpegts.js';

/** An access unit with the times of its PES packet, unwrapped (they may start anywhere, and grow past 2^33). */
export interface TimedAccessUnit {
  readonly au: AccessUnit;
  readonly pts: number;
  readonly dts: number;
}

export interface TsH264ReaderOptions {
  /**
   * Each PES packet holds exactly one access unit (ffmpeg's MPEG-TS muxer writes one packet per PES): an access unit
   * is complete at the end of its PES packet, one frame earlier than the next one would show it. Default false.
   */
  readonly pesIsAccessUnit?: boolean;
}

/** Unwraps a 33-bit counter into a continuous one, near the previous value (within ±2^32). */
export class Unwrapper {
  private last: number | undefined;

  /** Continues from `value` (an unwrapped value whose 33-bit form is the next raw one's neighbour). */
  seed(value: number): void {
    this.last = value;
  }

  unwrap(raw: number): number {
    if (this.last === undefined) {
      this.last = raw;
      return raw;
    }
    const mod = ((this.last % PTS_WRAP) + PTS_WRAP) % PTS_WRAP;
    let d = (raw - mod) % PTS_WRAP;
    if (d > PTS_WRAP / 2) d -= PTS_WRAP;
    else if (d < -PTS_WRAP / 2) d += PTS_WRAP;
    this.last += d;
    return this.last;
  }
}

interface PesTimes {
  readonly pts: number;
  readonly dts: number;
}

export class TsH264Reader {
  private readonly demuxer = new TsDemuxer();
  private readonly assembler = new AccessUnitAssembler();
  private readonly times = new WeakMap<Uint8Array, PesTimes>();
  private readonly dtsUnwrapper = new Unwrapper();
  /** PTS are unwrapped on their own: their distance from the DTS may grow past 2^32 (RTSP's placeholder DTS). */
  private ptsUnwrapper: Unwrapper | undefined;
  private readonly perPes: boolean;
  /** Access units dropped because no time stamp applies to them (their PES packet had none, or began in another). */
  untimed = 0;
  /** NAL units or PES payloads that could not be parsed (skipped, as the assembler allows). */
  skipped = 0;

  constructor(options: TsH264ReaderOptions = {}) {
    this.perPes = options.pesIsAccessUnit ?? false;
  }

  /** The demuxer's video stream, once known. */
  get video(): { pid: number; streamType: number } | undefined {
    return this.demuxer.video;
  }

  push(chunk: Uint8Array): TimedAccessUnit[] {
    const out: TimedAccessUnit[] = [];
    for (const pes of this.demuxer.push(chunk)) this.pes(pes.payload, pes.pts, pes.dts, out);
    return out;
  }

  flush(): TimedAccessUnit[] {
    const out: TimedAccessUnit[] = [];
    for (const pes of this.demuxer.flush()) this.pes(pes.payload, pes.pts, pes.dts, out);
    this.emit(this.assembler.flush(), out);
    return out;
  }

  /**
   * One PES packet: in an H.264 transport stream each begins at a NAL unit (2.14.2), so its payload is split on its
   * own. Its first NAL unit carries the PES times to the access unit it begins.
   */
  private pes(payload: Uint8Array, rawPts: number | undefined, rawDts: number | undefined, out: TimedAccessUnit[]): void {
    let nals: Uint8Array[];
    try {
      nals = splitAnnexB(payload);
    } catch (e) {
      if (!(e instanceof MediaError)) throw e;
      this.skipped++;
      return;
    }
    if (rawPts !== undefined && rawDts !== undefined && nals[0] !== undefined) {
      const dts = this.dtsUnwrapper.unwrap(rawDts);
      let pts: number;
      if (this.ptsUnwrapper === undefined) {
        // the first PTS is placed next to the first DTS (pts ≥ dts in a valid stream, modulo 2^33)
        let cto = (rawPts - rawDts) % PTS_WRAP;
        if (cto > PTS_WRAP / 2) cto -= PTS_WRAP;
        else if (cto < -PTS_WRAP / 2) cto += PTS_WRAP;
        pts = dts + cto;
        this.ptsUnwrapper = new Unwrapper();
        this.ptsUnwrapper.seed(pts);
      } else {
        pts = this.ptsUnwrapper.unwrap(rawPts);
      }
      this.times.set(nals[0], { pts, dts });
    }
    for (const nal of nals) {
      try {
        this.emit(this.assembler.push(nal), out);
      } catch (e) {
        if (!(e instanceof MediaError)) throw e;
        this.skipped++;
      }
    }
    if (this.perPes) this.emit(this.assembler.flush(), out);
  }

  private emit(aus: AccessUnit[], out: TimedAccessUnit[]): void {
    for (const au of aus) {
      const first = au.nals[0];
      const t = first !== undefined ? this.times.get(first) : undefined;
      if (t === undefined) {
        this.untimed++;
        continue;
      }
      out.push({ au, pts: t.pts, dts: t.dts });
    }
  }
}
