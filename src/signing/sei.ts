/**
 * The signing SEIs of a keyframe stream (docs/signed-video.md §1): ONVIF Media Signing SEIs (onvif.ts) and keyframe's
 * own SEI (keyframe-sei.ts). One parser for both, for the verifier, the recorder and the tests.
 */
import { NalType } from '../media/h264/index.js';
import { isKeyframeSei, parseKeyframeSei, type ParsedKeyframeSei } from './keyframe-sei.js';
import { isOnvifSei, parseOnvifSei, type ParsedOnvifSei } from './onvif.js';

export * from './onvif.js';
export * from './keyframe-sei.js';

export type SigningSei =
  | ParsedOnvifSei
  | Exclude<ParsedKeyframeSei, { kind: 'malformed' }>
  | { readonly kind: 'malformed'; readonly layer: 'onvif' | 'keyframe'; readonly reason: string };

/** Parses a signing SEI (ONVIF or keyframe); undefined for any other NAL unit. */
export function parseSigningSei(nal: Uint8Array): SigningSei | undefined {
  if (nal.length < 20 || ((nal[0] ?? 0) & 0x1f) !== NalType.SEI) return undefined;
  const o = parseOnvifSei(nal);
  if (o !== undefined) return o.kind === 'malformed' ? { kind: 'malformed', layer: 'onvif', reason: o.reason } : o;
  const k = parseKeyframeSei(nal);
  if (k !== undefined) return k.kind === 'malformed' ? { kind: 'malformed', layer: 'keyframe', reason: k.reason } : k;
  return undefined;
}

/** Whether a NAL unit is a signing SEI: an SEI whose first message is user_data_unregistered with the ONVIF or keyframe UUID. */
export function isSigningSei(nal: Uint8Array): boolean {
  if (nal.length < 20 || ((nal[0] ?? 0) & 0x1f) !== NalType.SEI) return false;
  return isOnvifSei(nal) || isKeyframeSei(nal);
}

/** A signing SEI of a unit (ONVIF unit SEI or keyframe unit SEI), as the recorder moves them: not a session's opening SEIs. */
export function isUnitSigningSei(nal: Uint8Array): boolean {
  const p = parseSigningSei(nal);
  return p !== undefined && (p.kind === 'kf-unit' || (p.kind === 'onvif' && !p.certificate));
}

/** The SEIs that open a session (ONVIF certificate SEI, keyframe session SEI): an export starting later needs them. */
export function isOpeningSigningSei(nal: Uint8Array): boolean {
  const p = parseSigningSei(nal);
  return p !== undefined && (p.kind === 'kf-session' || (p.kind === 'onvif' && p.certificate));
}
