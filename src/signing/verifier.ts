/**
 * The streaming verifier (docs/signed-video.md §2): push NAL units in decoding order, get a report at the end.
 * Memory is bounded: the frame hashes of the unit being received (capped), the current session's state and its
 * merged time ranges.
 *
 * Two layers run side by side. The ONVIF Media Signing layer (onvif-verifier.ts) validates what any conformant ONVIF
 * signer emits. keyframe's layer validates keyframe's extension SEIs: per unit SEI the signature (with the key of the
 * session's ONVIF certificate SEI), the certificate chain at the unit's start time (revocation included), the
 * session tag and the counter (order, completeness, replay), the parameter sets in effect, the truncated per-frame
 * hashes to localise a difference to the frame, and the unit digest over the full hashes. A stream with keyframe's
 * SEIs is reported by keyframe's layer (with the ONVIF layer's findings); a stream with ONVIF SEIs alone by the
 * ONVIF layer, with the guarantees it then lacks.
 */
import { verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { MediaError } from '../errors.js';
import { AccessUnitAssembler, NalType } from '../media/h264/index.js';
import type { AccessUnit } from '../media/h264/index.js';
import type { X509Certificate, X509Crl } from '../pki/x509.js';
import { addRange, insertMarkers } from './_ranges.js';
import { frameHashOf, keyframeHashedType, nalDigest, ParameterSetTracker, PS_DIGEST_BYTES, sha256, unitDigest } from './hashing.js';
import { OnvifLayer, verifyOnvifSignature } from './onvif-verifier.js';
import { overallVerdict, sessionVerdict, type RangeStatus, type ReportRange, type SessionReport, type VerificationReport } from './report.js';
import { FRAME_HASH_BYTES, OID_ECDSA_SHA256, OID_RSA_PSS, OID_RSA_SHA256, OID_SHA256, parseSigningSei, SESSION_TAG_BYTES, type ParsedOnvifSei, type SigningSei } from './sei.js';
import { DEFAULT_FPS, fromFiletime, toFiletime } from './signer.js';
import { bounds, futureClaim, provenBefore, revocationKnowledge, timePolicy, unprovenReason, type Compromise, type TimePolicy } from './time.js';
import { establishSigner, signerValidAt } from './trust.js';

export { insertMarkers } from './_ranges.js';

export interface VerifierOptions {
  /** Trust anchors (the manufacturer root). */
  readonly roots: readonly X509Certificate[];
  /** When given, revocation is checked: material signed at or after a revocation time is rejected. */
  readonly crls?: readonly X509Crl[];
  /** The verification time: CRL freshness and the latest acceptable claimed time; default now. */
  readonly now?: Date;
  /** How far a claimed time may lead the verification time (default 5 minutes). */
  readonly maxSkewMs?: number;
  /**
   * Proofs of existence (RFC 3161 time-stamps over the recording's record chain): the earliest time, epoch ms, by
   * which the material of session `session` (hex id) at session second `sec` is proven to have existed, or undefined.
   * Given for recordings and bundles; ranges then carry their proven bounds.
   */
  readonly provenBy?: (session: string, sec: number) => number | undefined;
  /** Frame rate for estimated times when the SPS carries none (default 25). */
  readonly fps?: number;
  /** Frames kept waiting for a signature before they are reported unverified (default 3000). */
  readonly maxPendingFrames?: number;
}

interface PendingFrame {
  readonly hash: Uint8Array;
  readonly input: number;
}

type UnitSei = Extract<SigningSei, { kind: 'kf-unit' }>;
type SessionSei = Extract<SigningSei, { kind: 'kf-session' }>;

interface Session {
  readonly report: Omit<SessionReport, 'verdict'>;
  readonly anonymous: boolean;
  key?: KeyObject;
  leaf?: X509Certificate;
  intermediates: X509Certificate[];
  sessionId?: Uint8Array;
  startFt: bigint;
  counterStart: bigint;
  lastCounter?: bigint;
  /** The ONVIF layer's session that the certificate SEI opened (index into OnvifLayer.sessions). */
  onvifIndex?: number;
  /** Session seconds and frame index just after the last accepted unit. */
  lastEndSec: number;
  nextFrame: number;
  /** Where frames without signed times go: after the last accepted unit and earlier estimated frames. */
  estSec: number;
  estFrame: number;
  ended: boolean;
  validFrom?: number;
  validUntil?: number;
  /** Malformed signing SEIs, as zero-length tampered ranges at their place; merged into the ranges at the close. */
  markers: ReportRange[];
  /** The signer's certificate notBefore (epoch ms) and a later revocation as compromised, when known. */
  notBefore?: number;
  compromise?: Compromise;
  crlThisUpdate?: number;
}

function eq(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

function truncated(h: Uint8Array): Uint8Array {
  return h.subarray(0, FRAME_HASH_BYTES);
}

type Aligned = { kind: 'frame'; frame: PendingFrame; slot: number; match: boolean } | { kind: 'extra'; frame: PendingFrame; slot: number } | { kind: 'missing'; slot: number };

/** Aligns received frames with the signed hash list (greedy, n ≤ one unit). */
export function align(list: readonly Uint8Array[], frames: readonly PendingFrame[]): Aligned[] {
  const out: Aligned[] = [];
  const t = frames.map((f) => truncated(f.hash));
  const find = (arr: readonly Uint8Array[], x: Uint8Array, from: number): number => {
    for (let k = from; k < arr.length; k++) if (eq(arr[k] as Uint8Array, x)) return k;
    return -1;
  };
  let i = 0;
  let j = 0;
  while (i < list.length || j < frames.length) {
    if (i < list.length && j < frames.length) {
      const f = frames[j] as PendingFrame;
      if (eq(list[i] as Uint8Array, t[j] as Uint8Array)) {
        out.push({ kind: 'frame', frame: f, slot: i++, match: true });
        j++;
        continue;
      }
      const k = find(list, t[j] as Uint8Array, i + 1);
      if (k >= 0) {
        while (i < k) out.push({ kind: 'missing', slot: i++ });
        continue;
      }
      const k2 = find(t, list[i] as Uint8Array, j + 1);
      if (k2 >= 0) {
        while (j < k2) out.push({ kind: 'extra', frame: frames[j++] as PendingFrame, slot: i });
        continue;
      }
      out.push({ kind: 'frame', frame: f, slot: i++, match: false });
      j++;
    } else if (j < frames.length) {
      out.push({ kind: 'extra', frame: frames[j++] as PendingFrame, slot: i });
    } else {
      out.push({ kind: 'missing', slot: i++ });
    }
  }
  return out;
}

/** SHA-256 signature check (ECDSA as raw r‖s, IEEE P1363) that treats an undecodable signature as a bad one. */
function safeVerify(data: Uint8Array, key: KeyObject, signature: Uint8Array): boolean {
  try {
    return cryptoVerify('sha256', data, key.asymmetricKeyType === 'ec' ? { key, dsaEncoding: 'ieee-p1363' } : key, signature);
  } catch {
    return false;
  }
}

/** A chain valid at `ms` stays valid until its first notAfter or a later revocation: cache that interval. */
function rememberValidity(s: Session, ms: number, until: number): void {
  s.validFrom = ms;
  s.validUntil = until;
}

export class StreamVerifier {
  private readonly assembler = new AccessUnitAssembler();
  private readonly params = new ParameterSetTracker();
  private readonly sessions: Session[] = [];
  private session: Session;
  private pending: PendingFrame[] = [];
  private inputFrames = 0;
  private streamFps: number | undefined;
  private readonly policy: TimePolicy;
  private readonly onvif: OnvifLayer;
  /** The latest ONVIF certificate SEI: the signer of the keyframe session SEI that follows it. */
  private certificate: { readonly sei: ParsedOnvifSei; readonly onvifIndex: number } | undefined;
  private keyframeSeis = 0;
  private spsSeen = false;

  constructor(private readonly options: VerifierOptions) {
    this.session = this.newAnonymous();
    this.policy = timePolicy(options);
    // as many slices as keyframe's layer keeps frames, at up to 16 slices a frame
    this.onvif = new OnvifLayer(options, this.policy, () => this.fps, (options.maxPendingFrames ?? 3000) * 16);
  }

  private get fps(): number {
    return this.streamFps ?? this.options.fps ?? DEFAULT_FPS;
  }

  private newAnonymous(): Session {
    const s: Session = {
      report: { trust: 'none', chain: [], units: 0, frames: 0, endMarker: false, ranges: [] },
      anonymous: true,
      intermediates: [],
      startFt: 0n,
      counterStart: 0n,
      lastEndSec: 0,
      nextFrame: 0,
      estSec: 0,
      estFrame: 0,
      ended: false,
      markers: [],
    };
    this.sessions.push(s);
    return s;
  }

  /**
   * Parameter sets from outside the stream (an MP4's avcC), so that its slices can be parsed: not stream content
   * (not hashed, not the parameter sets in effect that keyframe's units sign).
   */
  codecConfig(nals: readonly Uint8Array[]): void {
    for (const nal of nals) {
      try {
        this.assembler.learn(nal);
      } catch (e) {
        if (!(e instanceof MediaError)) throw e;
      }
    }
  }

  async push(nal: Uint8Array): Promise<void> {
    let aus: AccessUnit[];
    try {
      aus = this.assembler.push(nal);
    } catch (e) {
      if (!(e instanceof MediaError)) throw e;
      // an unparsable NAL unit is kept as a frame of its own: it matches nothing that was signed
      this.addFrame({ hash: sha256(sha256(nal)), input: this.inputFrames++ });
      return;
    }
    for (const au of aus) await this.accessUnit(au);
  }

  async finish(): Promise<VerificationReport> {
    for (const au of this.assembler.flush()) await this.accessUnit(au);
    this.closeSession();
    this.onvif.closeSession();
    // keyframe's layer reports a stream that carries its SEIs; the ONVIF layer one that carries ONVIF SEIs alone
    if (this.keyframeSeis === 0 && this.onvif.seen) {
      const sessions: SessionReport[] = this.onvif.sessions.map((o) => {
        const report = { ...o.report };
        if (o.problems.length > 0) report.onvif = { gops: o.valid + o.invalid, valid: o.valid, invalid: o.invalid, problems: o.problems.slice(0, 20) };
        // a keyframe camera's stream without keyframe's SEIs: they were stripped
        if (o.vendor?.firmwareVersion.startsWith('keyframe') === true) {
          const r: ReportRange = { status: 'tampered', start: 0, end: 0, firstFrame: 0, lastFrame: 0, reason: "keyframe's extension SEIs are missing from a keyframe camera's stream (stripped)" };
          report.ranges = [r, ...report.ranges];
        }
        return { verdict: sessionVerdict(report), ...report };
      });
      return { verdict: overallVerdict(sessions), frames: this.inputFrames, sessions };
    }
    const sessions: SessionReport[] = this.sessions
      .filter((s) => !(s.anonymous && s.report.frames === 0 && s.report.units === 0 && this.sessions.length > 1))
      .map((s) => {
        const o = s.onvifIndex !== undefined ? this.onvif.sessions[s.onvifIndex] : undefined;
        if (o !== undefined) {
          s.report.onvif = { gops: o.valid + o.invalid, valid: o.valid, invalid: o.invalid, problems: o.problems.slice(0, 20) };
          // ONVIF SEIs changed while keyframe's layer found nothing: ONVIF validators will reject the stream
          if (o.invalid > 0 && !s.report.ranges.some((r) => r.status === 'tampered' || r.status === 'unverified' || r.status === 'missing')) {
            s.report.ranges.push({ status: 'tampered', start: s.lastEndSec, end: s.lastEndSec, firstFrame: s.nextFrame, lastFrame: s.nextFrame, reason: `ONVIF layer: ${o.problems[0] ?? 'an ONVIF SEI does not verify'}` });
          }
        }
        return { verdict: sessionVerdict(s.report), ...s.report };
      });
    return { verdict: overallVerdict(sessions), frames: this.inputFrames, sessions };
  }

  private async accessUnit(au: AccessUnit): Promise<void> {
    const input = this.inputFrames;
    for (const nal of au.nals) {
      const parsed = parseSigningSei(nal);
      if (parsed !== undefined) await this.sei(parsed, nal, input);
    }
    for (const nal of au.nals) this.params.push(nal);
    if (this.streamFps === undefined) {
      for (const sps of this.assembler.sps.values()) if (sps.frameRate !== undefined && sps.frameRate > 0 && sps.frameRate <= 1000) this.streamFps = sps.frameRate;
    }
    // one digest per NAL unit, shared with the ONVIF layer's slice items
    let digests = '';
    for (const nal of au.nals) {
      const t = (nal[0] ?? 0) & 0x1f;
      if (t === NalType.SPS) this.spsSeen = true;
      if (!keyframeHashedType(t)) continue;
      // an SEI before the stream's first SPS is not covered (the signer's rule: GStreamer's h264parse drops it)
      if (t === NalType.SEI && (!this.spsSeen || parseSigningSei(nal) !== undefined)) continue;
      const digest = nalDigest(nal);
      digests += digest;
      this.onvif.nal(nal, input, digest);
    }
    if (digests.length > 0) this.addFrame({ hash: frameHashOf(digests), input: this.inputFrames++ });
  }

  private addFrame(f: PendingFrame): void {
    this.pending.push(f);
    const max = this.options.maxPendingFrames ?? 3000;
    if (this.pending.length > max) {
      const spill = this.pending.splice(0, this.pending.length - max);
      this.estimated(this.session, spill, 'unverified', this.unsignedReason(this.session));
    }
  }

  private marker(reason: string): void {
    // where it is: before the next frame, which an anonymous session numbers by input position and a session
    // after its frames still waiting for a signature (where they will be placed if none comes)
    const s = this.session;
    const frame = s.anonymous ? this.inputFrames : s.estFrame + this.pending.length;
    const sec = s.anonymous ? this.inputFrames / this.fps : s.estSec + this.pending.length / this.fps;
    s.markers.push({ status: 'tampered', start: sec, end: sec, firstFrame: frame, lastFrame: frame, reason });
  }

  private async sei(p: SigningSei, nal: Uint8Array, input: number): Promise<void> {
    if (p.kind === 'malformed') {
      if (p.layer === 'keyframe') this.keyframeSeis++;
      this.marker(`malformed signing SEI: ${p.reason}`);
      if (p.layer === 'onvif') this.onvif.malformed(p.reason, input);
      return;
    }
    if (p.kind === 'onvif') {
      await this.onvif.sei(p, nal, input);
      if (p.certificate) this.certificate = { sei: p, onvifIndex: this.onvif.sessions.length - 1 };
      return;
    }
    this.keyframeSeis++;
    if (p.kind === 'kf-session') {
      this.closeSession();
      this.session = await this.openSession(p);
      this.sessions.push(this.session);
      return;
    }
    await this.unit(p);
  }

  /** Frames still waiting for a signature when the session closes are unverified. */
  private closeSession(): void {
    const s = this.session;
    if (!s.anonymous && !s.report.endMarker) s.report.endMissingAfter = s.report.units > 0 ? s.lastEndSec : 0;
    const t = s.report.time;
    if (t !== undefined) {
      const toMs = fromFiletime(s.startFt) + s.lastEndSec * 1000;
      t.claimedTo = new Date(toMs).toISOString();
      t.revocation = revocationKnowledge(this.options.crls !== undefined, s.crlThisUpdate, toMs);
    }
    if (this.pending.length > 0) {
      this.estimated(s, this.pending, 'unverified', this.unsignedReason(s));
      this.pending = [];
    }
    insertMarkers(s.report.ranges, s.markers);
    s.markers = [];
  }

  /** Why frames that no signature covered are unverified. */
  private unsignedReason(s: Session): string {
    if (s.anonymous && s.report.units === 0) return 'not signed';
    return s.ended ? 'after the signed end marker' : 'not signed: no signature follows these frames';
  }

  private async openSession(p: SessionSei): Promise<Session> {
    const m = p.manifest;
    const startMs = Date.parse(m.start);
    const s: Session = {
      report: { trust: 'trusted', format: 'keyframe', session: m.session, serial: m.serial, chain: [], start: m.start, counterStart: m.counterStart, units: 0, frames: 0, endMarker: false, ranges: [] },
      anonymous: false,
      intermediates: [],
      sessionId: Buffer.from(m.session, 'hex'),
      startFt: toFiletime(Number.isFinite(startMs) ? startMs : 0),
      counterStart: BigInt(m.counterStart),
      lastEndSec: 0,
      nextFrame: 0,
      estSec: 0,
      estFrame: 0,
      ended: false,
      markers: [],
    };
    const fail = (trust: 'untrusted' | 'invalid', reason: string): Session => {
      s.report.trust = trust;
      s.report.trustReason = reason;
      return s;
    };
    if (!Number.isFinite(startMs)) return fail('invalid', 'manifest start time is not a valid time');
    const cert = this.certificate;
    this.certificate = undefined;
    if (cert === undefined) return fail('untrusted', 'no ONVIF certificate SEI before the session SEI: the signer is unknown');
    s.onvifIndex = cert.onvifIndex;
    const chainPem = cert.sei.certificates[0]?.chainPem;
    if (chainPem === undefined) return fail('untrusted', 'the certificate SEI carries no certificate chain');
    // who signed: the chain at the recording start (shared with the recording verifier), then what only the
    // opening SEIs carry: their signatures, the key id, the serial and the algorithms
    const id = await establishSigner(chainPem, new Date(startMs), this.options, 'video-signing', 'certificate SEI');
    s.report.chain = id.chain;
    if (id.leaf !== undefined) {
      s.leaf = id.leaf;
      s.intermediates = id.intermediates;
    }
    const key = id.key;
    if (key === undefined || id.leaf === undefined) return fail('untrusted', id.reason ?? 'certificate chain not trusted');
    s.key = key;
    if (id.trust === 'untrusted') return fail('untrusted', id.reason ?? 'certificate chain not trusted');
    const info = cert.sei.cryptoInfo;
    if (cert.sei.document === undefined || cert.sei.signature === undefined || !verifyOnvifSignature(cert.sei.document, key, cert.sei.signature, info?.signatureOid)) {
      return fail('invalid', 'certificate SEI signature does not verify');
    }
    if (!safeVerify(p.document, key, p.signature)) return fail('invalid', 'session SEI signature does not verify');
    if (Buffer.from(sha256(Buffer.from(id.leaf.publicKey.rawData))).toString('hex') !== m.kid) return fail('invalid', 'manifest key id does not match the certificate');
    if (id.serial !== undefined && id.serial !== m.serial) return fail('invalid', `manifest serial ${m.serial} is not the certificate's (${id.serial})`);
    const sigOk =
      key.asymmetricKeyType === 'ec'
        ? info?.signatureOid === undefined || info.signatureOid === OID_ECDSA_SHA256
        : key.asymmetricKeyType === 'rsa' && (info?.signatureOid === OID_RSA_SHA256 || info?.signatureOid === OID_RSA_PSS);
    if (info?.hashOid !== OID_SHA256 || !sigOk) return fail('invalid', `unsupported algorithms ${info?.hashOid ?? 'none'} / ${info?.signatureOid ?? 'none'}`);
    const future = futureClaim(startMs, this.policy, 'the session manifest');
    if (future !== undefined) return fail('invalid', future);
    if (id.trust === 'invalid' || id.validUntil === undefined) return fail('invalid', `certificate not valid at the recording start: ${id.reason ?? 'invalid'}`);
    rememberValidity(s, startMs, id.validUntil);
    if (id.notBefore !== undefined) s.notBefore = id.notBefore;
    if (id.compromise !== undefined) s.compromise = id.compromise;
    if (id.crlThisUpdate !== undefined) s.crlThisUpdate = id.crlThisUpdate;
    const c = id.compromise;
    s.report.time = {
      claimedFrom: m.start,
      notBefore: new Date(id.notBefore ?? startMs).toISOString(),
      ...(c !== undefined ? { compromise: { time: new Date(c.time).toISOString(), reason: c.reason, subject: c.subject } } : {}),
      revocation: revocationKnowledge(this.options.crls !== undefined, id.crlThisUpdate, startMs),
    };
    return s;
  }

  /** Whether the session's certificate is valid at `ms` (cached over intervals known to be valid). */
  private async certValidAt(s: Session, ms: number): Promise<string | undefined> {
    if (s.validFrom !== undefined && s.validUntil !== undefined && ms >= s.validFrom && ms < s.validUntil) return undefined;
    if (s.leaf === undefined) return 'no certificate';
    const r = await signerValidAt(s.leaf, s.intermediates, new Date(ms), this.options);
    if (!r.valid) return r.reason;
    rememberValidity(s, ms, r.validUntil);
    return undefined;
  }

  private sec(s: Session, ft: bigint): number {
    return (fromFiletime(ft) - fromFiletime(s.startFt)) / 1000;
  }

  private async unit(p: UnitSei): Promise<void> {
    const s = this.session;
    const frames = this.pending;
    this.pending = [];
    s.report.units++;
    if (s.anonymous || s.key === undefined || s.sessionId === undefined) {
      this.estimated(s, frames, 'unverified', s.anonymous ? 'no certificate SEI: the signer is unknown (session start missing)' : 'the signer is not established');
      if (p.endReason !== undefined) s.ended = s.report.endMarker = true;
      return;
    }
    if (!safeVerify(p.document, s.key, p.signature)) {
      this.estimated(s, frames, 'tampered', 'signature does not verify with the session key (foreign or forged unit)');
      return;
    }
    if (!eq(p.sessionTag, s.sessionId.subarray(0, SESSION_TAG_BYTES))) {
      this.estimated(s, frames, 'tampered', 'the unit belongs to another session (spliced)');
      return;
    }
    if (s.ended) {
      this.estimated(s, frames, 'tampered', 'unit after the signed end marker');
      return;
    }
    // the SEI carries the counter's low 32 bits: compare in that space
    const expected = s.lastCounter === undefined ? s.counterStart : s.lastCounter + 1n;
    const delta = (p.counter - Number(expected & 0xffffffffn)) >>> 0;
    if (delta > 0x7fffffff) {
      const c = expected - BigInt(0x100000000 - delta);
      this.estimated(s, frames, 'tampered', `unit ${c - s.counterStart} out of order (replayed or reordered; expected unit ${expected - s.counterStart})`);
      return;
    }
    const c = expected + BigInt(delta);
    const gap = c > expected;
    const aligned = align(p.frameHashes, frames);
    const leadingExtras = aligned.findIndex((a) => a.kind !== 'extra');
    const nLeading = leadingExtras < 0 ? aligned.length : leadingExtras;
    // after a gap, frames before the first signed one belong to units whose signature is missing
    const base = gap ? nLeading : 0;
    const core = aligned.slice(base);
    const allMatch = core.length === p.frameHashes.length && core.every((a) => a.kind === 'frame' && a.match);
    const ps = this.params.digest();
    const psProblem = !eq(ps.subarray(0, PS_DIGEST_BYTES), p.psDigest);
    if (allMatch && !psProblem && !eq(unitDigest(ps, frames.slice(base).map((f) => f.hash)), p.unitDigest)) {
      this.estimated(s, frames, 'tampered', 'unit digest mismatch: frames or parameter sets are not the signed ones');
      return;
    }
    const certProblem = await this.certValidAt(s, fromFiletime(p.start));
    // the time rules: no claim ahead of the verification time; a compromised key's material needs a prior proof
    const future = futureClaim(fromFiletime(p.end), this.policy, `unit ${c - s.counterStart}`);
    const provenBy = this.options.provenBy !== undefined && s.report.session !== undefined ? this.options.provenBy(s.report.session, this.sec(s, p.start)) : undefined;
    const unproven = s.compromise !== undefined && !provenBefore(s.compromise, provenBy) ? unprovenReason(s.compromise, provenBy, 'this unit') : undefined;
    const proven = this.options.provenBy !== undefined && s.notBefore !== undefined ? bounds(s.notBefore, provenBy) : undefined;

    const startSec = this.sec(s, p.start);
    const endSec = this.sec(s, p.end);
    const n = p.frameHashes.length;
    const dur = n > 0 && endSec > startSec ? (endSec - startSec) / n : 1 / this.fps;
    const slotSec = (i: number): number => startSec + i * dur;
    const slotFrame = (i: number): number => p.firstFrame + i;
    if (gap) {
      const [a, b] = [expected - s.counterStart, c - 1n - s.counterStart];
      const reason = a === b ? `unit ${a} missing (counter ${expected})` : `units ${a}–${b} missing (counters ${expected}–${c - 1n})`;
      if (nLeading > 0) {
        const lead = aligned.slice(0, nLeading).map((x) => (x as { frame: PendingFrame }).frame);
        this.estimated(s, lead, 'unverified', `no signature: the signing SEI of ${reason.replace(' missing', '')} is missing`);
      } else if (startSec > s.lastEndSec || s.lastCounter === undefined) {
        this.addRange(s, { status: 'missing', start: s.lastEndSec, end: startSec, firstFrame: s.nextFrame, lastFrame: Math.max(s.nextFrame, slotFrame(0) - 1), reason });
      }
    }
    for (const a of core) {
      const i = a.slot;
      const at = { start: slotSec(i), end: slotSec(i + 1), firstFrame: slotFrame(i), lastFrame: slotFrame(i) };
      if (a.kind === 'missing') {
        this.addRange(s, { status: 'missing', ...at, reason: 'frame missing' });
        continue;
      }
      s.report.frames++;
      const input = { inputFirst: a.frame.input, inputLast: a.frame.input };
      let status: RangeStatus = 'authentic';
      let reason: string | undefined;
      if (a.kind === 'extra') [status, reason] = ['tampered', 'frame inserted (not in the signed unit)'];
      else if (!a.match) [status, reason] = ['tampered', 'frame modified'];
      else if (psProblem) [status, reason] = ['tampered', 'parameter sets differ from the signed ones'];
      else if (certProblem !== undefined) [status, reason] = ['unverified', `signing certificate not valid at the recording time: ${certProblem}`];
      else if (future !== undefined) [status, reason] = ['unverified', future];
      else if (unproven !== undefined) [status, reason] = ['unproven', unproven];
      this.addRange(s, { status, ...at, ...input, ...(reason !== undefined ? { reason } : {}), ...(proven ?? {}) });
    }
    s.lastCounter = c;
    s.lastEndSec = endSec;
    s.nextFrame = slotFrame(n);
    s.estSec = Math.max(s.estSec, endSec);
    s.estFrame = Math.max(s.estFrame, s.nextFrame);
    if (p.endReason !== undefined) s.ended = s.report.endMarker = true;
  }

  /** Frames without signed times: placed after the last accepted unit at the stream's frame rate. */
  private estimated(s: Session, frames: readonly PendingFrame[], status: RangeStatus, reason: string): void {
    for (const f of frames) {
      s.report.frames++;
      const idx = s.anonymous ? f.input : s.estFrame;
      const start = s.anonymous ? f.input / this.fps : s.estSec;
      this.addRange(s, { status, start, end: start + 1 / this.fps, firstFrame: idx, lastFrame: idx, inputFirst: f.input, inputLast: f.input, reason });
      if (!s.anonymous) {
        s.estFrame++;
        s.estSec += 1 / this.fps;
      }
    }
  }

  private addRange(s: Session, r: ReportRange): void {
    addRange(s.report.ranges, r);
  }
}

/** Verifies a whole Annex-B stream in memory (tests, small files). */
export async function verifyNals(nals: Iterable<Uint8Array>, options: VerifierOptions): Promise<VerificationReport> {
  const v = new StreamVerifier(options);
  for (const nal of nals) await v.push(nal);
  return v.finish();
}
