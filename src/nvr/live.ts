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

export class LiveFeed {
  private readonly bySerial = new Map<string, Set<LiveListener>>();
  private readonly all = new Set<LiveListener>();

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

  /** Whether anyone listens to this camera (the ingest path skips the feed otherwise). */
  wanted(serial: string): boolean {
    return this.all.size > 0 || this.bySerial.has(serial);
  }

  emit(e: LiveFeedEvent): void {
    for (const l of this.all) l(e);
    const set = this.bySerial.get(e.serial);
    if (set !== undefined) for (const l of set) l(e);
  }
}
