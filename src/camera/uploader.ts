/**
 * The camera's uploader (issue 12, src/nvr/protocol.ts): one HTTPS PUT per object of the ring buffer — the chain,
 * the init segment, each CMAF fragment, each record — over mutual TLS with the device identity on a keep-alive
 * connection, the NVR's certificate checked against the operator root. An object counts as uploaded only on a 2xx
 * (durable and indexed at the NVR); 409 (different bytes under a used name) and 422 (quarantined) raise an alarm
 * and are never resent; 507, 5xx and an unreachable NVR mean back-off while the ring keeps buffering. After an
 * outage (and at start) it asks the NVR what it holds of each session with something pending (`have`) and sends
 * the difference: the live session's new objects first, the backlog (backfill) when nothing live waits, throttled
 * to a configured byte rate. While connected it also sends its ring report (`PUT …/{serial}/ring`: the fragment
 * ranges its ring holds that the NVR has not acknowledged) right after each `have` round — so the NVR's timeline shows
 * an outage as "on the camera" before backfill starts — and every `ringReportMs` after that. The segment being
 * produced goes out while it is produced, chunk by chunk, on a second connection (src/camera/live-stream.ts); the
 * uploader leaves such a segment alone unless the stream is given up.
 */
import { Agent, request } from 'node:https';
import type { ConnectionOptions } from 'node:tls';
import { ingestPath, type HaveAnswer, type RingReport, type SeqRanges } from '../nvr/protocol.js';
import { LiveStreamer } from './live-stream.js';
import type { Ring, RingObject } from './ring.js';

export interface UploaderOptions {
  /** https://host:port of the NVR. */
  readonly url: string;
  /** tlsClientOptions of the device identity, pinning the operator root. */
  readonly tls: ConnectionOptions;
  readonly serial: string;
  readonly ring: Ring;
  /** Backfill throttle, bytes per second (live objects are never throttled). */
  readonly backfillBytesPerSecond: number;
  /** Back-off after a failure: from `minMs` doubling to `maxMs` (defaults 500 ms, 30 s). */
  readonly backoff?: { readonly minMs?: number; readonly maxMs?: number };
  readonly timeoutMs?: number;
  /** How often the ring report is sent while connected (default 3 s); it is always sent after a `have` round. */
  readonly ringReportMs?: number;
  /**
   * Stream the segment being produced while it is produced (src/camera/live-stream.ts; needs the pipeline's
   * chunkMs). Default true.
   */
  readonly live?: boolean;
  readonly onAlarm?: (detail: string) => void;
  readonly onEvent?: (event: string, fields: Record<string, unknown>) => void;
}

export interface UploaderStatus {
  readonly connected: boolean;
  readonly uploaded: number;
  readonly uploadedBytes: number;
  readonly refused: number;
  readonly lastError?: string;
  readonly lastAlarm?: string;
  readonly backlog: number;
  /** Segments sent while they were produced (live streaming), and streams given up (then sent as files). */
  readonly streamed: number;
  readonly streamReleased: number;
}

interface Answer {
  readonly status: number;
  readonly body: Buffer;
}

const describe = (o: RingObject): string => `${o.session}/${o.kind}${'index' in o ? `/${o.index}` : ''}`;

export class Uploader {
  private readonly agent: Agent;
  private readonly url: URL;
  private connected = false;
  private needSync = true;
  private liveFrom = Date.now();
  private tokens = 0;
  private lastRefill = Date.now();
  private uploaded = 0;
  private uploadedBytes = 0;
  private refused = 0;
  private lastError: string | undefined;
  private lastAlarm: string | undefined;
  private backlog = 0;
  private wake: (() => void) | undefined;
  private lastReport = 0;
  private readonly streamer: LiveStreamer | undefined;

  constructor(private readonly o: UploaderOptions) {
    this.url = new URL(o.url);
    this.agent = new Agent({ ...o.tls, keepAlive: true, maxSockets: 1 });
    o.ring.onChange(() => this.wake?.());
    this.streamer =
      o.live === false
        ? undefined
        : new LiveStreamer({ url: o.url, tls: o.tls, serial: o.serial, ring: o.ring, enabled: () => this.connected && !this.needSync, ...(o.onEvent !== undefined ? { onEvent: o.onEvent } : {}) });
  }

  status(): UploaderStatus {
    return {
      connected: this.connected,
      uploaded: this.uploaded,
      uploadedBytes: this.uploadedBytes,
      refused: this.refused,
      backlog: this.backlog,
      streamed: this.streamer?.status().streamed ?? 0,
      streamReleased: this.streamer?.status().released ?? 0,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      ...(this.lastAlarm !== undefined ? { lastAlarm: this.lastAlarm } : {}),
    };
  }

  /** Uploads until `signal` aborts; then, with `drainMs`, keeps going that long for what is left (the end record). */
  async run(signal: AbortSignal): Promise<void> {
    let backoff = this.o.backoff?.minMs ?? 500;
    while (!signal.aborted) {
      const ok = await this.step(signal);
      if (ok === 'idle') {
        await this.sleep(1_000, signal, true);
        continue;
      }
      if (ok === 'failed') {
        await this.sleep(backoff, signal, false);
        backoff = Math.min(backoff * 2, this.o.backoff?.maxMs ?? 30_000);
        continue;
      }
      backoff = this.o.backoff?.minMs ?? 500;
    }
  }

  /**
   * Sends what is pending until nothing is or `deadline` passes (a clean shutdown's last upload). Call it once
   * `run` has returned: the two would otherwise pick the same object.
   */
  async drain(deadline: number): Promise<boolean> {
    const signal = new AbortController().signal;
    while (Date.now() < deadline) {
      const r = await this.step(signal, true);
      if (r === 'failed') return false;
      if (r === 'idle') {
        // a segment still being streamed is either acknowledged or released (then sent from the ring): wait for it
        if (this.streamer?.busy() !== true) return true;
        await this.sleep(Math.min(50, Math.max(0, deadline - Date.now())), signal, false);
      }
    }
    return false;
  }

  close(): void {
    this.streamer?.close();
    this.agent.destroy();
  }

  /** One unit of work: a `have` round, or one object. */
  private async step(signal: AbortSignal, unthrottled = false): Promise<'sent' | 'idle' | 'failed'> {
    try {
      if (this.needSync) {
        await this.sync();
        this.needSync = false;
        this.liveFrom = Date.now();
        await this.sendRingReport();
      } else if (Date.now() - this.lastReport >= (this.o.ringReportMs ?? 3_000)) {
        await this.sendRingReport();
      }
      const next = this.pick();
      if (next === undefined) return 'idle';
      const body = await this.o.ring.read(next.object);
      if (body === undefined) {
        // overwritten meanwhile (its loss is signed in the chain): nothing to send
        await this.o.ring.markUploaded(next.object);
        return 'sent';
      }
      if (!next.live && !unthrottled) {
        const wait = this.throttle(body.length);
        if (wait > 0) {
          await this.sleep(Math.min(wait, 250), signal, true);
          return 'sent';
        }
      }
      const path = this.pathOf(next.object);
      const a = await this.send('PUT', path, body);
      return await this.answered(next.object, a, body.length);
    } catch (e) {
      this.connected = false;
      this.needSync = true;
      this.lastError = `NVR ${this.url.origin} unreachable: ${e instanceof Error ? ((e as { code?: string }).code ?? e.message) : String(e)}`;
      this.o.onEvent?.('upload-failed', { error: this.lastError });
      return 'failed';
    }
  }

  private async answered(object: RingObject, a: Answer, bytes: number): Promise<'sent' | 'failed'> {
    const what = describe(object);
    if (a.status >= 200 && a.status < 300) {
      this.connected = true;
      await this.o.ring.markUploaded(object);
      this.uploaded++;
      this.uploadedBytes += bytes;
      this.o.onEvent?.('uploaded', { object: what, status: a.status, bytes });
      return 'sent';
    }
    this.connected = true;
    if (a.status === 409 || a.status === 422 || a.status === 413 || a.status === 400) {
      // refused for good: never resent
      this.refused++;
      const detail = `the NVR refused ${what} with ${a.status}${a.status === 409 ? ' (different bytes under a name already used)' : a.status === 422 ? ' (quarantined: it does not match what the camera signed)' : ''}: ${a.body.toString('utf8').slice(0, 200)}`;
      this.alarm(detail);
      await this.o.ring.markUploaded(object);
      return 'sent';
    }
    if (a.status === 412) {
      // the NVR lacks the session's chain, init or session record: ask it what it holds and send those first
      this.needSync = true;
      this.lastError = `${what}: 412, the NVR does not hold the session's start`;
      return 'failed';
    }
    this.lastError = `${what}: ${a.status}${a.status === 507 ? ' (the NVR is full of locked evidence: buffering)' : ''} ${a.body.toString('utf8').slice(0, 200)}`;
    if (a.status === 403) this.alarm(`the NVR refused this camera (403) for ${what}`);
    this.needSync = true;
    this.o.onEvent?.('upload-failed', { object: what, status: a.status });
    return 'failed';
  }

  private alarm(detail: string): void {
    this.lastAlarm = detail;
    this.o.onAlarm?.(detail);
  }

  /** The next object: the live session's new objects first, then the backlog, oldest session first. */
  private pick(): { object: RingObject; live: boolean } | undefined {
    const ring = this.o.ring;
    const current = ring.currentSession();
    let backlog = 0;
    let first: RingObject | undefined;
    let live: RingObject | undefined;
    const streaming = (o: RingObject): boolean => o.kind === 'seg' && this.streamer?.holds(o.session, o.index) === true;
    for (const id of ring.sessionIds()) {
      const pending = ring.pending(id).filter((o) => !streaming(o));
      backlog += pending.length;
      if (id === current) {
        // the session's start (chain, init, session record) is always needed first
        const p = pending[0];
        if (p !== undefined && (p.kind === 'chain' || p.kind === 'init' || (p.kind === 'rec' && p.index === 0))) live ??= p;
        live ??= pending.find((o) => ring.createdAt(o) >= this.liveFrom);
      }
      first ??= pending[0];
    }
    this.backlog = backlog;
    if (live !== undefined) return { object: live, live: true };
    if (first !== undefined) return { object: first, live: false };
    return undefined;
  }

  /** Token bucket for backfill: ms to wait before `bytes` may go. */
  private throttle(bytes: number): number {
    const rate = this.o.backfillBytesPerSecond;
    const now = Date.now();
    this.tokens = Math.min(this.tokens + ((now - this.lastRefill) / 1000) * rate, Math.max(rate, bytes));
    this.lastRefill = now;
    if (this.tokens >= bytes) {
      this.tokens -= bytes;
      return 0;
    }
    return Math.ceil(((bytes - this.tokens) / rate) * 1000);
  }

  /**
   * The ring report: per session, the ranges [from, to) of fragment sequence numbers held and not acknowledged
   * (within the protocol's limits: the oldest 1000 sessions, 10000 ranges).
   */
  ringReport(): RingReport {
    const sessions: Record<string, [number, number][]> = {};
    let ranges = 0;
    for (const id of this.o.ring.sessionIds().slice(0, 1000)) {
      const out: [number, number][] = [];
      for (const o of this.o.ring.pending(id)) {
        if (o.kind !== 'seg') continue;
        const last = out[out.length - 1];
        if (last !== undefined && last[1] === o.index) last[1] = o.index + 1;
        else if (ranges < 10_000) {
          out.push([o.index, o.index + 1]);
          ranges++;
        }
      }
      if (out.length > 0) sessions[id] = out;
    }
    return { sessions };
  }

  /** Sends the ring report; a refusal is an event (the report is informational), a transport failure throws. */
  private async sendRingReport(): Promise<void> {
    this.lastReport = Date.now();
    const report = this.ringReport();
    const a = await this.send('PUT', ingestPath({ kind: 'ring', serial: this.o.serial }), Buffer.from(JSON.stringify(report)));
    const ranges = Object.values(report.sessions).reduce((n, r) => n + r.length, 0);
    this.o.onEvent?.(a.status === 204 ? 'ring-report' : 'ring-report-refused', { status: a.status, sessions: Object.keys(report.sessions).length, ranges });
  }

  /** Asks the NVR what it holds of every session with something pending, and marks that uploaded. */
  private async sync(): Promise<void> {
    const ring = this.o.ring;
    for (const id of ring.sessionIds()) {
      const pending = ring.pending(id);
      if (pending.length === 0) continue;
      const a = await this.send('GET', ingestPath({ kind: 'have', serial: this.o.serial, session: id }));
      if (a.status === 404) continue; // nothing of it yet
      if (a.status !== 200) throw new Error(`have ${id}: ${a.status}`);
      this.connected = true;
      const have = JSON.parse(a.body.toString('utf8')) as HaveAnswer;
      const inRanges = (r: SeqRanges, n: number): boolean => r.some(([from, to]) => n >= from && n < to);
      let held = 0;
      for (const o of pending) {
        const yes = o.kind === 'chain' ? have.chain : o.kind === 'init' ? have.init : o.kind === 'seg' ? inRanges(have.segments, o.index) : inRanges(have.records, o.index);
        if (yes) {
          await ring.markUploaded(o);
          held++;
        }
      }
      this.o.onEvent?.('have', { session: id, held, pending: pending.length - held });
    }
  }

  private pathOf(o: RingObject): string {
    if (o.kind === 'seg' || o.kind === 'rec') return ingestPath({ kind: o.kind, serial: this.o.serial, session: o.session, index: o.index });
    return ingestPath({ kind: o.kind, serial: this.o.serial, session: o.session });
  }

  private send(method: string, path: string, body?: Buffer): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.url.hostname,
          port: this.url.port,
          method,
          path,
          agent: this.agent,
          timeout: this.o.timeoutMs ?? 30_000,
          headers: body !== undefined ? { 'content-type': 'application/octet-stream', 'content-length': String(body.length) } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (d: Buffer) => {
            if (size < 1 << 20) chunks.push(d);
            size += d.length;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end(body);
    });
  }

  private sleep(ms: number, signal: AbortSignal, wakeOnChange: boolean): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = (): void => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      if (wakeOnChange) this.wake = done;
    });
  }
}
