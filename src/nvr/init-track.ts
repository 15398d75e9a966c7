/** What a session's init segment says about its track, for manifests (mpd.ts) and live sockets (live-ws.ts). */
import { InputError } from '../errors.js';
import { _parseMovie } from '../media/mp4/_track.js';
import { findBoxes } from '../media/mp4/box.js';
import type { MpdTrack } from './mpd.js';

/** A track as a player needs it: MPD's fields and the protection scheme (absent: clear video). */
export interface InitTrack extends MpdTrack {
  readonly scheme?: string;
}

/** The track an init segment describes (codec string, size, timescale, protection scheme). */
export function initTrack(init: Uint8Array): InitTrack {
  const moov = findBoxes(init, ['moov'])[0];
  if (moov === undefined) throw new InputError('the init segment has no moov box');
  const t = _parseMovie(init.subarray(moov.offset, moov.offset + moov.size), moov.offset).info;
  const hex = (n: number): string => n.toString(16).padStart(2, '0');
  const entry = t.protection?.originalFormat ?? t.sampleEntryType;
  return { codecs: `${entry}.${hex(t.avcC.profile)}${hex(t.avcC.compatibility)}${hex(t.avcC.level)}`, width: t.width, height: t.height, timescale: t.timescale, ...(t.protection !== undefined ? { scheme: t.protection.scheme } : {}) };
}
