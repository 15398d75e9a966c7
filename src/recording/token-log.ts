/**
 * Time-stamping a recording: the head of its record chain (the last record written so far) is sent to a TSA and
 * the verified token appended to timestamps.jsonl (see timestamps.ts), each line flushed to disk before the call
 * returns. Used by `keyframe timestamp` on a finished or running recording and by `keyframe record --tsa` as each
 * record is written.
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MediaError, errnoCode } from '../errors.js';
import type { Stamper } from '../tsp/stamper.js';
import type { TimeStampInfo } from '../tsp/token.js';
import { RECORDS_FILE } from './layout.js';
import { parseAnyRecord, recordHash, type AnyRecord } from './records.js';
import { formatTokenEntry, TIMESTAMPS_FILE } from './timestamps.js';

/** Appends one entry to DIR/timestamps.jsonl and flushes it. */
export async function appendToken(dir: string, record: number, sha256: string, token: Uint8Array): Promise<void> {
  const fh = await open(join(dir, TIMESTAMPS_FILE), 'a', 0o644);
  try {
    await fh.write(formatTokenEntry({ v: 1, record, sha256, token: Buffer.from(token).toString('base64') }));
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

export interface StampedHead {
  /** Position of the covered record in records.jsonl (0 = session record). */
  readonly record: number;
  readonly kind: 'session' | 'fragment' | 'lost' | 'end';
  /** The fragment sequence number, for a fragment record. */
  readonly seq?: number;
  readonly sha256: string;
  readonly info: TimeStampInfo;
}

function kindOf(r: AnyRecord): 'session' | 'fragment' | 'lost' | 'end' {
  return 'kind' in r ? r.kind : 'fragment';
}

/** Time-stamps the last complete record of the recording in `dir`. */
export async function timestampRecording(dir: string, stamper: Stamper): Promise<StampedHead> {
  let text: string;
  try {
    text = await readFile(join(dir, RECORDS_FILE), 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new MediaError(`${dir} is not a keyframe recording: ${RECORDS_FILE} is missing`);
    throw e;
  }
  // a recorder may be appending: only lines ended by a newline are complete
  const lines = text.slice(0, text.lastIndexOf('\n') + 1).split('\n').slice(0, -1);
  if (lines.length === 0) throw new MediaError(`${dir}: ${RECORDS_FILE} holds no complete record yet`);
  const index = lines.length - 1;
  const head = parseAnyRecord(lines[index] as string, index + 1);
  const sha256 = recordHash(head);
  const { token, info } = await stamper.stamp(Buffer.from(sha256, 'hex'));
  await appendToken(dir, index, sha256, token);
  return { record: index, kind: kindOf(head), ...('seq' in head ? { seq: head.seq } : {}), sha256, info };
}
