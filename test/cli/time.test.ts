/**
 * The attacks of issue 10 §1.3 and §2 with the real binary: a key revoked for keyCompromise at R, then `keyframe record
 * --start` backdated before R (and a bundle by an exporter revoked likewise); a recording claiming 2035; a
 * certificate valid from 2030 recording with `--start 2030-06-01`. Each verified AUTHENTIC before; now each is not,
 * with the reason named, while material time-stamped before R (`keyframe record --tsa`, `keyframe timestamp`,
 * `keyframe export --tsa`) stays AUTHENTIC. Also: `keyframe timestamp` with keyframe's TSA and over HTTP, its tokens
 * checked by `openssl ts -verify`; `keyframe export` refusing anything but an exporter identity; `--exporter-root`,
 * `--tsa-root` and `--max-skew`.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaStore } from '../../src/pki/ca-store.js';
import { provisionDevice } from '../../src/pki/device.js';
import { openOperatorIdentity, type OperatorIdentity } from '../../src/pki/operator-identity.js';
import { EKU_EVIDENCE_EXPORT } from '../../src/pki/oids.js';
import { TimeStampAuthority } from '../../src/tsp/authority.js';
import { runCli, snapshot } from '../helpers/cli.js';
import { clip } from '../helpers/media.js';

const work = mkdtempSync(join(tmpdir(), 'kf-time-'));
const PIN = 'time test passphrase';
const env = { KEYFRAME_KEYSTORE_PIN: PIN };
process.env['KF_TIME_PIN'] = PIN;
const ca = join(work, 'ca');
const root = join(ca, 'root.pem');
const operator = join(ca, 'operator.pem');
const crl = join(work, 'crl.pem');
const cam = join(work, 'cam');
const tsa = join(work, 'tsa');
const smith = join(work, 'smith');
let source: string;
let exporterSerial: string;

interface Report {
  verdict: string;
  fragmentLayer?: { verdict: string; problems: { kind: string; detail: string }[]; time?: { ranges: { notAfter: string | null }[]; tokens: { valid: boolean }[] } };
  bundle?: { verdict: string; exporter: { trust: string; subject?: string; issuer?: string; trustReason?: string }; time?: { unproven?: string; notAfter: string | null } };
}

async function verifyJson(path: string, ...extra: string[]): Promise<{ code: number; report: Report }> {
  const r = await runCli(['verify', path, '--root', root, '--json', ...extra]);
  expect(r.stderr).toBe('');
  return { code: r.code, report: JSON.parse(r.stdout) as Report };
}

const cli = async (args: readonly string[]): Promise<string> => {
  const r = await runCli(args, env);
  expect(r.stderr, args.join(' ')).toBe('');
  expect(r.code, args.join(' ')).toBe(0);
  return r.stdout;
};

let R: number;
const recA = join(work, 'rec-a'); // time-stamped as recorded, before the compromise
const recB = join(work, 'rec-b'); // recorded before the compromise, never time-stamped
const recX = join(work, 'rec-x'); // recorded after the compromise, --start backdated before it
const stampedBundle = join(work, 'stamped.kfe.tar');
const plainBundle = join(work, 'plain.kfe.tar');

beforeAll(async () => {
  source = await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25, slices: 2 });
  await cli(['ca', 'init', '--dir', ca]);
  await cli(['device', 'provision', '--ca', ca, '--serial', 'CAM-T', '--out', cam]);
  await cli(['ca', 'tsa-cert', '--ca', ca, '--name', 'NVR-TSA', '--out', tsa]);
  const made = await cli(['ca', 'exporter-cert', '--ca', ca, '--name', 'J. Smith', '--out', smith]);
  exporterSerial = /serial ([0-9a-f]+)/.exec(made)?.[1] ?? '';
  const recorded = await cli(['record', '--device', cam, '--source', source, '--duration', '2', '--out', recA, '--fast', '--tsa', tsa]);
  expect(recorded).toMatch(/\n {2}4 records time-stamped by TSA NVR-TSA → timestamps\.jsonl\n$/);
  await cli(['record', '--device', cam, '--source', source, '--duration', '2', '--out', recB, '--fast']);
  const exported = await cli(['export', recA, '--out', stampedBundle, '--exporter', smith, '--reason', 'case 9', '--tsa', tsa]);
  expect(exported).toMatch(/signed by CN=J\. Smith, O=keyframe \(issuer CN=keyframe Operator CA, O=keyframe\)\n {2}signature time-stamped: genTime \S+ by CN=NVR-TSA, O=keyframe\n/);
  await cli(['export', recA, '--out', plainBundle, '--exporter', smith, '--reason', 'case 9']);
  // every token so far has genTime + accuracy at most 2 s after it was made; CRL times are whole seconds
  await new Promise((r) => setTimeout(r, 3500));
  R = Date.now();
  await cli(['ca', 'revoke', '--ca', ca, '--serial', 'CAM-T', '--reason', 'keyCompromise']);
  await cli(['ca', 'revoke', '--ca', ca, '--cert-serial', exporterSerial, '--reason', 'keyCompromise']);
  await cli(['ca', 'crl', '--ca', ca, '--out', crl]);
  // the attack: the compromised key records now, claiming a start four minutes before the revocation
  await cli(['record', '--device', cam, '--source', source, '--duration', '2', '--out', recX, '--fast', '--start', new Date(R - 240_000).toISOString()]);
}, 240_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('a camera key revoked for keyCompromise (issue 10 §1.3)', () => {
  it('keyframe record --start backdated after the revocation: UNPROVEN_TIME with the CRL (was AUTHENTIC), the reason named', async () => {
    const human = await runCli(['verify', recX, '--root', root, '--crl', crl, '--exporter-root', operator]);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^verdict: UNPROVEN_TIME\n/);
    expect(human.stdout).toMatch(/unproven\s+0\.000 s – 2\.000 s {2}"CN=keyframe camera CAM-T, serialNumber=CAM-T, O=keyframe" was revoked at \S+ \(keyCompromise\), so its key may have signed this afterwards with any claimed time; no RFC 3161 time-stamp proves fragments 0–1 existed before the revocation/);
    expect(human.stdout).toMatch(/proven: not before \S+, not after unproven \(no RFC 3161 time-stamp: only the claimed time\)/);
    // a time-stamp obtained now is after the revocation: still unproven
    const stamped = await runCli(['timestamp', recX, '--tsa', tsa], env);
    expect(stamped.code).toBe(0);
    const { code, report } = await verifyJson(recX, '--crl', crl, '--exporter-root', operator);
    expect(code).toBe(1);
    expect(report.verdict).toBe('UNPROVEN_TIME');
    expect(report.fragmentLayer?.problems[0]?.detail).toMatch(/the earliest RFC 3161 time-stamp over fragments 0–1 \(existed by \S+\) is not before the revocation/);
  });

  it('a recording time-stamped as it was recorded, before the revocation: AUTHENTIC, exit 0, bounded by its tokens; unstamped: UNPROVEN_TIME', async () => {
    const { code, report } = await verifyJson(recA, '--crl', crl, '--exporter-root', operator);
    expect(code).toBe(0);
    expect(report.verdict).toBe('AUTHENTIC');
    const notAfter = report.fragmentLayer?.time?.ranges.map((g) => g.notAfter) ?? [];
    expect(notAfter.length).toBeGreaterThan(0);
    for (const t of notAfter) expect(Date.parse(t ?? '')).toBeLessThan(R);
    const b = await verifyJson(recB, '--crl', crl, '--exporter-root', operator);
    expect(b.code).toBe(1);
    expect(b.report.verdict).toBe('UNPROVEN_TIME');
    // the tokens need a TSA root: without --tsa-root or --exporter-root none is checked
    const noRoot = await verifyJson(recA, '--crl', crl);
    expect(noRoot.report.verdict).toBe('UNPROVEN_TIME');
    expect((await verifyJson(recA, '--crl', crl, '--tsa-root', operator)).report.verdict).toBe('AUTHENTIC');
  });

  it("the recording's tokens are RFC 3161 tokens over its record hashes: openssl ts -verify accepts them", async () => {
    const lines = readFileSync(join(recA, 'timestamps.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { record: number; sha256: string; token: string });
    expect(lines.map((l) => l.record)).toEqual([0, 1, 2, 3]);
    const records = readFileSync(join(recA, 'records.jsonl'), 'utf8').split('\n');
    for (const l of lines) {
      writeFileSync(join(work, 'line.tst'), Buffer.from(l.token, 'base64'));
      writeFileSync(join(work, 'line.json'), records[l.record] ?? '');
      const out = execFileSync('openssl', ['ts', '-verify', '-token_in', '-in', join(work, 'line.tst'), '-data', join(work, 'line.json'), '-CAfile', operator], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(out).toContain('Verification: OK');
    }
  });
});

describe('the exporter (issue 10 §2)', () => {
  it("verify names the exporter; time-stamped before its key's compromise: AUTHENTIC; not time-stamped: UNPROVEN_TIME", async () => {
    const s = await verifyJson(stampedBundle, '--crl', crl, '--exporter-root', operator);
    expect(s.code).toBe(0);
    expect(s.report.bundle).toMatchObject({ verdict: 'AUTHENTIC', exporter: { trust: 'trusted', subject: 'CN=J. Smith, O=keyframe', issuer: 'CN=keyframe Operator CA, O=keyframe' } });
    const p = await verifyJson(plainBundle, '--crl', crl, '--exporter-root', operator);
    expect(p.code).toBe(1);
    expect(p.report.bundle?.verdict).toBe('UNPROVEN_TIME');
    expect(p.report.bundle?.time?.unproven).toMatch(/"CN=J\. Smith, O=keyframe" was revoked at \S+ \(keyCompromise\)/);
    const human = await runCli(['verify', plainBundle, '--root', root, '--crl', crl, '--exporter-root', operator]);
    expect(human.stdout).toContain('  exporter: CN=J. Smith, O=keyframe (issuer CN=keyframe Operator CA, O=keyframe): trusted\n');
    expect(human.stdout).toMatch(/ {2}UNPROVEN: "CN=J\. Smith, O=keyframe" was revoked/);
  });

  it('without --exporter-root, or with the manufacturer root as exporter root: UNTRUSTED_SIGNER', async () => {
    const none = await verifyJson(stampedBundle);
    expect(none.code).toBe(1);
    expect(none.report.bundle?.exporter.trustReason).toMatch(/^no exporter root given \(--exporter-root\)/);
    expect(none.report.verdict).toBe('UNTRUSTED_SIGNER');
    expect((await verifyJson(stampedBundle, '--exporter-root', root)).report.bundle?.verdict).toBe('UNTRUSTED_SIGNER');
  });

  it('keyframe export takes only an exporter identity: a camera, a site identity, a TSA (exit 2), a self-signed or revoked exporter (exit 1) are refused, nothing written', async () => {
    await cli(['ca', 'site-cert', '--ca', ca, '--name', 'nvr.example.org', '--dns', 'nvr.example.org', '--out', join(work, 'site')]);
    const selfSigned = join(work, 'self-signed');
    cpSync(smith, selfSigned, { recursive: true });
    execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', join(work, 'ss.key')]);
    execFileSync('openssl', ['req', '-new', '-x509', '-key', join(work, 'ss.key'), '-subj', '/CN=J. Smith/O=keyframe', '-days', '30', '-addext', `extendedKeyUsage=critical,${EKU_EVIDENCE_EXPORT}`, '-addext', 'keyUsage=critical,digitalSignature', '-out', join(selfSigned, 'chain.pem')]);
    const before = snapshot(work);
    const cases: [string, string[], number, RegExp][] = [
      ['camera', ['--exporter', cam], 2, /is a camera \(device\) directory, not an evidence exporter identity: create one with `keyframe ca exporter-cert`/],
      ['site', ['--exporter', join(work, 'site')], 2, /is a site \(TLS\) identity, not an evidence exporter identity/],
      ['tsa', ['--exporter', tsa], 2, /is a time-stamping authority \(TSA\) identity, not an evidence exporter identity/],
      ['self-signed', ['--exporter', selfSigned], 1, /evidence exporter CN=J\. Smith, O=keyframe refused: self-signed: identity not established/],
      ['revoked', ['--exporter', smith, '--crl', crl], 1, /evidence exporter CN=J\. Smith, O=keyframe refused: certificate "CN=J\. Smith, O=keyframe" revoked at \S+ \(keyCompromise\)/],
    ];
    for (const [name, args, code, message] of cases) {
      const r = await runCli(['export', recA, '--out', join(work, `${name}.kfe.tar`), '--reason', 'r', ...args], env);
      expect(r.code, name).toBe(code);
      expect(r.stderr, name).toMatch(new RegExp(`^keyframe: [^\\n]*${message.source}[^\\n]*\\n$`));
      expect(r.stdout, name).toBe('');
    }
    expect(snapshot(work)).toEqual(before);
  });
});

describe('claimed times', () => {
  it('a recording claiming 2035: NOT_AUTHENTIC (was AUTHENTIC); a start 10 minutes ahead passes only with --max-skew 900', async () => {
    const cam2 = join(work, 'cam2');
    await cli(['device', 'provision', '--ca', ca, '--serial', 'CAM-2035', '--out', cam2]);
    const far = join(work, 'rec-2035');
    await cli(['record', '--device', cam2, '--source', source, '--duration', '1', '--out', far, '--fast', '--start', '2035-01-01T00:00:00Z']);
    const r = await runCli(['verify', far, '--root', root]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^verdict: NOT_AUTHENTIC\n/);
    expect(r.stdout).toContain('signer: invalid (the session record claims 2035-01-01T00:00:00.000Z, after the verification time');
    const ahead = join(work, 'rec-ahead');
    await cli(['record', '--device', cam2, '--source', source, '--duration', '1', '--out', ahead, '--fast', '--start', new Date(Date.now() + 600_000).toISOString()]);
    expect((await runCli(['verify', ahead, '--root', root])).code).toBe(1);
    expect((await runCli(['verify', ahead, '--root', root, '--max-skew', '900'])).code).toBe(0);
    const bad = await runCli(['verify', ahead, '--root', root, '--max-skew', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('keyframe: --max-skew must be a number of seconds from 0 to 86400\n');
  });

  it('a certificate valid only from 2030: --start 2030-06-01 NOT_AUTHENTIC (was AUTHENTIC), and today too (not valid then)', async () => {
    const store = await CaStore.open(ca);
    const caKeys = await store.openKeyStore(`file:${join(ca, 'keys')};pin-env=KF_TIME_PIN`);
    const cam2030 = join(work, 'cam2030');
    try {
      await provisionDevice({ ca: store, caKeyStore: caKeys, dir: cam2030, serial: 'CAM-2030', now: new Date('2030-05-31T00:00:00Z'), keystore: `file:${join(cam2030, 'keys')};pin-env=KF_TIME_PIN` });
    } finally {
      await caKeys.close();
    }
    for (const [start, message] of [
      ['2030-06-01T00:00:00Z', /claims 2030-06-01T00:00:00\.000Z, after the verification time/],
      [new Date(Date.now() - 60_000).toISOString(), /certificate not valid at the recording start: certificate "CN=keyframe camera CAM-2030, serialNumber=CAM-2030, O=keyframe" is not valid before 2030-05-30T23:55:00\.000Z/],
    ] as const) {
      const out = join(work, `rec-2030-${start.slice(0, 4)}`);
      await runCli(['record', '--device', cam2030, '--source', source, '--duration', '1', '--out', out, '--fast', '--start', start], { KF_TIME_PIN: PIN });
      const r = await runCli(['verify', out, '--root', root]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(message);
    }
  });
});

describe('keyframe timestamp', () => {
  let server: Server;
  let url: string;
  let identity: OperatorIdentity;
  beforeAll(async () => {
    identity = await openOperatorIdentity(tsa, 'tsa', { keystore: `file:${join(tsa, 'keys')};pin-env=KF_TIME_PIN` });
    const authority = await TimeStampAuthority.create({ store: identity.store, label: identity.config.keyLabel, chain: identity.chain });
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => void authority.respond(Buffer.concat(chunks)).then((reply) => res.writeHead(200, { 'content-type': 'application/timestamp-reply' }).end(reply)));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await identity.close();
  });

  it('stamps the head of the record chain with keyframe’s TSA or an RFC 3161 TSA over HTTP, and says what it covered', async () => {
    const dir = join(work, 'rec-b-stamp');
    cpSync(recB, dir, { recursive: true });
    const local = await runCli(['timestamp', dir, '--tsa', tsa], env);
    expect(local.code, local.stderr).toBe(0);
    expect(local.stdout).toMatch(/^time-stamped the end record \(the whole recording\) \(line 4, SHA-256 [0-9a-f]{64}\) of \S+\n {2}genTime \S+ by CN=NVR-TSA, O=keyframe, serial [0-9a-f]+ → \S+timestamps\.jsonl\n$/);
    const remote = await runCli(['timestamp', dir, '--url', url, '--tsa-root', operator]);
    expect(remote.code, remote.stderr).toBe(0);
    const wrongRoot = await runCli(['timestamp', dir, '--url', url, '--tsa-root', root]);
    expect(wrongRoot.code).toBe(1);
    expect(wrongRoot.stderr).toMatch(/^keyframe: the token from TSA http:\/\/127\.0\.0\.1:\d+\/ does not verify: TSA certificate not valid at genTime/);
    const { report } = await verifyJson(dir, '--exporter-root', operator);
    expect(report.fragmentLayer?.time?.tokens).toEqual([expect.objectContaining({ valid: true }), expect.objectContaining({ valid: true })]);
  });

  it('usage errors exit 2 with one line', async () => {
    const cases: [string[], RegExp][] = [
      [['timestamp', recB], /^keyframe: name the time-stamping authority: --tsa DIR or --url URL\n$/],
      [['timestamp', recB, '--url', url], /^keyframe: --url needs --tsa-root: the TSA's tokens are verified before they are stored\n$/],
      [['timestamp', recB, '--tsa', smith], /^keyframe: \S+smith is an evidence exporter identity, not a time-stamping authority \(TSA\) identity: create one with `keyframe ca tsa-cert`\n$/],
      [['timestamp', work, '--tsa', tsa], /^keyframe: \S+ is not a keyframe recording: records\.jsonl is missing\n$/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args, env);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });
});
