/**
 * SEI messages (7.3.2.3, D.1): the carrier of keyframe's video signatures (user_data_unregistered, D.1.6, the
 * form ONVIF Media Signing and Axis Signed Video use) and of recovery points. Type and size are coded in 0xFF runs
 * ("ff-coding"); payloads are handled as RBSP bytes, and buildSeiNal escapes the whole NAL unit.
 */
import { MediaError } from '../../errors.js';
import { _BitReader } from './_bits.js';
import { NalType, nalType } from './nal.js';
import { escapeRbsp, unescapeRbsp } from './rbsp.js';

export interface SeiMessage {
  readonly payloadType: number;
  /** RBSP bytes of sei_payload() (emulation prevention removed). */
  readonly payload: Uint8Array;
}

/** payloadType values (Annex D) that keyframe reads or writes. */
export const SeiPayloadType = {
  BUFFERING_PERIOD: 0,
  PIC_TIMING: 1,
  USER_DATA_REGISTERED: 4,
  USER_DATA_UNREGISTERED: 5,
  RECOVERY_POINT: 6,
} as const;

/** Type and size values above this are refused: no real SEI comes near, and ff-runs stay bounded. */
const _MAX_FF_VALUE = 0xffffff;

function _readFf(rbsp: Uint8Array, pos: { p: number }, what: string): number {
  let v = 0;
  for (;;) {
    const b = rbsp[pos.p];
    if (b === undefined) throw new MediaError(`SEI truncated in ${what}`, pos.p);
    pos.p++;
    v += b;
    if (b !== 0xff) return v;
    if (v > _MAX_FF_VALUE) throw new MediaError(`SEI ${what} too large`, pos.p);
  }
}

/** True when only rbsp_trailing_bits (0x80, then possibly zero bytes) remain from `p`. */
function _onlyTrailing(rbsp: Uint8Array, p: number): boolean {
  if (p >= rbsp.length) return true;
  if (rbsp[p] !== 0x80) return false;
  for (let i = p + 1; i < rbsp.length; i++) if (rbsp[i] !== 0) return false;
  return true;
}

/**
 * Parses the messages of an SEI NAL unit (header byte included, escaped). Payloads are views into the RBSP.
 * A type or size that runs past the end, or a payload longer than what remains, is a MediaError. A missing
 * rbsp_trailing_bits byte at the very end is tolerated.
 */
export function parseSei(nal: Uint8Array): SeiMessage[] {
  const t = nalType(nal);
  if (t !== NalType.SEI) throw new MediaError(`SEI: NAL unit type ${t}, expected 6`);
  const { rbsp } = unescapeRbsp(nal);
  const messages: SeiMessage[] = [];
  const pos = { p: 1 };
  while (!_onlyTrailing(rbsp, pos.p)) {
    const payloadType = _readFf(rbsp, pos, 'payload type');
    const size = _readFf(rbsp, pos, 'payload size');
    if (size > rbsp.length - pos.p) throw new MediaError(`SEI payload of ${size} bytes overruns the NAL unit (${rbsp.length - pos.p} left)`, pos.p);
    messages.push({ payloadType, payload: rbsp.subarray(pos.p, pos.p + size) });
    pos.p += size;
  }
  return messages;
}

function _ffLength(v: number): number {
  return Math.floor(v / 255) + 1;
}

function _writeFf(out: Uint8Array, p: number, v: number): number {
  while (v >= 255) {
    out[p++] = 0xff;
    v -= 255;
  }
  out[p++] = v;
  return p;
}

/**
 * Builds an SEI NAL unit (nal_ref_idc 0, type 6) from messages: ff-coded type and size, payload, then
 * rbsp_trailing_bits, all escaped. Ready for Annex-B or length-prefixed output.
 */
export function buildSeiNal(messages: readonly SeiMessage[]): Uint8Array {
  let size = 2; // header byte and trailing bits
  for (const m of messages) {
    if (!Number.isInteger(m.payloadType) || m.payloadType < 0 || m.payloadType > _MAX_FF_VALUE) throw new MediaError(`SEI payload type ${m.payloadType} out of range`);
    if (m.payload.length > _MAX_FF_VALUE) throw new MediaError(`SEI payload of ${m.payload.length} bytes is too large`);
    size += _ffLength(m.payloadType) + _ffLength(m.payload.length) + m.payload.length;
  }
  const rbsp = new Uint8Array(size);
  rbsp[0] = NalType.SEI;
  let p = 1;
  for (const m of messages) {
    p = _writeFf(rbsp, p, m.payloadType);
    p = _writeFf(rbsp, p, m.payload.length);
    rbsp.set(m.payload, p);
    p += m.payload.length;
  }
  rbsp[p] = 0x80;
  return escapeRbsp(rbsp);
}

/** A user_data_unregistered message (payload type 5): a 16-byte UUID naming the format, then the data. */
export function userDataUnregistered(uuid: Uint8Array, data: Uint8Array): SeiMessage {
  if (uuid.length !== 16) throw new MediaError(`user_data_unregistered needs a 16-byte UUID, got ${uuid.length} bytes`);
  const payload = new Uint8Array(16 + data.length);
  payload.set(uuid, 0);
  payload.set(data, 16);
  return { payloadType: SeiPayloadType.USER_DATA_UNREGISTERED, payload };
}

/** Splits a user_data_unregistered message into UUID and data (views into the payload). */
export function parseUserDataUnregistered(msg: SeiMessage): { uuid: Uint8Array; data: Uint8Array } {
  if (msg.payloadType !== SeiPayloadType.USER_DATA_UNREGISTERED) throw new MediaError(`SEI payload type ${msg.payloadType} is not user_data_unregistered`);
  if (msg.payload.length < 16) throw new MediaError('user_data_unregistered shorter than its UUID');
  return { uuid: msg.payload.subarray(0, 16), data: msg.payload.subarray(16) };
}

/** 16 bytes of a UUID written as 8-4-4-4-12 hex (or plain hex). */
export function uuidBytes(text: string): Uint8Array {
  const hex = text.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new MediaError(`not a UUID: ${text}`);
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export interface RecoveryPoint {
  readonly recoveryFrameCnt: number;
  readonly exactMatch: boolean;
  readonly brokenLink: boolean;
  readonly changingSliceGroupIdc: number;
}

/** Parses a recovery_point message (D.1.8): decoding can start at this picture and is exact after recoveryFrameCnt frames. */
export function parseRecoveryPoint(msg: SeiMessage): RecoveryPoint {
  if (msg.payloadType !== SeiPayloadType.RECOVERY_POINT) throw new MediaError(`SEI payload type ${msg.payloadType} is not recovery_point`);
  const r = new _BitReader(msg.payload, 0, 'recovery_point SEI');
  const recoveryFrameCnt = r.ue();
  const exactMatch = r.flag();
  const brokenLink = r.flag();
  const changingSliceGroupIdc = r.u(2);
  return { recoveryFrameCnt, exactMatch, brokenLink, changingSliceGroupIdc };
}
