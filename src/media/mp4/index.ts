/**
 * ISO BMFF for keyframe: box reading and writing, AVC configuration, Common Encryption boxes, CMAF init segments
 * and fragments (streamable: each fragment is a header followed by the caller's sample bytes), and a demuxer for
 * ordinary and fragmented MP4 (ffmpeg's output included). Bytes and metadata only: encryption itself lives in
 * `src/cenc`.
 */
export { readBoxHeader, iterateBoxes, findBoxes, childrenStart, boxPayload, readFullBoxHeader } from './box.js';
export type { BoxHeader } from './box.js';
export { box, fullBox, largeBox } from './writer.js';
export { parseAvcC, buildAvcC } from './avcc.js';
export type { AvcConfig } from './avcc.js';
export {
  CLEARKEY_SYSTEM_ID,
  buildPssh,
  parsePssh,
  buildTenc,
  buildSinf,
  buildSenc,
  buildSaiz,
  buildSaio,
  parseAuxInfo,
  auxInfoSize,
} from './protection.js';
export type { Scheme, TrackProtection, Subsample, SampleEncryption, PsshBox, SaizInfo, SaioInfo } from './protection.js';
export type { SeigEntry } from './_sample-groups.js';
export { buildInitSegment } from './init.js';
export type { VideoTrack, InitOptions } from './init.js';
export { buildFragment } from './fragment.js';
export type { FragmentSample, FragmentOptions, BuiltFragment } from './fragment.js';
export { openMp4 } from './demux.js';
export type { DemuxedSample, Mp4Demuxer } from './demux.js';
export type { TrackInfo } from './_track.js';
export { fileSource, bufferSource } from './file-source.js';
export type { Mp4Source } from './file-source.js';
