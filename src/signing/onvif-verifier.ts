/**
 * The ONVIF Media Signing layer of the verifier (docs/signed-video.md §2): validates what any conformant ONVIF signer
 * emits, at the granularity it carries, the way the reference validator (onvif/media-signing-framework r25.12.3)
 * does:
 *
 * - the signer: the certificate TLV (PEM chain without the root, in the certificate SEI or in every signed SEI)
 *   checked against the trust anchors; its leaf key verifies each SEI's signature over its document;
 * - each signed SEI covers the hashed NAL units since the previous one (I/P slices, anchor-linked, and unsigned ONVIF
 *   SEIs): with a Hash list every item is matched, so a changed or dropped slice is found and its frame named;
 *   without (low-bitrate mode) only the GOP hash decides, for the whole GOP;
 * - the partial-GOP counter (+1 per SEI) finds lost SEIs, the linked hash a GOP out of place.
 *
 * Items after the last signed SEI are a dangling end (the specification allows it): reported as `excluded`.
 * Frames are numbered by their input position.
 */
import { verify as cryptoVerify, constants, type KeyObject } from 'node:crypto';
import type { X509Certificate } from '../pki/x509.js';
import { addRange, insertMarkers } from './_ranges.js';
import { gopHash, nalDigest, OnvifLinker, onvifSeiDigest, onvifSliceKind } from './hashing.js';
import { ONVIF_ONLY_MISSING, type RangeStatus, type ReportRange, type SessionReport } from './report.js';
import { decodeHashList, OID_RSA_PSS, OID_SHA256, RESERVED_EPB, type ParsedOnvifSei } from './onvif.js';
import { fromFiletime } from './signer.js';
import { futureClaim, type TimePolicy } from './time.js';
import { establishSigner, signerValidAt, type TrustOptions } from './trust.js';

interface Item {
  /** The item hash ('binary' string, 32 characters). */
  readonly hash: string;
  readonly anchor: boolean;
  /** Input frame of the slice (for an unsigned SEI: of the frame it precedes). */
  readonly input: number;
}

interface Signer {
  readonly chainPem: string;
  readonly key?: KeyObject;
  readonly leaf?: X509Certificate;
  readonly intermediates: X509Certificate[];
  readonly trust: 'trusted' | 'untrusted' | 'invalid';
  readonly reason?: string;
  readonly chain: string[];
  readonly serial?: string;
  /** Why the claimed time is not believed: it lies outside the leaf's validity (its signatures then prove no time). */
  readonly timeUnproven?: string;
}

export interface OnvifSession {
  readonly report: Omit<SessionReport, 'verdict'>;
  /** FILETIME of the first signed SEI's start: session second 0. */
  base?: bigint;
  /** Signed SEIs that verified and whose items all matched, and those that did not. */
  valid: number;
  invalid: number;
  problems: string[];
  markers: ReportRange[];
  /** Frames reported missing (they take frame numbers). */
  missingFrames: number;
  /** The vendor info of the certificate SEI or the first signed SEI. */
  vendor?: { firmwareVersion: string; serialNumber: string; manufacturer: string };
}

/** Checks a signature as ONVIF carries it: ECDSA DER, RSA PKCS#1 v1.5 or PSS (by the crypto info OID). */
export function verifyOnvifSignature(document: Uint8Array, key: KeyObject, signature: Uint8Array, signatureOid?: string): boolean {
  try {
    if (key.asymmetricKeyType === 'ec') return cryptoVerify('sha256', document, { key, dsaEncoding: 'der' }, signature);
    if (signatureOid === OID_RSA_PSS) return cryptoVerify('sha256', document, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, signature);
    return cryptoVerify('sha256', document, key, signature);
  } catch {
    return false;
  }
}

function eq(a: string, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a, 'binary').equals(b);
}

type Aligned = { kind: 'item'; item: Item; match: boolean } | { kind: 'extra'; item: Item } | { kind: 'missing' };

/** Aligns received items with a signed hash list (greedy); trailing received items not in the list are returned apart. */
function alignItems(list: readonly Uint8Array[], items: readonly Item[]): { aligned: Aligned[]; rest: Item[] } {
  const out: Aligned[] = [];
  const find = <T>(arr: readonly T[], pred: (x: T) => boolean, from: number): number => {
    for (let k = from; k < arr.length; k++) if (pred(arr[k] as T)) return k;
    return -1;
  };
  let i = 0;
  let j = 0;
  while (i < list.length && j < items.length) {
    const it = items[j] as Item;
    const want = list[i] as Uint8Array;
    if (eq(it.hash, want)) {
      out.push({ kind: 'item', item: it, match: true });
      i++;
      j++;
      continue;
    }
    const k = find(list, (h) => eq(it.hash, h), i + 1);
    if (k >= 0) {
      while (i < k) {
        out.push({ kind: 'missing' });
        i++;
      }
      continue;
    }
    const k2 = find(items, (x) => eq(x.hash, want), j + 1);
    if (k2 >= 0) {
      while (j < k2) out.push({ kind: 'extra', item: items[j++] as Item });
      continue;
    }
    out.push({ kind: 'item', item: it, match: false });
    i++;
    j++;
  }
  while (i < list.length) {
    out.push({ kind: 'missing' });
    i++;
  }
  return { aligned: out, rest: items.slice(j) };
}

export class OnvifLayer {
  readonly sessions: OnvifSession[] = [];
  private session: OnvifSession | undefined;
  private signer: Signer | undefined;
  /** Set while a GOP whose claimed time is outside the leaf's validity is placed: its frames are 'unproven'. */
  private gopUnproven: string | undefined;
  private signatureOid: string | undefined;
  private hashKnown = false;
  private readonly linker = new OnvifLinker();
  private pending: Item[] = [];
  private lastCounter: number | undefined;
  private prevFirst: string | undefined;
  /** Input frames seen (the next frame's input index) and frames already placed in a range. */
  private nextInput = 0;
  /** Input frames whose items were let go unsigned (memory bound) before any ONVIF SEI opened a session. */
  private spilled: { first: number; last: number } | undefined;

  /** `maxItems`: slices kept waiting for an ONVIF signature; older ones are reported unverified (memory bound). */
  constructor(
    private readonly options: TrustOptions,
    private readonly policy: TimePolicy,
    private readonly fps: () => number,
    private readonly maxItems = 50_000,
  ) {}

  /** Whether any ONVIF SEI was seen. */
  get seen(): boolean {
    return this.sessions.length > 0;
  }

  /** A slice or other NAL unit of the input frame `input`; `digest`, its SHA-256 (hex) when the caller has it already. */
  nal(nal: Uint8Array, input: number, digest?: string): void {
    this.nextInput = input + 1;
    const kind = onvifSliceKind(nal);
    if (kind === undefined || kind === 'sei') return;
    const hash = this.linker.item(kind, digest ?? nalDigest(nal));
    this.pending.push({ hash, anchor: kind === 'anchor', input });
    if (this.pending.length > this.maxItems) this.spill();
  }

  /** Lets the oldest frame's items go as unverified: no signature followed them within the bound. */
  private spill(): void {
    const input = this.pending[0]?.input;
    if (input === undefined) return;
    let n = 0;
    while (this.pending[n]?.input === input) n++;
    const items = this.pending.splice(0, n);
    const s = this.session;
    if (s !== undefined) {
      const t = s.report.ranges[s.report.ranges.length - 1]?.end ?? 0;
      this.place(s, items, 'unverified', t, t + 1 / this.fps(), 'not signed: no ONVIF signature follows these frames');
    } else this.spilled = { first: this.spilled?.first ?? input, last: input };
  }

  private open(): OnvifSession {
    const s: OnvifSession = {
      report: { trust: 'none', format: 'onvif', missingGuarantees: [...ONVIF_ONLY_MISSING], chain: [], units: 0, frames: 0, endMarker: false, ranges: [] },
      valid: 0,
      invalid: 0,
      problems: [],
      markers: [],
      missingFrames: 0,
    };
    this.sessions.push(s);
    this.session = s;
    this.lastCounter = undefined;
    this.prevFirst = undefined;
    const sp = this.spilled;
    if (sp !== undefined) {
      for (let input = sp.first; input <= sp.last; input++) this.frame(s, input, 'unverified', input / this.fps(), (input + 1) / this.fps(), 'not signed');
      this.spilled = undefined;
    }
    return s;
  }

  private current(): OnvifSession {
    return this.session ?? this.open();
  }

  /** A malformed ONVIF SEI: a tampered marker at its place. */
  malformed(reason: string, input: number): void {
    const s = this.current();
    s.problems.push(`malformed ONVIF SEI before input frame ${input}: ${reason}`);
    s.markers.push({ status: 'tampered', start: input / this.fps(), end: input / this.fps(), firstFrame: input, lastFrame: input, reason: `malformed signing SEI: ${reason}` });
  }

  /** An ONVIF SEI before the NAL units that follow it in the input (`input`: the next frame's index). */
  async sei(p: ParsedOnvifSei, nal: Uint8Array, input: number): Promise<void> {
    if (p.signature === undefined) {
      // an unsigned SEI (signing frequency > 1) is an item of the next signed one
      if (p.general !== undefined) this.pending.push({ hash: onvifSeiDigest(nal, (p.reserved & RESERVED_EPB) !== 0), anchor: false, input });
      return;
    }
    if (p.cryptoInfo !== undefined) {
      this.hashKnown = p.cryptoInfo.hashOid === OID_SHA256;
      this.signatureOid = p.cryptoInfo.signatureOid;
    }
    const chainPem = p.certificates[0]?.chainPem;
    if (p.certificate) {
      // a certificate SEI opens a session (and carries the signer for the SEIs that follow)
      this.closeSession();
      this.open();
    }
    const startFt = p.general?.start;
    if (chainPem !== undefined && chainPem !== this.signer?.chainPem) await this.establish(chainPem, startFt);
    const s = this.current();
    if (this.signer !== undefined && s.report.trust === 'none') this.describeSigner(s);
    if (p.vendorInfo !== undefined) s.vendor ??= { ...p.vendorInfo };
    if (p.certificate) {
      if (this.signer?.key === undefined || p.document === undefined || !verifyOnvifSignature(p.document, this.signer.key, p.signature, this.signatureOid)) {
        s.report.trust = 'invalid';
        s.report.trustReason = this.signer?.key === undefined ? 'certificate SEI without a usable certificate' : 'certificate SEI signature does not verify';
      }
      return;
    }
    if (p.general === undefined) {
      this.malformed('signed SEI without a general TLV', input);
      return;
    }
    await this.gop(s, p);
  }

  private async establish(chainPem: string, startFt: bigint | undefined): Promise<void> {
    // the certificate at the claimed recording time (the specification's advice); claimed times outside the leaf's
    // validity are not trusted (the reference treats them as opaque, its example signer writes wrong ones): then
    // the chain is checked at the verification time
    const claimed = startFt !== undefined ? fromFiletime(startFt) : undefined;
    let at = claimed !== undefined && Number.isFinite(claimed) ? new Date(claimed) : (this.options.now ?? new Date());
    let id = await establishSigner(chainPem, at, this.options, 'video-signing', 'ONVIF certificate TLV');
    let timeUnproven: string | undefined;
    if (id.trust === 'invalid' && id.leaf !== undefined && (at < id.leaf.notBefore || at > id.leaf.notAfter)) {
      const leaf = id.leaf;
      at = this.options.now ?? new Date();
      id = await establishSigner(chainPem, at, this.options, 'video-signing', 'ONVIF certificate TLV');
      if (id.trust === 'trusted') {
        // the signatures hold, the claimed time cannot be: never AUTHENTIC on it (UNPROVEN_TIME, the reason named)
        timeUnproven = `claimed time ${claimed !== undefined ? new Date(claimed).toISOString() : '?'} is outside the signing certificate's validity (${leaf.notBefore.toISOString()} – ${leaf.notAfter.toISOString()}): the signatures verify with the chain checked at the verification time, but prove no recording time`;
        this.current().problems.push(timeUnproven);
      }
    }
    this.signer = {
      chainPem,
      ...(id.key !== undefined ? { key: id.key } : {}),
      ...(id.leaf !== undefined ? { leaf: id.leaf } : {}),
      intermediates: id.intermediates,
      trust: id.trust,
      ...(id.reason !== undefined ? { reason: id.reason } : {}),
      chain: id.chain,
      ...(id.serial !== undefined ? { serial: id.serial } : {}),
      ...(timeUnproven !== undefined ? { timeUnproven } : {}),
    };
    if (this.session !== undefined) this.describeSigner(this.session);
  }

  private describeSigner(s: OnvifSession): void {
    const id = this.signer;
    if (id === undefined) return;
    s.report.trust = id.trust;
    s.report.chain = id.chain;
    if (id.reason !== undefined) s.report.trustReason = id.reason;
    else delete s.report.trustReason;
    if (id.serial !== undefined) s.report.serial = id.serial;
  }

  private sec(s: OnvifSession, ft: bigint): number {
    s.base ??= ft;
    return (fromFiletime(ft) - fromFiletime(s.base)) / 1000;
  }

  private async gop(s: OnvifSession, p: ParsedOnvifSei): Promise<void> {
    const g = p.general;
    if (g === undefined || p.document === undefined || p.signature === undefined) return;
    s.report.units++;
    const startSec = this.sec(s, g.start);
    const endSec = Math.max(startSec, this.sec(s, g.end));
    const put = (items: readonly Item[], status: RangeStatus, reason?: string): void => this.place(s, items, status, startSec, endSec, reason);
    const fail = (reason: string, items: Item[] = this.pending): void => {
      s.invalid++;
      s.problems.push(`SEI ${g.counter}: ${reason}`);
      put(items, 'tampered', reason);
      if (items === this.pending) this.pending = [];
      else this.pending = this.pending.slice(items.length);
    };
    const take = (items: Item[]): Item[] => {
      this.pending = this.pending.slice(items.length);
      return items;
    };
    const id = this.signer;
    if (id?.key === undefined) {
      s.problems.push(`SEI ${g.counter}: no certificate: the signer is unknown`);
      put(take(this.cut(p)), 'unverified', 'no ONVIF certificate TLV seen: the signer is unknown');
      return;
    }
    if (!verifyOnvifSignature(p.document, id.key, p.signature, this.signatureOid)) {
      fail('ONVIF SEI signature does not verify', this.cut(p));
      return;
    }
    if (!this.hashKnown) {
      s.problems.push(`SEI ${g.counter}: no crypto info TLV: the hash algorithm is unknown`);
      put(take(this.cut(p)), 'unverified', 'no ONVIF crypto info: the hash algorithm is unknown');
      return;
    }
    const expected = this.lastCounter === undefined ? undefined : (this.lastCounter + 1) >>> 0;
    if (expected !== undefined && g.counter !== expected && ((g.counter - expected) >>> 0) > 0x7fffffff) {
      fail(`SEI counter ${g.counter} out of order (expected ${expected}): replayed or reordered`, this.cut(p));
      return;
    }
    const gap = expected !== undefined && g.counter !== expected;
    if (!gap && expected !== undefined && this.prevFirst !== undefined && !eq(this.prevFirst, g.linkedHash)) {
      fail('the GOP does not link to the previous one (linked hash)', this.cut(p));
      return;
    }
    const certProblem = await this.certValidAt(fromFiletime(g.start));
    const future = futureClaim(fromFiletime(g.end), this.policy, `ONVIF SEI ${g.counter}`);
    const notOk = certProblem !== undefined ? `signing certificate not valid at the recording time: ${certProblem}` : future;
    this.gopUnproven = this.claimOutsideValidity(fromFiletime(g.start), g.counter);
    let ok: boolean;
    try {
      if (p.hashList !== undefined) ok = this.withList(s, p, gap, startSec, endSec, notOk);
      else ok = this.withoutList(s, p, gap, startSec, endSec, notOk);
    } finally {
      this.gopUnproven = undefined;
    }
    if (ok) s.valid++;
    else s.invalid++;
    this.lastCounter = g.counter;
  }

  /** A low-bitrate SEI's items: the pending ones up to the next GOP (an anchor after the first item), or all. */
  private cut(p: ParsedOnvifSei): Item[] {
    const n = p.general?.nalCount ?? 0;
    if (p.general?.partial === true) return this.pending.slice(0, Math.min(n, this.pending.length));
    const k = this.pending.findIndex((it, i) => i > 0 && it.anchor);
    return k < 0 ? this.pending : this.pending.slice(0, k);
  }

  private withList(s: OnvifSession, p: ParsedOnvifSei, gap: boolean, startSec: number, endSec: number, notOk: string | undefined): boolean {
    const g = p.general;
    if (g === undefined || p.hashList === undefined) return false;
    let list: Uint8Array[];
    try {
      list = decodeHashList(p.hashList, g.gopHash.length);
    } catch {
      this.malformed('hash list not a whole number of hashes', this.pending[0]?.input ?? this.nextInput);
      return false;
    }
    const listHash = gopHash(list.map((h) => Buffer.from(h).toString('binary')));
    if (!Buffer.from(listHash).equals(g.gopHash) || list.length !== g.nalCount) {
      s.problems.push(`SEI ${g.counter}: the hash list does not match the GOP hash`);
    }
    const { aligned, rest } = alignItems(list, this.pending);
    // after a lost SEI, what comes before the first signed item belongs to the GOP whose SEI is missing
    let lead = 0;
    while (lead < aligned.length && aligned[lead]?.kind === 'extra') lead++;
    const leading = aligned.slice(0, lead).map((a) => (a as { item: Item }).item);
    if (leading.length > 0) {
      if (gap) this.place(s, leading, 'unverified', startSec, startSec, 'no signature: the ONVIF SEI of these frames is missing');
      else this.place(s, leading, 'tampered', startSec, startSec, 'slice inserted (not in the signed hash list)');
    }
    const core = aligned.slice(lead);
    // frames: the worst of their slices; missing items as missing frames (estimated from the slices per frame)
    const present = core.filter((a): a is Exclude<Aligned, { kind: 'missing' }> => a.kind !== 'missing');
    const frames = new Set(present.map((a) => a.item.input)).size;
    const perFrame = frames > 0 ? Math.max(1, Math.round(present.length / frames)) : 1;
    const missingItems = core.length - present.length;
    const totalFrames = frames + Math.ceil(missingItems / perFrame);
    const dur = totalFrames > 0 && endSec > startSec ? (endSec - startSec) / totalFrames : 1 / this.fps();
    let slot = 0;
    let missingRun = 0;
    let ok = leading.length === 0 && missingItems === 0;
    const flushMissing = (): void => {
      if (missingRun === 0) return;
      const n = Math.ceil(missingRun / perFrame);
      const at = this.placedFrames(s);
      addRange(s.report.ranges, {
        status: 'missing',
        start: startSec + slot * dur,
        end: startSec + (slot + n) * dur,
        firstFrame: at,
        lastFrame: at + n - 1,
        reason: `${missingRun} signed slice${missingRun === 1 ? '' : 's'} missing (${n} frame${n === 1 ? '' : 's'})`,
      });
      s.missingFrames += n;
      slot += n;
      missingRun = 0;
    };
    let k = 0;
    while (k < core.length) {
      const a = core[k] as Aligned;
      if (a.kind === 'missing') {
        missingRun++;
        k++;
        continue;
      }
      flushMissing();
      const input = a.item.input;
      let status: RangeStatus = 'authentic';
      let reason: string | undefined;
      while (k < core.length) {
        const b = core[k] as Aligned;
        if (b.kind === 'missing' || b.item.input !== input) break;
        if (b.kind === 'extra') [status, reason] = ['tampered', 'slice inserted (not in the signed hash list)'];
        else if (!b.match && status !== 'tampered') [status, reason] = ['tampered', 'frame modified'];
        k++;
      }
      if (status !== 'authentic') ok = false;
      else if (notOk !== undefined) [status, reason] = ['unverified', notOk];
      this.frame(s, input, status, startSec + slot * dur, startSec + (slot + 1) * dur, reason);
      slot++;
    }
    flushMissing();
    this.pending = rest;
    this.prevFirst = undefined;
    const first = present[0];
    if (first !== undefined && first.item.anchor) this.prevFirst = first.item.hash;
    return ok;
  }

  private withoutList(s: OnvifSession, p: ParsedOnvifSei, gap: boolean, startSec: number, endSec: number, notOk: string | undefined): boolean {
    const g = p.general;
    if (g === undefined) return false;
    // the signed items are a run of pending items starting at an anchor (or at the start) with the signed count and
    // GOP hash; before it, after a lost SEI, items whose SEI is missing
    const starts = this.pending.map((it, i) => (i === 0 || it.anchor ? i : -1)).filter((i) => i >= 0);
    for (const from of starts) {
      const run = this.pending.slice(from, from + g.nalCount);
      if (run.length !== g.nalCount || !Buffer.from(gopHash(run.map((x) => x.hash))).equals(g.gopHash)) continue;
      if (from > 0) this.place(s, this.pending.slice(0, from), gap ? 'unverified' : 'tampered', startSec, startSec, gap ? 'no signature: the ONVIF SEI of these frames is missing' : 'slices inserted (not in the signed GOP)');
      this.place(s, run, notOk !== undefined ? 'unverified' : 'authentic', startSec, endSec, notOk);
      this.pending = this.pending.slice(from + g.nalCount);
      const first = run[0];
      this.prevFirst = first?.anchor === true ? first.hash : undefined;
      return from === 0 || gap;
    }
    const items = this.cut(p);
    this.place(s, items, 'tampered', startSec, endSec, 'GOP hash mismatch (low-bitrate mode: a changed, dropped or inserted slice somewhere in the GOP)');
    this.pending = this.pending.slice(items.length);
    // the next GOP links to this one's anchor, if it is there
    const first = items[0];
    this.prevFirst = first?.anchor === true ? first.hash : undefined;
    return false;
  }

  /** Places items' frames (one range entry per input frame) with one status, spread over [start, end). */
  private place(s: OnvifSession, items: readonly Item[], status: RangeStatus, start: number, end: number, reason?: string): void {
    const inputs = [...new Set(items.map((i) => i.input))];
    const dur = inputs.length > 0 && end > start ? (end - start) / inputs.length : 1 / this.fps();
    inputs.forEach((input, k) => this.frame(s, input, status, start + k * dur, start + (k + 1) * dur, reason));
  }

  private placedFrames(s: OnvifSession): number {
    return s.report.frames + s.missingFrames;
  }

  private frame(s: OnvifSession, input: number, status: RangeStatus, start: number, end: number, reason?: string): void {
    const unproven = status === 'authentic' ? (this.gopUnproven ?? this.signer?.timeUnproven) : undefined;
    if (unproven !== undefined) [status, reason] = ['unproven', unproven];
    const at = this.placedFrames(s);
    s.report.frames++;
    addRange(s.report.ranges, { status, start, end, firstFrame: at, lastFrame: at, inputFirst: input, inputLast: input, ...(reason !== undefined ? { reason } : {}) });
  }

  /** Why a GOP's claimed start proves nothing: it lies outside the (trusted) leaf's validity. */
  private claimOutsideValidity(ms: number, counter: number): string | undefined {
    const leaf = this.signer?.trust === 'trusted' ? this.signer.leaf : undefined;
    if (leaf === undefined || !Number.isFinite(ms) || (ms >= leaf.notBefore.getTime() && ms <= leaf.notAfter.getTime())) return undefined;
    return `ONVIF SEI ${counter} claims ${new Date(ms).toISOString()}, outside the signing certificate's validity (${leaf.notBefore.toISOString()} – ${leaf.notAfter.toISOString()}): its signature verifies but proves no recording time`;
  }

  private async certValidAt(ms: number): Promise<string | undefined> {
    const id = this.signer;
    if (id === undefined || id.leaf === undefined) return 'no certificate';
    if (id.trust !== 'trusted') return undefined; // reported as the session's trust
    if (ms < id.leaf.notBefore.getTime() || ms > id.leaf.notAfter.getTime()) return undefined; // claimed time not trusted (see establish)
    const r = await signerValidAt(id.leaf, id.intermediates, new Date(ms), this.options);
    return r.valid ? undefined : r.reason;
  }

  /** The dangling end: items after the last signed SEI. */
  closeSession(): void {
    const s = this.session;
    if (s === undefined) return;
    if (this.pending.length > 0) {
      const last = s.report.ranges[s.report.ranges.length - 1];
      const t = last?.end ?? 0;
      const signed = s.report.units > 0 && this.signer?.key !== undefined;
      this.place(s, this.pending, signed ? 'excluded' : 'unverified', t, t + new Set(this.pending.map((i) => i.input)).size / this.fps(), signed ? 'dangling end: after the last ONVIF signature (not covered)' : 'not signed');
      this.pending = [];
    }
    insertMarkers(s.report.ranges, s.markers);
    s.markers = [];
    this.session = undefined;
  }
}
