/**
 * Issue 13 §2–§4 at a real KMS (TLS sockets, SQLite, key store): accounts, logins, sessions, grants and ClearKey
 * licences over the browser listener, every decision in the audit chain.
 *
 * The grants matrix: one camera's KIDs of three epochs; users of each role with windows before, across and after
 * an epoch, covering one, or "the last day" — the licence returns exactly the allowed keys, and each decision is
 * an audit entry naming the KIDs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyLog } from '../../src/audit/chain.js';
import type { Checkpoint } from '../../src/audit/chain.js';
import { openBrowserSession } from '../../src/access/licence-client.js';
import { verifyAccessToken } from '../../src/access/token.js';
import { base32Decode, totp } from '../../src/access/totp.js';
import { ErrorCodes } from '../../src/errors.js';
import type { KmsClient } from '../../src/kms/client.js';
import { loadKmsConfig } from '../../src/kms/config.js';
import { startKms } from '../../src/kms/server.js';
import type { RunningKms } from '../../src/kms/server.js';
import { publicKeyObject } from '../../src/pki/verify.js';
import { parseCertificates, toPem } from '../../src/pki/pem.js';
import type { X509Certificate } from '../../src/pki/x509.js';
import { makeKmsSite } from './_setup.js';
import type { KmsSite } from './_setup.js';

let site: KmsSite;
let kms: RunningKms;
let admin: KmsClient;
let ca: string[];
/** CAM-A's KIDs and keys of epochs 1, 2, 3 (hex). */
const kids: string[] = [];
const keys = new Map<string, string>();
/** Before each epoch began and after (bounds of the bundle's issuedAt). */
const before: number[] = [];
const after: number[] = [];
const PASSWORD = 'correct horse battery staple';
const HOUR = 3600_000;

async function startIt(): Promise<void> {
  kms = await startKms(loadKmsConfig(site.configPath), { createDatabase: kms === undefined });
}

async function login(user: string, password = PASSWORD, code?: string) {
  return openBrowserSession(kms.browserUrl as string, ca, user, password, code);
}

async function licence(user: string, ask: readonly string[] = kids): Promise<string[] | 'refused'> {
  const s = await login(user);
  try {
    const got = await s.licence(ask.map((k) => Buffer.from(k, 'hex')));
    for (const [kid, key] of got) expect(key.toString('hex')).toBe(keys.get(kid));
    return [...got.keys()].map((k) => `e${kids.indexOf(k) + 1}`).sort();
  } catch (e) {
    expect(e).toMatchObject({ code: ErrorCodes.FORBIDDEN, message: 'licence: refused' });
    return 'refused';
  } finally {
    await s.logout();
  }
}

type AuditEntry = { seq: number; entry: string; leaf: string; prev: string; hash: string };
async function auditLog(): Promise<{ entries: AuditEntry[]; checkpoints: Checkpoint[]; origin: string; chain: string[] }> {
  return admin.json('GET', '/v1/admin/audit?from=1&limit=10000');
}

beforeAll(async () => {
  site = await makeKmsSite(['CAM-A', 'CAM-B']);
  site.writeConfig(site.port, { batchWindow: '50ms', browser: { host: '127.0.0.1', port: 0 }, nvrs: ['nvr-1'], liveGrace: '0s' });
  ca = [toPem(site.ca.certs.operator.rawData, 'CERTIFICATE')];
  await startIt();
  admin = await site.admin(kms.url);
  const cams = await Promise.all(['CAM-A', 'CAM-B'].map((s) => site.camera(kms.url, s)));
  for (const c of cams) await c.camera.enrol();
  for (let e = 1; e <= 3; e++) {
    before.push(Date.now());
    if (e === 1) await admin.json('POST', '/v1/admin/groups', { id: 'yard', members: ['CAM-A', 'CAM-B'] });
    else await admin.json('POST', '/v1/admin/groups/yard/refresh', {});
    after.push(Date.now());
    await cams[0]?.camera.sync('yard');
    const k = await (cams[0] as (typeof cams)[0]).camera.currentContentKey('yard');
    kids.push(Buffer.from(k.kid).toString('hex'));
    keys.set(Buffer.from(k.kid).toString('hex'), Buffer.from(k.key).toString('hex'));
    await new Promise((r) => setTimeout(r, 30));
  }
  for (const c of cams) await c.close();
  for (const [name, role] of [['olga', 'operator'], ['ivan', 'investigator'], ['vera', 'viewer'], ['aldo', 'auditor'], ['nina', 'investigator'], ['adam', 'admin'], ['rita', 'investigator'], ['lars', 'investigator']] as const) {
    await admin.json('POST', '/v1/admin/users', { name, role, password: PASSWORD });
  }
}, 240_000);

afterAll(async () => {
  admin?.close();
  await kms?.close();
});

describe('grants and licences', () => {
  it('the grants matrix: exactly the keys each role and window allow, each decision audited with its KIDs', async () => {
    const now = Date.now();
    const grant = (body: Record<string, unknown>): Promise<{ id: number }> => admin.json('POST', '/v1/admin/grants', body);
    // operator: live on the group, playback covering epoch 2 exactly (from before it began to after the next began)
    await grant({ user: 'olga', group: 'yard', rights: ['live', 'playback'], from: before[1], to: after[2] });
    // investigator: playback of the last day on the camera → every epoch (the current one up to now)
    await grant({ user: 'ivan', camera: 'CAM-A', rights: ['playback', 'export'], lastMs: 24 * HOUR, caseId: 'CASE-1' });
    // viewer: live only → the epoch in use
    await grant({ user: 'vera', camera: 'CAM-A', rights: ['live'], lastMs: HOUR });
    // auditor: a playback grant its role does not allow → nothing
    await grant({ user: 'aldo', camera: 'CAM-A', rights: ['playback'], lastMs: 24 * HOUR });
    // investigators with windows before, across and after the epochs → nothing
    await grant({ user: 'nina', camera: 'CAM-A', rights: ['playback'], from: now - 48 * HOUR, to: (before[0] as number) - 1 });
    await grant({ user: 'rita', camera: 'CAM-A', rights: ['playback'], from: (after[0] as number) + 1, to: (before[2] as number) - 1 });
    await grant({ user: 'lars', camera: 'CAM-A', rights: ['playback'], from: (after[2] as number) + 1, to: now + HOUR });
    // an investigator granted another camera gets nothing of CAM-A, whatever KIDs it asks for
    await grant({ user: 'lars', camera: 'CAM-B', rights: ['playback'], lastMs: 24 * HOUR });
    // a grant for the whole viewer role, not yet valid
    await grant({ role: 'viewer', group: 'yard', rights: ['live'], lastMs: HOUR, validFrom: now + HOUR });

    expect(await licence('olga')).toEqual(['e2', 'e3']);
    expect(await licence('ivan')).toEqual(['e1', 'e2', 'e3']);
    expect(await licence('vera')).toEqual(['e3']);
    expect(await licence('aldo')).toBe('refused');
    expect(await licence('nina')).toBe('refused');
    expect(await licence('rita')).toBe('refused');
    expect(await licence('lars')).toBe('refused');
    expect(await licence('adam')).toBe('refused');
    // an unknown KID beside a granted one: only the granted key
    expect(await licence('vera', ['00'.repeat(16), kids[2] as string])).toEqual(['e3']);

    const log = await auditLog();
    const decisions = log.entries
      .map((r) => JSON.parse(r.entry) as { action: string; actor: string; detail: { keys?: { kid: string; decision: string; camera?: string; epoch?: number; grant?: number; right?: string }[] } })
      .filter((e) => e.action === 'licence' || e.action === 'licence-denied');
    expect(decisions.map((d) => `${d.actor} ${d.action} ${(d.detail.keys ?? []).map((k) => `${k.epoch ?? '?'}:${k.decision}`).join(',')}`)).toEqual([
      'user:olga licence 1:denied,2:released,3:released',
      'user:ivan licence 1:released,2:released,3:released',
      'user:vera licence 1:denied,2:denied,3:released',
      'user:aldo licence-denied 1:denied,2:denied,3:denied',
      'user:nina licence-denied 1:denied,2:denied,3:denied',
      'user:rita licence-denied 1:denied,2:denied,3:denied',
      'user:lars licence-denied 1:denied,2:denied,3:denied',
      'user:adam licence-denied 1:denied,2:denied,3:denied',
      'user:vera licence ?:denied,3:released',
    ]);
    const olga = decisions[0]?.detail.keys?.[1];
    expect(olga).toMatchObject({ kid: kids[1], camera: 'CAM-A', epoch: 2, right: 'playback' });
    expect(decisions[0]?.detail.keys?.[2]).toMatchObject({ right: 'live' });
    // the whole log verifies against the KMS's key, with a fresh checkpoint
    await admin.json('POST', '/v1/admin/audit/checkpoint', {});
    const signed = await auditLog();
    const kmsCert = parseCertificates(Buffer.from(signed.chain.join('')), 'chain')[0] as X509Certificate;
    expect(verifyLog(signed.entries, signed.checkpoints, publicKeyObject(kmsCert), signed.origin)).toMatchObject({ ok: true, uncovered: 0 });
  }, 120_000);

  it('a grant revoked, a user disabled, a session logged out or whose password changed: no key at once', async () => {
    const s = await login('ivan');
    expect((await s.licence([Buffer.from(kids[0] as string, 'hex')])).size).toBe(1);
    const ivanGrant = (await admin.json<{ grants: { id: number; principal: { name?: string } }[] }>('GET', '/v1/admin/grants')).grants.find((g) => g.principal.name === 'ivan');
    await admin.json('DELETE', `/v1/admin/grants/${ivanGrant?.id}`);
    await expect(s.licence([Buffer.from(kids[0] as string, 'hex')])).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
    await s.logout();

    const v = await login('vera');
    await admin.json('PUT', '/v1/admin/users/vera/disabled', { disabled: true });
    await expect(v.licence([Buffer.from(kids[2] as string, 'hex')])).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
    await expect(login('vera')).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN, message: 'login as vera: refused' });
    await admin.json('PUT', '/v1/admin/users/vera/disabled', { disabled: false });
    // the old session stays ended; a new login works
    await expect(v.licence([Buffer.from(kids[2] as string, 'hex')])).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
    const v2 = await login('vera');
    expect((await v2.licence([Buffer.from(kids[2] as string, 'hex')])).size).toBe(1);
    await admin.json('PUT', '/v1/admin/users/vera/password', { password: 'another long passphrase' });
    await expect(v2.licence([Buffer.from(kids[2] as string, 'hex')])).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
    await expect(login('vera')).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
    const v3 = await login('vera', 'another long passphrase');
    await v3.logout();
    await expect(v3.licence([Buffer.from(kids[2] as string, 'hex')])).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
  }, 120_000);
});

describe('logins, sessions, CSRF, tokens', () => {
  async function raw(path: string, init: { method: string; body?: string; headers?: Record<string, string> }): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
    const { request, Agent } = await import('node:https');
    const agent = new Agent({ ca });
    return new Promise((resolve, reject) => {
      const req = request(new URL(path, kms.browserUrl), { method: init.method, agent, headers: init.headers ?? {} }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
      });
      req.on('error', reject);
      req.end(init.body);
    });
  }

  it('the session cookie is __Host-, HttpOnly, Secure, SameSite=Strict; a request without the CSRF token, or from another origin, is refused', async () => {
    const r = await raw('/v1/login', { method: 'POST', body: JSON.stringify({ user: 'olga', password: PASSWORD }), headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(200);
    const cookie = String(([] as string[]).concat(r.headers['set-cookie'] ?? [])[0]);
    expect(cookie).toMatch(/^__Host-kf_session=[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}; Path=\/; Secure; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    const { csrf } = JSON.parse(r.body) as { csrf: string };
    const c = cookie.split(';')[0] as string;
    const ask = JSON.stringify({ kids: [Buffer.from(kids[2] as string, 'hex').toString('base64url')], type: 'temporary' });
    // no CSRF token, a wrong one: refused with the one generic answer
    expect(await raw('/v1/licence', { method: 'POST', body: ask, headers: { cookie: c } })).toMatchObject({ status: 401, body: '{"error":"authentication failed"}' });
    expect(await raw('/v1/licence', { method: 'POST', body: ask, headers: { cookie: c, 'x-csrf-token': csrf.slice(0, -1) + (csrf.endsWith('A') ? 'B' : 'A') } })).toMatchObject({ status: 401 });
    // a cross-site origin: refused before anything else
    expect(await raw('/v1/licence', { method: 'POST', body: ask, headers: { cookie: c, 'x-csrf-token': csrf, origin: 'https://evil.example' } })).toMatchObject({ status: 403 });
    // the raw EME message (Shaka: no content type) and application/json (dash.js) both answered with a JWK Set
    for (const headers of [{}, { 'content-type': 'application/json' }]) {
      const ok = await raw('/v1/licence', { method: 'POST', body: ask, headers: { cookie: c, 'x-csrf-token': csrf, ...headers } });
      expect(ok.status).toBe(200);
      expect(JSON.parse(ok.body)).toEqual({ keys: [{ kty: 'oct', k: Buffer.from(keys.get(kids[2] as string) as string, 'hex').toString('base64url'), kid: Buffer.from(kids[2] as string, 'hex').toString('base64url') }], type: 'temporary' });
    }
    // a forged cookie (right id, wrong secret): no session
    const forged = c.replace(/\.[A-Za-z0-9_-]{43}$/, `.${'A'.repeat(43)}`);
    expect(await raw('/v1/session', { method: 'GET', headers: { cookie: forged } })).toMatchObject({ status: 401 });
    expect(await raw('/v1/session', { method: 'GET', headers: { cookie: c } })).toMatchObject({ status: 200 });
  });

  it('100 wrong passwords: refused, then throttled (the right password too), each attempt audited, no password in the log', async () => {
    const results: string[] = [];
    for (let i = 0; i < 100; i++) {
      try {
        await login('rita', `wrong password ${i}`);
        results.push('ok');
      } catch (e) {
        results.push((e as { code: string }).code);
      }
    }
    expect(results.slice(0, 10)).toEqual(Array(10).fill(ErrorCodes.FORBIDDEN));
    expect(results.slice(10)).toEqual(Array(90).fill(ErrorCodes.LIMIT));
    await expect(login('rita')).rejects.toMatchObject({ code: ErrorCodes.LIMIT });
    // an unknown account is throttled the same way (no hint that it does not exist)
    for (let i = 0; i < 10; i++) await expect(login('nobody-here')).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
    await expect(login('nobody-here')).rejects.toMatchObject({ code: ErrorCodes.LIMIT });
    const log = await auditLog();
    const rita = log.entries.map((r) => JSON.parse(r.entry) as { action: string; detail: { user?: string; reason?: string } }).filter((e) => e.detail.user === 'rita' && e.action.startsWith('login'));
    expect(rita.filter((e) => e.action === 'login-failure')).toHaveLength(10);
    expect(rita.filter((e) => e.action === 'login-throttled')).toHaveLength(91);
    expect(rita.find((e) => e.action === 'login-failure')?.detail.reason).toBe('wrong password');
    // no password in the log
    expect(JSON.stringify(log.entries)).not.toContain('wrong password 1');
  }, 120_000);

  it('TOTP: enrolled accounts need a fresh code; a code is never taken twice', async () => {
    const { secret } = await admin.json<{ secret: string; uri: string }>('POST', '/v1/admin/users/olga/totp');
    const key = base32Decode(secret);
    await expect(login('olga')).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
    const code = totp(key, Date.now());
    const s = await login('olga', PASSWORD, code);
    await s.logout();
    await expect(login('olga', PASSWORD, code)).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
    await admin.json('DELETE', '/v1/admin/users/olga/totp');
  }, 60_000);

  it('access tokens: ES256, for a configured NVR only, verified offline with the KMS certificate', async () => {
    const s = await login('olga');
    const token = await s.token('nvr-1');
    await expect(s.token('nvr-2')).rejects.toMatchObject({ code: ErrorCodes.INPUT });
    const chain = (await auditLog()).chain;
    const kmsCert = parseCertificates(Buffer.from(chain.join('')), 'chain')[0] as X509Certificate;
    const origin = (await auditLog()).origin;
    const claims = await verifyAccessToken(token, publicKeyObject(kmsCert), { issuer: origin, audience: 'nvr-1' });
    expect(claims).toMatchObject({ sub: 'olga', role: 'operator', aud: 'nvr-1', iss: origin });
    // olga's grant (live and playback on group yard, a fixed window) resolved: the group's cameras, the window as it is
    expect(claims.acl).toEqual([{ cams: ['CAM-A', 'CAM-B'], rights: ['live', 'playback'], from: before[1], to: after[2] }]);
    expect(claims.exp - claims.iat).toBe(120);
    // another NVR, or a token whose payload was changed: refused
    await expect(verifyAccessToken(token, publicKeyObject(kmsCert), { issuer: origin, audience: 'nvr-2' })).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
    const [h, p, sig] = token.split('.') as [string, string, string];
    const admin2 = Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url');
    expect(admin2).not.toBe(p);
    await expect(verifyAccessToken(`${h}.${admin2}.${sig}`, publicKeyObject(kmsCert), { issuer: origin, audience: 'nvr-1' })).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
    await s.logout();
  });
});
