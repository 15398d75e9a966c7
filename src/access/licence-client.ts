/**
 * The client side of the KMS's browser listener, for the command line (`keyframe decrypt --licence URL --user NAME`)
 * and tests: log in with an account, ask for a ClearKey licence, log out. TLS 1.3 to a KMS whose certificate chains
 * to the operator CA given; the session cookie and CSRF token are held in memory only.
 */
import { Agent, request } from 'node:https';
import { ErrorCodes, KeyframeError } from '../errors.js';
import { encodeLicenceRequest, parseLicenceResponse } from './clearkey.js';

export interface BrowserSession {
  readonly user: string;
  readonly role: string;
  /** Asks for the keys of `kids`; KID (hex) → key for those granted. Refused entirely: KF_ERR_FORBIDDEN. */
  licence(kids: readonly Uint8Array[]): Promise<Map<string, Buffer>>;
  /** An access token for an NVR. */
  token(audience: string): Promise<string>;
  logout(): Promise<void>;
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

function send(agent: Agent, url: URL, method: string, body: Buffer | undefined, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(body.length) } : {}) }, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e: Error & { code?: string }) => reject(new KeyframeError(/CERT|UNABLE_TO|SELF_SIGNED|ALTNAME/.test(e.code ?? '') ? ErrorCodes.TLS : ErrorCodes.UNAVAILABLE, `the KMS at ${url.origin} could not be reached: ${e.code ?? e.message}`, { cause: e })));
    req.end(body);
  });
}

function refused(a: Answer, what: string): KeyframeError {
  if (a.status === 401 || a.status === 403) return new KeyframeError(ErrorCodes.FORBIDDEN, `${what}: refused`);
  if (a.status === 429) return new KeyframeError(ErrorCodes.LIMIT, `${what}: too many failed logins; try again later`);
  let message = a.body.toString('utf8').slice(0, 300);
  try {
    message = (JSON.parse(message) as { error?: string }).error ?? message;
  } catch {
    // not JSON: the text as it is
  }
  return new KeyframeError(a.status === 400 ? ErrorCodes.INPUT : ErrorCodes.UNAVAILABLE, `${what}: the KMS answered ${a.status}: ${message}`);
}

/** Logs in at the KMS's browser listener `url` (https://host:port) with an account. */
export async function openBrowserSession(url: string, ca: readonly string[], user: string, password: string, totp?: string): Promise<BrowserSession> {
  const base = new URL(url);
  if (base.protocol !== 'https:') throw new KeyframeError(ErrorCodes.INPUT, `the licence URL must be https: ${url}`);
  const agent = new Agent({ keepAlive: true, maxSockets: 2, ca: [...ca], minVersion: 'TLSv1.3' });
  const at = (path: string): URL => new URL(path, base);
  const login = await send(agent, at('/v1/login'), 'POST', Buffer.from(JSON.stringify({ user, password, ...(totp !== undefined ? { totp } : {}) })), { 'content-type': 'application/json' });
  if (login.status !== 200) {
    agent.destroy();
    throw refused(login, `login as ${user}`);
  }
  const setCookie = ([] as string[]).concat(login.headers['set-cookie'] ?? []).find((c) => c.startsWith('__Host-kf_session='));
  const cookie = setCookie?.split(';')[0];
  const s = JSON.parse(login.body.toString('utf8')) as { user: string; role: string; csrf: string };
  if (cookie === undefined) {
    agent.destroy();
    throw new KeyframeError(ErrorCodes.UNAVAILABLE, 'the KMS answered the login without a session cookie');
  }
  const headers = { cookie, 'x-csrf-token': s.csrf };
  return {
    user: s.user,
    role: s.role,
    licence: async (kids) => {
      const a = await send(agent, at('/v1/licence'), 'POST', encodeLicenceRequest(kids), headers);
      if (a.status !== 200) throw refused(a, 'licence');
      return parseLicenceResponse(a.body.toString('utf8'));
    },
    token: async (audience) => {
      const a = await send(agent, at('/v1/token'), 'POST', Buffer.from(JSON.stringify({ audience })), { ...headers, 'content-type': 'application/json' });
      if (a.status !== 200) throw refused(a, 'access token');
      return (JSON.parse(a.body.toString('utf8')) as { token: string }).token;
    },
    logout: async () => {
      try {
        await send(agent, at('/v1/logout'), 'POST', Buffer.alloc(0), headers);
      } finally {
        agent.destroy();
      }
    },
  };
}
