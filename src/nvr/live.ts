/**
 * The NVR's live feed: a camera's media segments as their bytes arrive — a camera streams the segment it is
 * recording chunk by chunk (src/camera/live-stream.ts) — before the segment is complete, stored or verified. It is
 * what live view reads (the viewer checks authenticity itself once the segment's record is in); here it is an
 * in-process publish/subscribe, per camera. Listeners run synchronously on the ingest path and must not block or
 * throw; `data` is only valid during the call (copy it to keep it).
 */
export type LiveFeedEvent =
  | { readonly kind: 'data'; readonly serial: string; readonly session: string; readonly seq: number; readonly offset: number; readonly data: Uint8Array }
  /** The PUT is over: `status` is the NVR's answer (2xx: stored; 0: the body broke off). */
  | { readonly kind: 'end'; readonly serial: string; readonly session: string; readonly seq: number; readonly size: number; readonly status: number };

export type LiveListener = (e: LiveFeedEvent) => void;

/** The segment a camera is streaming, as far as it has arrived. */
export interface CurrentSegment {
  readonly session: string;
  readonly seq: number;
  readonly data: Buffer;
}

/** Bytes of a camera's segment in progress kept for viewers who join mid-segment (beyond it: they wait for the next). */
export const CURRENT_SEGMENT_CAP = 8 * 1024 * 1024;

export class LiveFeed {
  private readonly bySerial = new Map<string, Set<LiveListener>>();
  private readonly all = new Set<LiveListener>();
  private readonly current = new Map<string, { session: string; seq: number; chunks: Buffer[]; bytes: number }>();

  /**
   * @param keepCurrent keep a copy of each camera's segment in progress (at most CURRENT_SEGMENT_CAP bytes), so that
   *   a viewer who joins starts at that segment's first picture at once instead of waiting for the next segment
   */
  constructor(private readonly keepCurrent = false) {}

  /** The segment `serial` is streaming, from its first byte to what has arrived (keepCurrent only). */
  segmentInProgress(serial: string): CurrentSegment | undefined {
    const c = this.current.get(serial);
    return c === undefined ? undefined : { session: c.session, seq: c.seq, data: Buffer.concat(c.chunks, c.bytes) };
  }

  private keep(e: LiveFeedEvent): void {
    const c = this.current.get(e.serial);
    if (e.kind === 'end') {
      if (c !== undefined && c.session === e.session && c.seq === e.seq) this.current.delete(e.serial);
      return;
    }
    if (e.offset === 0) {
      if (e.data.length <= CURRENT_SEGMENT_CAP) this.current.set(e.serial, { session: e.session, seq: e.seq, chunks: [Buffer.from(e.data)], bytes: e.data.length });
      else this.current.delete(e.serial);
      return;
    }
    if (c === undefined || c.session !== e.session || c.seq !== e.seq || c.bytes !== e.offset) return;
    if (c.bytes + e.data.length > CURRENT_SEGMENT_CAP) {
      this.current.delete(e.serial);
      return;
    }
    c.chunks.push(Buffer.from(e.data));
    c.bytes += e.data.length;
  }

  /** Listens to one camera, or to every camera with '*'. */
  subscribe(serial: string, listener: LiveListener): () => void {
    if (serial === '*') {
      this.all.add(listener);
      return () => void this.all.delete(listener);
    }
    let set = this.bySerial.get(serial);
    if (set === undefined) {
      set = new Set();
      this.bySerial.set(serial, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.bySerial.delete(serial);
    };
  }

  /** Whether anyone listens to this camera (the ingest path skips the feed otherwise), or its segment is kept. */
  wanted(serial: string): boolean {
    return this.keepCurrent || this.all.size > 0 || this.bySerial.has(serial);
  }

  emit(e: LiveFeedEvent): void {
    if (this.keepCurrent) this.keep(e);
    for (const l of this.all) l(e);
    const set = this.bySerial.get(e.serial);
    if (set !== undefined) for (const l of set) l(e);
  }
}
