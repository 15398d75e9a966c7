/**
 * Where things are in an ONVIF export file, read by offset (never the whole file): the top-level boxes, the
 * file-level `meta` box with the seals, keyframe's evidence boxes (`uuid` KEYFRAME_EVIDENCE_UUID, see
 * onvif-export.ts) and the fragments. The grammar of a file keyframe writes:
 *
 *   ftyp moov (uuid KEYFRAME_EVIDENCE_UUID: version u8 = 1, name NUL-terminated, bytes)* (styp? moof mdat)+ meta mfra?
 *
 * A file from another exporter has no evidence boxes; its seal and its signed video are still checked.
 */
import { MediaError } from '../errors.js';
import type { Mp4Source } from '../media/mp4/index.js';
import { box } from '../media/mp4/writer.js';
import { MAX_ENTRIES } from './limits.js';

/** keyframe's evidence boxes: `uuid` with the UUID of keyframe's OID arc 2.25.207388569711874098345078730055386965163. */
export const KEYFRAME_EVIDENCE_UUID = Uint8Array.from(Buffer.from('9c0595ed5dcc4c80b156a59d8980a4ab', 'hex'));
/** Version of the evidence box payload: version u8, file name (UTF-8, NUL-terminated), the file's bytes. */
export const EVIDENCE_BOX_VERSION = 1;
/** The export's own description, canonical JSON, in an evidence box. */
export const EXPORT_INFO_FILE = 'export.json';
export const SESSION_SEI_FILE = 'session.sei';
/** The exporter's certificate chain (PEM, leaf first): the intermediates the `cert` box cannot hold. */
export const EXPORTER_CHAIN_FILE = 'exporter.pem';

/** One evidence box: a file of the recording or the export, by name. */
export function evidenceBox(name: string, data: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const head = new Uint8Array(1 + nameBytes.length + 1);
  head[0] = EVIDENCE_BOX_VERSION;
  head.set(nameBytes, 1);
  return box('uuid', KEYFRAME_EVIDENCE_UUID, head, data);
}

export interface TopBox {
  readonly type: string;
  readonly offset: number;
  readonly size: number;
  readonly headerSize: number;
}

/** A `meta` box larger than this is not an export's: hdlr, suep, certificates and signatures are a few KiB. */
export const MAX_META_BYTES = 4 * 1024 * 1024;
/** Longest file name in an evidence box. */
const MAX_EVIDENCE_NAME = 255;

/** The top-level boxes of the source, by reading their headers only. */
export async function topLevelBoxes(source: Mp4Source): Promise<TopBox[]> {
  const out: TopBox[] = [];
  let pos = 0;
  while (pos < source.size) {
    if (out.length >= MAX_ENTRIES) throw new MediaError(`more than ${MAX_ENTRIES} top-level boxes: not an export file`);
    if (source.size - pos < 8) throw new MediaError(`${source.size - pos} bytes after the last box at ${pos}: a truncated box header`, pos);
    const h = await source.read(pos, Math.min(16, source.size - pos));
    const view = new DataView(h.buffer, h.byteOffset, h.byteLength);
    let size = view.getUint32(0);
    const type = String.fromCharCode(h[4] ?? 0, h[5] ?? 0, h[6] ?? 0, h[7] ?? 0);
    let headerSize = 8;
    if (size === 1) {
      if (h.length < 16) throw new MediaError(`box '${type}' at ${pos}: truncated 64-bit size`, pos);
      const big = view.getBigUint64(8);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new MediaError(`box '${type}' at ${pos} claims ${big} bytes`, pos);
      size = Number(big);
      headerSize = 16;
    } else if (size === 0) {
      size = source.size - pos;
    }
    if (size < headerSize || pos + size > source.size) throw new MediaError(`box '${type}' at ${pos} has size ${size}: beyond the end of the file (${source.size} bytes)`, pos);
    out.push({ type, offset: pos, size, headerSize });
    pos += size;
  }
  return out;
}

/**
 * True when the file is an ONVIF export: a top-level `meta` box holding a SurveillanceExportBox or an
 * ItemProtectionBox (sealed or not, well-formed or not: checked as one). A top-level `meta` of another kind (some
 * writers put iTunes-style metadata there) leaves the file an ordinary MP4.
 */
export async function isOnvifExport(source: Mp4Source): Promise<boolean> {
  for (const b of (await topLevelBoxes(source)).filter((x) => x.type === 'meta')) {
    // FullBox: version and flags, then the children
    const start = b.offset + b.headerSize + 4;
    const end = b.offset + Math.min(b.size, MAX_META_BYTES);
    for (let pos = start; pos + 8 <= end; ) {
      const h = await source.read(pos, 8);
      const size = new DataView(h.buffer, h.byteOffset, 8).getUint32(0);
      const type = String.fromCharCode(h[4] ?? 0, h[5] ?? 0, h[6] ?? 0, h[7] ?? 0);
      if (type === 'suep' || type === 'ipro') return true;
      if (size < 8) break;
      pos += size;
    }
  }
  return false;
}

/** An evidence box: its file name and where the file's bytes are. */
export interface EvidenceEntry {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
}

/** True when a `uuid` box carries keyframe's evidence UUID. */
export async function isEvidenceBox(source: Mp4Source, b: TopBox): Promise<boolean> {
  if (b.type !== 'uuid' || b.size < b.headerSize + 16) return false;
  const uuid = await source.read(b.offset + b.headerSize, 16);
  return Buffer.from(uuid).equals(Buffer.from(KEYFRAME_EVIDENCE_UUID));
}

/** Reads an evidence box's header (version, name). */
export async function readEvidenceEntry(source: Mp4Source, b: TopBox): Promise<EvidenceEntry> {
  const start = b.offset + b.headerSize + 16;
  const end = b.offset + b.size;
  const head = await source.read(start, Math.min(end - start, 2 + MAX_EVIDENCE_NAME));
  if (head[0] !== EVIDENCE_BOX_VERSION) throw new MediaError(`evidence box at ${b.offset}: version ${head[0] ?? '?'}, keyframe reads ${EVIDENCE_BOX_VERSION}`, b.offset);
  const nul = head.indexOf(0, 1);
  if (nul < 0) throw new MediaError(`evidence box at ${b.offset}: no NUL-terminated file name`, b.offset);
  const name = new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(1, nul));
  if (name === '' || name.includes('/')) throw new MediaError(`evidence box at ${b.offset}: file name '${name}' is not a plain name`, b.offset);
  return { name, offset: start + nul + 1, size: end - (start + nul + 1) };
}

/** The parts of an export file. */
export interface ExportLayout {
  readonly boxes: readonly TopBox[];
  /** ftyp … moov: everything before the first evidence box or fragment. */
  readonly initEnd: number;
  readonly evidence: readonly EvidenceEntry[];
  /** [start, end) of the fragments (styp/moof/mdat …), between the evidence and `meta`. */
  readonly media: { readonly start: number; readonly end: number };
  /** The file-level `meta` box (the last one at top level). */
  readonly meta?: TopBox;
  /** Boxes after `meta`: no seal covers them. */
  readonly after: readonly TopBox[];
  /** What does not fit the grammar above. */
  readonly problems: string[];
}

const MEDIA_BOXES = new Set(['styp', 'sidx', 'prft', 'emsg', 'moof', 'mdat', 'free', 'skip']);

export async function readLayout(source: Mp4Source): Promise<ExportLayout> {
  const boxes = await topLevelBoxes(source);
  const problems: string[] = [];
  const metaIndex = boxes.map((b) => b.type).lastIndexOf('meta');
  const meta = metaIndex >= 0 ? boxes[metaIndex] : undefined;
  if (boxes.filter((b) => b.type === 'meta').length > 1) problems.push("more than one file-level 'meta' box: the specification wants exactly one ItemProtectionBox, in the file-level meta");
  const before = metaIndex >= 0 ? boxes.slice(0, metaIndex) : boxes;
  const moov = before.findIndex((b) => b.type === 'moov');
  if (moov < 0) throw new MediaError("no 'moov' box before the seal: not an MP4 movie");
  const initEnd = (before[moov] as TopBox).offset + (before[moov] as TopBox).size;
  const evidence: EvidenceEntry[] = [];
  let mediaStart: number | undefined;
  const strange: string[] = [];
  for (const b of before.slice(moov + 1)) {
    if (await isEvidenceBox(source, b)) {
      if (mediaStart !== undefined) problems.push(`keyframe evidence box at ${b.offset} after the first fragment`);
      evidence.push(await readEvidenceEntry(source, b));
    } else {
      mediaStart ??= b.offset;
      if (!MEDIA_BOXES.has(b.type)) strange.push(`box '${b.type}' at ${b.offset} among the fragments`);
    }
  }
  // keyframe's own layout is checked in keyframe's exports; another exporter's may hold other boxes (the seal covers them)
  if (evidence.length > 0) problems.push(...strange);
  const mediaEnd = meta?.offset ?? source.size;
  const names = new Set<string>();
  for (const e of evidence) {
    if (names.has(e.name)) problems.push(`two evidence boxes named ${e.name}`);
    names.add(e.name);
  }
  if (meta !== undefined && meta.size > MAX_META_BYTES) throw new MediaError(`the file-level 'meta' box is ${meta.size} bytes: more than the ${MAX_META_BYTES} an export's seal takes`, meta.offset);
  return { boxes, initEnd, evidence, media: { start: mediaStart ?? mediaEnd, end: mediaEnd }, ...(meta !== undefined ? { meta } : {}), after: metaIndex >= 0 ? boxes.slice(metaIndex + 1) : [], problems };
}
