/**
 * CRLs that follow their files: a service reads its CRL files at start and then looks at them every few seconds;
 * when one changes, the new set is judged (src/pki/crl-set.ts: signed by a trusted CA, no rollback) and handed to
 * the service, which applies it to new TLS handshakes, to peers already connected and to its own state (the KMS
 * removes a revoked camera from its groups). A set that fails its check is logged and not used: the previous one
 * stays in force.
 *
 * Expiry: a CRL past its nextUpdate makes every peer fail (fail closed), so the watcher warns well before — once
 * less than a quarter of the CRL's validity, or a day, is left — and logs an error once it has passed, each time
 * with the command that renews it.
 */
import { statSync } from 'node:fs';
import { loadCrlSet } from '../pki/crl-set.js';
import type { CrlInfo, CrlSet } from '../pki/crl-set.js';
import type { X509Certificate } from '../pki/x509.js';
import type { Logger } from './log.js';

export interface CrlWatchOptions {
  readonly files: readonly string[];
  /** The CA certificates a CRL may be signed by. */
  readonly issuers: readonly X509Certificate[];
  readonly log: Logger;
  /** Called with every new set that passed its check (and not for the first one). */
  readonly onChange: (set: CrlSet) => Promise<void> | void;
  /** How often the files are looked at (default 5 s). */
  readonly intervalMs?: number;
  readonly now?: () => number;
}

export interface CrlStatus {
  readonly issuer: string;
  readonly number: string | null;
  readonly thisUpdate: string;
  readonly nextUpdate: string | null;
  readonly revoked: number;
  readonly state: 'current' | 'renew soon' | 'expired';
}

const DAY = 86_400_000;

function fingerprint(files: readonly string[]): string {
  return files
    .map((f) => {
      try {
        const st = statSync(f);
        return `${f}:${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch {
        return `${f}:missing`;
      }
    })
    .join('|');
}

export class CrlWatcher {
  private set: CrlSet;
  private seen: string;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private readonly lastWarned = new Map<string, number>();

  private constructor(
    private readonly o: CrlWatchOptions,
    first: CrlSet,
  ) {
    this.set = first;
    this.seen = fingerprint(o.files);
  }

  /** Reads the files (throws when they do not pass: a service does not start on a bad CRL) and starts watching. */
  static async start(o: CrlWatchOptions): Promise<CrlWatcher> {
    const w = new CrlWatcher(o, await loadCrlSet(o.files, o.issuers));
    w.checkExpiry();
    w.timer = setInterval(() => void w.tick(), o.intervalMs ?? 5_000);
    w.timer.unref();
    return w;
  }

  get current(): CrlSet {
    return this.set;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Looks at the files now (the timer does this every interval). */
  async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const fp = fingerprint(this.o.files);
      if (fp !== this.seen) {
        this.seen = fp;
        let next: CrlSet;
        try {
          next = await loadCrlSet(this.o.files, this.o.issuers, this.set);
        } catch (e) {
          this.o.log.error({ event: 'crl-refused', files: this.o.files, error: (e as Error).message }, 'a changed CRL file was refused; the previous CRLs stay in force');
          return;
        }
        this.set = next;
        this.o.log.info({ event: 'crl-reloaded', crls: next.info.map((i) => ({ issuer: i.issuer, number: i.number?.toString() ?? null, revoked: i.revoked })) }, 'CRLs reloaded');
        await this.o.onChange(next);
      }
      this.checkExpiry();
    } finally {
      this.busy = false;
    }
  }

  private state(i: CrlInfo): CrlStatus['state'] {
    if (i.nextUpdate === undefined) return 'current';
    const now = this.now();
    const left = i.nextUpdate.getTime() - now;
    if (left < 0) return 'expired';
    return left < Math.max(DAY, (i.nextUpdate.getTime() - i.thisUpdate.getTime()) / 4) ? 'renew soon' : 'current';
  }

  private checkExpiry(): void {
    for (const i of this.set.info) {
      const state = this.state(i);
      if (state === 'current') continue;
      const key = `${i.issuer}|${state}`;
      const last = this.lastWarned.get(key);
      if (last !== undefined && this.now() - last < (state === 'expired' ? 10 * 60_000 : 60 * 60_000)) continue;
      this.lastWarned.set(key, this.now());
      const hint = `renew it: keyframe ca crl --ca <CA directory> --out ${this.o.files.join(' ')} (the service reloads it by itself)`;
      if (state === 'expired') this.o.log.error({ event: 'crl-expired', issuer: i.issuer, nextUpdate: i.nextUpdate?.toISOString() }, `the CRL of ${i.issuer} expired at ${i.nextUpdate?.toISOString() ?? '?'}: every peer under it is refused until a fresh CRL is published; ${hint}`);
      else this.o.log.warn({ event: 'crl-expiring', issuer: i.issuer, nextUpdate: i.nextUpdate?.toISOString() }, `the CRL of ${i.issuer} expires at ${i.nextUpdate?.toISOString() ?? '?'}; ${hint}`);
    }
  }

  status(): CrlStatus[] {
    return this.set.info.map((i) => ({ issuer: i.issuer, number: i.number?.toString() ?? null, thisUpdate: i.thisUpdate.toISOString(), nextUpdate: i.nextUpdate?.toISOString() ?? null, revoked: i.revoked, state: this.state(i) }));
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }
}
