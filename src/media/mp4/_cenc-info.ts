/**
 * Where each sample's Common Encryption information is, for one run of samples (a track's sample tables, or
 * one `traf`). The normative route is the sample auxiliary information: `saiz` gives each sample's size and
 * `saio` where the first one starts — an absolute file offset in `stbl` (ffmpeg's `cenc-aes-ctr` writer), or
 * relative to the fragment's base data offset in a `traf` — with one offset for all samples, or one per chunk
 * (per `trun` in a fragment). When there is no `saiz`/`saio`, the entries of `senc` are read in order (what
 * some writers rely on). `seig` sample groups override KID, IV size and constant IV, or mark samples clear.
 */
import { MediaError } from '../../errors.js';
import { _openSenc } from './protection.js';
import type { _SencCursor, SaioInfo, SaizInfo, SampleEncryption, TrackProtection } from './protection.js';
import { _GroupCursor, _resolveSeig } from './_sample-groups.js';
import type { SampleToGroup, SeigEntry } from './_sample-groups.js';
import type { BoxHeader } from './box.js';

export interface _CencRun {
  protection: TrackProtection;
  sampleCount: number;
  /** Chunks (stbl) or truns (traf): the groups that may each have their own saio offset. */
  groupCount: number;
  saiz?: SaizInfo;
  saio?: SaioInfo;
  /** Added to every saio offset: 0 in stbl, the base data offset in a traf. */
  auxBase: number;
  senc?: { buf: Uint8Array; box: BoxHeader; base: number };
  globalSeig: readonly SeigEntry[];
  localSeig: readonly SeigEntry[];
  sampleToGroup?: SampleToGroup;
  inFragment: boolean;
  /** Absolute offset of the structure, for error messages. */
  at: number;
}

/** What is known about one sample before its auxiliary information is read. */
export type _SampleCenc =
  | { kind: 'clear' }
  | { kind: 'aux'; offset: number; size: number; ivSize: 0 | 8 | 16; seig: SeigEntry | undefined }
  | { kind: 'entry'; entry: SampleEncryption; seig: SeigEntry | undefined };

const _EMPTY = new Uint8Array(0);

export class _CencLocator {
  private readonly run: _CencRun;
  private readonly groups: _GroupCursor;
  private readonly senc: _SencCursor | undefined;
  private auxPos = 0;
  private sample = 0;

  constructor(run: _CencRun) {
    this.run = run;
    this.groups = new _GroupCursor(run.sampleToGroup);
    const { saiz, saio } = run;
    if (saiz !== undefined && saio !== undefined) {
      if (saiz.count !== run.sampleCount) throw new MediaError(`saiz describes ${saiz.count} samples, there are ${run.sampleCount}`, run.at);
      const n = saio.offsets.length;
      if (run.sampleCount > 0 && n !== 1 && n !== run.groupCount) throw new MediaError(`saio has ${n} offsets: expected 1 or one per ${run.inFragment ? 'trun' : 'chunk'} (${run.groupCount})`, run.at);
      this.auxPos = run.auxBase + (saio.offsets[0] ?? 0);
      this.senc = undefined;
    } else if (run.senc !== undefined) {
      this.senc = _openSenc(run.senc.buf, run.senc.box, run.senc.base);
      if (this.senc.count !== run.sampleCount) throw new MediaError(`senc describes ${this.senc.count} samples, there are ${run.sampleCount}`, run.at);
    }
  }

  /** The next sample's information; `group` is its chunk (or trun) and whether it opens it. */
  next(group: number, firstInGroup: boolean): _SampleCenc {
    const { run } = this;
    const i = this.sample++;
    const seig = _resolveSeig(this.groups.next(), run.globalSeig, run.localSeig, run.inFragment, run.at);
    const ivSize = seig !== undefined ? seig.perSampleIvSize : run.protection.perSampleIvSize;
    let found: _SampleCenc | undefined;
    const { saiz, saio } = run;
    if (saiz !== undefined && saio !== undefined) {
      if (firstInGroup && saio.offsets.length > 1) this.auxPos = run.auxBase + (saio.offsets[group] ?? 0);
      const size = saiz.sizes !== undefined ? (saiz.sizes[i] ?? 0) : saiz.defaultSize;
      found = { kind: 'aux', offset: this.auxPos, size, ivSize, seig };
      this.auxPos += size;
    } else if (this.senc !== undefined) {
      found = { kind: 'entry', entry: this.senc.next(ivSize), seig };
    }
    if (seig !== undefined && !seig.isProtected) return { kind: 'clear' };
    if (found !== undefined) return found;
    if (ivSize === 0) return { kind: 'entry', entry: { iv: _EMPTY, subsamples: [] }, seig };
    throw new MediaError(`sample ${i} of a protected track has no encryption information (no saiz/saio or senc)`, run.at);
  }
}
