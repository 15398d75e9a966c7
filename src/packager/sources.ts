/**
 * What `keyframe decrypt` reads: an encrypted MP4 file, a recording directory (init segment plus fragments, as a
 * camera writes them) or an evidence bundle (its `recording/` folder, read inside the archive) — each seen by the
 * demuxer as one fragmented MP4. Anything else is named for what it is: an Annex-B stream has nothing to decrypt.
 */
import { stat } from 'node:fs/promises';
import { MediaError, NotFoundError, errnoCode, ioError } from '../errors.js';
import { fileSource } from '../media/mp4/index.js';
import type { Mp4Source } from '../media/mp4/index.js';
import { evidenceKind } from '../recording/evidence.js';
import { TarFiles, concatSource, openRecordingDir } from '../recording/files.js';
import type { RecordingFiles } from '../recording/files.js';
import { INIT_FILE } from '../recording/layout.js';
import { segmentNames } from '../recording/verify.js';

export interface EncryptedSource {
  readonly kind: 'mp4' | 'recording' | 'bundle';
  readonly source: Mp4Source;
  /** Fragments of a recording or bundle (0 for an MP4 file). */
  readonly fragmentFiles: number;
  close(): Promise<void>;
}

function recordingSource(files: RecordingFiles, label: string): { source: Mp4Source; fragmentFiles: number } {
  if (!files.has(INIT_FILE)) throw new MediaError(`${label}: ${INIT_FILE} is missing`);
  const segments = segmentNames(files);
  if (segments.length === 0) throw new MediaError(`${label}: no fragments (NNNNNN.m4s)`);
  return { source: concatSource(files, [INIT_FILE, ...segments]), fragmentFiles: segments.length };
}

export async function openEncryptedSource(path: string): Promise<EncryptedSource> {
  try {
    await stat(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`input not found: ${path}`);
    throw ioError(e, path, 'read') ?? e;
  }
  const kind = await evidenceKind(path);
  if (kind === 'annexb') throw new MediaError(`${path} is an Annex-B H.264 stream, not an MP4: there is nothing to decrypt`);
  if (kind === 'onvif-set') throw new MediaError(`${path} is an ONVIF export of several sessions: decrypt each of its files (session-01.mp4 …)`);
  if (kind === 'mp4' || kind === 'onvif-export') {
    const source = await fileSource(path);
    return { kind: 'mp4', source, fragmentFiles: 0, close: () => source.close() };
  }
  if (kind === 'recording') {
    const files = await openRecordingDir(path);
    return { kind, ...recordingSource(files, path), close: () => files.close() };
  }
  const tar = await TarFiles.open(path);
  try {
    return { kind, ...recordingSource(tar.sub('recording'), `${path}:recording`), close: () => tar.close() };
  } catch (e) {
    await tar.close();
    throw e;
  }
}
