/**
 * The ONVIF Export File Format boxes (src/media/mp4/oeff.ts) and the movie times (movie-times.ts), pure: what is
 * built parses back to the same values, the AlgorithmIdentifiers are the ones openssl writes, the times convert
 * exactly, and the bytes a seal covers follow the specification's rules (its own signature zero, later signing
 * instances removed with the sizes of ipro and meta adjusted).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildInitSegment, findBoxes, iterateBoxes, readBoxHeader } from '../../../src/media/mp4/index.js';
import { msFrom1904, readMovieTimes, seconds1904, setMovieTimes } from '../../../src/media/mp4/movie-times.js';
import {
  DEFAULT_PSS_SALT,
  ECDSA_WITH_SHA256,
  SHA256_WITH_RSA,
  buildExportMeta,
  isoFromTicks,
  msFromTicks,
  parseExportMeta,
  rsassaPssSha256,
  sealAlgorithm,
  sealInput,
  ticksFromMs,
  type SurveillanceExport,
} from '../../../src/media/mp4/oeff.js';
import { box } from '../../../src/media/mp4/writer.js';

const work = mkdtempSync(join(tmpdir(), 'kf-oeff-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const EXPORT: SurveillanceExport = {
  unitName: 'keyframe 0.1.0',
  unitUrl: '',
  unitMac: '',
  exportTime: seconds1904(Date.parse('2026-11-20T10:00:07.900Z')),
  operator: 'J. Smith',
  sources: [{ trackId: 1, name: 'CAM-0001 (Ünïcode)', url: '', mac: '', line: '' }],
};

/** The signatureAlgorithm of a certificate openssl signs with these -sigopt options, DER. */
function opensslSignatureAlgorithm(sigopts: string[]): Buffer {
  const key = join(work, 'rsa.pem');
  execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key], { stdio: 'ignore' });
  const der = join(work, 'cert.der');
  execFileSync('openssl', ['req', '-x509', '-new', '-key', key, '-subj', '/CN=x', '-sha256', ...sigopts.flatMap((o) => ['-sigopt', o]), '-outform', 'DER', '-out', der], { stdio: 'ignore' });
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }: the second element
  const cert = readFileSync(der);
  const outer = derTlv(cert, 0);
  const tbs = derTlv(cert, outer.content);
  const alg = derTlv(cert, tbs.end);
  return cert.subarray(tbs.end, alg.end);
}

/** A DER TLV's content start and end (definite lengths only). */
function derTlv(der: Uint8Array, at: number): { content: number; end: number } {
  const first = der[at + 1] as number;
  if (first < 0x80) return { content: at + 2, end: at + 2 + first };
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + (der[at + 2 + i] as number);
  return { content: at + 2 + n, end: at + 2 + n + len };
}

describe('ONVIF Export File Format boxes', () => {
  it('RSASSA-PSS and PKCS#1 AlgorithmIdentifiers are byte for byte what openssl writes', () => {
    for (const salt of [32, 20, 0]) {
      const theirs = opensslSignatureAlgorithm(['rsa_padding_mode:pss', `rsa_pss_saltlen:${salt}`, 'rsa_mgf1_md:sha256']);
      expect(Buffer.from(rsassaPssSha256(salt)).toString('hex')).toBe(theirs.toString('hex'));
      expect(sealAlgorithm(theirs)).toEqual({ kind: 'rsassa-pss', saltLength: salt });
    }
    expect(Buffer.from(SHA256_WITH_RSA).toString('hex')).toBe(opensslSignatureAlgorithm([]).toString('hex'));
    expect(sealAlgorithm(undefined)).toEqual({ kind: 'rsassa-pss', saltLength: DEFAULT_PSS_SALT });
    expect(sealAlgorithm(ECDSA_WITH_SHA256)).toEqual({ kind: 'ecdsa' });
    expect(sealAlgorithm(Uint8Array.of(0x30, 0x03, 0x06, 0x01, 0x00))).toHaveProperty('unsupported');
  });

  it('cstb times: 100 ns since 1601, to and from epoch milliseconds', () => {
    // 1601-01-01 to 1970-01-01 is 11644473600 s (the Windows FILETIME offset)
    expect(ticksFromMs(0)).toBe(116_444_736_000_000_000n);
    const ms = Date.parse('2026-11-20T09:59:58.123Z');
    expect(msFromTicks(ticksFromMs(ms))).toBe(ms);
    expect(isoFromTicks(ticksFromMs(ms))).toBe('2026-11-20T09:59:58.123Z');
    expect(isoFromTicks(ticksFromMs(ms) + 4_567n)).toBe('2026-11-20T09:59:58.1234567Z');
    expect(msFromTicks(ticksFromMs(ms) + 9_999n)).toBe(ms);
    // ISO/IEC 14496-12 times: seconds since 1904
    expect(seconds1904(0)).toBe(2_082_844_800);
    expect(msFrom1904(seconds1904(ms))).toBe(Math.floor(ms / 1000) * 1000);
  });

  it('the export meta box parses back to what was written; the signature is the last bytes of meta', () => {
    const cert = Uint8Array.from(Buffer.from('3082 0001'.replace(/ /g, ''), 'hex'));
    const start = ticksFromMs(Date.parse('2026-11-20T09:00:00Z'));
    const { meta, signatureOffset } = buildExportMeta(EXPORT, { certificate: cert, algorithm: ECDSA_WITH_SHA256, userInformation: 'case 42: request of 2026-11-20', startTimes: [{ trackId: 1, startTime: start }], signatureLength: 71 });
    expect(signatureOffset).toBe(meta.length - 71);
    expect(readBoxHeader(meta, 0, meta.length)).toMatchObject({ type: 'meta', size: meta.length });
    const p = parseExportMeta(meta);
    expect(p.problems).toEqual([]);
    expect(p.unsealed).toEqual([]);
    expect(p.handler).toBe('oeff');
    expect(p.surveillance).toEqual(EXPORT);
    expect(p.protectionCount).toBe(1);
    expect(p.seals).toHaveLength(1);
    const s = p.seals[0];
    expect(s).toMatchObject({ schemeType: 'oeff', schemeVersion: 0x0001_0000, userInformation: 'case 42: request of 2026-11-20', startTimes: [{ trackId: 1, startTime: start }], signature: { offset: signatureOffset, length: 71 }, problems: [] });
    expect(Buffer.from(s?.certificate ?? []).equals(Buffer.from(cert))).toBe(true);
    expect(Buffer.from(s?.algorithm ?? []).equals(Buffer.from(ECDSA_WITH_SHA256))).toBe(true);
    // the layout of the specification's figure: meta{hdlr, suep, ipro{sinf{cstb, schm, schi{auib, sigC, cert, sibo}}}}
    const types = (from: number, to: number): string[] => [...iterateBoxes(meta, from, to)].map((h) => h.type);
    expect(types(12, meta.length)).toEqual(['hdlr', 'suep', 'ipro']);
    const [sinf] = findBoxes(meta, ['meta', 'ipro']).map((h) => [...iterateBoxes(meta, h.offset + 14, h.offset + h.size)][0]);
    expect(sinf?.type).toBe('sinf');
    if (sinf === undefined) return;
    expect(types(sinf.offset + 8, sinf.offset + sinf.size)).toEqual(['cstb', 'schm', 'schi']);
  });

  it('a seal covers its meta with its signature zero; a later signing instance is removed and the sizes adjusted', () => {
    const cert = Uint8Array.of(0x30, 0x00);
    const { meta } = buildExportMeta(EXPORT, { certificate: cert, signatureLength: 256 });
    const signed = Uint8Array.from(meta);
    signed.fill(0xab, meta.length - 256);
    const one = parseExportMeta(signed);
    expect(Buffer.from(sealInput(signed, one, 0)).equals(Buffer.from(meta))).toBe(true);

    // a second signer appends a sinf to ipro (protection_count stays 1), as the specification's Repeated Signing
    const second = box('sinf', box('schm', Uint8Array.of(0, 0, 0, 0, 0x6f, 0x65, 0x66, 0x66, 0, 1, 0, 0)), box('schi', box('cert', cert), box('sibo', new Uint8Array(64).fill(0xcd))));
    const twice = new Uint8Array(signed.length + second.length);
    twice.set(signed);
    twice.set(second, signed.length);
    const view = new DataView(twice.buffer);
    view.setUint32(0, twice.length);
    const ipro = findBoxes(signed, ['meta', 'ipro'])[0];
    if (ipro === undefined) throw new Error('no ipro');
    view.setUint32(ipro.offset, ipro.size + second.length);
    const two = parseExportMeta(twice);
    expect(two.problems).toEqual([]);
    expect(two.seals).toHaveLength(2);
    expect(two.seals[1]?.problems).toEqual([]);
    // the first seal's input is exactly the meta it signed, whatever came after it
    expect(Buffer.from(sealInput(twice, two, 0)).equals(Buffer.from(meta))).toBe(true);
    const input2 = sealInput(twice, two, 1);
    expect(input2.length).toBe(twice.length);
    expect(Buffer.from(input2.subarray(0, signed.length)).equals(Buffer.from(twice.subarray(0, signed.length)))).toBe(true);
    expect(input2.subarray(twice.length - 64).every((b) => b === 0)).toBe(true);
  });

  it('names what the specification requires and is missing, and what no seal covers', () => {
    const noSeal = parseExportMeta(box('meta', new Uint8Array(4)));
    expect(noSeal.problems).toEqual(["no SurveillanceExportBox ('suep'): the specification requires one", "no ItemProtectionBox ('ipro'): the file is not sealed"]);
    const { meta } = buildExportMeta(EXPORT, { certificate: Uint8Array.of(0x30, 0x00), signatureLength: 8 });
    const extra = box('free', new Uint8Array(3));
    const grown = new Uint8Array(meta.length + extra.length);
    grown.set(meta);
    grown.set(extra, meta.length);
    new DataView(grown.buffer).setUint32(0, grown.length);
    expect(parseExportMeta(grown).unsealed).toEqual(["'free' in 'meta' after 'ipro'"]);
  });
});

describe('movie times', () => {
  it('sets creation and modification times in mvhd, tkhd and mdhd, nothing else', () => {
    const init = buildInitSegment({ trackId: 1, timescale: 90000, width: 320, height: 240, avcC: { profile: 66, compatibility: 0, level: 30, lengthSize: 4, sps: [Uint8Array.of(0x67, 0x42, 0, 0x1e)], pps: [Uint8Array.of(0x68, 0xce, 0x3c, 0x80)] } });
    expect(readMovieTimes(init)).toEqual([0, 0, 0].map(() => ({ creation: 0, modification: 0 })));
    const t = { creation: seconds1904(Date.parse('2026-11-20T09:00:00Z')), modification: seconds1904(Date.parse('2026-11-20T10:00:00Z')) };
    const set = setMovieTimes(init, t);
    expect(set.length).toBe(init.length);
    expect(readMovieTimes(set)).toEqual([t, t, t]);
    expect(Buffer.from(setMovieTimes(set, { creation: 0, modification: 0 })).equals(Buffer.from(init))).toBe(true);
    const differing = [...set].flatMap((b, i) => (b !== init[i] ? [i] : []));
    expect(differing.length).toBeLessThanOrEqual(3 * 8);
  });
});
