/**
 * The pure cores of access (issue 13): argon2id passwords, the login throttle, the ClearKey formats, and the grant
 * decision — property tests for every encoder/decoder pair and for the window rule "a key only where the grant
 * covers everything it decrypts".
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { aclAllows, aclCameras, aclProblem } from '../../src/access/acl.js';
import { decodeKid, encodeLicenceRequest, licenceResponse, parseLicenceRequest, parseLicenceResponse } from '../../src/access/clearkey.js';
import { decideKey, windowCovers } from '../../src/access/grants.js';
import type { Grant, KeyEpoch } from '../../src/access/grants.js';
import { ARGON2ID, checkPasswordPolicy, hashPassword, verifyPassword } from '../../src/access/password.js';
import { FailureCounter } from '../../src/access/rate-limit.js';
import { ROLES, ROLE_RIGHTS, parseRights } from '../../src/access/roles.js';
import { ErrorCodes } from '../../src/errors.js';

describe('passwords', () => {
  it('argon2id at OWASP parameters, PHC strings; a weaker stored hash verifies and asks to be rehashed; policy 12–256 characters', async () => {
    const phc = await hashPassword('correct horse battery staple');
    expect(phc).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(ARGON2ID).toMatchObject({ memoryCost: 19_456, timeCost: 2, parallelism: 1 });
    expect(await verifyPassword(phc, 'correct horse battery staple')).toEqual({ ok: true, rehash: false });
    expect(await verifyPassword(phc, 'correct horse battery stapl')).toEqual({ ok: false, rehash: false });
    expect(await verifyPassword(undefined, 'correct horse battery staple')).toEqual({ ok: false, rehash: false });
    const { hash } = await import('@node-rs/argon2');
    const weak = await hash('correct horse battery staple', { memoryCost: 8192, timeCost: 1, parallelism: 1, algorithm: 2 });
    expect(await verifyPassword(weak, 'correct horse battery staple')).toEqual({ ok: true, rehash: true });
    expect(await verifyPassword('not a phc string', 'x')).toEqual({ ok: false, rehash: false });
    expect(() => checkPasswordPolicy('short')).toThrow(/at least 12 characters/);
    expect(() => checkPasswordPolicy('x'.repeat(257))).toThrow(/at most 256/);
  });
});

describe('login throttle', () => {
  it('refuses a key over its limit within the window, and lets it in again once old failures leave it', () => {
    const c = new FailureCounter({ limit: 3, windowMs: 1000, maxKeys: 2 });
    for (let t = 0; t < 3; t++) c.fail('a', t);
    expect(c.blocked('a', 10)).toBe(true);
    expect(c.retryAt('a', 10)).toBe(1000);
    expect(c.blocked('a', 1000)).toBe(false);
    // bounded: a third key drops the oldest
    c.fail('b', 20);
    c.fail('c', 21);
    expect(c.blocked('a', 22)).toBe(false);
  });
});

describe('ClearKey formats', () => {
  it('request and licence round-trip for any KIDs and keys (base64url, unpadded)', () => {
    const kid = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b));
    fc.assert(
      fc.property(fc.array(fc.record({ kid, key: kid }), { minLength: 1, maxLength: 8 }), (pairs) => {
        const req = parseLicenceRequest(encodeLicenceRequest(pairs.map((p) => p.kid)));
        expect(req.kids.map((k) => k.toString('hex'))).toEqual(pairs.map((p) => p.kid.toString('hex')));
        const text = licenceResponse(pairs);
        expect(text).not.toMatch(/=/);
        const back = parseLicenceResponse(text);
        for (const p of pairs) expect(back.get(p.kid.toString('hex'))?.equals(p.key)).toBe(true);
      }),
    );
  });

  it('the W3C example request parses; malformed requests are refused naming what is wrong', () => {
    expect(parseLicenceRequest(Buffer.from('{"kids":["LwVHf8JLtPrv2GUXFW2v_A"],"type":"temporary"}')).kids[0]?.toString('base64url')).toBe('LwVHf8JLtPrv2GUXFW2v_A');
    for (const [body, message] of [
      ['not json', /not UTF-8 JSON/],
      ['[]', /JSON object/],
      ['{"kids":[]}', /names no KIDs/],
      ['{"kids":["abc"]}', /kids\[0\] is not 16 bytes/],
      ['{"kids":["LwVHf8JLtPrv2GUXFW2v_A"],"type":"x"}', /"type"/],
      [JSON.stringify({ kids: Array(65).fill('LwVHf8JLtPrv2GUXFW2v_A') }), /65 KIDs/],
    ] as const) {
      expect(() => parseLicenceRequest(Buffer.from(body))).toThrow(message);
    }
    expect(() => parseLicenceRequest(Buffer.from([0xff, 0xfe]))).toThrow(expect.objectContaining({ code: ErrorCodes.INPUT }));
    expect(decodeKid('LwVHf8JLtPrv2GUXFW2v_A==', 'kid').toString('base64url')).toBe('LwVHf8JLtPrv2GUXFW2v_A');
  });
});

describe('the grant decision', () => {
  const base = (over: Partial<Grant>): Grant => ({ id: 1, principal: { kind: 'user', name: 'u' }, scope: { kind: 'camera', serial: 'C' }, rights: ['playback'], window: { kind: 'fixed', from: 0, to: 0 }, validFrom: 0, ...over });
  const key = (start: number | undefined, end: number | undefined, current = end === undefined): KeyEpoch => ({ kid: 'k', group: 'G', camera: 'C', epoch: 1, current, ...(start !== undefined ? { start } : {}), ...(end !== undefined ? { end } : {}) });

  it('playback: released exactly when the window covers the whole epoch (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 3000 }), (start, len, a, b) => {
        const [from, to] = a <= b ? [a, b] : [b, a];
        const end = start + len;
        const now = 5000;
        const d = decideKey('k', key(start, end), { name: 'u', role: 'investigator' }, [base({ window: { kind: 'fixed', from, to } })], now);
        expect(d.allowed).toBe(from <= start && end <= to);
      }),
    );
  });

  it('the epoch in use is covered only up to now; an unknown start is never covered; "last N" moves with now', () => {
    expect(windowCovers({ kind: 'fixed', from: 0, to: 100 }, key(10, undefined), 50)).toBe(true);
    expect(windowCovers({ kind: 'fixed', from: 0, to: 100 }, key(10, undefined), 150)).toBe(false);
    expect(windowCovers({ kind: 'fixed', from: 0, to: 100 }, key(undefined, 20), 50)).toBe(false);
    expect(windowCovers({ kind: 'last', ms: 100 }, key(10, 20), 105)).toBe(true);
    expect(windowCovers({ kind: 'last', ms: 100 }, key(10, 20), 115)).toBe(false);
  });

  it('roles bound rights; grants must apply, cover the camera and be in force; live gives the current epoch (and the last one for the grace)', () => {
    for (const role of ROLES) {
      const d = decideKey('k', key(0, undefined), { name: 'u', role }, [base({ rights: ['live', 'playback'], window: { kind: 'last', ms: 1e9 } })], 10);
      expect(d.allowed).toBe(ROLE_RIGHTS[role].includes('live') || ROLE_RIGHTS[role].includes('playback'));
    }
    const who = { name: 'u', role: 'viewer' as const };
    const live = base({ rights: ['live'] });
    expect(decideKey('k', key(0, undefined), who, [live], 10)).toMatchObject({ allowed: true, right: 'live' });
    expect(decideKey('k', key(0, 100, false), who, [live], 150, 60)).toMatchObject({ allowed: true, right: 'live' });
    expect(decideKey('k', key(0, 100, false), who, [live], 161, 60)).toMatchObject({ allowed: false });
    expect(decideKey('k', key(0, undefined), who, [base({ rights: ['live'], principal: { kind: 'user', name: 'x' } })], 10).allowed).toBe(false);
    expect(decideKey('k', key(0, undefined), who, [base({ rights: ['live'], principal: { kind: 'role', role: 'viewer' } })], 10).allowed).toBe(true);
    expect(decideKey('k', key(0, undefined), who, [base({ rights: ['live'], scope: { kind: 'camera', serial: 'D' } })], 10).allowed).toBe(false);
    expect(decideKey('k', key(0, undefined), who, [base({ rights: ['live'], scope: { kind: 'group', group: 'G' } })], 10).allowed).toBe(true);
    expect(decideKey('k', key(0, undefined), who, [base({ rights: ['live'], validFrom: 20 })], 10)).toMatchObject({ allowed: false, reason: 'grant 1 is not in force' });
    expect(decideKey('k', key(0, undefined), who, [base({ rights: ['live'], validTo: 10 })], 10).allowed).toBe(false);
    expect(decideKey('k', undefined, who, [live], 10)).toMatchObject({ allowed: false, reason: 'unknown KID' });
    expect(() => parseRights(['live', 'live'])).toThrow(/named twice/);
    expect(() => parseRights('fly')).toThrow(/not one of/);
  });
});

describe('access token ACL (what an NVR may allow offline)', () => {
  it('a range is allowed exactly when one entry has the camera, the right and a window around the range (property)', () => {
    const entry = fc.record({
      cams: fc.subarray(['A', 'B', 'C'], { minLength: 1 }),
      rights: fc.subarray(['live', 'playback', 'export', 'lock'] as const, { minLength: 1 }),
      from: fc.integer({ min: 0, max: 100 }),
      len: fc.integer({ min: 0, max: 100 }),
    });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 4 }), fc.constantFrom('A', 'B', 'C', 'D'), fc.constantFrom('live', 'playback', 'export', 'lock'), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 50 }), (raw, cam, right, a, n) => {
        const acl = raw.map((e) => ({ cams: e.cams, rights: e.rights, from: e.from, to: e.from + e.len }));
        expect(aclProblem(acl)).toBeUndefined();
        const want = acl.some((e) => e.cams.includes(cam) && e.rights.includes(right) && (right === 'live' || (e.from <= a && a + n <= e.to)));
        expect(aclAllows(acl, cam, right, { from: a, to: a + n })).toBe(want);
      }),
    );
    expect(aclAllows([{ cams: ['A'], rights: ['playback'], from: 0, to: 10 }], 'A', 'playback')).toBe(false);
    expect(aclCameras([{ cams: ['B', 'A'], rights: ['live'], from: 0, to: 0 }, { cams: ['C'], rights: ['playback'], from: 0, to: 1 }], 'live')).toEqual(['A', 'B']);
  });

  it('malformed ACL claims are named', () => {
    expect(aclProblem({})).toMatch(/not a list/);
    expect(aclProblem([{ cams: [], rights: ['live'], from: 0, to: 0 }])).toMatch(/cams/);
    expect(aclProblem([{ cams: ['A'], rights: ['fly'], from: 0, to: 0 }])).toMatch(/rights/);
    expect(aclProblem([{ cams: ['A'], rights: ['live'], from: 0.5, to: 1 }])).toMatch(/from/);
    expect(aclProblem([{ cams: ['A'], rights: ['live'], from: 5, to: 1 }])).toMatch(/ends before/);
  });
});
