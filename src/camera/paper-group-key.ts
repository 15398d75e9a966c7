/**
 * The camera side of the paper's Scheme 1 / Scheme 2 over the KMS (issue 5): the pure roles of
 * src/groupkey/paper — `PaperLeader` on the group's leader camera, `PaperMember` on every other camera — driven
 * over the KMS's relay, which stands in for the paper's LAN (leader ↔ members) and its uplink (leader ↔ KMS,
 * address `kms`). This is the FAITHFUL, INSECURE baseline (docs/group-keys-paper.md): the agent adds no check
 * the paper does not make; mutual TLS only decides who may use the relay.
 *
 * What the camera does comes from `GET /v1/groups/:g/paper` (its group's scheme, leader, roster and the requests
 * the operator stored), as `PaperGroup` (src/groupkey/paper/group.ts) drives the roles in memory:
 *  - leader, the KMS holding no roster for its GK1 yet (a new group, or a new leader with a new GK1): it forms
 *    the group — `startDistribution` over the KMS roster plus the cameras asked to join, less those asked to
 *    leave (Reading R27) — and afterwards answers the members' join and leave requests as they arrive;
 *  - member asked to join: `startDistribution()` while the group has no key yet, `requestJoin()` once it has;
 *  - member asked to leave: `requestLeave()` — unless the camera refuses (`refuseLeave`): the paper gives the
 *    KMS no way to force a leave, so such a camera stays in the KMS roster.
 * `step` pumps the inbox through `handle()` and posts what the role answers (to the leader, to members, or to the
 * KMS); a message a role refuses (a GroupKeyError), or that the relay or the KMS refuses, is counted in
 * `refusals` and the agent carries on, as PaperGroup does. Role state is in memory only (the paper defines no
 * restart): a camera restarted inside a group takes Scheme 1 keys again (they need only K_IC), a leader
 * restarted needs a new leader (`PUT …/leader`) to run a new distribution.
 */
import { randomBytes } from 'node:crypto';
import { ErrorCodes, GroupKeyError, GroupKeyRefusal, KeyframeError } from '../errors.js';
import { PaperLeader } from '../groupkey/paper/leader.js';
import type { PaperScheme } from '../groupkey/paper/leader.js';
import { PaperMember } from '../groupkey/paper/member.js';
import { decodeMessage, encodeMessage } from '../groupkey/paper/messages.js';
import type { Outgoing, PaperMessage, PaperMessageType } from '../groupkey/paper/messages.js';
import type { Random } from '../groupkey/paper/primitives.js';
import type { KmsClient } from '../kms/client.js';

/** The KMS's address on the relay (KMS_ADDRESS in service.ts; the paper's ID_ICM). */
export const PAPER_KMS_ID = 'kms';

/** What `GET /v1/groups/:g/paper` tells a camera. */
export interface PaperSetup {
  readonly scheme: PaperScheme;
  readonly leader: string;
  /** GK1, for the leader only. */
  readonly GK1: Uint8Array | null;
  /** The KMS's roster (empty until the KMS sends the keys of a distribution for the current GK1). */
  readonly roster: readonly string[];
  readonly requests: readonly { readonly serial: string; readonly op: 'join' | 'leave' }[];
}

/** A message the relay handed this camera: what this camera saw of the paper's LAN. */
export interface PaperReceived {
  readonly seq: number;
  readonly from: string;
  readonly type: PaperMessageType | 'undecodable';
  readonly bytes: Uint8Array;
  readonly message: PaperMessage | undefined;
}

/** A message this camera posted (the relay took it, or refused it: see `refusals`). */
export interface PaperSent {
  readonly to: readonly string[];
  readonly type: PaperMessageType;
  readonly bytes: Uint8Array;
  readonly message: PaperMessage;
}

/** A refused message: by this camera's role (`at` = its serial), or by the relay / the KMS (`at` = the recipients). */
export interface PaperRefusal {
  readonly at: string;
  readonly from: string;
  readonly type: PaperMessageType | 'undecodable';
  readonly error: GroupKeyError;
}

export interface PaperCameraAgentOptions {
  /** This camera's mutual-TLS client for the KMS (GroupKeyCamera.client). */
  readonly client: KmsClient;
  readonly groupId: string;
  /** This camera's serial: its ID_IC, as its device certificate names it. */
  readonly serial: string;
  /** The camera's paper K_IC: `paperKey(subkeys)` of its enrolment (GroupKeyCamera.paperKey()), as the KMS derives it. */
  readonly K_IC: Uint8Array;
  readonly random?: Random;
  /** Ignore the operator's leave request (the paper's weakness: nothing forces a camera out). */
  readonly refuseLeave?: boolean;
  /** A request still stored this long after the camera acted on it is acted on again (default 15 s). */
  readonly retryMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class PaperCameraAgent {
  readonly groupId: string;
  readonly serial: string;
  /** Every message the relay handed this camera, oldest first. */
  readonly received: PaperReceived[] = [];
  /** Every message this camera posted, oldest first. */
  readonly sent: PaperSent[] = [];
  readonly refusals: PaperRefusal[] = [];
  /** Ignore the operator's leave request from now on (the paper's weakness: nothing forces a camera out). */
  refuseLeave: boolean;
  /** How many times this camera saw the operator's leave request and ignored it (`refuseLeave`). */
  leavesRefused = 0;
  private client: KmsClient;
  private readonly K_IC: Uint8Array;
  private readonly random: Random;
  private readonly retryMs: number;
  private lead: { readonly role: PaperLeader; readonly GK1: string; started: boolean } | undefined;
  private member: PaperMember | undefined;
  /** What this camera did on its current request, and when: `${kind}:${leader}` → ms. */
  private readonly acted = new Map<string, number>();
  private after = 0;
  private setup: PaperSetup | undefined;
  private inGroup = false;

  constructor(o: PaperCameraAgentOptions) {
    this.client = o.client;
    this.groupId = o.groupId;
    this.serial = o.serial;
    this.K_IC = Uint8Array.from(o.K_IC);
    this.random = o.random ?? ((n) => new Uint8Array(randomBytes(n)));
    this.refuseLeave = o.refuseLeave ?? false;
    this.retryMs = o.retryMs ?? 15_000;
  }

  /** The group key this camera holds (a camera that left keeps its last one), or undefined. */
  get groupKey(): Uint8Array | undefined {
    return this.lead !== undefined ? this.lead.role.groupKey : this.member?.groupKey;
  }

  get role(): 'leader' | 'member' | 'none' {
    return this.lead !== undefined ? 'leader' : this.member !== undefined ? 'member' : 'none';
  }

  /** Whether the KMS still serves this camera in the group (as of the last step). */
  get participant(): boolean {
    return this.inGroup;
  }

  /** This camera asked to leave (it keeps its last key). */
  get hasLeft(): boolean {
    return this.lead === undefined && this.member?.hasLeft === true;
  }

  /** The leader's roster (itself first), or undefined on a member. */
  get leaderRoster(): readonly string[] | undefined {
    return this.lead?.role.roster;
  }

  /** The last /paper answer. */
  get lastSetup(): PaperSetup | undefined {
    return this.setup;
  }

  /** A new client (the KMS moved, or restarted: its relay starts numbering again, so reading starts over). */
  reconnect(client: KmsClient): void {
    this.client = client;
    this.after = 0;
  }

  /**
   * One round: reads /paper and acts on it (leader: start a distribution; member: a join or leave request), reads
   * the inbox (waiting up to `waitMs`), and hands every message to the role, posting what it answers. Returns the
   * number of messages read; 0 at once when the KMS no longer serves this camera in the group.
   */
  async step(waitMs = 0): Promise<number> {
    if (!(await this.act())) return 0;
    let items: { seq: number; from: string; body: Buffer }[];
    try {
      items = await this.read(waitMs);
    } catch (e) {
      if (!(e instanceof GroupKeyRefusal)) throw e;
      this.inGroup = false; // removed between the two requests
      return 0;
    }
    if (items.length === 0) return 0;
    // the group may have changed while we waited (a new leader): act on it before the messages are handled
    await this.act();
    for (const item of items) await this.deliver(item);
    return items.length;
  }

  /** Steps until `done()` holds; refused with KF_ERR_UNAVAILABLE after `timeoutMs`. */
  async runUntil(done: () => boolean, timeoutMs: number, waitMs = 250): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new KeyframeError(ErrorCodes.UNAVAILABLE, `${this.serial} in ${this.groupId}: not done within ${timeoutMs} ms`);
      await this.step(Math.min(waitMs, left));
      if (!this.inGroup) await sleep(Math.min(waitMs, Math.max(0, deadline - Date.now())));
    }
  }

  private path(what: string): string {
    return `/v1/groups/${encodeURIComponent(this.groupId)}/${what}`;
  }

  private async fetchSetup(): Promise<PaperSetup> {
    const j = await this.client.json<{ scheme: PaperScheme; leader: string; GK1: string | null; roster: string[]; requests: { serial: string; op: 'join' | 'leave' }[] }>('GET', this.path('paper'));
    return { ...j, GK1: j.GK1 === null ? null : Uint8Array.from(Buffer.from(j.GK1, 'base64')) };
  }

  private async read(waitMs: number): Promise<{ seq: number; from: string; body: Buffer }[]> {
    const r = await this.client.call('GET', `${this.path('inbox')}?after=${this.after}&wait=${waitMs}`, undefined, { timeoutMs: waitMs + 30_000 });
    const items = (JSON.parse(r.body.toString('utf8')) as { items: { seq: number; from: string; body: string }[] }).items.map((i) => ({ seq: i.seq, from: i.from, body: Buffer.from(i.body, 'base64') }));
    for (const i of items) this.after = Math.max(this.after, i.seq);
    return items;
  }

  /** Reads /paper and does what it asks of this camera; false when the KMS does not serve it in the group. */
  private async act(): Promise<boolean> {
    let s: PaperSetup;
    try {
      s = await this.fetchSetup();
    } catch (e) {
      if (!(e instanceof GroupKeyRefusal)) throw e;
      this.inGroup = false;
      return false;
    }
    this.inGroup = true;
    this.setup = s;
    if (s.leader === this.serial) await this.actAsLeader(s);
    else await this.actAsMember(s);
    return true;
  }

  private async actAsLeader(s: PaperSetup): Promise<void> {
    if (s.GK1 === null) return;
    const GK1 = Buffer.from(s.GK1).toString('hex');
    if (this.lead?.GK1 !== GK1) {
      // a new group, or this camera became the leader: GK1 is new, the old key and roles are over
      const role = new PaperLeader({ ID_G1: this.groupId, ID_IC: this.serial, K_IC: this.K_IC, GK1: s.GK1, kms: PAPER_KMS_ID, scheme: s.scheme, random: this.random });
      this.lead = { role, GK1, started: false };
      this.member = undefined;
      this.acted.clear();
    }
    // the KMS has keyed a roster for this GK1: the distribution ran (perhaps by an earlier run of this agent)
    if (this.lead.started || s.roster.length > 0) return;
    const leaving = new Set(s.requests.filter((r) => r.op === 'leave').map((r) => r.serial));
    const joining = s.requests.filter((r) => r.op === 'join').map((r) => r.serial);
    const ids = [...new Set([...s.roster, ...joining])].filter((id) => id !== this.serial && !leaving.has(id));
    this.lead.started = true;
    await this.send(this.lead.role.startDistribution(ids));
  }

  private async actAsMember(s: PaperSetup): Promise<void> {
    this.lead = undefined;
    const op = s.requests.find((r) => r.serial === this.serial)?.op;
    if (op === undefined) {
      this.acted.clear();
      return;
    }
    if (op === 'leave' && this.refuseLeave) {
      this.leavesRefused++;
      return;
    }
    const kind = op === 'leave' ? 'leave' : s.roster.length === 0 ? 'distribution' : 'join';
    const key = `${kind}:${s.leader}`;
    const at = this.acted.get(key);
    if (at !== undefined && Date.now() - at < this.retryMs) return;
    this.acted.set(key, Date.now());
    const current = this.member !== undefined && this.member.leader === s.leader && !this.member.hasLeft ? this.member : undefined;
    const m = current ?? this.newMember(s.leader);
    // a leave asked again keeps the departed role (and its last key) as it is
    if (!(kind === 'leave' && this.member?.hasLeft === true)) this.member = m;
    await this.send(kind === 'distribution' ? m.startDistribution() : kind === 'join' ? m.requestJoin() : m.requestLeave());
  }

  private newMember(leader: string): PaperMember {
    return new PaperMember({ ID_G1: this.groupId, ID_IC: this.serial, K_IC: this.K_IC, leader, random: this.random });
  }

  private async deliver(item: { seq: number; from: string; body: Buffer }): Promise<void> {
    const bytes = new Uint8Array(item.body);
    let m: PaperMessage;
    try {
      m = decodeMessage(bytes);
    } catch (e) {
      if (!(e instanceof GroupKeyError)) throw e;
      this.received.push({ seq: item.seq, from: item.from, type: 'undecodable', bytes, message: undefined });
      this.refusals.push({ at: this.serial, from: item.from, type: 'undecodable', error: e });
      return;
    }
    this.received.push({ seq: item.seq, from: item.from, type: m.type, bytes, message: m });
    // a camera of the group without a role yet (restarted): a member of the current leader takes what it can
    if (this.lead === undefined && this.member === undefined && this.setup !== undefined) this.member = this.newMember(this.setup.leader);
    const role: { handle(m: PaperMessage): Outgoing[] } | undefined = this.lead?.role ?? this.member;
    let out: Outgoing[];
    try {
      if (role === undefined) throw new GroupKeyError(ErrorCodes.GROUPKEY_REFUSED, `${this.serial}: no role in ${this.groupId}`);
      out = role.handle(m);
    } catch (e) {
      if (!(e instanceof GroupKeyError)) throw e;
      this.refusals.push({ at: this.serial, from: item.from, type: m.type, error: e });
      return;
    }
    await this.send(out);
  }

  private async send(out: readonly Outgoing[]): Promise<void> {
    for (const o of out) {
      const bytes = encodeMessage(o.message);
      this.sent.push({ to: o.to, type: o.message.type, bytes, message: o.message });
      try {
        await this.client.call('POST', `${this.path('messages')}?to=${o.to.map(encodeURIComponent).join(',')}`, bytes);
      } catch (e) {
        if (!(e instanceof GroupKeyRefusal)) throw e;
        this.refusals.push({ at: o.to.join(','), from: this.serial, type: o.message.type, error: e });
      }
    }
  }
}
