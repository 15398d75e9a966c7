// The KMS's signed list of ended sessions (access/revocation-list.ts) and the NVR's copy of it (nvr/revocations.ts),
// fetched over real TLS: a session on the list is refused; a list that is forged, of another type, from another
// key, too old, or older than the one held is not taken; with no fresh list every token is refused (fail closed).
import { createPrivateKey, generateKeyPairSync, sign as cryptoSign, webcrypto } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { SubjectAlternativeNameExtension } from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REVOCATION_LIST_TYPE, signRevocationList, verifyRevocationList } from '../../src/access/revocation-list.js';
import { signAccessToken } from '../../src/access/token.js';
import { RevocationFeed } from '../../src/nvr/revocations.js';
import { silentLogger } from '../../src/server/log.js';
import { DAY, issue, makeRoot, newKeys } from '../helpers/pki-fixtures.js';

const ISS = 'keyframe-kms CN=kms';
const kms = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rogue = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signer = (key: KeyObject) => async (data: Uint8Array) => cryptoSign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
const nowS = (): number => Math.floor(Date.now() / 1000);
const ENDED = 'c2Vzc2lvbi1lbmRlZC0x';
const OPEN = 'c2Vzc2lvbi1vcGVuLTAx';

describe('the signed list', () => {
  it('round-trips; every forgery, another type, another issuer or key, a stale or future list is refused', async () => {
    const list = await signRevocationList({ iss: ISS, iat: nowS(), win: 305, sids: [ENDED] }, signer(kms.privateKey));
    expect(await verifyRevocationList(list, kms.publicKey, { issuer: ISS })).toMatchObject({ sids: [ENDED], win: 305 });
    expect(JSON.parse(Buffer.from(list.split('.')[0] as string, 'base64url').toString())).toEqual({ alg: 'ES256', typ: REVOCATION_LIST_TYPE });
    const refused = async (jwt: string, o: { issuer?: string; key?: KeyObject; nowMs?: number } = {}) =>
      expect(verifyRevocationList(jwt, o.key ?? kms.publicKey, { issuer: o.issuer ?? ISS, ...(o.nowMs !== undefined ? { nowMs: o.nowMs } : {}) })).rejects.toMatchObject({ name: 'RevocationListRefused' });
    await refused(list, { key: rogue.publicKey });
    await refused(list, { issuer: 'keyframe-kms CN=other' });
    await refused(await signRevocationList({ iss: ISS, iat: nowS(), win: 305, sids: [ENDED] }, signer(rogue.privateKey)));
    // a list with the ended session taken out, the signature kept
    const [h, , sig] = list.split('.') as [string, string, string];
    await refused(`${h}.${Buffer.from(JSON.stringify({ iss: ISS, iat: nowS(), win: 305, sids: [] })).toString('base64url')}.${sig}`);
    // too old (a replay), and from the future
    await refused(await signRevocationList({ iss: ISS, iat: nowS() - 120, win: 305, sids: [] }, signer(kms.privateKey)));
    await refused(list, { nowMs: Date.now() - 60_000 });
    // an access token (the same key, another type) is not a list
    const token = await signAccessToken({ iss: ISS, sub: 'ivan', aud: 'nvr-1', sid: ENDED, role: 'viewer', iat: nowS(), exp: nowS() + 60, jti: 'dG9rZW4taWQtMDAwMDAwMDE', acl: [] }, signer(kms.privateKey));
    await refused(token);
    await expect(signRevocationList({ iss: ISS, iat: nowS(), win: 305, sids: ['not a session id'] }, signer(kms.privateKey))).rejects.toThrow(/session identifier/);
  });
});

describe("the NVR's copy, fetched over TLS", () => {
  let server: Server;
  let url: string;
  let caPem: string;
  /** What the test KMS answers next. */
  let answer: () => Promise<{ status: number; body: string }>;
  beforeAll(async () => {
    const base = new Date();
    const root = await makeRoot('CN=Test Operator CA', base);
    const keys = await newKeys();
    const cert = await issue({ subject: 'CN=kms', publicKey: keys.publicKey, issuer: { name: root.cert.subject, keys: root.keys }, notBefore: new Date(base.getTime() - DAY), notAfter: new Date(base.getTime() + DAY), extra: [new SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }])] });
    // the server's key, made here and handed to TLS in memory (never written anywhere)
    const tlsKey = createPrivateKey({ key: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' });
    caPem = root.cert.toString('pem');
    server = createServer({ key: tlsKey, cert: cert.toString('pem'), minVersion: 'TLSv1.3' }, (_req, res) => {
      void answer().then((a) => {
        res.writeHead(a.status, { 'content-type': 'application/jwt' });
        res.end(a.body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/v1/revoked`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const list = async (sids: string[], o: { iat?: number; key?: KeyObject } = {}) => ({ status: 200, body: await signRevocationList({ iss: ISS, iat: o.iat ?? nowS(), win: 305, sids }, signer(o.key ?? kms.privateKey)) });

  it('refuses every token until a list is taken; then the ended sessions only; a forged, rolled-back or unreachable list changes nothing', async () => {
    const changes: { ended: readonly string[]; stale: boolean }[] = [];
    const feed = new RevocationFeed({ url, ca: caPem, publicKey: kms.publicKey, issuer: ISS, log: silentLogger(), onChange: (c) => changes.push(c) });
    expect(feed.problem(OPEN)).toBe('revocation list stale');
    answer = () => list([]);
    expect(await feed.poll()).toBe(true);
    expect(feed.problem(OPEN)).toBeUndefined();
    answer = () => list([ENDED]);
    expect(await feed.poll()).toBe(true);
    expect(feed.problem(ENDED)).toBe('session ended');
    expect(feed.problem(OPEN)).toBeUndefined();
    expect(changes).toEqual([
      { ended: [], stale: false },
      { ended: [ENDED], stale: false },
    ]);
    // not taken: another key; an older list (without the logout); an HTTP error; the held list stays
    for (const a of [() => list([], { key: rogue.privateKey }), () => list([], { iat: nowS() - 3 }), async () => ({ status: 500, body: '' })]) {
      answer = a;
      expect(await feed.poll()).toBe(false);
      expect(feed.problem(ENDED)).toBe('session ended');
    }
    // once the held list is older than staleMs (15 s by default), every token is refused
    expect(feed.problem(OPEN, Date.now() + 20_000)).toBe('revocation list stale');
    // a server whose certificate is not the operator CA's: not taken
    const other = new RevocationFeed({ url, ca: (await makeRoot('CN=Another CA', new Date())).cert.toString('pem'), publicKey: kms.publicKey, issuer: ISS, log: silentLogger() });
    answer = () => list([]);
    expect(await other.poll()).toBe(false);
    expect(other.problem(OPEN)).toBe('revocation list stale');
  });
});
