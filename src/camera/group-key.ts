/**
 * The camera side of the group-key protocols, as a library the camera agent uses (issue 5): enrolment with the
 * KMS, then per group either the hardened member (and leader) role or the paper's Scheme 1 / Scheme 2 roles, all
 * over mutual TLS with the camera's device certificate.
 *
 * Hardened groups: the camera keeps its HardenedMember state in `stateDir/groups/<group>.state`, sealed under its
 * pairwise key K_i inside its own key store (AES-256-GCM, never in the clear on disk), written atomically after
 * every accepted bundle and before the new keys are used — the high-water mark survives a restart, so a replayed
 * bundle or welcome is refused then too. `sync` pulls what the camera missed (long poll with `waitMs`),
 * `currentContentKey` hands the encrypted-video code this camera's CENC key and KID for the current epoch. As
 * leader, `authRound` fetches a KMS challenge, relays it, collects the members' tags and sends the aggregate
 * (and the per-camera tags when it fails); as a member, `answerChallenges` answers what the leader relays.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { ErrorCodes, GroupKeyError, GroupKeyRefusal, KeyframeError } from '../errors.js';
import { confirmationsMatch, derivePairwiseKey, openSubkeys, pairLabel, subkeyConfirmation } from '../groupkey/enrol.js';
import type { PairIdentity } from '../groupkey/enrol.js';
import { decodeChallenge, decodeCameraTag } from '../groupkey/hardened/auth.js';
import type { EpochContentKey } from '../groupkey/hardened/content.js';
import type { Subkeys } from '../groupkey/hardened/kdf.js';
import { HardenedLeader } from '../groupkey/hardened/leader.js';
import { HardenedMember } from '../groupkey/hardened/member.js';
import type { MemberState } from '../groupkey/hardened/member.js';
import type { Verifier } from '../groupkey/hardened/signature.js';
import type { KeyStore } from '../keystore/types.js';
import { certsToPem, parseCertificates } from '../pki/pem.js';
import type { X509Certificate } from '../pki/x509.js';
import { writeFileAtomic } from '../util/fs.js';
import { KmsClient } from '../kms/client.js';
import { unframeBundles } from '../kms/http.js';
import { kmsVerifier, paperKey } from '../kms/keys.js';

export interface CameraAgentOptions {
  /** https://host:port of the KMS. */
  readonly url: string;
  /** Where the camera keeps its enrolment and group states. */
  readonly stateDir: string;
  /** The device key store (open) and its identity key. */
  readonly store: KeyStore;
  readonly deviceKeyLabel: string;
  /** The device certificate chain, leaf first. */
  readonly chain: readonly X509Certificate[];
  /** TLS client options for this identity (tlsClientOptions), pinning the operator root. */
  readonly tls: ConnectionOptions;
  /** The operator root(s) the KMS certificate must chain to (checked again at enrolment). */
  readonly kmsRoots: readonly X509Certificate[];
  /** The key store label of K_i (default `gk-<KMS fingerprint>`); set it when several cameras share one store. */
  readonly pairKeyLabel?: string;
  /** Where `kmsRoots` came from, for messages (e.g. "--kms-root ca/operator.pem"). */
  readonly trustName?: string;
}

interface Enrolment {
  readonly version: 1;
  readonly serial: string;
  readonly kmsChain: string;
  readonly generation: number;
  readonly blob: string;
}

export interface GroupInfo {
  readonly id: string;
  readonly mode: 'hardened' | 'scheme1' | 'scheme2';
  readonly leader: string | null;
  readonly epoch: number;
  readonly member: boolean;
  readonly request: 'join' | 'leave' | null;
}

export interface SyncResult {
  readonly group: string;
  /** applied: now on `epoch`; current: nothing new; removed: the KMS no longer serves this camera. */
  readonly status: 'applied' | 'current' | 'removed';
  readonly epoch: number;
}

/** What a camera keeps per group, sealed under K_i. */
interface SealedGroupState {
  readonly v: 2;
  readonly member: MemberState;
  readonly lastBundle?: string;
}

const STATE_AAD = 'keyframe/v1 camera-gk-state';

/** Temp file, write, fsync, rename, in a directory that exists: the state write after every epoch (mode 0600). */
async function writeSmallFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export class GroupKeyCamera {
  readonly serial: string;
  readonly client: KmsClient;
  private readonly o: CameraAgentOptions;
  private enrolment: { pair: PairIdentity; label: string; subkeys: Subkeys; verify: Verifier; generation: number } | undefined;
  private readonly members = new Map<string, HardenedMember>();
  private readonly removed = new Set<string>();
  private readonly inboxSeq = new Map<string, number>();
  /** The last bundle accepted in each group (evidence for a KMS that is behind). */
  private readonly lastBundles = new Map<string, Uint8Array>();

  constructor(o: CameraAgentOptions) {
    this.o = o;
    const leaf = o.chain[0];
    if (leaf === undefined) throw new KeyframeError(ErrorCodes.INPUT, 'camera: empty certificate chain');
    const serial = leaf.subjectName.getField('2.5.4.5');
    if (serial.length !== 1) throw new KeyframeError(ErrorCodes.INPUT, 'camera: the certificate names no device serial');
    this.serial = serial[0] as string;
    this.client = new KmsClient(o.url, o.tls, { who: `camera ${this.serial}`, ...(o.trustName !== undefined ? { trustName: o.trustName } : {}) });
    mkdirSync(join(o.stateDir, 'groups'), { recursive: true, mode: 0o700 });
  }

  get enrolled(): boolean {
    return this.enrolment !== undefined || existsSync(join(this.o.stateDir, 'enrolment.json'));
  }

  get generation(): number | undefined {
    return this.enrolment?.generation;
  }

  /**
   * Enrols with the KMS (unless already enrolled, or `force`): asks for sub-keys, checks that the KMS certificate
   * in the answer is the one on this TLS connection and chains to the operator root, derives K_i in the key store,
   * opens the sub-keys inside it and confirms them; then stores the blob (sealed by K_i already).
   */
  async enrol(options: { force?: boolean } = {}): Promise<number> {
    if (options.force !== true && this.enrolled) return (await this.load()).generation;
    const r = await this.client.call('POST', '/v1/enrol', {}, { peerCertificate: true });
    const j = JSON.parse(r.body.toString('utf8')) as { generation: number; blob: string; confirmation: string; kmsChain: string };
    const chain = parseCertificates(j.kmsChain, 'KMS chain');
    const kms = chain[0];
    if (kms === undefined || r.peerCertificate === undefined || !Buffer.from(kms.rawData).equals(r.peerCertificate)) throw new GroupKeyRefusal('enrolment: the KMS certificate is not the one on this connection');
    const pair: PairIdentity = { kms, camera: this.o.chain[0] as X509Certificate };
    const label = await derivePairwiseKey(this.o.store, this.o.deviceKeyLabel, pair, 'camera', { roots: this.o.kmsRoots, intermediates: chain.slice(1) }, { replace: true, ...(this.o.pairKeyLabel !== undefined ? { label: this.o.pairKeyLabel } : {}) });
    const subkeys = await openSubkeys(this.o.store, label, pair, j.generation, Buffer.from(j.blob, 'base64'));
    if (!confirmationsMatch(subkeyConfirmation(subkeys, pair), Buffer.from(j.confirmation, 'base64'))) throw new GroupKeyRefusal('enrolment: key confirmation');
    const e: Enrolment = { version: 1, serial: this.serial, kmsChain: certsToPem(chain), generation: j.generation, blob: j.blob };
    await writeFileAtomic(join(this.o.stateDir, 'enrolment.json'), JSON.stringify(e, null, 2) + '\n', { mode: 0o600 });
    this.enrolment = { pair, label, subkeys, verify: kmsVerifier(kms), generation: j.generation };
    this.members.clear();
    return j.generation;
  }

  private async load(): Promise<NonNullable<GroupKeyCamera['enrolment']>> {
    if (this.enrolment !== undefined) return this.enrolment;
    const file = join(this.o.stateDir, 'enrolment.json');
    if (!existsSync(file)) throw new KeyframeError(ErrorCodes.NOT_FOUND, `camera ${this.serial} is not enrolled with a KMS (${file} missing)`);
    let e: Enrolment;
    try {
      e = JSON.parse(readFileSync(file, 'utf8')) as Enrolment;
    } catch {
      throw new KeyframeError(ErrorCodes.INPUT, `${file} is not valid JSON`);
    }
    if (e.version !== 1 || e.serial !== this.serial) throw new KeyframeError(ErrorCodes.INPUT, `${file} belongs to another camera`);
    const chain = parseCertificates(e.kmsChain, file);
    const pair: PairIdentity = { kms: chain[0] as X509Certificate, camera: this.o.chain[0] as X509Certificate };
    const label = this.o.pairKeyLabel ?? pairLabel(pair.kms);
    const subkeys = await openSubkeys(this.o.store, label, pair, e.generation, Buffer.from(e.blob, 'base64'));
    this.enrolment = { pair, label, subkeys, verify: kmsVerifier(pair.kms), generation: e.generation };
    return this.enrolment;
  }

  /** This camera's K_IC for the paper's Scheme 1 / Scheme 2 groups (PaperCameraAgent): paperKey of its enrolled sub-keys, as the KMS derives it. */
  async paperKey(): Promise<Uint8Array> {
    return paperKey((await this.load()).subkeys);
  }

  /** This camera's groups as the KMS sees them. */
  async groups(): Promise<GroupInfo[]> {
    return (await this.client.json<{ groups: GroupInfo[] }>('GET', '/v1/me')).groups;
  }

  // ── hardened member ───────────────────────────────────────────────────────────────────────────────────────

  private statePath(groupId: string): string {
    return join(this.o.stateDir, 'groups', `${Buffer.from(groupId, 'utf8').toString('hex')}.state`);
  }

  private aad(groupId: string): Buffer {
    return Buffer.from(`${STATE_AAD}\0${this.serial}\0${groupId}`, 'utf8');
  }

  /**
   * The member's state with the last bundle it accepted (the evidence it shows a KMS that is behind it), sealed
   * under K_i and written before the new keys are used.
   */
  private async persist(m: HardenedMember, lastBundle: Uint8Array | undefined): Promise<void> {
    const e = await this.load();
    const state: SealedGroupState = { v: 2, member: m.exportState(), ...(lastBundle !== undefined ? { lastBundle: Buffer.from(lastBundle).toString('base64') } : {}) };
    const sealed = await this.o.store.wrap(e.label, Buffer.from(JSON.stringify(state)), this.aad(m.groupId));
    await writeSmallFileAtomic(this.statePath(m.groupId), sealed);
    if (lastBundle !== undefined) this.lastBundles.set(m.groupId, Uint8Array.from(lastBundle));
  }

  private async member(groupId: string): Promise<HardenedMember | undefined> {
    const cached = this.members.get(groupId);
    if (cached !== undefined) return cached;
    const file = this.statePath(groupId);
    if (!existsSync(file)) return undefined;
    const e = await this.load();
    let state: MemberState;
    try {
      const parsed = JSON.parse((await this.o.store.unwrap(e.label, readFileSync(file), this.aad(groupId))).toString('utf8')) as SealedGroupState | MemberState;
      // v2 carries the last bundle beside the member state; the first release wrote the member state alone
      if ('member' in parsed) {
        state = parsed.member;
        if (parsed.lastBundle !== undefined) this.lastBundles.set(groupId, Uint8Array.from(Buffer.from(parsed.lastBundle, 'base64')));
      } else state = parsed;
    } catch (err) {
      throw new KeyframeError(ErrorCodes.INPUT, `group state ${file} does not open (altered, or from another enrolment)`, { cause: err });
    }
    const m = HardenedMember.importState(state, { groupId, memberId: this.serial, keys: e.subkeys, verify: e.verify });
    this.members.set(groupId, m);
    return m;
  }

  /** The hardened member of a group as this camera holds it (for tooling and tests: it holds the path keys). */
  async hardenedMember(groupId: string): Promise<HardenedMember | undefined> {
    return this.member(groupId);
  }

  /** The last epoch this camera accepted in a group (0 when none). */
  async epoch(groupId: string): Promise<number> {
    return (await this.member(groupId))?.epoch ?? 0;
  }

  /** This camera's CENC key and KID for the current epoch of a hardened group. */
  async currentContentKey(groupId: string): Promise<EpochContentKey> {
    const m = await this.member(groupId);
    if (m === undefined || m.epoch === 0) throw new KeyframeError(ErrorCodes.NOT_FOUND, `camera ${this.serial} holds no key of group ${groupId} yet`);
    return m.currentContentKey();
  }

  /** Joins from the KMS's welcome: a fresh member whose welcome must be newer than anything accepted before. */
  private async fromWelcome(groupId: string, previous: HardenedMember | undefined): Promise<HardenedMember> {
    const e = await this.load();
    const welcome = (await this.client.call('GET', `/v1/groups/${encodeURIComponent(groupId)}/welcome`)).body;
    const hwm = previous?.epoch;
    const m = HardenedMember.fromWelcome(welcome, { groupId, memberId: this.serial, keys: e.subkeys, verify: e.verify, ...(hwm !== undefined ? { highWaterMark: hwm } : {}) });
    return m;
  }

  private async pull(groupId: string, after: number, waitMs: number, signal?: AbortSignal, lastHash?: string): Promise<Uint8Array[] | 'removed'> {
    try {
      const r = await this.client.call('GET', `/v1/groups/${encodeURIComponent(groupId)}/bundles?after=${after}&wait=${waitMs}${lastHash !== undefined ? `&hash=${lastHash}` : ''}`, undefined, { ...(signal !== undefined ? { signal } : {}), timeoutMs: waitMs + 30_000 });
      return r.status === 204 ? [] : unframeBundles(r.body);
    } catch (e) {
      if (e instanceof GroupKeyRefusal) return 'removed';
      if (e instanceof KeyframeError && e.code === ErrorCodes.DIVERGED) {
        // the KMS lost (or forked) the epoch this camera is on: show it the last bundle it signed, then wait
        const last = this.lastBundles.get(groupId);
        if (last !== undefined) await this.client.call('POST', `/v1/groups/${encodeURIComponent(groupId)}/evidence`, last);
        throw new KeyframeError(ErrorCodes.UNAVAILABLE, `the KMS is behind camera ${this.serial} in ${groupId} (epoch ${after}): its state was rolled back or forked; the group waits for its operator`);
      }
      throw e;
    }
  }

  /**
   * Brings a hardened group up to the KMS's epoch: pulls the bundles missed (waiting up to `waitMs` for a new one
   * when there is none) and applies them all or none; joins by welcome when the camera has no state yet, or when
   * it was removed and added again. The state is on disk before this returns.
   */
  async sync(groupId: string, options: { waitMs?: number; signal?: AbortSignal } = {}): Promise<SyncResult> {
    await this.load();
    const m = await this.member(groupId);
    const waitMs = options.waitMs ?? 0;
    if (m !== undefined && m.pendingEpoch === undefined) {
      const got = await this.pull(groupId, m.epoch, waitMs, options.signal, m.epoch > 0 ? m.lastBundleHash : undefined);
      if (got === 'removed') {
        this.removed.add(groupId);
        return { group: groupId, status: 'removed', epoch: m.epoch };
      }
      if (got.length === 0) return { group: groupId, status: 'current', epoch: m.epoch };
      try {
        const before = m.epoch;
        m.catchUp(got);
        if (m.epoch !== before) {
          await this.persist(m, got.at(-1));
          this.removed.delete(groupId);
          return { group: groupId, status: 'applied', epoch: m.epoch };
        }
      } catch (e) {
        if (!(e instanceof GroupKeyRefusal)) throw e;
        // not a continuation of our chain: were we removed and added again? then a newer welcome exists
      }
    }
    let fresh: HardenedMember;
    try {
      fresh = await this.fromWelcome(groupId, m);
    } catch (e) {
      if (e instanceof GroupKeyRefusal) {
        this.removed.add(groupId);
        return { group: groupId, status: 'removed', epoch: m?.epoch ?? 0 };
      }
      throw e;
    }
    const got = await this.pull(groupId, 0, 0);
    if (got === 'removed') return { group: groupId, status: 'removed', epoch: m?.epoch ?? 0 };
    fresh.catchUp(got);
    await this.persist(fresh, got.at(-1));
    this.members.set(groupId, fresh);
    this.removed.delete(groupId);
    return { group: groupId, status: 'applied', epoch: fresh.epoch };
  }

  /** Keeps a group current until `signal` aborts: long polls, applies, calls `onEpoch` after each new epoch. */
  async watch(groupId: string, onEpoch: (r: SyncResult) => void, signal: AbortSignal, waitMs = 20_000): Promise<void> {
    while (!signal.aborted) {
      try {
        const r = await this.sync(groupId, { waitMs, signal });
        if (r.status === 'applied') onEpoch(r);
        if (r.status === 'removed') {
          onEpoch(r);
          return;
        }
      } catch (e) {
        if (signal.aborted) return;
        if (!(e instanceof KeyframeError) || e.code !== ErrorCodes.UNAVAILABLE) throw e;
        await new Promise((r) => setTimeout(r, 500)); // the KMS is restarting: try again
      }
    }
  }

  // ── group authentication ──────────────────────────────────────────────────────────────────────────────────

  private async relay(groupId: string, to: readonly string[], body: Uint8Array): Promise<void> {
    await this.client.call('POST', `/v1/groups/${encodeURIComponent(groupId)}/messages?to=${to.map(encodeURIComponent).join(',')}`, body);
  }

  /** Relayed messages for this camera (long poll). */
  async inbox(groupId: string, waitMs: number): Promise<{ seq: number; from: string; body: Buffer }[]> {
    const after = this.inboxSeq.get(groupId) ?? 0;
    const r = await this.client.json<{ items: { seq: number; from: string; body: string }[] }>('GET', `/v1/groups/${encodeURIComponent(groupId)}/inbox?after=${after}&wait=${waitMs}`);
    const items = r.items.map((i) => ({ seq: i.seq, from: i.from, body: Buffer.from(i.body, 'base64') }));
    if (items.length > 0) this.inboxSeq.set(groupId, Math.max(after, ...items.map((i) => i.seq)));
    return items;
  }

  /** As a member: answers every relayed challenge of the current epoch with this camera's tag, to the leader. */
  async answerChallenges(groupId: string, leader: string, waitMs = 0): Promise<number> {
    const m = await this.member(groupId);
    if (m === undefined) return 0;
    let answered = 0;
    for (const item of await this.inbox(groupId, waitMs)) {
      if (item.from !== leader) continue;
      try {
        decodeChallenge(item.body);
      } catch {
        continue; // not a challenge
      }
      try {
        await this.relay(groupId, [leader], m.respond(item.body));
        answered++;
      } catch (e) {
        if (!(e instanceof GroupKeyError)) throw e; // a refused challenge (stale epoch, bad signature) is dropped
      }
    }
    return answered;
  }

  /**
   * As leader: one authentication round. Fetches a KMS challenge, relays it to `members`, answers it itself,
   * collects tags until every member answered or `timeoutMs` passed, and sends the aggregate; when the KMS says
   * it failed, sends the per-camera tags for blame. Returns the KMS's verdict.
   */
  async authRound(groupId: string, members: readonly string[], timeoutMs = 5_000): Promise<{ verified: boolean; present: string[]; missing: string[]; bad: string[] }> {
    const me = await this.member(groupId);
    if (me === undefined) throw new KeyframeError(ErrorCodes.NOT_FOUND, `camera ${this.serial} holds no state of ${groupId}`);
    const leader = new HardenedLeader({ groupId });
    // read past anything already queued, so that only this round's tags are collected
    await this.inbox(groupId, 0);
    const challenge = (await this.client.call('GET', `/v1/groups/${encodeURIComponent(groupId)}/challenge`)).body;
    leader.start(challenge);
    const others = members.filter((x) => x !== this.serial);
    if (others.length > 0) await this.relay(groupId, others, challenge);
    leader.collect(me.respond(challenge));
    const deadline = Date.now() + timeoutMs;
    while (leader.responders().length < others.length + 1 && Date.now() < deadline) {
      for (const item of await this.inbox(groupId, Math.max(1, deadline - Date.now()))) {
        try {
          decodeCameraTag(item.body);
          leader.collect(item.body);
        } catch {
          // not a tag of this round: a relay may carry anything; the KMS judges the tags
        }
      }
    }
    const path = (what: string): string => `/v1/groups/${encodeURIComponent(groupId)}/${what}`;
    const verdict = JSON.parse((await this.client.call('POST', path('aggregate'), leader.aggregate())).body.toString('utf8')) as { outcome: string; present: string[]; missing: string[] };
    if (verdict.outcome === 'verified') return { verified: true, present: verdict.present, missing: verdict.missing, bad: [] };
    const blame = JSON.parse((await this.client.call('POST', path('blame'), leader.tagList())).body.toString('utf8')) as { present: string[]; missing: string[]; bad: string[] };
    return { verified: false, present: blame.present, missing: blame.missing, bad: blame.bad };
  }

  close(): void {
    this.client.close();
  }
}
