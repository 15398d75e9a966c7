/**
 * The layout of a recording directory — what a camera writes to its SD card and what an NVR stores per session
 * (docs/signed-video.md §4):
 *
 *   chain.pem        the camera's certificate chain (device certificate, then its issuing CA)
 *   init.mp4         the CMAF init segment
 *   000000.m4s …     one CMAF fragment (moof + mdat) per GOP, as encrypted by the camera
 *   records.jsonl    the signed records: a session record, one record per fragment, an end record
 *   recording.json   a summary for people and indexes (unsigned: never trusted by the verifier)
 *   lost.jsonl       on a camera's ring buffer: signed lost records, written into a later session's chain, naming
 *                    fragments of this session the ring overwrote before they were uploaded (src/camera/ring.ts)
 *   expired.json     in a recorder's export: the fragments its retention deleted (ExpiredInfo; unsigned — it turns
 *                    a fragment reported missing into "expired by retention", never into anything authentic)
 *   absent.json      in a recorder's export: fragments of the range it holds no verified copy of, and why (AbsentInfo;
 *                    unsigned — a fragment reported missing stays missing, with the recorder's explanation)
 */
export const CHAIN_FILE = 'chain.pem';
export const INIT_FILE = 'init.mp4';
export const RECORDS_FILE = 'records.jsonl';
export const INFO_FILE = 'recording.json';
export const LOST_FILE = 'lost.jsonl';
export const EXPIRED_FILE = 'expired.json';
export const ABSENT_FILE = 'absent.json';
/** The recorder's and the camera's notes on what a recording lacks, carried by every export format. */
export const GAP_NOTE_FILES: readonly string[] = [LOST_FILE, EXPIRED_FILE, ABSENT_FILE];

/** expired.json: half-open ranges [from, to) of fragment numbers a recorder's retention deleted, when and why. */
export interface ExpiredInfo {
  readonly v: 1;
  readonly ranges: readonly { readonly from: number; readonly to: number; readonly at: string; readonly reason: string }[];
}
/** absent.json: fragments a recorder exported around, because it holds no verified copy of them: which, and why. */
export interface AbsentInfo {
  readonly v: 1;
  readonly fragments: readonly { readonly seq: number; readonly why: string }[];
}
const SEGMENT = /^(\d{6,})\.m4s$/;

export function segmentName(seq: number): string {
  return `${seq.toString().padStart(6, '0')}.m4s`;
}

/** The fragment sequence number of a segment file name, or undefined. */
export function segmentSeq(name: string): number | undefined {
  const m = SEGMENT.exec(name);
  return m?.[1] !== undefined ? Number(m[1]) : undefined;
}

/** recording.json: what the camera says about the recording (convenience only). */
export interface RecordingInfo {
  readonly v: 1;
  readonly serial: string;
  readonly session: string;
  readonly start: string;
  readonly scheme: 'cbcs' | 'cenc' | 'none';
  /** Content key ID (hex), when encrypted. */
  readonly kid?: string;
  readonly fps: number;
  readonly frames: number;
  readonly fragments: number;
  readonly seconds: number;
  readonly endedCleanly: boolean;
}
