/**
 * The viewer's client of its two servers:
 *   - the KMS's browser listener (its origin from /config.json): login, session, logout, access tokens, ClearKey
 *     licences. Credentials are its session cookie (HttpOnly, SameSite=Strict); every POST but the login carries
 *     the session's CSRF token.
 *   - the NVR's viewers' listener (this page's origin): the API under /v1/, with a short-lived access token the KMS
 *     issued for this NVR (`Authorization: Bearer`), renewed before it expires.
 * Passwords and tokens are kept in memory only, never in storage.
 */

export interface AppConfig {
  /** The KMS's browser listener, e.g. https://127.0.0.1:8445. */
  readonly kms: string;
  /** This NVR's name: the audience of its access tokens. */
  readonly audience: string;
}

export interface SessionInfo {
  readonly user: string;
  readonly role: string;
  readonly csrf: string;
  readonly expiresAt: string;
}

/** One entry of a token's access list (access/acl.ts): rights on cameras over recorded time. */
export interface AclEntry {
  readonly cams: readonly string[];
  readonly rights: readonly string[];
  readonly from: number;
  readonly to: number;
}

/** The session has ended (logout, expiry, disabled account, revocation): log in again. */
export class SessionEnded extends Error {
  override readonly name = 'SessionEnded';
}

/** A request the server refused or could not answer: the status and the server's message. */
export class Refused extends Error {
  override readonly name = 'Refused';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function errorText(r: Response): Promise<string> {
  try {
    const j = (await r.json()) as { error?: unknown };
    if (typeof j.error === 'string') return j.error;
  } catch {
    // not JSON
  }
  return `${r.status} ${r.statusText}`;
}

function claimsOf(token: string): { exp: number; acl: AclEntry[] } {
  const part = token.split('.')[1] ?? '';
  const json = atob(part.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (part.length % 4)) % 4));
  const c = JSON.parse(json) as { exp?: unknown; acl?: unknown };
  return { exp: typeof c.exp === 'number' ? c.exp : 0, acl: Array.isArray(c.acl) ? (c.acl as AclEntry[]) : [] };
}

export class Api {
  private info: SessionInfo | undefined;
  private token: { value: string; exp: number; acl: AclEntry[] } | undefined;
  private pending: Promise<string> | undefined;
  /** Called once whenever the session is found to have ended. */
  onSessionEnded: () => void = () => undefined;

  constructor(readonly config: AppConfig) {}

  static async load(): Promise<Api> {
    const r = await fetch('/config.json', { cache: 'no-cache' });
    if (!r.ok) throw new Error(`the viewer's configuration could not be read (${r.status})`);
    return new Api((await r.json()) as AppConfig);
  }

  get session(): SessionInfo | undefined {
    return this.info;
  }

  /** The access list of the current token (empty before the first token). */
  get acl(): readonly AclEntry[] {
    return this.token?.acl ?? [];
  }

  /**
   * The recorded time the current token gives `right` on `serial` over (the union's outer bounds), or undefined.
   * A window ends when the token was issued: newer video needs a newer token (they are renewed every few minutes).
   */
  window(serial: string, right: string): { from: number; to: number } | undefined {
    const es = this.acl.filter((e) => e.rights.includes(right) && e.cams.includes(serial));
    if (es.length === 0) return undefined;
    return { from: Math.min(...es.map((e) => e.from)), to: Math.max(...es.map((e) => e.to)) };
  }

  /** Whether the current token gives `right` on `serial` at all (over some recorded time). */
  can(serial: string, right: string): boolean {
    return this.acl.some((e) => e.rights.includes(right) && e.cams.includes(serial));
  }

  private async kms(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (init.method === 'POST' && this.info !== undefined) headers.set('x-csrf-token', this.info.csrf);
    return fetch(new URL(path, this.config.kms), { ...init, headers, credentials: 'include', cache: 'no-store' });
  }

  private ended(): never {
    const was = this.info !== undefined;
    this.info = undefined;
    this.token = undefined;
    if (was) this.onSessionEnded();
    throw new SessionEnded('your session has ended: log in again');
  }

  /** The session this browser already has at the KMS, if any. */
  async resume(): Promise<SessionInfo | undefined> {
    const r = await this.kms('/v1/session');
    if (r.status === 401) return undefined;
    if (!r.ok) throw new Refused(r.status, await errorText(r));
    this.info = (await r.json()) as SessionInfo;
    await this.accessToken();
    return this.info;
  }

  async login(user: string, password: string, totp?: string): Promise<SessionInfo> {
    const body = JSON.stringify({ user, password, ...(totp !== undefined && totp !== '' ? { totp } : {}) });
    const r = await this.kms('/v1/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    if (r.status === 401) throw new Refused(401, 'The user name, password or code is not right, or the account is disabled.');
    if (r.status === 429) throw new Refused(429, 'Too many attempts: wait a minute before trying again.');
    if (!r.ok) throw new Refused(r.status, await errorText(r));
    this.info = (await r.json()) as SessionInfo;
    this.token = undefined;
    await this.accessToken();
    return this.info;
  }

  async logout(): Promise<void> {
    if (this.info !== undefined) await this.kms('/v1/logout', { method: 'POST' }).catch(() => undefined);
    this.info = undefined;
    this.token = undefined;
  }

  /** An access token for this NVR with at least 30 s left, asked for anew when needed (one request at a time). */
  async accessToken(): Promise<string> {
    if (this.token !== undefined && this.token.exp * 1000 - Date.now() > 30_000) return this.token.value;
    this.pending ??= (async () => {
      try {
        const r = await this.kms('/v1/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ audience: this.config.audience }) });
        if (r.status === 401) this.ended();
        if (!r.ok) throw new Refused(r.status, await errorText(r));
        const t = ((await r.json()) as { token: string }).token;
        this.token = { value: t, ...claimsOf(t) };
        return t;
      } finally {
        this.pending = undefined;
      }
    })();
    return this.pending;
  }

  /** A new access token now (its windows end now, not when the last one was issued). */
  async refresh(): Promise<void> {
    this.token = undefined;
    await this.accessToken();
  }

  /** A request to the NVR's API with the access token; a 401 gets one new token, then ends the session. */
  async nvr(path: string, init: RequestInit = {}): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${await this.accessToken()}`);
      const r = await fetch(path, { ...init, headers, cache: 'no-store' });
      if (r.status !== 401) return r;
      if (attempt > 0) this.ended();
      this.token = undefined;
    }
  }

  async get<T>(path: string): Promise<T> {
    const r = await this.nvr(path);
    if (!r.ok) throw new Refused(r.status, r.status === 403 ? 'Your grants do not allow this.' : await errorText(r));
    return (await r.json()) as T;
  }

  async post<T>(path: string, body: unknown, method = 'POST'): Promise<T> {
    const r = await this.nvr(path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!r.ok) throw new Refused(r.status, r.status === 403 ? 'Your grants do not allow this.' : await errorText(r));
    return (await r.json()) as T;
  }

  /** The KMS's administration API for this session (admin role; auditor: the audit log), JSON in and out. */
  async admin<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
    // POST, PUT and DELETE all carry the CSRF token
    const headers = new Headers(body !== undefined ? { 'content-type': 'application/json' } : {});
    if (method !== 'GET' && this.info !== undefined) headers.set('x-csrf-token', this.info.csrf);
    const r = await fetch(new URL(path, this.config.kms), { method, headers, credentials: 'include', cache: 'no-store', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    if (r.status === 401) this.ended();
    if (r.status === 403) throw new Refused(403, 'Your role does not allow this.');
    if (!r.ok) throw new Refused(r.status, await errorText(r));
    return (await r.json()) as T;
  }

  /**
   * A W3C ClearKey licence for an EME message: the KMS answers the keys the session's grants allow, and audits the
   * decision. 403: no grant covers these keys.
   */
  async licence(message: ArrayBuffer): Promise<ArrayBuffer> {
    const r = await this.kms('/v1/licence', { method: 'POST', body: message });
    if (r.status === 401) this.ended();
    if (r.status === 403) throw new Refused(403, 'No key: your grants do not cover this video (camera, time or right), or they have expired.');
    if (!r.ok) throw new Refused(r.status, await errorText(r));
    return r.arrayBuffer();
  }

  /** The live socket of a camera (live-ws.ts): the token travels as a subprotocol. */
  async liveSocket(serial: string): Promise<WebSocket> {
    const token = await this.accessToken();
    const ws = new WebSocket(`wss://${location.host}/v1/cameras/${encodeURIComponent(serial)}/live`, ['keyframe-live', `bearer.${token}`]);
    ws.binaryType = 'arraybuffer';
    return ws;
  }
}
