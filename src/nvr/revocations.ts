/**
 * The NVR's copy of the KMS's list of ended login sessions (access/revocation-list.ts): fetched every
 * `intervalMs` from the KMS's browser listener over TLS (the server certificate checked against the operator CA),
 * verified with the KMS's public key, and kept while fresh. The viewers' listener asks `problem(sid)` for every
 * token it takes: a session on the list is refused, and so is every token while the list is stale (not renewed for
 * `staleMs`: the NVR can no longer tell, so it fails closed). A list older than the last one taken is refused (no
 * rollback to a list without a newer logout). `onChange` hears of newly ended sessions and of the list going stale
 * or fresh, so that open live sockets of those sessions are closed.
 */
import { request } from 'node:https';
import type { KeyObject } from 'node:crypto';
import { verifyRevocationList } from '../access/revocation-list.js';
import type { Logger } from '../server/log.js';

export interface RevocationFeedOptions {
  /** The KMS's GET /v1/revoked. */
  readonly url: string;
  /** PEM of the operator CA (the KMS's browser listener's certificate is checked against it). */
  readonly ca: string;
  readonly publicKey: KeyObject;
  readonly issuer: string;
  readonly log: Logger;
  readonly intervalMs?: number;
  readonly staleMs?: number;
  readonly onChange?: (change: { readonly ended: readonly string[]; readonly stale: boolean }) => void;
}

export type RevocationProblem = 'session ended' | 'revocation list stale';

const MAX_BODY = 8 * 1024 * 1024;

export class RevocationFeed {
  private sids = new Set<string>();
  private iat = 0;
  private freshUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private wasStale = true;
  private readonly interval: number;
  private readonly staleMs: number;

  constructor(private readonly o: RevocationFeedOptions) {
    this.interval = o.intervalMs ?? 2000;
    this.staleMs = o.staleMs ?? 15_000;
  }

  /** Why a token of session `sid` must be refused now, or undefined. */
  problem(sid: string, now = Date.now()): RevocationProblem | undefined {
    if (now > this.freshUntil) return 'revocation list stale';
    return this.sids.has(sid) ? 'session ended' : undefined;
  }

  /** Fetches once (resolves true when a list was taken), then every interval until `stop`. */
  async start(): Promise<boolean> {
    const ok = await this.poll();
    const tick = (): void => {
      void this.poll().finally(() => {
        if (this.timer !== undefined) this.timer = setTimeout(tick, this.interval);
      });
    };
    this.timer = setTimeout(tick, this.interval);
    return ok;
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One fetch; false (logged) when no list could be taken. Also reports a list that went stale. */
  async poll(): Promise<boolean> {
    let taken = false;
    try {
      const body = await this.fetch();
      const list = await verifyRevocationList(body, this.o.publicKey, { issuer: this.o.issuer, maxAgeSeconds: Math.max(5, Math.ceil(this.staleMs / 1000)) });
      if (list.iat < this.iat) throw new Error(`a list made at ${list.iat} after one made at ${this.iat}: refused (rolled back?)`);
      const before = this.sids;
      this.sids = new Set(list.sids);
      this.iat = list.iat;
      // fresh from when the KMS made it, not from when it arrived
      this.freshUntil = list.iat * 1000 + this.staleMs;
      const ended = list.sids.filter((s) => !before.has(s));
      taken = true;
      if (ended.length > 0 || this.wasStale) this.o.onChange?.({ ended, stale: false });
      this.wasStale = false;
    } catch (e) {
      const reason = (e as { reason?: string }).reason ?? (e as Error).message;
      this.o.log.warn({ event: 'revocation-list-failed', url: this.o.url, reason }, 'KMS revocation list not taken');
    }
    if (!taken && !this.wasStale && Date.now() > this.freshUntil) {
      this.wasStale = true;
      this.o.log.error({ event: 'revocation-list-stale', url: this.o.url }, 'KMS revocation list stale: every access token is refused until it is renewed');
      this.o.onChange?.({ ended: [], stale: true });
    }
    return taken;
  }

  private fetch(): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request(this.o.url, { method: 'GET', ca: this.o.ca, minVersion: 'TLSv1.3', timeout: 5000, headers: { accept: 'application/jwt' } }, (res) => {
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n > MAX_BODY) req.destroy(new Error(`answer larger than ${MAX_BODY} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`HTTP ${res.statusCode ?? '?'}`))));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
      req.on('error', reject);
      req.end();
    });
  }
}
