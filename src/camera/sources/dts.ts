/**
 * Decode times from presentation times, for inputs that carry only PTS (RTP, hence an RTSP pull: ffmpeg's guesses
 * of the first DTS of a stream with B-frames are wrong). Pictures come in decoding order; with a reorder depth R
 * (no picture is preceded in decoding order and followed in output order by more than R pictures, H.264
 * max_num_reorder_frames), the DTS of picture j is the (j−R)-th smallest PTS of the stream, as libavformat and
 * MP4 muxers compute it: increasing, never after the picture's PTS, and known when picture j arrives (the
 * R + 1 pictures j−R … j hold every PTS up to it). The first R pictures get DTS spaced one frame before the first.
 * Pure; a larger R than needed is always valid (only the composition offsets grow).
 */
import { NalType, nalType, parseSps } from '../../media/h264/index.js';
import type { AccessUnit } from '../../media/h264/index.js';

/** Reorder depth to assume when the SPS does not say (its VUI has no bitstream restriction). */
export const DEFAULT_REORDER_DEPTH = 4;

/** The reorder depth an SPS in `au` declares: max_num_reorder_frames, 0 for Baseline (no B slices), undefined without SPS. */
export function reorderDepthOf(au: AccessUnit): number | undefined {
  for (const nal of au.nals) {
    if (nalType(nal) !== NalType.SPS) continue;
    try {
      const sps = parseSps(nal);
      const declared = sps.vui?.bitstreamRestriction?.maxNumReorderFrames;
      if (declared !== undefined) return declared;
      return sps.profileIdc === 66 ? 0 : DEFAULT_REORDER_DEPTH;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

export class DtsFromPts {
  /** PTS not yet used as a DTS, ascending. */
  private readonly pending: number[] = [];
  private count = 0;
  private lastDts: number | undefined;
  private first: number | undefined;

  /** `reorder`: the reorder depth R; `frameTicks`: the spacing for the first R pictures. */
  constructor(
    private readonly reorder: number,
    private readonly frameTicks = 3600,
  ) {}

  /** The DTS of the next picture in decoding order, whose PTS is `pts`. */
  next(pts: number): number {
    let i = this.pending.length;
    while (i > 0 && (this.pending[i - 1] as number) > pts) i--;
    this.pending.splice(i, 0, pts);
    this.first ??= pts;
    let dts: number;
    if (this.count < this.reorder) {
      dts = Math.min(this.pending[0] as number, this.first) - (this.reorder - this.count) * this.frameTicks;
    } else {
      dts = this.pending.shift() as number;
    }
    this.count++;
    // a stream reordered deeper than declared: keep DTS ≤ PTS and increasing anyway
    dts = Math.min(dts, pts);
    if (this.lastDts !== undefined && dts <= this.lastDts) dts = this.lastDts + 1;
    this.lastDts = dts;
    return dts;
  }
}
