/**
 * Live view over a WebSocket (issue 13 §5): `wss://NVR-VIEWER/v1/cameras/SERIAL/live` pushes a camera's init segment
 * and then each CMAF chunk as it arrives from the camera (the ingest's live feed, live.ts), so a browser appends
 * them to an MSE SourceBuffer (with EME ClearKey) directly. The NVR forwards ciphertext; nothing is decrypted here.
 *
 * Authentication: browsers cannot set headers on a WebSocket, so the access token travels as a subprotocol —
 * `new WebSocket(url, ['keyframe-live', 'bearer.' + token])` — and the server answers `keyframe-live`. The token
 * must give `live` on the camera. It is renewed on the open socket (a text message `{"type":"token","token":…}`);
 * a socket whose token expires unrenewed is closed (4001).
 *
 * Messages to the viewer, in order:
 *   text  {"type":"init","session":S,"codecs":C,"scheme":P,"width":W,"height":H}   then one binary message: the
 *         session's init segment (C: RFC 6381 codecs for MSE; P: cenc or cbcs for EME, absent for clear video)
 *   text  {"type":"segment","session":S,"seq":N[,"wallOffsetMs":W]}   then binary messages: the segment's bytes as
 *         they arrive. W, once a segment of the session is verified: wall-clock capture time = W + media time × 1000
 *         (the camera's clock, from its signed records), so a player can show how far behind the camera it is
 *   text  {"type":"end","seq":N,"status":C}   the segment is over; C ≠ 2xx: it broke off (discard what came of it)
 * A viewer joins at the segment in progress, from its first byte (the ingest keeps what has arrived of it: live.ts;
 * a SourceBuffer needs whole boxes from a segment's first byte), or else at the next segment's start.
 *
 * Bounds: at most `maxViewers` sockets (an upgrade over it gets 503), 64 KiB per message from the viewer, and a viewer
 * that lets more than `maxBufferedBytes` pile up unsent is closed (1013): a slow viewer never holds the ingest back.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { readFile } from 'node:fs/promises';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { aclAllows } from '../access/acl.js';
import type { AccessClaims } from '../access/token.js';
import type { Logger } from '../server/log.js';
import type { LiveFeed, LiveFeedEvent } from './live.js';
import type { SegmentStore } from './store.js';
import { initTrack } from './init-track.js';

export const LIVE_PROTOCOL = 'keyframe-live';

export interface LiveSocketOptions {
  readonly feed: LiveFeed;
  readonly store: SegmentStore;
  readonly verify: (token: string) => Promise<AccessClaims>;
  readonly log: Logger;
  readonly maxViewers?: number;
  readonly maxBufferedBytes?: number;
  /** A session's wall-clock capture time at media time 0 (ms), once the NVR knows it from a verified record. */
  readonly wallOffset?: (serial: string, session: string) => number | undefined;
}

const PATH = /^\/v1\/cameras\/([A-Za-z0-9][A-Za-z0-9._-]{0,63})\/live$/;

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
}

/** Handles upgrades of the viewers' listener (its https server's 'upgrade' event). */
export class LiveSockets {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, handleProtocols: (p) => (p.has(LIVE_PROTOCOL) ? LIVE_PROTOCOL : false) });
  private readonly maxViewers: number;
  private readonly maxBuffered: number;

  constructor(private readonly o: LiveSocketOptions) {
    this.maxViewers = o.maxViewers ?? 256;
    this.maxBuffered = o.maxBufferedBytes ?? 8 * 1024 * 1024;
  }

  get viewers(): number {
    return this.wss.clients.size;
  }

  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const m = PATH.exec((req.url ?? '').split('?')[0] ?? '');
    if (m === null) return refuse(socket, 404, 'Not Found');
    const serial = m[1] as string;
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((s) => s.trim());
    const token = offered.find((p) => p.startsWith('bearer.'))?.slice('bearer.'.length);
    if (!offered.includes(LIVE_PROTOCOL) || token === undefined) return refuse(socket, 401, 'Unauthorized');
    let claims: AccessClaims;
    try {
      claims = await this.o.verify(token);
    } catch {
      return refuse(socket, 401, 'Unauthorized');
    }
    if (!aclAllows(claims.acl, serial, 'live')) return refuse(socket, 403, 'Forbidden');
    if (this.wss.clients.size >= this.maxViewers) return refuse(socket, 503, 'Service Unavailable');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.serve(ws, serial, claims));
  }

  /**
   * Closes (4001) every socket whose current token's session `ended` says has ended, or every socket when `ended`
   * is 'all' (the NVR can no longer tell which sessions ended: revocations.ts).
   */
  revoke(ended: ReadonlySet<string> | 'all'): number {
    let n = 0;
    for (const [ws, claims] of this.claims) {
      if (ended !== 'all' && !ended.has(claims().sid)) continue;
      ws.close(4001, ended === 'all' ? 'revocation list stale' : 'session ended');
      n++;
    }
    return n;
  }
  private readonly claims = new Map<WebSocket, () => AccessClaims>();

  private serve(ws: WebSocket, serial: string, first: AccessClaims): void {
    let claims = first;
    this.claims.set(ws, () => claims);
    let expiry: NodeJS.Timeout | undefined;
    const arm = (): void => {
      if (expiry !== undefined) clearTimeout(expiry);
      expiry = setTimeout(() => ws.close(4001, 'token expired'), Math.max(0, claims.exp * 1000 - Date.now()));
      expiry.unref();
    };
    arm();
    let initSent: string | undefined;
    /** The segment being forwarded (from its first byte), if any. */
    let current: { session: string; seq: number } | undefined;
    // sends stay in order even while an init segment is read from the store
    let chain: Promise<void> = Promise.resolve();
    const send = (data: string | Uint8Array): void => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > this.maxBuffered) {
        this.o.log.warn({ event: 'live-viewer-slow', serial, buffered: ws.bufferedAmount }, 'live viewer too slow: closed');
        ws.close(1013, 'too slow');
        return;
      }
      ws.send(data);
    };
    const onEvent = (e: LiveFeedEvent): void => {
      if (e.kind === 'data') {
        if (current === undefined || current.session !== e.session || current.seq !== e.seq) {
          if (e.offset !== 0) return; // joins at the next segment's start
          current = { session: e.session, seq: e.seq };
          const { session, seq } = current;
          if (initSent !== session) {
            initSent = session;
            chain = chain.then(async () => {
              try {
                const init = await readFile(this.o.store.path(serial, session, 'init'));
                const t = initTrack(init);
                send(JSON.stringify({ type: 'init', session, codecs: t.codecs, width: t.width, height: t.height, ...(t.scheme !== undefined ? { scheme: t.scheme } : {}) }));
                send(init);
              } catch (err) {
                this.o.log.warn({ event: 'live-init-unreadable', serial, session, error: (err as Error).message }, 'init segment unreadable: live view stops');
                ws.close(1011, 'init segment unreadable');
              }
            });
          }
          const wallOffsetMs = this.o.wallOffset?.(serial, session);
          chain = chain.then(() => send(JSON.stringify({ type: 'segment', session, seq, ...(wallOffsetMs !== undefined ? { wallOffsetMs } : {}) })));
        }
        const copy = Buffer.from(e.data);
        chain = chain.then(() => send(copy));
        return;
      }
      if (current?.session === e.session && current.seq === e.seq) {
        const { seq } = current;
        current = undefined;
        chain = chain.then(() => send(JSON.stringify({ type: 'end', seq, status: e.status })));
      }
    };
    const unsubscribe = this.o.feed.subscribe(serial, onEvent);
    // a segment in progress (when the feed keeps it): the viewer starts at its first picture at once, with what has
    // arrived of it, and then follows it chunk by chunk
    const inProgress = this.o.feed.segmentInProgress(serial);
    if (inProgress !== undefined) onEvent({ kind: 'data', serial, session: inProgress.session, seq: inProgress.seq, offset: 0, data: inProgress.data });
    // a viewer that stopped answering pings is dropped
    let alive = true;
    ws.on('pong', () => (alive = true));
    const ping = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, 25_000);
    ping.unref();
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      let msg: { type?: unknown; token?: unknown };
      try {
        msg = JSON.parse(Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]).toString('utf8')) as { type?: unknown; token?: unknown };
      } catch {
        return;
      }
      if (msg.type !== 'token' || typeof msg.token !== 'string') return;
      this.o
        .verify(msg.token)
        .then((c) => {
          if (c.sub !== claims.sub || !aclAllows(c.acl, serial, 'live')) throw new Error('not the same viewer, or no live right');
          claims = c;
          arm();
          send(JSON.stringify({ type: 'token', expiresAt: new Date(c.exp * 1000).toISOString() }));
        })
        .catch(() => ws.close(4001, 'token refused'));
    });
    ws.on('close', () => {
      this.claims.delete(ws);
      unsubscribe();
      clearInterval(ping);
      if (expiry !== undefined) clearTimeout(expiry);
    });
    ws.on('error', () => ws.terminate());
    send(JSON.stringify({ type: 'hello', serial, expiresAt: new Date(claims.exp * 1000).toISOString() }));
  }

  close(): void {
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
  }
}
