/**
 * keyframe's own signing SEI (docs/signed-video.md §1b): what keyframe guarantees beyond ONVIF Media Signing rides in
 * a second user_data_unregistered SEI with keyframe's UUID, which ONVIF validators neither hash nor read. Two kinds,
 * each signed by the device key over its document (the SEI NAL unit as it is in the stream, from its header byte up
 * to the signature):
 *
 * - session: the session manifest (canonical JSON: serial, session id, start, key id, first counter value);
 * - unit: one keyframe unit (≤ 1 s of frames): counter, session tag, claimed times, first frame index,
 *   parameter-set digest, an optional end marker, and the first 8 bytes of every frame hash.
 */
import { MediaError } from '../errors.js';
import { NalType, uuidBytes } from '../media/h264/index.js';
import { PS_DIGEST_BYTES } from './hashing.js';
import { escapedPrefix, escapeWithMark, firstUserData } from './onvif.js';

export const KEYFRAME_UUID = uuidBytes('85463bf3-9614-461c-8e91-f56f32b502b6');
export const KEYFRAME_SEI_VERSION = 1;

export const KeyframeSeiKind = { SESSION: 1, UNIT: 2 } as const;

/** Unit flags: the session's last unit (an end reason byte follows the fixed fields); the unit starts at a keyframe. */
export const UNIT_END = 0x01;
export const UNIT_AT_KEYFRAME = 0x02;

/** Bytes of a truncated frame hash in the unit SEI, and of the session tag. */
export const FRAME_HASH_BYTES = 8;
export const SESSION_TAG_BYTES = 8;
/** The longest unit duration the SEI holds: u32 in 100 ns ticks (about 429 s). */
export const MAX_UNIT_TICKS = 0xffffffffn;

export interface SessionManifest {
  readonly v: 1;
  readonly serial: string;
  /** 32 hex digits. */
  readonly session: string;
  readonly start: string;
  /** SHA-256 of the device's SubjectPublicKeyInfo, hex. */
  readonly kid: string;
  readonly counterStart: number;
}

export interface KeyframeUnit {
  readonly flags: number;
  /** The low 32 bits of the per-camera unit counter. */
  readonly counter: number;
  /** The first 8 bytes of the session id. */
  readonly sessionTag: Uint8Array;
  /** 100 ns intervals since 1601-01-01 of the unit's first frame. */
  readonly start: bigint;
  /** Exclusive end: the time of the first frame after the unit (at most MAX_UNIT_TICKS after start). */
  readonly end: bigint;
  /** Session index of the unit's first frame. */
  readonly firstFrame: number;
  /** The first PS_DIGEST_BYTES of the parameter-set digest. */
  readonly psDigest: Uint8Array;
  /** unitDigest over the full parameter-set digest and the full frame hashes (hashing.ts). */
  readonly unitDigest: Uint8Array;
  /** Present on the session's last unit. */
  readonly endReason?: number;
  /** The first 8 bytes of each frame hash, in decoding order. */
  readonly frameHashes: readonly Uint8Array[];
}

export type KeyframeSeiSigner = (document: Uint8Array) => Promise<Uint8Array>;

export type ParsedKeyframeSei =
  | ({ readonly kind: 'kf-unit'; readonly document: Uint8Array; readonly signature: Uint8Array } & KeyframeUnit)
  | { readonly kind: 'kf-session'; readonly document: Uint8Array; readonly signature: Uint8Array; readonly manifest: SessionManifest; readonly manifestJson: string }
  | { readonly kind: 'malformed'; readonly reason: string };

/** Canonical JSON of a flat object: keys sorted, no white space. */
export function canonicalJson(obj: Readonly<Record<string, string | number>>): string {
  const keys = Object.keys(obj).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(obj[k])}`).join(',')}}`;
}

export function manifestJson(m: SessionManifest): string {
  return canonicalJson({ v: m.v, serial: m.serial, session: m.session, start: m.start, kid: m.kid, counterStart: m.counterStart });
}

// ---- build ----------------------------------------------------------------------------------------------------

function ffLength(v: number): number {
  return Math.floor(v / 255) + 1;
}

/** An SEI NAL unit with keyframe's UUID around `body`, signed: the signature closes the payload. */
async function buildSigned(body: Uint8Array, sign: KeyframeSeiSigner, signatureBytes: number): Promise<Uint8Array> {
  const payloadSize = 16 + body.length + signatureBytes;
  const rbsp = new Uint8Array(2 + ffLength(payloadSize) + payloadSize + 1);
  rbsp[0] = NalType.SEI;
  rbsp[1] = 5;
  let p = 2;
  let size = payloadSize;
  while (size >= 255) {
    rbsp[p++] = 0xff;
    size -= 255;
  }
  rbsp[p++] = size;
  rbsp.set(KEYFRAME_UUID, p);
  p += 16;
  rbsp.set(body, p);
  p += body.length;
  const sigAt = p;
  const document = escapeWithMark(rbsp.subarray(0, sigAt), sigAt).nal;
  const signature = await sign(document);
  if (signature.length !== signatureBytes) throw new MediaError(`signature of ${signature.length} bytes, expected ${signatureBytes}`);
  rbsp.set(signature, p);
  rbsp[p + signatureBytes] = 0x80;
  return escapeWithMark(rbsp, sigAt).nal;
}

/**
 * The fixed part of a unit SEI's body, after the UUID: version u8, kind u8, flags u8, counter u32, session tag 8 B,
 * start u64, duration u32 (100 ns), first frame u32, parameter-set digest 8 B, unit digest 32 B, frame count u16; all
 * big-endian. Then the end reason (u8, with UNIT_END), the 8-byte frame hashes, and the signature.
 */
const UNIT_FIXED = 1 + 1 + 1 + 4 + SESSION_TAG_BYTES + 8 + 4 + 4 + PS_DIGEST_BYTES + 32 + 2;

export function buildKeyframeUnitSei(u: KeyframeUnit, sign: KeyframeSeiSigner, signatureBytes: number): Promise<Uint8Array> {
  const duration = u.end - u.start;
  if (duration < 0n || duration > MAX_UNIT_TICKS) throw new MediaError(`unit duration of ${duration} × 100 ns does not fit keyframe's unit SEI`);
  if (u.start < 0n || u.start >= 1n << 64n) throw new MediaError('unit start out of range');
  if (u.sessionTag.length !== SESSION_TAG_BYTES || u.psDigest.length !== PS_DIGEST_BYTES || u.unitDigest.length !== 32) throw new MediaError('unit SEI: bad session tag or digest size');
  if (u.frameHashes.length > 0xffff) throw new MediaError('unit SEI: too many frames');
  if (!Number.isInteger(u.firstFrame) || u.firstFrame < 0 || u.firstFrame > 0xffffffff) throw new MediaError('unit SEI: first frame out of range');
  const end = u.endReason !== undefined;
  const flags = (u.flags & ~UNIT_END) | (end ? UNIT_END : 0);
  const body = new Uint8Array(UNIT_FIXED + (end ? 1 : 0) + FRAME_HASH_BYTES * u.frameHashes.length);
  const dv = new DataView(body.buffer);
  body[0] = KEYFRAME_SEI_VERSION;
  body[1] = KeyframeSeiKind.UNIT;
  body[2] = flags;
  dv.setUint32(3, u.counter >>> 0, false);
  body.set(u.sessionTag, 7);
  dv.setBigUint64(15, u.start, false);
  dv.setUint32(23, Number(duration), false);
  dv.setUint32(27, u.firstFrame, false);
  body.set(u.psDigest, 31);
  body.set(u.unitDigest, 39);
  dv.setUint16(71, u.frameHashes.length, false);
  let p = UNIT_FIXED;
  if (end) body[p++] = u.endReason ?? 0;
  for (const h of u.frameHashes) {
    if (h.length < FRAME_HASH_BYTES) throw new MediaError('frame hash too short');
    body.set(h.subarray(0, FRAME_HASH_BYTES), p);
    p += FRAME_HASH_BYTES;
  }
  return buildSigned(body, sign, signatureBytes);
}

export function buildKeyframeSessionSei(m: SessionManifest, sign: KeyframeSeiSigner, signatureBytes: number): Promise<Uint8Array> {
  const json = new TextEncoder().encode(manifestJson(m));
  if (json.length > 0xffff) throw new MediaError('session manifest too large');
  const body = new Uint8Array(4 + json.length);
  body[0] = KEYFRAME_SEI_VERSION;
  body[1] = KeyframeSeiKind.SESSION;
  body[2] = json.length >>> 8;
  body[3] = json.length & 0xff;
  body.set(json, 4);
  return buildSigned(body, sign, signatureBytes);
}

// ---- parse ----------------------------------------------------------------------------------------------------

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** Whether an SEI NAL unit is keyframe's signing SEI. */
export function isKeyframeSei(nal: Uint8Array): boolean {
  const m = firstUserData(nal);
  return m !== undefined && sameBytes(m.rbsp.subarray(m.at, m.at + 16), KEYFRAME_UUID);
}

function validManifest(x: unknown): x is SessionManifest {
  if (typeof x !== 'object' || x === null) return false;
  const m = x as Record<string, unknown>;
  return (
    m['v'] === 1 &&
    typeof m['serial'] === 'string' &&
    typeof m['session'] === 'string' &&
    /^[0-9a-f]{32}$/.test(m['session']) &&
    typeof m['start'] === 'string' &&
    typeof m['kid'] === 'string' &&
    typeof m['counterStart'] === 'number' &&
    Number.isSafeInteger(m['counterStart']) &&
    m['counterStart'] >= 0 &&
    Object.keys(m).length === 6
  );
}

/** Parses keyframe's signing SEI; undefined for any other NAL unit. */
export function parseKeyframeSei(nal: Uint8Array): ParsedKeyframeSei | undefined {
  const m = firstUserData(nal);
  if (m === undefined || !sameBytes(m.rbsp.subarray(m.at, m.at + 16), KEYFRAME_UUID)) return undefined;
  try {
    const { rbsp, epb, at, size } = m;
    const after = at + size;
    if (!(after === rbsp.length || (rbsp[after] === 0x80 && rbsp.subarray(after + 1).every((b) => b === 0)))) {
      throw new MediaError('keyframe SEI: more than one SEI message in the NAL unit');
    }
    const body = rbsp.subarray(at + 16, after);
    if (body[0] !== KEYFRAME_SEI_VERSION) throw new MediaError(`keyframe SEI version ${body[0] ?? 'missing'}`);
    const signed = (bodyBytes: number): { document: Uint8Array; signature: Uint8Array } => {
      const sigAt = at + 16 + bodyBytes;
      const signature = rbsp.subarray(sigAt, after);
      if (signature.length === 0) throw new MediaError('keyframe SEI without a signature');
      return { document: nal.subarray(0, escapedPrefix(sigAt, epb)), signature };
    };
    if (body[1] === KeyframeSeiKind.SESSION) {
      if (body.length < 4) throw new MediaError('keyframe session SEI truncated');
      const n = ((body[2] as number) << 8) | (body[3] as number);
      if (4 + n > body.length) throw new MediaError('keyframe session SEI: manifest overruns the SEI');
      const json = new TextDecoder('utf-8', { fatal: true }).decode(body.subarray(4, 4 + n));
      let parsed: unknown;
      try {
        parsed = JSON.parse(json);
      } catch {
        throw new MediaError('session manifest is not JSON');
      }
      if (!validManifest(parsed)) throw new MediaError('session manifest is not a keyframe v1 manifest');
      if (manifestJson(parsed) !== json) throw new MediaError('session manifest is not canonical JSON');
      return { kind: 'kf-session', manifest: parsed, manifestJson: json, ...signed(4 + n) };
    }
    if (body[1] !== KeyframeSeiKind.UNIT) throw new MediaError(`keyframe SEI kind ${body[1] ?? 'missing'}`);
    if (body.length < UNIT_FIXED) throw new MediaError('keyframe unit SEI truncated');
    const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const flags = body[2] as number;
    if ((flags & ~(UNIT_END | UNIT_AT_KEYFRAME)) !== 0) throw new MediaError(`keyframe unit SEI: unknown flags 0x${flags.toString(16)}`);
    const count = dv.getUint16(71, false);
    let p = UNIT_FIXED;
    let endReason: number | undefined;
    if ((flags & UNIT_END) !== 0) {
      endReason = body[p++];
      if (endReason === undefined) throw new MediaError('keyframe unit SEI: end marker truncated');
    }
    if (p + count * FRAME_HASH_BYTES > body.length) throw new MediaError('keyframe unit SEI: the hash list overruns the SEI');
    if (p + count * FRAME_HASH_BYTES === body.length) throw new MediaError('keyframe SEI without a signature');
    const frameHashes: Uint8Array[] = [];
    for (let i = 0; i < count; i++) frameHashes.push(body.subarray(p + i * FRAME_HASH_BYTES, p + (i + 1) * FRAME_HASH_BYTES));
    p += count * FRAME_HASH_BYTES;
    const start = dv.getBigUint64(15, false);
    return {
      kind: 'kf-unit',
      flags,
      counter: dv.getUint32(3, false),
      sessionTag: body.subarray(7, 7 + SESSION_TAG_BYTES),
      start,
      end: start + BigInt(dv.getUint32(23, false)),
      firstFrame: dv.getUint32(27, false),
      psDigest: body.subarray(31, 31 + PS_DIGEST_BYTES),
      unitDigest: body.subarray(39, 71),
      ...(endReason !== undefined ? { endReason } : {}),
      frameHashes,
      ...signed(p),
    };
  } catch (e) {
    if (e instanceof MediaError) return { kind: 'malformed', reason: e.message };
    throw e;
  }
}
