/**
 * Where the pipeline's content keys come from. The pipeline asks `current()` at every fragment (GOP) boundary, so a
 * new KID starts with the next fragment; `onChange` tells the agent (logs, status) when the key changed.
 *
 * - StaticKeyProvider: one key (`keyframe record --key`).
 * - GroupKeyProvider: the camera's hardened group at the KMS (GroupKeyCamera): follows epochs by long poll; when
 *   the KMS is unreachable it keeps the last key and, after `alarmAfterMs` without a successful poll, raises an
 *   alarm (and clears it when the KMS answers again).
 */
import type { ContentKey } from '../packager/package.js';
import type { GroupKeyCamera } from './group-key.js';

export interface EpochKey extends ContentKey {
  /** The group epoch the key belongs to (0 for a static key). */
  readonly epoch: number;
}

export interface KeyProvider {
  /** The key for the next fragment. */
  current(): EpochKey;
  /** Called after the key changed; returns an unsubscribe function. */
  onChange(listener: (key: EpochKey) => void): () => void;
}

export class StaticKeyProvider implements KeyProvider {
  private readonly key: EpochKey;
  constructor(key: ContentKey) {
    this.key = { kid: key.kid, key: key.key, epoch: 0 };
  }
  current(): EpochKey {
    return this.key;
  }
  onChange(): () => void {
    return () => undefined;
  }
}

export interface GroupKeyProviderOptions {
  readonly camera: GroupKeyCamera;
  readonly group: string;
  /** Raise the alarm after this long without reaching the KMS (default 60 s). */
  readonly alarmAfterMs?: number;
  /** Long-poll wait (default 20 s). */
  readonly waitMs?: number;
  /** Pause after a failed poll (default 2 s). */
  readonly retryMs?: number;
  readonly onAlarm?: (raised: boolean, detail: string) => void;
  readonly onError?: (e: unknown) => void;
  readonly now?: () => number;
}

export interface KeyStatus {
  readonly group: string;
  readonly epoch: number;
  readonly kid: string;
  /** Last successful contact with the KMS (ms since the epoch). */
  readonly lastContact: number;
  readonly alarm?: string;
  readonly lastError?: string;
  readonly removed: boolean;
}

/** The camera's current content key in a hardened group, kept current by long poll. */
export class GroupKeyProvider implements KeyProvider {
  private key: EpochKey | undefined;
  private readonly listeners = new Set<(k: EpochKey) => void>();
  private lastContact: number;
  private alarm: string | undefined;
  private lastError: string | undefined;
  private removed = false;
  private readonly o: GroupKeyProviderOptions;
  private readonly now: () => number;

  constructor(o: GroupKeyProviderOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    this.lastContact = this.now();
  }

  /**
   * Gets the first key: a sync with the KMS (enrolling first when needed), or — when the KMS cannot be reached — the
   * key of the epoch the camera already holds (its sealed state), so a camera records through a KMS outage.
   */
  async start(): Promise<EpochKey> {
    try {
      if (!this.o.camera.enrolled) await this.o.camera.enrol();
      const r = await this.o.camera.sync(this.o.group, { waitMs: 0 });
      if (r.status === 'removed') this.removed = true;
      this.lastContact = this.now();
    } catch (e) {
      this.failed(e);
    }
    this.key = await this.o.camera.currentContentKey(this.o.group);
    return this.key;
  }

  current(): EpochKey {
    if (this.key === undefined) throw new Error('GroupKeyProvider: start() first');
    return this.key;
  }

  onChange(listener: (key: EpochKey) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): KeyStatus {
    return {
      group: this.o.group,
      epoch: this.key?.epoch ?? 0,
      kid: this.key !== undefined ? Buffer.from(this.key.kid).toString('hex') : '',
      lastContact: this.lastContact,
      removed: this.removed,
      ...(this.alarm !== undefined ? { alarm: this.alarm } : {}),
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  /** Follows the group until `signal` aborts. Never throws: failures keep the last key and count towards the alarm. */
  async run(signal: AbortSignal): Promise<void> {
    const waitMs = this.o.waitMs ?? 20_000;
    const retryMs = this.o.retryMs ?? 2_000;
    while (!signal.aborted) {
      try {
        const r = await this.o.camera.sync(this.o.group, { waitMs, signal });
        this.lastContact = this.now();
        this.lastError = undefined;
        if (this.alarm !== undefined) {
          this.alarm = undefined;
          this.o.onAlarm?.(false, 'the KMS answers again');
        }
        if (r.status === 'removed') {
          // removed from the group: keep the last key (recording goes on), say so, and ask again later
          this.removed = true;
          this.raise(`camera removed from group ${this.o.group} at epoch ${r.epoch}: recording under the last key`);
          await sleep(retryMs * 5, signal);
          continue;
        }
        this.removed = false;
        if (r.status === 'applied') {
          const k = await this.o.camera.currentContentKey(this.o.group);
          if (this.key === undefined || !Buffer.from(k.kid).equals(Buffer.from(this.key.kid))) {
            this.key = k;
            for (const l of this.listeners) l(k);
          }
        }
      } catch (e) {
        if (signal.aborted) return;
        this.failed(e);
        await sleep(retryMs, signal);
      }
    }
  }

  private failed(e: unknown): void {
    this.lastError = e instanceof Error ? e.message : String(e);
    this.o.onError?.(e);
    const alarmAfter = this.o.alarmAfterMs ?? 60_000;
    const down = this.now() - this.lastContact;
    if (down >= alarmAfter) this.raise(`the KMS has not been reachable for ${Math.round(down / 1000)} s (${this.lastError}): recording under the last key, epoch ${this.key?.epoch ?? '?'}`);
  }

  private raise(detail: string): void {
    if (this.alarm === undefined) this.o.onAlarm?.(true, detail);
    this.alarm = detail;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
