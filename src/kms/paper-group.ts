/**
 * A group under the paper's Scheme 1 or Scheme 2 at the KMS. One PaperKms serves every such group; the cameras run
 * the protocol among themselves over the relay, so the KMS stores requests to join or leave (which the leader
 * carries out), a new GK1 when the leader changes, and handles the paper messages cameras post to it. A write the
 * database does not take reloads the group from what the database holds.
 */
import { randomBytes } from 'node:crypto';
import { ErrorCodes, GroupKeyError, InputError } from '../errors.js';
import type { PaperKms, PaperKmsGroupState } from '../groupkey/paper/kms.js';
import { decodeMessage, encodeMessage } from '../groupkey/paper/messages.js';
import type { GroupRow } from './db.js';
import type { Mailbox } from './mailbox.js';
import { GroupRuntime, KMS_ADDRESS, refused, unseal } from './runtime.js';
import type { AuthRecord, ChangeResult, ContentKeyLookup, EpochSpan, GroupContext, ModeView } from './runtime.js';

export interface PaperContext extends GroupContext {
  readonly paper: PaperKms;
  readonly mailbox: Mailbox;
  /** Reloads a group from what the database holds (after a write it did not take). */
  reload(id: string): Promise<void>;
}

export class PaperGroup extends GroupRuntime {
  private constructor(
    private readonly ctx: PaperContext,
    row: GroupRow,
    lastAuth: AuthRecord | undefined,
  ) {
    super(row, lastAuth);
  }

  private get paper(): PaperKms {
    return this.ctx.paper;
  }

  static async load(ctx: PaperContext, row: GroupRow, lastAuth: AuthRecord | undefined): Promise<PaperGroup> {
    if (row.core !== null) ctx.paper.importGroup(await unseal(row, 'the sealed group state', () => ctx.sealer.openJson<PaperKmsGroupState>('paper-core', row.id, row.core as Buffer)));
    return new PaperGroup(ctx, row, lastAuth);
  }

  /** A new group with a fresh GK1 for its leader; every other member is a stored request to join. */
  static async create(ctx: PaperContext, row: GroupRow, members: readonly string[], actor: string): Promise<PaperGroup> {
    const scheme = row.mode === 'scheme1' ? 1 : 2;
    const leader = row.leader as string;
    ctx.paper.registerGroup({ ID_G1: row.id, scheme, GK1: new Uint8Array(randomBytes(32)), leader });
    const core = await ctx.sealer.sealJson('paper-core', row.id, ctx.paper.exportGroup(row.id));
    ctx.db.tx(() => {
      ctx.db.insertGroup({ ...row, core });
      for (const m of members) if (m !== leader) ctx.db.putPaperRequest(row.id, m, 'join');
      ctx.db.audit(actor, 'group-create', { group: row.id, mode: row.mode, members: members.length, leader: row.leader });
    });
    return new PaperGroup(ctx, { ...row, core }, undefined);
  }

  get epoch(): number {
    return 0;
  }

  view(): ModeView {
    return {
      epoch: 0,
      members: this.paper.roster(this.row.id),
      pending: this.ctx.db.paperRequests(this.row.id),
      lastRekeyAt: null,
      ackStatus: this.paper.ackStatus(this.row.id),
    };
  }

  isParticipant(serial: string): boolean {
    return this.row.leader === serial || this.paper.roster(this.row.id).includes(serial) || this.ctx.db.paperRequests(this.row.id).some((p) => p.serial === serial);
  }

  membership(serial: string): { member: boolean; request: 'join' | 'leave' | null } {
    const member = this.row.leader === serial || this.paper.roster(this.row.id).includes(serial);
    return { member, request: this.ctx.db.paperRequests(this.row.id).find((p) => p.serial === serial)?.op ?? null };
  }

  contentKeyFor(): ContentKeyLookup {
    return undefined;
  }

  /** The paper's schemes have no epochs at the KMS (and release no content keys). */
  epochSpan(): EpochSpan {
    return { current: false };
  }

  /** Stored for the leader to carry out (the camera runs the protocol). */
  async requestChange(serial: string, op: 'join' | 'leave', actor: string): Promise<ChangeResult> {
    const groupId = this.row.id;
    const roster = this.paper.roster(groupId);
    const queued = this.ctx.db.paperRequests(groupId).find((p) => p.serial === serial);
    // the opposite request waiting, and the roster already as asked: cancel it (a leave of a camera whose join is
    // still waiting, a join of a member whose leave is still waiting) instead of storing a request nobody can run
    const cancel = queued !== undefined && queued.op !== op && roster.includes(serial) === (op === 'join');
    if (op === 'join' && !cancel && (roster.includes(serial) || serial === this.row.leader)) throw new InputError(`camera ${serial} is already in ${groupId}`);
    if (op === 'leave' && serial === this.row.leader) throw new InputError(`${serial} leads ${groupId}: name another leader first`);
    if (op === 'leave' && !roster.includes(serial) && queued === undefined) throw new InputError(`camera ${serial} is not in ${groupId}`);
    this.ctx.db.tx(() => {
      if (cancel) this.ctx.db.deletePaperRequest(groupId, serial);
      else this.ctx.db.putPaperRequest(groupId, serial, op);
      this.ctx.db.audit(actor, `group-${op}`, { group: groupId, serial, cancelled: cancel });
    });
    this.wake();
    return { group: groupId, serial, op, epoch: null, status: cancel ? 'applied' : 'requested' };
  }

  async setLeader(serial: string, actor: string): Promise<void> {
    const groupId = this.row.id;
    const requests = this.ctx.db.paperRequests(groupId);
    const op = (m: string): 'join' | 'leave' | undefined => requests.find((p) => p.serial === m)?.op;
    if (!this.paper.roster(groupId).includes(serial) && op(serial) !== 'join') throw new InputError(`camera ${serial} is not in ${groupId}`);
    if (op(serial) === 'leave') throw new InputError(`camera ${serial} is asked to leave ${groupId}`);
    // the paper's GK1 is shared by the KMS and the leader: a new leader gets a new GK1 and runs a new distribution
    // over the group as it stands (the old leader included); a camera asked to leave is not in it any more
    const scheme = this.row.mode === 'scheme1' ? 1 : 2;
    const group = new Set([...this.paper.roster(groupId), ...requests.map((p) => p.serial), ...(this.row.leader !== null ? [this.row.leader] : [])]);
    const roster = [...group].filter((m) => m !== serial && op(m) !== 'leave');
    this.paper.registerGroup({ ID_G1: groupId, scheme, GK1: new Uint8Array(randomBytes(32)), leader: serial });
    try {
      const core = await this.ctx.sealer.sealJson('paper-core', groupId, this.paper.exportGroup(groupId));
      this.ctx.db.tx(() => {
        this.ctx.db.setGroupCore(groupId, 0, core);
        for (const p of requests) this.ctx.db.deletePaperRequest(groupId, p.serial);
        for (const m of roster) this.ctx.db.putPaperRequest(groupId, m, 'join');
        this.ctx.db.setLeader(groupId, serial);
        this.ctx.db.audit(actor, 'group-leader', { group: groupId, leader: serial, left: requests.filter((p) => p.op === 'leave').map((p) => p.serial) });
      });
      this.row = { ...this.row, core, leader: serial };
    } catch (e) {
      await this.ctx.reload(groupId); // the database did not take it: back to what it holds
      throw e;
    }
    this.wake();
  }

  /** The paper cannot force a camera out (it needs the camera's own leave request): logged for the operator. */
  async evictRevoked(serial: string): Promise<boolean> {
    this.ctx.log('revoked-in-paper-group', { serial, group: this.row.id, action: 'name another leader to leave it out (the paper cannot force a camera out)' });
    return false;
  }

  /** A paper message a camera posted to the KMS on the relay; the answers go back on the relay. */
  async handle(from: string, body: Uint8Array): Promise<void> {
    const id = this.row.id;
    let out;
    try {
      const m = decodeMessage(body);
      // the PaperKms serves every paper group: a message names its group, and it must be the one it was posted to
      if ((m.type === 'MemberAuth' ? m.M_IC.ID_G1 : m.ID_G1) !== id) throw new GroupKeyError(ErrorCodes.GROUPKEY_REFUSED, `KMS: a message for another group, posted to ${id}`);
      out = this.paper.handle(m);
    } catch (e) {
      this.ctx.db.audit(from, 'paper-refused', { group: id, error: (e as Error).message });
      if (!(e instanceof GroupKeyError)) throw e;
      // a refused ACK_G1 still changes the group's ackStatus to 'failed': keep that too
      if (this.paper.ackStatus(id) === 'failed') await this.store();
      throw refused('paper message');
    }
    await this.store();
    for (const o of out) {
      try {
        this.ctx.mailbox.post(id, KMS_ADDRESS, o.to, encodeMessage(o.message));
      } catch (e) {
        // a recipient's queue is full: lost as on a LAN; the camera asks again (paper-camera.ts retries)
        this.ctx.log('relay-full', { group: id, to: o.to.length === 1 ? o.to[0] : `${o.to.length} cameras`, type: o.message.type, error: (e as Error).message });
      }
    }
    this.wake();
  }

  /** Writes the group's state, and clears the requests its roster now reflects; reloads if the write fails. */
  private async store(): Promise<void> {
    const id = this.row.id;
    const roster = this.paper.roster(id);
    try {
      const core = await this.ctx.sealer.sealJson('paper-core', id, this.paper.exportGroup(id));
      this.ctx.db.tx(() => {
        this.ctx.db.setGroupCore(id, 0, core);
        for (const r of this.ctx.db.paperRequests(id)) {
          if ((r.op === 'join' && roster.includes(r.serial)) || (r.op === 'leave' && !roster.includes(r.serial))) this.ctx.db.deletePaperRequest(id, r.serial);
        }
      });
      this.row = { ...this.row, core };
    } catch (e) {
      await this.ctx.reload(id);
      throw e;
    }
  }

  /** GK1 for the leader only (over the mutually authenticated channel); the roster and the waiting requests. */
  setup(serial: string): { scheme: 1 | 2; leader: string; GK1: Buffer | null; roster: string[]; requests: { serial: string; op: 'join' | 'leave' }[] } {
    const state = this.paper.exportGroup(this.row.id);
    return { scheme: state.scheme, leader: state.leader, GK1: serial === state.leader ? Buffer.from(state.GK1, 'hex') : null, roster: [...state.roster], requests: this.ctx.db.paperRequests(this.row.id) };
  }

  /** The current group key GSK at the KMS (a copy; undefined before the first distribution). */
  groupKey(): Uint8Array | undefined {
    return this.paper.groupKey(this.row.id);
  }
}
