/**
 * The KMS's browser-facing HTTPS listener (issue 13 §2–§3): TLS 1.3 with the KMS's server certificate (from the
 * operator CA) and no client certificate, beside the mutual-TLS port that cameras and certificate-holding
 * administrators use. Built on the same server kit (limits, timeouts, connection cap).
 *
 *   POST /v1/login     {user, password, totp?} → sets the session cookie; answers {user, role, csrf, expiresAt}
 *   GET  /v1/session   the session's user, role and CSRF token
 *   POST /v1/logout    ends the session
 *   POST /v1/token     {audience} → a short-lived access token for that NVR (ES256, checked offline)
 *   POST /v1/licence   a W3C ClearKey licence request → a JWK Set of exactly the keys the grants allow
 *   GET  /v1/revoked   the signed list of sessions ended recently (no authentication: NVRs fetch it to stop
 *                      honouring those sessions' tokens at once; access/revocation-list.ts)
 *   /v1/admin/…        the administration API of the mutual-TLS port (status, cameras, groups, users, grants,
 *                      audit), for sessions of accounts with the admin role (the auditor role: the audit log only);
 *                      changes carry the CSRF token and are audited as admin:user:NAME
 *
 * The session cookie is `__Host-kf_session`: HttpOnly, Secure, SameSite=Strict, Path=/. Every POST but the login
 * carries the session's CSRF token in `X-CSRF-Token` (compared in constant time), and a request whose Origin is
 * neither this listener nor a configured viewer origin is refused. Any authentication failure is one answer,
 * 401 {"error":"authentication failed"}; a licence with no key allowed is 403 {"error":"forbidden"}.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TlsOptions } from 'node:tls';
import { InputError } from '../errors.js';
import { createSecureServer } from '../server/kit.js';
import type { SecureServer } from '../server/kit.js';
import type { ServerLimits } from '../server/limits.js';
import type { Logger } from '../server/log.js';
import type { AccessService, Session } from './access.js';
import { clientContext } from './routes/accounts.js';
import { parseLicenceRequest, licenceResponse } from '../access/clearkey.js';
import type { KmsHttpOptions } from './http.js';
import { adminRoutes } from './routes/admin.js';
import { accountRoutes } from './routes/accounts.js';
import { auditRoutes } from './routes/audit.js';

export const SESSION_COOKIE = '__Host-kf_session';

export interface BrowserListenerOptions {
  readonly access: AccessService;
  /** TLS 1.3, server certificate only (no client certificate asked for). */
  readonly tls: TlsOptions;
  readonly limits: ServerLimits;
  readonly log: Logger;
  /** Origins of the viewer pages allowed to call this listener with credentials (CORS), e.g. the NVR's. */
  readonly origins: readonly string[];
  /** The administration API to offer admin-role sessions (the mutual-TLS port's routes); absent: none here. */
  readonly adminApi?: Pick<KmsHttpOptions, 'service' | 'audit' | 'crlStatus'>;
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

const AUTH_FAILED = { error: 'authentication failed' } as const;

function jsonBody(req: FastifyRequest): Record<string, unknown> {
  const b = req.body;
  if (!Buffer.isBuffer(b) || b.length === 0) throw new InputError('the body must be a JSON object');
  let v: unknown;
  try {
    v = JSON.parse(b.toString('utf8'));
  } catch {
    throw new InputError('the body is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InputError('the body must be a JSON object');
  return v as Record<string, unknown>;
}

export function buildBrowserListener(o: BrowserListenerOptions): SecureServer {
  const server = createSecureServer({ name: 'kms-browser', tls: o.tls, limits: o.limits, log: o.log, isAuthenticated: () => false });
  const app = server.app;
  const access = o.access;
  // every body is read as bytes: ClearKey requests come as raw EME messages (Shaka) or as JSON (dash.js)
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 64 * 1024 }, (_req, body, done) => done(null, body));

  const allowedOrigin = (req: FastifyRequest): string | undefined => {
    const origin = req.headers.origin;
    if (origin === undefined) return undefined;
    return o.origins.includes(origin) || origin === `https://${req.headers.host ?? ''}` ? origin : 'refused';
  };
  app.addHook('onRequest', async (req, reply) => {
    const origin = allowedOrigin(req);
    if (origin === 'refused') return reply.code(403).send({ error: 'forbidden' });
    if (origin !== undefined) {
      void reply.header('access-control-allow-origin', origin).header('access-control-allow-credentials', 'true').header('vary', 'Origin');
      if (req.method === 'OPTIONS') {
        return reply.code(204).header('access-control-allow-methods', 'GET, POST, PUT, DELETE').header('access-control-allow-headers', 'content-type, x-csrf-token').header('access-control-max-age', '600').send();
      }
    }
    void reply.header('cache-control', 'no-store');
    return undefined;
  });

  const session = (req: FastifyRequest, reply: FastifyReply, csrf: boolean): Session | undefined => {
    const s = access.session(readCookie(req.headers.cookie, SESSION_COOKIE));
    const token = req.headers['x-csrf-token'];
    if (s === undefined || (csrf && !access.csrfValid(s, typeof token === 'string' ? token : undefined))) {
      void reply.code(401).send(AUTH_FAILED);
      return undefined;
    }
    return s;
  };

  app.post('/v1/login', async (req, reply) => {
    const b = jsonBody(req);
    try {
      const r = await access.login({ user: b['user'], password: b['password'], totp: b['totp'] }, clientContext(req));
      const maxAge = Math.max(1, Math.floor((r.session.expiresAt - Date.now()) / 1000));
      void reply.header('set-cookie', `${SESSION_COOKIE}=${r.cookie}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=${maxAge}`);
      return { user: r.session.user, role: r.session.role, csrf: r.session.csrf, expiresAt: new Date(r.session.expiresAt).toISOString() };
    } catch (e) {
      if ((e as { name?: string }).name === 'AuthenticationFailed') return reply.code(401).send(AUTH_FAILED);
      throw e;
    }
  });
  app.get('/v1/session', async (req, reply) => {
    const s = session(req, reply, false);
    if (s === undefined) return reply;
    return { user: s.user, role: s.role, csrf: s.csrf, expiresAt: new Date(s.expiresAt).toISOString() };
  });
  app.post('/v1/logout', async (req, reply) => {
    const s = session(req, reply, true);
    if (s === undefined) return reply;
    access.logout(s, clientContext(req));
    void reply.header('set-cookie', `${SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0`);
    return { ok: true };
  });
  // the signed list of ended sessions, for NVRs (access/revocation-list.ts): public, like the KMS's certificate
  app.get('/v1/revoked', async (_req, reply) => reply.type('application/jwt').send(await access.revocationList()));
  app.post('/v1/token', async (req, reply) => {
    const s = session(req, reply, true);
    if (s === undefined) return reply;
    const audience = jsonBody(req)['audience'];
    if (typeof audience !== 'string') throw new InputError('audience (the NVR\'s name) is required');
    const t = await access.accessToken(s, audience, clientContext(req));
    return { token: t.token, expiresAt: new Date(t.expiresAt).toISOString() };
  });
  app.post('/v1/licence', async (req, reply) => {
    const s = session(req, reply, true);
    if (s === undefined) return reply;
    const body = req.body;
    const request = parseLicenceRequest(Buffer.isBuffer(body) ? body : Buffer.alloc(0));
    try {
      const answer = await access.licence(s, request.kids, clientContext(req));
      return reply.type('application/json').send(licenceResponse(answer.keys, request.type));
    } catch (e) {
      const name = (e as { name?: string }).name;
      if (name === 'LicenceDenied') return reply.code(403).send({ error: 'forbidden' });
      if (name === 'AuthenticationFailed') return reply.code(401).send(AUTH_FAILED);
      throw e;
    }
  });
  if (o.adminApi !== undefined) adminApiForSessions(server, o.adminApi, access);
  return server;
}

/**
 * The administration routes for browser sessions, in their own context (JSON bodies, unlike the licence route's
 * raw ones): the session's account must have the admin role (the auditor role reads the audit log); every change
 * carries the session's CSRF token. The routes see the account as an administrator peer named user:NAME, so each
 * change is audited as admin:user:NAME — apart from certificate administrators (admin:CN).
 */
function adminApiForSessions(server: SecureServer, api: NonNullable<BrowserListenerOptions['adminApi']>, access: AccessService): void {
  server.app.decorateRequest('peer', undefined);
  void server.app.register(async (child) => {
    child.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: 64 * 1024 }, child.getDefaultJsonParser('error', 'error'));
    child.addHook('onRequest', async (req, reply) => {
      if (!req.url.startsWith('/v1/admin/')) return undefined;
      const s = access.session(readCookie(req.headers.cookie, SESSION_COOKIE));
      const token = req.headers['x-csrf-token'];
      if (s === undefined || (req.method !== 'GET' && !access.csrfValid(s, typeof token === 'string' ? token : undefined))) return reply.code(401).send(AUTH_FAILED);
      const auditor = s.role === 'auditor' && req.method === 'GET' && req.url.startsWith('/v1/admin/audit');
      if (s.role !== 'admin' && !auditor) return reply.code(403).send({ error: 'forbidden' });
      req.peer = { kind: 'admin', name: `user:${s.user}`, fingerprint: '' };
      return undefined;
    });
    const scoped = { app: child, connections: server.connections } as unknown as SecureServer;
    adminRoutes(scoped, api);
    accountRoutes(scoped, access);
    auditRoutes(scoped, api.audit);
  });
}
