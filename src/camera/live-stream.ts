/**
 * The uploader's live half (issue 12: "fragments are sent as they are produced — CMAF chunks within a segment,
 * streamed — so live view need not wait for a GOP to close"): the segment the pipeline is producing is sent to the
 * NVR while it is produced, as one HTTPS PUT whose body is streamed chunk by chunk (chunked transfer encoding, no
 * Content-Length), on a connection of its own beside the uploader's. The request ends when the segment is complete
 * and durable in the ring; the NVR acknowledges it as any other PUT (durable and indexed), and the ring marks it
 * uploaded.
 *
 * It only ever helps: a segment starts streaming only when its first chunk arrives while the NVR holds the session's
 * start (chain, init segment and session record acknowledged); anything else — a refusal, a broken connection, a
 * chunk arriving after the segment's PUT was given up, a stream backed up beyond `maxQueuedBytes`, a segment
 * longer than `maxStreamMs` — releases the segment, and the uploader sends it from the ring file as usual (an NVR
 * that stored it already answers 200). While a segment is being streamed the uploader leaves it alone (`holds`).
 */
import type { ClientRequest } from 'node:http';
import { Agent, request } from 'node:https';
import type { ConnectionOptions } from 'node:tls';
import { ingestPath } from '../nvr/protocol.js';
import type { LiveSegmentEvent, Ring } from './ring.js';

export interface LiveStreamOptions {
  readonly url: string;
  readonly tls: ConnectionOptions;
  readonly serial: string;
  readonly ring: Ring;
  /** Give a stream up when this much is written and not yet sent (default 8 MiB). */
  readonly maxQueuedBytes?: number;
  /** Give a stream up when its segment is not complete after this long (default 30 s; the NVR's request timeout is 60 s). */
  readonly maxStreamMs?: number;
  /** Whether streaming is wanted now (the uploader is connected and not catching up on a `have` round). */
  readonly enabled: () => boolean;
  readonly onEvent?: (event: string, fields: Record<string, unknown>) => void;
}

export interface LiveStreamStatus {
  /** Segments the NVR acknowledged at the end of their stream. */
  readonly streamed: number;
  /** Streams given up (the uploader sent those segments). */
  readonly released: number;
}

interface Stream {
  readonly session: string;
  readonly seq: number;
  readonly req: ClientRequest;
  readonly started: number;
  readonly timer: NodeJS.Timeout;
  /** The PUT is over (answered or failed); the segment is either acknowledged or released. */
  done: boolean;
}

export class LiveStreamer {
  private readonly agent: Agent;
  private readonly url: URL;
  private readonly streams = new Map<string, Stream>();
  private readonly unsubscribe: () => void;
  private streamed = 0;
  private released = 0;
  private marking = 0;
  private closed = false;

  constructor(private readonly o: LiveStreamOptions) {
    this.url = new URL(o.url);
    this.agent = new Agent({ ...o.tls, keepAlive: true, maxSockets: 1 });
    this.unsubscribe = o.ring.onLive((e) => this.on(e));
  }

  status(): LiveStreamStatus {
    return { streamed: this.streamed, released: this.released };
  }

  /** Whether a stream is open or its acknowledgement is still being recorded in the ring. */
  busy(): boolean {
    return this.streams.size > 0 || this.marking > 0;
  }

  /** Whether this segment is being streamed (the uploader must not send it meanwhile). */
  holds(session: string, seq: number): boolean {
    const s = this.streams.get(`${session}/${seq}`);
    return s !== undefined && !s.done;
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    for (const s of this.streams.values()) this.release(s, 'closing');
    this.agent.destroy();
  }

  private on(e: LiveSegmentEvent): void {
    if (this.closed) return;
    const key = `${e.session}/${e.seq}`;
    const s = this.streams.get(key);
    if (e.kind === 'complete') {
      if (s !== undefined && !s.done) s.req.end();
      return;
    }
    if (e.index === 0) {
      if (s === undefined && this.o.enabled() && this.o.ring.startAcknowledged(e.session)) this.start(e.session, e.seq, e.data);
      return;
    }
    if (s === undefined || s.done) return;
    if (s.req.writableLength > (this.o.maxQueuedBytes ?? 8 << 20)) {
      this.release(s, 'backed up');
      return;
    }
    s.req.write(joined(e.data));
  }

  private start(session: string, seq: number, first: readonly Uint8Array[]): void {
    const key = `${session}/${seq}`;
    const req = request({
      host: this.url.hostname,
      port: this.url.port,
      method: 'PUT',
      path: ingestPath({ kind: 'seg', serial: this.o.serial, session, index: seq }),
      agent: this.agent,
      headers: { 'content-type': 'application/octet-stream' },
    });
    const timer = setTimeout(() => this.release(stream, `not complete after ${this.o.maxStreamMs ?? 30_000} ms`), this.o.maxStreamMs ?? 30_000);
    timer.unref();
    const stream: Stream = { session, seq, req, started: Date.now(), timer, done: false };
    this.streams.set(key, stream);
    req.on('error', (err) => this.release(stream, (err as { code?: string }).code ?? err.message));
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (stream.done) return;
        if (status >= 200 && status < 300) {
          stream.done = true;
          clearTimeout(stream.timer);
          this.streams.delete(key);
          this.streamed++;
          this.marking++;
          void this.o.ring
            .markUploaded({ session, kind: 'seg', index: seq })
            .then(() => this.o.onEvent?.('streamed', { object: `${session}/seg/${seq}`, status, ms: Date.now() - stream.started }))
            .finally(() => this.marking--);
        } else {
          this.release(stream, `answered ${status}`);
        }
      });
    });
    req.write(joined(first));
  }

  /** Gives a stream up: the uploader sends the segment from the ring file. */
  private release(s: Stream, why: string): void {
    if (s.done) return;
    s.done = true;
    clearTimeout(s.timer);
    this.streams.delete(`${s.session}/${s.seq}`);
    this.released++;
    s.req.destroy();
    this.o.onEvent?.('stream-released', { object: `${s.session}/seg/${s.seq}`, why });
  }
}

/** A chunk's pieces (boxes, samples) as one write: one HTTP chunk and TLS record run per CMAF chunk, not per sample. */
function joined(parts: readonly Uint8Array[]): Uint8Array {
  return parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts);
}
