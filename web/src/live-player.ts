/**
 * Live view of one camera: the NVR's live socket (src/nvr/live-ws.ts) feeds a Media Source Extensions buffer with
 * the camera's CMAF chunks as they arrive, still encrypted; EME ClearKey (eme.ts) decrypts them with the keys the
 * KMS's licence gives. Latency control as Frigate's MSE player does it: the page plays slightly faster while it
 * is behind the newest data, and jumps to it when far behind. Glass-to-glass latency is the age of the picture on
 * screen (now minus its capture time, four times a second, so a frozen picture counts as it ages): the NVR gives the session's capture clock (wall time at media time 0, from the camera's
 * verified records), and each presented frame's media time places it on that clock. Where the NVR does not know it
 * yet, the pixel clock in the picture (pixel-clock.ts) is read when the browser lets a page read the pixels (it
 * does not for EME-decrypted video).
 *
 * A new camera session (a restart, a new init segment) gets a fresh MediaSource; a segment that broke off at the
 * NVR is dropped from the parser's state (SourceBuffer.abort). The socket reconnects after it closes, except when
 * the access is refused.
 */
import type { Api } from './api.js';
import { SessionEnded } from './api.js';
import { attachClearKey } from './eme.js';
import { PixelClockReader } from './pixel-clock.js';

export type LivePhase = 'connecting' | 'waiting' | 'playing' | 'refused' | 'offline';

export interface LiveState {
  readonly phase: LivePhase;
  /** What the viewer should read when the phase is refused or offline. */
  readonly message?: string | undefined;
  /** Glass-to-glass latency from the pixel clock of the latest frame read, ms. */
  readonly latencyMs?: number;
  /** How far playback is behind the newest data buffered, ms. */
  readonly behindMs?: number;
  /** Frames presented since the tile opened. */
  readonly frames: number;
  /** Times playback stalled waiting for data after it started. */
  readonly stalls: number;
  /** Milliseconds from opening the tile to its first frame on screen. */
  readonly firstFrameMs?: number;
  readonly session?: string;
}

type Op = { kind: 'append'; data: Uint8Array<ArrayBuffer> } | { kind: 'remove'; from: number; to: number } | { kind: 'abort' };

/** Play faster while behind by more than this (s); jump when behind by more than JUMP (s). */
const TARGET_S = 0.5;
const JUMP_S = 3;
/** Seconds of video kept behind the playhead. */
const KEEP_S = 20;

export class LivePlayer {
  private ws: WebSocket | undefined;
  private stopped = false;
  private expect: 'text' | 'init' | 'data' = 'text';
  private init: { session: string; codecs: string; scheme?: string } | undefined;
  private ms: MediaSource | undefined;
  private sb: SourceBuffer | undefined;
  private url: string | undefined;
  private ops: Op[] = [];
  private detachKeys: (() => void) | undefined;
  private keysFor: string | undefined;
  private timer: number | undefined;
  private renew: number | undefined;
  private retry: number | undefined;
  private readonly clock = new PixelClockReader();
  private readonly opened = performance.now();
  private state: LiveState = { phase: 'connecting', frames: 0, stalls: 0 };
  private started = false;
  private lastClockRead = 0;
  /** Capture time (ms) of the picture on screen. */
  private shownCapture: number | undefined;
  /** Capture time (ms) at media time 0 of the current session, from the NVR. */
  private wallOffset: number | undefined;

  constructor(
    private readonly video: HTMLVideoElement,
    private readonly api: Api,
    private readonly serial: string,
    private readonly onState: (s: LiveState) => void,
  ) {}

  private set(patch: Partial<LiveState>): void {
    this.state = { ...this.state, ...patch };
    this.onState(this.state);
  }

  start(): void {
    this.video.muted = true;
    this.video.playsInline = true;
    this.video.addEventListener('waiting', this.onWaiting);
    this.timer = window.setInterval(() => this.tick(), 250);
    this.renew = window.setInterval(() => void this.renewToken(), 60_000);
    this.frameLoop();
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    window.clearInterval(this.timer);
    window.clearInterval(this.renew);
    window.clearTimeout(this.retry);
    this.video.removeEventListener('waiting', this.onWaiting);
    this.ws?.close(1000);
    this.resetSource();
    this.detachKeys?.();
  }

  private readonly onWaiting = (): void => {
    if (this.started) this.set({ stalls: this.state.stalls + 1 });
  };

  private async connect(): Promise<void> {
    if (this.stopped) return;
    if (!this.api.can(this.serial, 'live')) {
      this.set({ phase: 'refused', message: 'You have no live grant on this camera.' });
      return;
    }
    let ws: WebSocket;
    try {
      ws = await this.api.liveSocket(this.serial);
    } catch (e) {
      this.set({ phase: e instanceof SessionEnded ? 'refused' : 'offline', message: e instanceof Error ? e.message : String(e) });
      if (!(e instanceof SessionEnded)) this.retry = window.setTimeout(() => void this.connect(), 3000);
      return;
    }
    this.ws = ws;
    this.expect = 'text';
    ws.onmessage = (m: MessageEvent<string | ArrayBuffer>): void => this.onMessage(m.data);
    ws.onclose = (c: CloseEvent): void => {
      if (this.stopped || this.ws !== ws) return;
      if (c.code === 4001) {
        this.set({ phase: 'refused', message: `Live view ended: ${c.reason || 'your access ended'}.` });
        return;
      }
      this.set({ phase: 'offline', message: 'The NVR closed the live connection: reconnecting…' });
      this.retry = window.setTimeout(() => void this.connect(), 2000);
    };
  }

  private async renewToken(): Promise<void> {
    const ws = this.ws;
    if (ws?.readyState !== WebSocket.OPEN) return;
    try {
      ws.send(JSON.stringify({ type: 'token', token: await this.api.accessToken() }));
    } catch {
      // the session ended: the socket closes when its token expires
    }
  }

  private onMessage(data: string | ArrayBuffer): void {
    if (typeof data === 'string') {
      let m: { type?: string; session?: string; codecs?: string; scheme?: string; status?: number; wallOffsetMs?: number };
      try {
        m = JSON.parse(data) as typeof m;
      } catch {
        return;
      }
      if (m.type === 'init' && typeof m.session === 'string' && typeof m.codecs === 'string') {
        this.init = { session: m.session, codecs: m.codecs, ...(typeof m.scheme === 'string' ? { scheme: m.scheme } : {}) };
        this.expect = 'init';
      } else if (m.type === 'segment') {
        this.expect = 'data';
        if (typeof m.wallOffsetMs === 'number' && m.session === this.init?.session) this.wallOffset = m.wallOffsetMs;
        if (this.state.phase === 'connecting' || this.state.phase === 'offline') this.set({ phase: 'waiting', message: undefined });
      } else if (m.type === 'end') {
        this.expect = 'text';
        // a segment that broke off at the NVR: drop what the parser holds of it
        if (typeof m.status === 'number' && (m.status < 200 || m.status > 299)) this.queue({ kind: 'abort' });
      } else if (m.type === 'hello' && this.state.phase !== 'playing') {
        this.set({ phase: 'waiting', message: 'Waiting for the camera’s next segment…' });
      }
      return;
    }
    const bytes = new Uint8Array(data);
    if (this.expect === 'init' && this.init !== undefined) {
      this.expect = 'text';
      void this.newSource(this.init, bytes);
    } else if (this.expect === 'data' && this.sb !== undefined) {
      this.queue({ kind: 'append', data: bytes });
    }
  }

  private resetSource(): void {
    this.ops = [];
    this.sb = undefined;
    if (this.ms?.readyState === 'open') {
      try {
        this.ms.endOfStream();
      } catch {
        // already ending
      }
    }
    this.ms = undefined;
    if (this.url !== undefined) {
      this.video.removeAttribute('src');
      this.video.load();
      URL.revokeObjectURL(this.url);
      this.url = undefined;
    }
  }

  /** A new session: keys for its scheme (once), a fresh MediaSource, then its init segment. */
  private async newSource(init: { session: string; codecs: string; scheme?: string }, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
    const mime = `video/mp4; codecs="${init.codecs}"`;
    this.resetSource();
    this.started = false;
    this.wallOffset = undefined;
    this.shownCapture = undefined;
    this.set({ session: init.session });
    if (!MediaSource.isTypeSupported(mime)) {
      this.set({ phase: 'offline', message: `This browser cannot play ${init.codecs}.` });
      return;
    }
    if (init.scheme !== undefined && this.keysFor !== init.scheme) {
      try {
        this.detachKeys?.();
        this.detachKeys = await attachClearKey(this.video, this.api, mime, init.scheme, {
          refused: (message) => this.set({ phase: 'refused', message }),
          usable: () => undefined,
        });
        this.keysFor = init.scheme;
      } catch (e) {
        this.set({ phase: 'offline', message: `This browser cannot decrypt ${init.scheme} video (${String(e)}).` });
        return;
      }
    }
    const ms = new MediaSource();
    this.ms = ms;
    this.url = URL.createObjectURL(ms);
    this.video.src = this.url;
    await new Promise<void>((resolve) => ms.addEventListener('sourceopen', () => resolve(), { once: true }));
    if (this.ms !== ms) return;
    const sb = ms.addSourceBuffer(mime);
    sb.mode = 'segments';
    sb.addEventListener('updateend', () => this.pump());
    sb.addEventListener('error', () => this.set({ phase: 'offline', message: 'The browser could not decode this video.' }));
    this.sb = sb;
    this.ops.unshift({ kind: 'append', data: bytes });
    this.pump();
  }

  private queue(op: Op): void {
    this.ops.push(op);
    this.pump();
  }

  private pump(): void {
    const sb = this.sb;
    if (sb === undefined || sb.updating || this.ms?.readyState !== 'open') return;
    const op = this.ops.shift();
    if (op === undefined) return;
    try {
      if (op.kind === 'append') sb.appendBuffer(op.data);
      else if (op.kind === 'remove') sb.remove(op.from, op.to);
      else {
        sb.abort();
        this.pump();
      }
    } catch (e) {
      if (e instanceof DOMException && e.name === 'QuotaExceededError') {
        // full: make room behind the playhead and try again
        const t = this.video.currentTime;
        this.ops.unshift({ kind: 'remove', from: 0, to: Math.max(0, t - 2) }, op);
        return;
      }
      this.set({ phase: 'offline', message: `The browser refused the video: ${String(e)}` });
    }
  }

  /** Starts playback, keeps it near the newest data, trims what is behind. */
  private tick(): void {
    const v = this.video;
    const b = v.buffered;
    if (this.sb === undefined || b.length === 0) return;
    const end = b.end(b.length - 1);
    if (!this.started) {
      v.currentTime = Math.max(b.start(b.length - 1), end - 0.1);
      this.started = true;
      void v.play().catch(() => undefined);
      return;
    }
    const behind = end - v.currentTime;
    if (behind > JUMP_S) v.currentTime = end - 0.2;
    else v.playbackRate = behind > TARGET_S ? Math.min(2, 1 + (behind - TARGET_S)) : 1;
    if (v.paused && behind > 0.1) void v.play().catch(() => undefined);
    const first = b.start(0);
    if (v.currentTime - first > KEEP_S + 10 && !this.ops.some((o) => o.kind === 'remove')) this.queue({ kind: 'remove', from: first, to: v.currentTime - KEEP_S });
    // latency is the age of the picture on screen now: a frozen picture grows older, as it does on glass
    this.set({ behindMs: Math.round(behind * 1000), ...(this.shownCapture !== undefined ? { latencyMs: Math.round(Date.now() - this.shownCapture) } : {}) });
  }

  /** Counts presented frames and reads the pixel clock, up to four times a second. */
  private frameLoop(): void {
    const v = this.video;
    if (!('requestVideoFrameCallback' in v)) return;
    const onFrame = (now: number, meta: VideoFrameCallbackMetadata): void => {
      if (this.stopped) return;
      const patch: { -readonly [K in keyof LiveState]?: LiveState[K] } = { frames: this.state.frames + 1 };
      if (this.state.phase !== 'playing') {
        patch.phase = 'playing';
        patch.message = undefined;
        if (this.state.firstFrameMs === undefined) patch.firstFrameMs = Math.round(performance.now() - this.opened);
      }
      // the capture time of the picture now on screen: every frame from the camera's clock, or 4 times a second
      // from the pixel clock where the page may read the pixels
      if (this.wallOffset !== undefined) this.shownCapture = this.wallOffset + meta.mediaTime * 1000;
      else if (now - this.lastClockRead >= 250) {
        this.lastClockRead = now;
        this.shownCapture = this.clock.read(v) ?? this.shownCapture;
      }
      this.set(patch);
      v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
  }
}
