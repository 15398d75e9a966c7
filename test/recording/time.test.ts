/**
 * Proof of recording time (issue 10 §1.3): the camera's clock is not evidence. On real x264 recordings and bundles:
 *
 * - a camera key revoked for keyCompromise: a recording is AUTHENTIC only where an RFC 3161 token from before the
 *   revocation covers its record chain; without one (a backdated `--start` after the revocation looks the same) the
 *   verdict is UNPROVEN_TIME, in the fragment layer and in the SEI layer, to the fragment and the frame;
 * - the proven bounds of each range (not before the certificate, not after the earliest token) and whether
 *   revocation was known for the claimed time are in the report;
 * - claims after the verification time (plus the skew), or after the time a token proves, are NOT_AUTHENTIC;
 * - an exporter revoked for keyCompromise: a bundle counts only with manifest.tst from before the revocation, so one
 *   backdated by its exporter does not; a bundle listing a token newer than its claimed export time is backdated;
 * - an exporter that is a camera, or no operator root given: not AUTHENTIC.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordSession } from '../../src/camera/record.js';
import { issueAllCrls, revoke } from '../../src/pki/ca.js';
import { openDevice } from '../../src/pki/device.js';
import { openOperatorIdentity, type OperatorIdentity } from '../../src/pki/operator-identity.js';
import { parseCrls } from '../../src/pki/pem.js';
import type { X509Crl } from '../../src/pki/x509.js';
import { exportBundle, type Exporter } from '../../src/recording/bundle.js';
import { verifyEvidence, type EvidenceOptions } from '../../src/recording/evidence.js';
import { RECORDS_FILE } from '../../src/recording/layout.js';
import { canonicalJson, parseAnyRecord, recordHash } from '../../src/recording/records.js';
import { TIMESTAMPS_FILE } from '../../src/recording/timestamps.js';
import { appendToken } from '../../src/recording/token-log.js';
import { TimeStampAuthority } from '../../src/tsp/authority.js';
import type { Stamper } from '../../src/tsp/stamper.js';
import { verifyTimeStampToken } from '../../src/tsp/token.js';
import { clip } from '../helpers/media.js';
import { makePki, signWith, verify, type Pki } from '../signing/_setup.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const NOW = Date.now();
/** The camera's and the first exporter's key compromise, on a whole second (CRL times are whole seconds). */
const R = Math.floor((NOW - HOUR) / 1000) * 1000;
const iso = (ms: number): string => new Date(ms).toISOString();

let pki: Pki;
let source: string;
let cam: string;
let tsaDir: string;
let tsaIdentity: OperatorIdentity;
let crls: X509Crl[];

/** keyframe's TSA with its clock set to `at`: a TSA that stamped at that time. Tokens verified before use. */
async function stamperAt(at: () => number): Promise<Stamper> {
  const tsa = await TimeStampAuthority.create({ store: tsaIdentity.store, label: tsaIdentity.config.keyLabel, chain: tsaIdentity.chain, clock: () => new Date(at()) });
  return {
    description: 'test TSA',
    stamp: async (hash) => {
      const token = await tsa.timestamp(hash);
      const r = await verifyTimeStampToken(token, { hash, roots: [pki.operator] });
      if (!r.valid) throw new Error(r.reason);
      return { token, info: r.info };
    },
    close: async () => undefined,
  };
}

async function record(out: string, start: number, options: { stamper?: Stamper; device?: string; seconds?: number } = {}): Promise<string> {
  const device = await openDevice(options.device ?? cam);
  try {
    await recordSession({ device, source, seconds: options.seconds ?? 6, out, start: new Date(start), realTime: false, ...(options.stamper !== undefined ? { stamper: options.stamper } : {}) });
  } finally {
    await device.close();
  }
  return out;
}

/** A token over line `line` of records.jsonl, from a TSA whose clock says `at`. */
async function stampLine(dir: string, line: number, at: number): Promise<void> {
  const text = readFileSync(join(dir, RECORDS_FILE), 'utf8').split('\n');
  const hash = recordHash(parseAnyRecord(text[line] as string, line + 1));
  const { token } = await (await stamperAt(() => at)).stamp(Buffer.from(hash, 'hex'));
  await appendToken(dir, line, hash, token);
}

const trust = (extra: Partial<EvidenceOptions> = {}): EvidenceOptions => ({ roots: [pki.root], exporterRoots: [pki.operator], ...extra });

let recA: string; // stamped, every record, two hours before the compromise
let recB: string; // no token: claims a time before the compromise (a backdated recording looks just like it)
let recC: string; // one token, over fragment 2

beforeAll(async () => {
  // a CA made 30 days ago; identities two days ago, so that the claimed times below are inside their validity
  pki = await makePki('Time Cameras', undefined, new Date(NOW - 30 * DAY));
  source = await clip({ width: 320, height: 240, fps: 25, seconds: 4, gop: 25, slices: 2 });
  cam = await pki.provision('SN-TIME', { now: new Date(NOW - 2 * DAY) });
  tsaDir = await pki.identity('tsa', 'NVR-TSA', { now: new Date(NOW - 2 * DAY) });
  tsaIdentity = await openOperatorIdentity(tsaDir, 'tsa');
  recA = await record(join(pki.work, 'rec-a'), R - 3 * HOUR, { stamper: await stamperAt(() => R - 2 * HOUR) });
  recB = await record(join(pki.work, 'rec-b'), R - 4 * MIN);
  recC = await record(join(pki.work, 'rec-c'), R - 3 * HOUR);
  await stampLine(recC, 3, R - 2 * HOUR); // line 3: fragment 2
  await revoke(pki.ca, { deviceSerial: 'SN-TIME', reason: 'keyCompromise', time: new Date(R) });
  crls = parseCrls(await issueAllCrls(pki.ca, pki.caStore), 'crl');
}, 240_000);

afterAll(async () => {
  await tsaIdentity.close();
  await pki.caStore.close();
  rmSync(pki.work, { recursive: true, force: true });
});

describe('a camera key revoked for keyCompromise', () => {
  it('without the CRL nobody knows: all three recordings are AUTHENTIC', async () => {
    for (const dir of [recA, recB, recC]) expect((await verifyEvidence(dir, trust())).verdict).toBe('AUTHENTIC');
  });

  it('with the CRL, a recording time-stamped before the revocation stays AUTHENTIC, to the frame, with its proven bounds', async () => {
    const r = await verifyEvidence(recA, trust({ crls }));
    expect(r.verdict).toBe('AUTHENTIC');
    const t = r.fragmentLayer?.time;
    expect(t?.compromise).toMatchObject({ time: iso(R), reason: 'keyCompromise' });
    expect(t?.tokens).toHaveLength(8);
    expect(t?.tokens.every((p) => p.valid && p.tsa === 'CN=NVR-TSA, O=Time Cameras')).toBe(true);
    const notBefore = iso(NOW - 2 * DAY - 5 * MIN);
    // every record was stamped as it was written: one range, proven by R − 2 h (+ 1 s accuracy)
    expect(t?.ranges).toEqual([
      { firstSeq: 0, lastSeq: 5, start: 0, end: 6, claimedFrom: iso(R - 3 * HOUR), claimedTo: iso(R - 3 * HOUR + 6000), notBefore: expect.stringMatching(new RegExp(`^${notBefore.slice(0, 16)}`)) as string, notAfter: iso(R - 2 * HOUR + 1000), proof: expect.stringMatching(/^time-stamp 2 over fragment 0 by CN=NVR-TSA/) as string },
    ]);
    expect(t?.revocation).toMatchObject({ checked: true, known: true });
    const s = r.sessions[0];
    expect(s?.ranges).toMatchObject([{ status: 'authentic', firstFrame: 0, lastFrame: 149, notAfter: iso(R - 2 * HOUR + 1000) }]);
    expect(s?.time).toMatchObject({ claimedFrom: iso(R - 3 * HOUR), compromise: { reason: 'keyCompromise' }, revocation: { known: true } });
  });

  it('with the CRL and no token: UNPROVEN_TIME in both layers, the reason named (a --start backdated after the revocation is the same recording)', async () => {
    const r = await verifyEvidence(recB, trust({ crls }));
    expect(r.verdict).toBe('UNPROVEN_TIME');
    expect(r.fragmentLayer?.verdict).toBe('UNPROVEN_TIME');
    expect(r.fragmentLayer?.authentic).toBe(0);
    expect(r.fragmentLayer?.problems.map((p) => [p.kind, p.seq, p.start, p.end])).toEqual([
      ['unproven', 0, 0, 6],
      ['unproven', 6, undefined, undefined],
    ]);
    expect(r.fragmentLayer?.problems[0]?.detail).toBe(
      `"CN=Time Cameras camera SN-TIME, serialNumber=SN-TIME, O=Time Cameras" was revoked at ${iso(R)} (keyCompromise), so its key may have signed this afterwards with any claimed time; no RFC 3161 time-stamp proves fragments 0–5 existed before the revocation`,
    );
    expect(r.fragmentLayer?.time?.ranges).toMatchObject([{ firstSeq: 0, lastSeq: 5, notAfter: null, proof: "no time-stamp: only the camera's claimed time" }]);
    expect(r.sessions[0]?.verdict).toBe('UNPROVEN_TIME');
    expect(r.sessions[0]?.ranges).toMatchObject([{ status: 'unproven', firstFrame: 0, lastFrame: 149, notAfter: null }]);
    // a token obtained now, after the revocation, does not help: it proves nothing about before
    const late = join(pki.work, 'rec-b-late');
    cpSync(recB, late, { recursive: true });
    await stampLine(late, 7, NOW);
    const l = await verifyEvidence(late, trust({ crls }));
    expect(l.verdict).toBe('UNPROVEN_TIME');
    expect(l.fragmentLayer?.problems[0]?.detail).toMatch(/the earliest RFC 3161 time-stamp over fragments 0–5 \(existed by .*\) is not before the revocation/);
  });

  it('one token over fragment 2 from before the revocation: fragments 0–2 AUTHENTIC with their bound, 3–5 and the end UNPROVEN, to the frame', async () => {
    const r = await verifyEvidence(recC, trust({ crls }));
    expect(r.verdict).toBe('UNPROVEN_TIME');
    expect(r.fragmentLayer?.authentic).toBe(3);
    expect(r.fragmentLayer?.problems.map((p) => [p.kind, p.seq, p.start, p.end])).toEqual([
      ['unproven', 3, 3, 6],
      ['unproven', 6, undefined, undefined],
    ]);
    expect(r.fragmentLayer?.time?.ranges).toMatchObject([
      { firstSeq: 0, lastSeq: 2, notAfter: iso(R - 2 * HOUR + 1000), proof: expect.stringContaining('time-stamp 1 over fragment 2') as string },
      { firstSeq: 3, lastSeq: 5, notAfter: null },
    ]);
    expect(r.sessions[0]?.ranges.map((g) => [g.status, g.firstFrame, g.lastFrame, g.notAfter])).toEqual([
      ['authentic', 0, 74, iso(R - 2 * HOUR + 1000)],
      ['unproven', 75, 149, null],
    ]);
  });

  it('tokens that prove nothing: altered, over another recording, or from a TSA outside the roots', async () => {
    const dir = join(pki.work, 'rec-c-bad');
    cpSync(recC, dir, { recursive: true });
    const line = JSON.parse(readFileSync(join(dir, TIMESTAMPS_FILE), 'utf8')) as { token: string };
    const token = Buffer.from(line.token, 'base64');
    token[token.length - 3] = (token[token.length - 3] ?? 0) ^ 1;
    const other = JSON.parse(readFileSync(join(recA, TIMESTAMPS_FILE), 'utf8').split('\n')[0] ?? '{}') as object;
    writeFileSync(join(dir, TIMESTAMPS_FILE), `${canonicalJson({ ...line, token: token.toString('base64') })}\n${canonicalJson(other)}\n`);
    const r = await verifyEvidence(dir, trust({ crls }));
    expect(r.verdict).toBe('UNPROVEN_TIME');
    expect(r.fragmentLayer?.authentic).toBe(0);
    expect(r.fragmentLayer?.time?.tokens).toMatchObject([
      { line: 1, covers: 'fragment 2', valid: false, reason: expect.stringMatching(/does not verify/) as string },
      { line: 2, record: -1, valid: false, reason: expect.stringContaining('no record of this recording') as string },
    ]);
    const foreign = await verifyEvidence(recC, trust({ crls, tsaRoots: [pki.root] }));
    expect(foreign.verdict).toBe('UNPROVEN_TIME');
    expect(foreign.fragmentLayer?.time?.tokens[0]).toMatchObject({ valid: false, reason: expect.stringContaining('TSA certificate not valid') as string });
    const noRoot = await verifyEvidence(recC, { roots: [pki.root], crls });
    expect(noRoot.fragmentLayer?.time?.tokens[0]).toMatchObject({ valid: false, reason: 'not checked: no TSA root given (--tsa-root)' });
    expect(noRoot.verdict).toBe('UNPROVEN_TIME');
  });
});

describe('claimed times', () => {
  it('a recording claiming a start in 2035 (certificate valid then): NOT_AUTHENTIC, in both layers; a stated skew moves the limit', async () => {
    const cam2 = await pki.provision('SN-2035');
    const dir = await record(join(pki.work, 'rec-2035'), Date.parse('2035-01-01T00:00:00Z'), { device: cam2, seconds: 2 });
    const r = await verifyEvidence(dir, trust());
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(r.fragmentLayer?.trustReason).toMatch(/^the session record claims 2035-01-01T00:00:00\.000Z, after the verification time .* plus the allowed skew of 300 s/);
    expect(r.sessions[0]?.trustReason).toMatch(/^the session manifest claims 2035-01-01T00:00:00\.000Z, after the verification time/);
    // a start ten minutes ahead: refused with the default 5 minutes, accepted with 20
    const ahead = await record(join(pki.work, 'rec-ahead'), NOW + 10 * MIN, { device: cam2, seconds: 2 });
    expect((await verifyEvidence(ahead, trust())).verdict).toBe('NOT_AUTHENTIC');
    expect((await verifyEvidence(ahead, trust({ maxSkewMs: 20 * MIN }))).verdict).toBe('AUTHENTIC');
    // the SEI layer alone (an Annex-B stream)
    const stream = await signWith(cam2, readFileSync(source), new Date('2035-01-01T00:00:00Z'));
    const v = await verify(stream, { roots: [pki.root] });
    expect(v.verdict).toBe('NOT_AUTHENTIC');
  });

  it('a certificate valid only from 2030: NOT_AUTHENTIC claiming today (not valid then) and claiming 2030-06-01 (the future)', async () => {
    const from2030 = await pki.provision('SN-2030', { now: new Date('2030-05-31T00:00:00Z') });
    const today = await record(join(pki.work, 'rec-2030-today'), NOW - MIN, { device: from2030, seconds: 2 });
    const t = await verifyEvidence(today, trust());
    expect(t.verdict).toBe('NOT_AUTHENTIC');
    expect(t.fragmentLayer?.trustReason).toMatch(/certificate not valid at the recording start: certificate .* is not valid before 2030-05-30T23:55:00\.000Z/);
    const future = await record(join(pki.work, 'rec-2030'), Date.parse('2030-06-01T00:00:00Z'), { device: from2030, seconds: 2 });
    const f = await verifyEvidence(future, trust());
    expect(f.verdict).toBe('NOT_AUTHENTIC');
    expect(f.fragmentLayer?.trustReason).toMatch(/claims 2030-06-01T00:00:00\.000Z, after the verification time/);
  });

  it('a recording claiming a time after the one its token proves: NOT_AUTHENTIC (the camera clock ran ahead or lies)', async () => {
    const cam3 = await pki.provision('SN-AHEAD');
    const start = NOW - 2 * MIN;
    const dir = await record(join(pki.work, 'rec-early-token'), start, { device: cam3, seconds: 2, stamper: await stamperAt(() => start - 10 * MIN) });
    const r = await verifyEvidence(dir, trust());
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(r.fragmentLayer?.problems.map((p) => p.kind)).toEqual(['future']);
    expect(r.fragmentLayer?.problems[0]?.detail).toMatch(/^fragments 0–1 claims .*, but an RFC 3161 time-stamp proves it existed by .*: the claimed time is false$/);
  });

  it('whether revocation was known for the claimed time: a CRL issued after it, or not', async () => {
    const cam4 = await pki.provision('SN-KNOWN');
    const older = await record(join(pki.work, 'rec-known'), NOW - 3 * MIN, { device: cam4, seconds: 2 });
    const crlBefore = parseCrls(await issueAllCrls(pki.ca, pki.caStore), 'crl');
    const r1 = await verifyEvidence(older, trust({ crls: crlBefore }));
    expect(r1.verdict).toBe('AUTHENTIC');
    expect(r1.fragmentLayer?.time?.revocation).toMatchObject({ checked: true, known: true });
    const newer = await record(join(pki.work, 'rec-unknown'), Date.now() + 60_000, { device: cam4, seconds: 2 });
    const r2 = await verifyEvidence(newer, trust({ crls: crlBefore }));
    expect(r2.verdict).toBe('AUTHENTIC');
    expect(r2.fragmentLayer?.time?.revocation).toMatchObject({ checked: true, known: false, note: expect.stringContaining('the newest CRL was issued before it') as string });
    expect((await verifyEvidence(older, trust())).fragmentLayer?.time?.revocation).toMatchObject({ checked: false, known: false });
  });
});

describe('the exporter signature on a bundle', () => {
  let exporterDir: string;
  let exporter: OperatorIdentity;
  const exportTo = async (name: string, created: number, options: { stamper?: Stamper; recording?: string; by?: Exporter } = {}): Promise<string> => {
    const out = join(pki.work, name);
    await exportBundle({ recording: options.recording ?? recA, out, exporter: options.by ?? exporter, reason: 'case 7', now: new Date(created), ...(options.stamper !== undefined ? { stamper: options.stamper } : {}) });
    return out;
  };
  let honest: string;
  let honestUnstamped: string;

  beforeAll(async () => {
    exporterDir = await pki.identity('exporter', 'J. Smith', { now: new Date(NOW - 2 * DAY) });
    exporter = await openOperatorIdentity(exporterDir, 'exporter');
    // made two hours before the exporter's compromise, one with its signature time-stamped then
    honest = await exportTo('honest.kfe.tar', R - 2 * HOUR, { stamper: await stamperAt(() => R - 2 * HOUR + 30_000) });
    honestUnstamped = await exportTo('honest-unstamped.kfe.tar', R - 2 * HOUR);
    const serial = exporter.certificate.serialNumber;
    await revoke(pki.ca, { certSerial: serial, reason: 'keyCompromise', time: new Date(R) });
    crls = parseCrls(await issueAllCrls(pki.ca, pki.caStore), 'crl');
  }, 240_000);
  afterAll(async () => {
    await exporter.close();
  });

  it('names the exporter, its issuer and the proven export time; time-stamped before the compromise: AUTHENTIC', async () => {
    const r = await verifyEvidence(honest, trust({ crls }));
    expect(r.bundle).toMatchObject({
      verdict: 'AUTHENTIC',
      exporter: { trust: 'trusted', subject: 'CN=J. Smith, O=Time Cameras', issuer: 'CN=Time Cameras Operator CA, O=Time Cameras' },
      time: { claimed: iso(R - 2 * HOUR), notAfter: iso(R - 2 * HOUR + 31_000), compromise: { reason: 'keyCompromise' }, token: { valid: true, tsa: 'CN=NVR-TSA, O=Time Cameras' } },
    });
    // not before: the newest token the manifest lists (recording A's, at R − 2 h)
    expect(r.bundle?.time?.notBefore).toBe(iso(R - 2 * HOUR - 1000));
    expect(r.verdict).toBe('AUTHENTIC');
  });

  it('the same export without manifest.tst, and a bundle backdated by the exporter after the compromise: UNPROVEN_TIME', async () => {
    for (const b of [honestUnstamped, await exportTo('backdated.kfe.tar', R - 10 * MIN)]) {
      const r = await verifyEvidence(b, trust({ crls }));
      expect(r.bundle?.verdict).toBe('UNPROVEN_TIME');
      expect(r.verdict).toBe('UNPROVEN_TIME');
      expect(r.bundle?.time?.unproven).toMatch(/"CN=J\. Smith, O=Time Cameras" was revoked at .* \(keyCompromise\).*no RFC 3161 time-stamp proves the exporter's signature existed before the revocation/);
    }
    // time-stamped now, after the compromise: the token proves nothing about before it
    const late = await exportTo('backdated-late.kfe.tar', R - 10 * MIN, { stamper: await stamperAt(() => Date.now()) });
    const r = await verifyEvidence(late, trust({ crls }));
    expect(r.bundle?.verdict).toBe('UNPROVEN_TIME');
    expect(r.bundle?.time?.unproven).toMatch(/is not before the revocation/);
  });

  it('a bundle whose claimed export time is before a token it lists, or ahead of its own manifest.tst, or in the future: NOT_AUTHENTIC', async () => {
    const x2 = await openOperatorIdentity(await pki.identity('exporter', 'K. Jones', { now: new Date(NOW - 2 * DAY) }), 'exporter');
    try {
      const before = await verifyEvidence(await exportTo('before-token.kfe.tar', R - 3 * HOUR, { by: x2 }), trust({ crls }));
      expect(before.bundle?.verdict).toBe('NOT_AUTHENTIC');
      expect(before.bundle?.problems).toContainEqual(expect.stringMatching(/^the manifest claims it was made at .*, but it lists a time-stamp \(line \d of timestamps\.jsonl\) issued at .*: the export time is backdated$/));
      const ahead = await verifyEvidence(await exportTo('ahead.kfe.tar', NOW - MIN, { by: x2, stamper: await stamperAt(() => NOW - 30 * MIN) }), trust({ crls }));
      expect(ahead.bundle?.problems).toContainEqual(expect.stringMatching(/manifest\.tst proves the signature existed by .*: the export time is false$/));
      const future = await verifyEvidence(await exportTo('future.kfe.tar', NOW + DAY, { by: x2 }), trust({ crls }));
      expect(future.bundle?.verdict).toBe('NOT_AUTHENTIC');
      expect(future.bundle?.problems).toContainEqual(expect.stringMatching(/^the manifest \(export time\) claims .*, after the verification time/));
    } finally {
      await x2.close();
    }
  });

  it('an exporter retired (affiliationChanged): bundles from before stay AUTHENTIC without a token, those after are not', async () => {
    const x3 = await openOperatorIdentity(await pki.identity('exporter', 'L. Left', { now: new Date(NOW - 2 * DAY) }), 'exporter');
    try {
      const earlier = await exportTo('retired-before.kfe.tar', R - HOUR, { by: x3 });
      const later = await exportTo('retired-after.kfe.tar', R + 10 * MIN, { by: x3 });
      await revoke(pki.ca, { certSerial: x3.certificate.serialNumber, reason: 'affiliationChanged', time: new Date(R) });
      const c = parseCrls(await issueAllCrls(pki.ca, pki.caStore), 'crl');
      expect((await verifyEvidence(earlier, trust({ crls: c }))).bundle?.verdict).toBe('AUTHENTIC');
      const l = await verifyEvidence(later, trust({ crls: c }));
      expect(l.bundle?.verdict).toBe('NOT_AUTHENTIC');
      expect(l.bundle?.exporter.trustReason).toMatch(/revoked at .* \(affiliationChanged\)/);
    } finally {
      await x3.close();
    }
  });

  it('a camera as exporter (no evidence-export EKU) is NOT_AUTHENTIC; without an operator root no exporter is trusted', async () => {
    const device = await openDevice(await pki.provision('SN-AS-EXPORTER'));
    try {
      const asExporter: Exporter = { config: { name: 'a camera' }, chain: device.chain, sign: (d) => device.store.sign(device.config.keyLabel, d) };
      const b = await exportTo('camera-exporter.kfe.tar', NOW - MIN, { by: asExporter, recording: recB });
      const r = await verifyEvidence(b, { roots: [pki.root], exporterRoots: [pki.root] });
      expect(r.bundle?.verdict).toBe('NOT_AUTHENTIC');
      expect(r.bundle?.exporter).toMatchObject({ trust: 'invalid', subject: 'CN=Time Cameras camera SN-AS-EXPORTER, serialNumber=SN-AS-EXPORTER, O=Time Cameras', trustReason: expect.stringContaining('missing extended key usage evidence-export') as string });
    } finally {
      await device.close();
    }
    const r = await verifyEvidence(honest, { roots: [pki.root] });
    expect(r.bundle?.verdict).toBe('UNTRUSTED_SIGNER');
    expect(r.bundle?.exporter.trustReason).toMatch(/^no exporter root given \(--exporter-root\)/);
    // the manufacturer root certifies cameras, not exporters
    expect((await verifyEvidence(honest, { roots: [pki.root], exporterRoots: [pki.root] })).bundle?.verdict).toBe('UNTRUSTED_SIGNER');
  });
});
