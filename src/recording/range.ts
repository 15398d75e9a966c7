/**
 * What an export holds (docs/signed-video.md §4a), for every export format: the recording's records, checked
 * enough to export from, and the whole fragments (GOPs) that cover a requested time range — a start inside a GOP
 * moves back to its IDR picture, an end inside a GOP extends to its end, and the notes say so — plus the session's
 * certificate SEI when the range does not start with the fragment that carries it.
 */
import { InputError, MediaError } from '../errors.js';
import { writeAnnexB, type NalLengthSize } from '../media/h264/index.js';
import { openMp4 } from '../media/mp4/index.js';
import { isOpeningSigningSei } from '../signing/sei.js';
import { concatSource, openRecordingDir, type RecordingFiles } from './files.js';
import { CHAIN_FILE, INIT_FILE, RECORDS_FILE, segmentSeq } from './layout.js';
import type { AnyRecord, FragmentRecord, SessionRecord } from './records.js';
import type { RecordingProblem } from './report.js';
import { leadingSigningSeis, readRecords, segmentNames } from './verify.js';

export interface ExportedRange {
  readonly from: string;
  readonly to: string;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly note?: string;
}

export interface ExportPlan {
  readonly files: RecordingFiles;
  readonly records: readonly AnyRecord[];
  readonly session: SessionRecord;
  /** The fragment records of the range, in order (at least one). */
  readonly chosen: readonly FragmentRecord[];
  /** The segment files of the chosen fragments that the recording holds, in order. */
  readonly segments: readonly string[];
  /** Their fragment numbers, in the same order (a gap in them is a fragment the recording does not hold). */
  readonly seqs: readonly number[];
  /** Fragments of the range the recording does not hold (only with `gaps`). */
  readonly absent: readonly number[];
  readonly requested: { readonly from?: string; readonly to?: string };
  readonly exported: ExportedRange;
  /** The certificate SEI (Annex-B) of the session, when the range does not start with fragment 0. */
  readonly certificateSei?: Uint8Array;
}

export interface RangeOptions {
  readonly recording: string;
  readonly reason: string;
  readonly from?: Date;
  readonly to?: Date;
  /**
   * A recorder's export: fragments of the range the recording does not hold (quarantined, never received) are left
   * out, named in the plan and in a note, and verify reports them missing. Without it such a range is refused: a
   * camera's recording directory lacking a fragment needs verifying first.
   */
  readonly gaps?: boolean;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The first sample of a fragment as stored (encrypted or not), via the demuxer over init + that fragment. */
async function firstSample(files: RecordingFiles, segment: string): Promise<{ data: Uint8Array; lengthSize: NalLengthSize }> {
  const { track, samples } = await openMp4(concatSource(files, [INIT_FILE, segment]));
  for await (const s of samples()) return { data: s.data, lengthSize: track.avcC.lengthSize };
  throw new MediaError(`${segment} holds no sample`);
}

/** Opens the recording and plans the export of `[from, to)`; the caller closes `files`. */
export async function planExport(options: RangeOptions): Promise<ExportPlan> {
  if (options.reason.trim() === '') throw new InputError('an export needs a reason (--reason)');
  if (options.from !== undefined && options.to !== undefined && options.to.getTime() <= options.from.getTime()) throw new InputError('--to must be after --from');
  const files = await openRecordingDir(options.recording);
  for (const f of [RECORDS_FILE, INIT_FILE, CHAIN_FILE]) if (!files.has(f)) throw new MediaError(`${options.recording} is not a keyframe recording: ${f} is missing`);
  const problems: RecordingProblem[] = [];
  const records = await readRecords(files, problems);
  if (problems.length > 0) throw new MediaError(`${options.recording}: ${problems[0]?.detail ?? 'bad records'}; verify it before exporting`);
  const session = records[0] as SessionRecord | undefined;
  if (session?.kind !== 'session') throw new MediaError(`${options.recording}: records.jsonl does not start with a session record`);
  const startMs = Date.parse(session.start);
  const fragments = records.filter((r): r is FragmentRecord => !('kind' in r));
  const stored = new Map(segmentNames(files).map((n) => [segmentSeq(n) as number, n]));
  const wall = (f: FragmentRecord): [number, number] => [startMs + f.start * 1000, startMs + f.end * 1000];
  const from = options.from?.getTime() ?? -Infinity;
  const to = options.to?.getTime() ?? Infinity;
  const chosen = fragments.filter((f) => {
    const [a, b] = wall(f);
    return b > from && a < to;
  });
  const first = chosen[0];
  const last = chosen[chosen.length - 1];
  if (first === undefined || last === undefined) {
    throw new InputError(`no recorded video between ${options.from?.toISOString() ?? 'the start'} and ${options.to?.toISOString() ?? 'the end'} (recording ${session.start} + ${fragments[fragments.length - 1]?.end ?? 0} s)`);
  }
  const absent = chosen.filter((f) => !stored.has(f.seq)).map((f) => f.seq);
  if (absent.length > 0 && options.gaps !== true) throw new MediaError(`fragment ${absent[0]} of the range is not in ${options.recording}: verify the recording`);
  const held = chosen.filter((f) => stored.has(f.seq));
  if (held.length === 0) throw new MediaError(`no fragment of the range is in ${options.recording} (fragments ${first.seq}–${last.seq} are absent)`);
  const notes: string[] = [];
  if (absent.length > 0) notes.push(`${absent.length === 1 ? `fragment ${absent[0]} is` : `fragments ${absent.join(', ')} are`} not in the recording and not exported`);
  if (options.from !== undefined && wall(first)[0] < from) {
    notes.push(`the requested start is ${((from - wall(first)[0]) / 1000).toFixed(3)} s into a GOP: the export starts at the IDR picture before it (${iso(wall(first)[0])}), since earlier pictures of the GOP cannot be decoded or verified without it`);
  }
  if (options.to !== undefined && wall(last)[1] > to) notes.push(`the requested end is inside a GOP: the export ends with that GOP (${iso(wall(last)[1])})`);
  if (options.from !== undefined && from < startMs) notes.push(`the recording starts at ${session.start}, after the requested start`);

  // the certificate SEI, from the session's first fragment, for an export that does not start with it
  let certificateSei: Uint8Array | undefined;
  const firstName = stored.get(0);
  if ((held[0] as FragmentRecord).seq > 0 && firstName !== undefined) {
    const { data, lengthSize } = await firstSample(files, firstName);
    const certSeis = leadingSigningSeis(data, lengthSize, isOpeningSigningSei);
    if (certSeis.length > 0) certificateSei = writeAnnexB(certSeis);
  }
  return {
    files,
    records,
    session,
    chosen,
    segments: held.map((f) => stored.get(f.seq) as string),
    seqs: held.map((f) => f.seq),
    absent,
    requested: { ...(options.from !== undefined ? { from: options.from.toISOString() } : {}), ...(options.to !== undefined ? { to: options.to.toISOString() } : {}) },
    exported: { from: iso(wall(first)[0]), to: iso(wall(last)[1]), firstSeq: first.seq, lastSeq: last.seq, ...(notes.length > 0 ? { note: notes.join('; ') } : {}) },
    ...(certificateSei !== undefined ? { certificateSei } : {}),
  };
}
