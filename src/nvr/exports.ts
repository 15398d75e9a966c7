/**
 * Exports asked for through the viewers' listener (issue 13 §5): a camera's range as an evidence bundle signed by the
 * NVR's exporter identity (an operator-CA identity with the evidence-export EKU, `keyframe ca exporter-cert`), made
 * by the same code as `keyframe nvr export` (export.ts), one at a time in the background, for the user whose token
 * asked and who may download it while their token still gives `export` over its range.
 *
 *   DIR/ID.tar    the bundle (ustar; `keyframe verify` checks it offline)
 *   DIR/ID.json   the job: who, camera, range, case, reason, state (queued, running, done, failed), size, SHA-256
 *
 * Jobs are files (0600), so that finished exports survive a restart; a job found queued or running at start was cut
 * off and is marked failed. Every finished or failed export is an entry in the NVR's audit chain (locks.ts) with the
 * user, the case, the range and the bundle's SHA-256. At most `maxQueued` jobs wait; more is refused (503).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError, KeyframeError, ErrorCodes } from '../errors.js';
import type { OperatorIdentity } from '../pki/operator-identity.js';
import type { Logger } from '../server/log.js';
import { writeFileAtomic } from '../util/fs.js';
import type { NvrConfig } from './config.js';
import { exportFromNvr } from './export.js';
import type { LockStore } from './locks.js';

export type ExportState = 'queued' | 'running' | 'done' | 'failed';

export interface ExportJob {
  readonly id: string;
  readonly user: string;
  readonly camera: string;
  readonly from: string;
  readonly to: string;
  readonly case: string;
  readonly reason: string;
  readonly requestedAt: string;
  state: ExportState;
  finishedAt?: string;
  bytes?: number;
  sha256?: string;
  sessions?: number;
  error?: string;
}

export interface ExportServiceOptions {
  readonly config: NvrConfig;
  readonly exporter: OperatorIdentity;
  /** Where bundles and jobs are kept. */
  readonly dir: string;
  readonly locks: LockStore;
  /** Makes the index's last writes durable (the audit entry), as after a lock. */
  readonly durable: () => Promise<void>;
  readonly log: Logger;
  readonly maxQueued?: number;
}

const ID = /^[0-9a-f]{32}$/;

export class ExportService {
  private readonly jobs = new Map<string, ExportJob>();
  private readonly queue: string[] = [];
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly o: ExportServiceOptions) {}

  /** Reads the jobs kept in the directory; those cut off by a stop are marked failed. */
  async load(): Promise<void> {
    for (const name of await readdir(this.o.dir)) {
      if (!name.endsWith('.json') || !ID.test(name.slice(0, -5))) continue;
      let job: ExportJob;
      try {
        job = JSON.parse(await readFile(join(this.o.dir, name), 'utf8')) as ExportJob;
      } catch (e) {
        this.o.log.warn({ event: 'export-job-unreadable', file: join(this.o.dir, name), error: (e as Error).message }, 'export job file unreadable: left out');
        continue;
      }
      if (job.state === 'queued' || job.state === 'running') {
        job.state = 'failed';
        job.error = 'the NVR stopped before the export was made';
        await this.save(job);
      }
      this.jobs.set(job.id, job);
    }
  }

  /** Queues an export; the caller checked the user's `export` right over the range. */
  async request(r: { readonly user: string; readonly camera: string; readonly from: number; readonly to: number; readonly caseId: string; readonly reason: string }): Promise<ExportJob> {
    if (this.closed) throw new KeyframeError(ErrorCodes.UNAVAILABLE, 'the NVR is stopping');
    if (!(r.to > r.from)) throw new InputError('"to" must be after "from"');
    if (r.reason.trim() === '' || r.caseId.trim() === '') throw new InputError('an export needs a case and a reason');
    if (this.queue.length >= (this.o.maxQueued ?? 4)) throw new KeyframeError(ErrorCodes.UNAVAILABLE, 'too many exports waiting: try again later');
    const job: ExportJob = { id: randomBytes(16).toString('hex'), user: r.user, camera: r.camera, from: new Date(r.from).toISOString(), to: new Date(r.to).toISOString(), case: r.caseId, reason: r.reason, requestedAt: new Date().toISOString(), state: 'queued' };
    await this.save(job);
    this.jobs.set(job.id, job);
    this.queue.push(job.id);
    this.running ??= this.drain();
    return job;
  }

  /** A user's job, or undefined (another user's job is as unknown as a missing one). */
  job(id: string, user: string): ExportJob | undefined {
    const j = ID.test(id) ? this.jobs.get(id) : undefined;
    return j !== undefined && j.user === user ? j : undefined;
  }

  jobsOf(user: string): ExportJob[] {
    return [...this.jobs.values()].filter((j) => j.user === user).sort((a, b) => b.requestedAt.localeCompare(a.requestedAt));
  }

  /** The bundle of a finished job, as a stream. */
  bundle(job: ExportJob): NodeJS.ReadableStream {
    return createReadStream(join(this.o.dir, `${job.id}.tar`));
  }

  /** Waits for the job in progress; later ones stay queued (marked failed at the next start). */
  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    await this.running;
  }

  private async drain(): Promise<void> {
    try {
      for (let id = this.queue.shift(); id !== undefined; id = this.queue.shift()) {
        const job = this.jobs.get(id);
        if (job !== undefined) await this.make(job);
      }
    } finally {
      this.running = undefined;
    }
  }

  private async make(job: ExportJob): Promise<void> {
    const out = join(this.o.dir, `${job.id}.tar`);
    job.state = 'running';
    await this.save(job);
    try {
      const r = await exportFromNvr({ config: this.o.config, camera: job.camera, from: new Date(job.from), to: new Date(job.to), out, format: 'bundle', exporter: this.o.exporter, reason: `${job.reason} (case ${job.case}; asked by ${job.user} through the NVR)` });
      const sha = createHash('sha256');
      for await (const c of createReadStream(out)) sha.update(c as Buffer);
      job.sha256 = sha.digest('hex');
      job.bytes = (await stat(out)).size;
      job.sessions = r.sessions.length;
      job.state = 'done';
    } catch (e) {
      await rm(out, { force: true });
      job.state = 'failed';
      job.error = e instanceof KeyframeError ? e.message : 'the export could not be made (see the NVR log)';
      this.o.log.error({ event: 'export-failed', id: job.id, camera: job.camera, error: (e as Error).message }, `export ${job.id} failed`);
    }
    job.finishedAt = new Date().toISOString();
    const a = this.o.locks.recordExport(`user:${job.user}`, { export: job.id, case: job.case, camera: job.camera, from: job.from, to: job.to, state: job.state, ...(job.sha256 !== undefined ? { sha256: job.sha256, bytes: job.bytes } : { error: job.error }) });
    await this.o.durable();
    await this.save(job);
    this.o.log.info({ event: 'export', id: job.id, user: job.user, case: job.case, camera: job.camera, state: job.state, audit: a }, `export ${job.id} (case ${job.case}) of ${job.camera} for ${job.user}: ${job.state}`);
  }

  private async save(job: ExportJob): Promise<void> {
    await writeFileAtomic(join(this.o.dir, `${job.id}.json`), `${JSON.stringify(job)}\n`, { mode: 0o600 });
  }
}
