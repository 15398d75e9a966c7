/**
 * keyframe verify on streams signed by ONVIF's own reference implementation (issue 11): the vectors in
 * test/vectors/onvif-media-signing/ (README.md there: release r25.12.3, commands, verdicts), each checked against
 * what the reference validator said about it. The reference's verdicts are read from vectors.json — its per-SEI
 * reports give a verdict per GOP (valid, missing, invalid, or still pending) — and keyframe's JSON report must
 * agree frame by frame: a GOP the reference validated is authentic, a pending one is not, a dropped P slice is the
 * missing frame the vector's `change` names, a flipped byte is that frame when the stream carries a hash list and
 * the whole GOP when it does not (low bitrate mode). The files themselves are checked against their SHA-256 in
 * vectors.json and README.md first, so damaged data is named as such rather than as a verifier bug.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NalType, nalType, splitAnnexB } from '../../src/media/h264/index.js';
import type { RangeStatus, Verdict, VerificationReport } from '../../src/signing/report.js';
import { REPO } from '../helpers/cli.js';
import { runSigningCli } from './_setup.js';

const DIR = join(REPO, 'test', 'vectors', 'onvif-media-signing');
const ROOT = join(DIR, 'certs', 'root_ca.pem');
const WRONG_ROOT = join(DIR, 'certs', 'unrelated_root_ca.pem');

// ---- vectors.json -------------------------------------------------------------------------------------------------

interface RefVerdict {
  public_key_line: string | null;
  public_key: string | null;
  video_line: string | null;
  video: string | null;
  frames_received: number;
  frames_validated: number;
  frames_pending: number;
  per_sei_reports: { nalus: string; verdict: string; statuses: string }[];
}

interface Validation {
  run: 'ca' | 'ca_batch' | 'no_ca' | 'wrong_ca';
  trust_anchor: string | null;
  batch: boolean;
  command: string;
  exit_status: number;
  verdict: RefVerdict;
  output: string;
}

interface Change {
  kind: 'drop_nal' | 'flip_byte';
  source: string;
  nal_index: number | number[];
  frame_index?: number;
}

interface Vector {
  file: string;
  sha256: string;
  size: number;
  description: string;
  source: string | null;
  change: Change | null;
  container: 'annexb' | 'mp4';
  validations: Validation[];
}

const meta = JSON.parse(readFileSync(join(DIR, 'vectors.json'), 'utf8')) as { reference: { tag: string; commit: string }; vectors: Vector[] };
const vectors = meta.vectors;
/** keyframe's own signed output and the reference validator's verdicts on it (keyframe/keyframe.json). */
const kfMeta = JSON.parse(readFileSync(join(DIR, 'keyframe', 'keyframe.json'), 'utf8')) as { validator: { tag: string }; vectors: Vector[] };
const kfVectors = kfMeta.vectors.map((v) => ({ ...v, file: `keyframe/${v.file}` }));
const KF_ROOT = join(DIR, 'keyframe', 'keyframe_root.pem');
const byName = new Map(vectors.map((v) => [v.file, v]));
const annexb = vectors.filter((v) => v.container === 'annexb');

function vector(file: string): Vector {
  const v = byName.get(file);
  if (v === undefined) throw new Error(`no vector ${file} in vectors.json`);
  return v;
}

function run(v: Vector, name: Validation['run']): Validation {
  const r = v.validations.find((x) => x.run === name);
  if (r === undefined) throw new Error(`${v.file}: no reference run ${name}`);
  return r;
}

// ---- the stream, read independently of the verifier ----------------------------------------------------------------

interface Gop {
  first: number;
  last: number;
}

/** Frames (primary slices: first_mb_in_slice = 0, the first bit after the NAL header) and GOPs (from each IDR). */
function pictures(data: Uint8Array): { frames: number; gops: Gop[] } {
  let frames = 0;
  const starts: number[] = [];
  for (const nal of splitAnnexB(data)) {
    const t = nalType(nal);
    if ((t !== NalType.SLICE && t !== NalType.IDR) || nal.length < 2 || ((nal[1] as number) & 0x80) === 0) continue;
    if (t === NalType.IDR) starts.push(frames);
    frames++;
  }
  const gops = starts.map((first, k) => ({ first, last: (starts[k + 1] ?? frames) - 1 }));
  return { frames, gops };
}

// ---- the reference's verdict per GOP --------------------------------------------------------------------------------

type GopVerdict = 'valid' | 'missing' | 'invalid' | 'pending';

/**
 * The reference validator's verdict for each GOP, from its per-SEI reports (continuous mode): a report validates a GOP
 * when one of its pictures (I or P in the NAL-unit string) has a final status; the certificate SEI's report has none.
 * GOPs after the last validated one are pending (no SEI signed them).
 */
function referenceGops(r: Validation, gops: number): GopVerdict[] {
  const out: GopVerdict[] = [];
  for (const rep of r.verdict.per_sei_reports) {
    const final = [...rep.nalus].some((c, i) => (c === 'I' || c === 'P') && '.NM'.includes(rep.statuses[i] ?? 'P'));
    if (!final) continue;
    if (rep.verdict !== 'valid' && rep.verdict !== 'missing' && rep.verdict !== 'invalid') throw new Error(`unknown reference verdict ${rep.verdict}`);
    out.push(rep.verdict);
  }
  if (out.length > gops) throw new Error(`${out.length} validated GOPs in a stream of ${gops}`);
  while (out.length < gops) out.push('pending');
  return out;
}

// ---- keyframe's verdict ---------------------------------------------------------------------------------------------

async function keyframeVerify(file: string, root = ROOT): Promise<VerificationReport> {
  const r = await runSigningCli(['verify', join(DIR, file), '--root', root, '--json']);
  expect(r.stderr, file).toBe('');
  return JSON.parse(r.stdout) as VerificationReport;
}

/** keyframe's status of every input frame (undefined: in no range), and its missing ranges in session frames. */
function frameStatuses(report: VerificationReport): { input: (RangeStatus | undefined)[]; missing: [number, number][] } {
  const input: (RangeStatus | undefined)[] = new Array<RangeStatus | undefined>(report.frames).fill(undefined);
  const missing: [number, number][] = [];
  for (const s of report.sessions)
    for (const g of s.ranges) {
      if (g.status === 'missing') missing.push([g.firstFrame, g.lastFrame]);
      if (g.inputFirst === undefined) continue;
      for (let f = g.inputFirst; f <= (g.inputLast ?? g.inputFirst); f++) {
        if (input[f] !== undefined) throw new Error(`input frame ${f} in two ranges (${input[f]}, ${g.status})`);
        input[f] = g.status;
      }
    }
  return { input, missing };
}

/** Input frames with the given status, as [first, last] runs. */
function runs(input: readonly (RangeStatus | undefined)[], pick: (s: RangeStatus | undefined) => boolean): [number, number][] {
  const out: [number, number][] = [];
  input.forEach((s, f) => {
    if (!pick(s)) return;
    const last = out[out.length - 1];
    if (last !== undefined && last[1] === f - 1) last[1] = f;
    else out.push([f, f]);
  });
  return out;
}

/**
 * How the vector signs: whether its GOP SEIs carry a hash list (a changed slice is located to its frame), from the
 * reference's own report — a GOP it found invalid with only some pictures `N` was checked against a hash list.
 */
function localised(r: Validation): boolean {
  return r.verdict.per_sei_reports.some((rep) => rep.verdict === 'invalid' && [...rep.nalus].some((c, i) => (c === 'I' || c === 'P') && rep.statuses[i] === '.'));
}

// ---- the data ---------------------------------------------------------------------------------------------------------

describe('ONVIF reference vectors: the data', () => {
  const readme = readFileSync(join(DIR, 'README.md'), 'utf8');

  it('names the reference release it came from', () => {
    expect(meta.reference).toMatchObject({ tag: 'r25.12.3', commit: '7634c1b6303263211650b533c81226d5653d1843' });
    expect(readme).toContain('r25.12.3');
    expect(readme).toContain(meta.reference.commit);
  });

  it.each([...vectors, ...kfVectors].map((v) => [v.file, v] as const))('%s has the SHA-256 and size of its JSON and README.md', (file, v) => {
    const data = readFileSync(join(DIR, file));
    const sha = createHash('sha256').update(data).digest('hex');
    expect(sha, `${file} differs from vectors.json`).toBe(v.sha256);
    expect(data.length).toBe(v.size);
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${file}\` | ${v.size} |`));
    expect(row, `README.md has no SHA-256 row for ${file}`).toBeDefined();
    expect(row).toContain(`\`${sha}\``);
  });

  it('README.md lists no file that is not in vectors.json or keyframe/keyframe.json', () => {
    const listed = [...readme.matchAll(/^\| `([^`]+\.(?:h264|mp4))` \| \d+ \| `[0-9a-f]{64}` \|$/gm)].map((m) => m[1]);
    expect(listed.sort()).toEqual([...vectors, ...kfVectors].map((v) => v.file).sort());
  });

  it.each([...vectors, ...kfVectors].flatMap((v) => v.validations.map((r) => [`${v.file} (${r.run})`, v, r] as const)))('%s: the parsed verdict is what the raw output says', (_name, v, r) => {
    const results = r.output.split('# ---- validation_results.txt ----\n')[1] ?? '';
    const lines = results.split('\n');
    expect(lines.filter((l) => l.startsWith('PUBLIC KEY'))[0]).toBe(r.verdict.public_key_line);
    expect(lines.some((l) => l === r.verdict.video_line)).toBe(true);
    expect(results).toMatch(new RegExp(`^Number of received frames : ${r.verdict.frames_received}$`, 'm'));
    expect(results).toMatch(new RegExp(`^Number of validated frames: ${r.verdict.frames_validated}$`, 'm'));
    expect(r.output).toContain(`# exit status: ${r.exit_status}\n`);
    expect(r.command).toContain(v.file.replace(/^keyframe\//, ''));
  });

  it.each([...annexb, ...kfVectors].map((v) => [v.file, v] as const))('%s: the reference counted the frames that are in the file', (_file, v) => {
    expect(pictures(readFileSync(join(DIR, v.file))).frames).toBe(run(v, 'ca').verdict.frames_received);
  });

  it('the certificates are public: no private key in the directory', () => {
    for (const f of ['root_ca.pem', 'intermediate_ca.pem', 'signing_cert.pem', 'chain_in_sei.pem', 'unrelated_root_ca.pem']) {
      const pem = readFileSync(join(DIR, 'certs', f), 'utf8');
      expect(pem).toMatch(/^-----BEGIN CERTIFICATE-----/);
      expect(pem).not.toContain('PRIVATE KEY');
    }
  });
});

// ---- keyframe against the reference -----------------------------------------------------------------------------------

/**
 * The keyframe verdict that corresponds to the reference's GOP verdicts. Pending GOPs (after the last SEI: ONVIF's
 * "dangling end") do not change it, as they do not change the reference's: for a stream without keyframe's end
 * marker a cut end is a guarantee the report names as missing, and the frames themselves must not be authentic.
 */
function expectedVerdict(gops: readonly GopVerdict[]): Verdict {
  if (gops.includes('invalid')) return 'NOT_AUTHENTIC';
  if (gops.includes('missing')) return 'AUTHENTIC_WITH_GAPS';
  return 'AUTHENTIC';
}

/** Signed vectors the reference validated (at least one GOP), with the trust anchor. */
const validated = annexb.filter((v) => run(v, 'ca').verdict.public_key === 'VALID');

describe('keyframe verify on the ONVIF reference vectors, against the reference validator', () => {
  it('covers the cases of issue 11: intact default, low bitrate, multi-slice, dropped P slice, flipped byte, certificate SEI', () => {
    for (const f of ['signed_default.h264', 'signed_lowbitrate.h264', 'signed_multislice.h264', 'signed_certsei.h264', 'tampered_drop_p.h264', 'tampered_flip_p.h264'])
      expect(validated.map((v) => v.file)).toContain(f);
  });

  it.each(validated.map((v) => [v.file, v] as const))('%s: the verdict and every frame agree with the reference', async (file, v) => {
    const ref = run(v, 'ca');
    const data = readFileSync(join(DIR, file));
    const { frames, gops } = pictures(data);
    const refGops = referenceGops(ref, gops.length);
    const report = await keyframeVerify(file);
    const { input, missing } = frameStatuses(report);
    const detail = `${file}: reference GOPs ${refGops.join(', ')}; keyframe ${report.verdict}, ranges ${JSON.stringify(report.sessions.map((s) => s.ranges))}`;

    expect(report.frames, detail).toBe(frames);
    expect(report.verdict, detail).toBe(expectedVerdict(refGops));
    for (const s of report.sessions) if (s.ranges.some((g) => g.status === 'authentic')) expect(s.trust, detail).toBe('trusted');
    // every frame of the input is named in the report
    expect(runs(input, (s) => s === undefined), detail).toEqual([]);

    const changed = v.change?.frame_index;
    const expectMissing: [number, number][] = [];
    gops.forEach((g, k) => {
      const verdict = refGops[k] as GopVerdict;
      for (let f = g.first; f <= g.last; f++) {
        const at = `${detail}; input frame ${f} (GOP ${k + 1}, reference: ${verdict})`;
        if (verdict === 'valid') expect(input[f], at).toBe('authentic');
        else if (verdict === 'pending') expect(['excluded', 'unverified'], at).toContain(input[f]);
        else if (verdict === 'missing') expect(input[f], at).toBe('authentic');
        else if (localised(ref) && changed !== undefined && v.change?.kind === 'flip_byte') expect(input[f], at).toBe(f === changed ? 'tampered' : 'authentic');
        else expect(input[f], at).not.toBe('authentic');
      }
      if (verdict === 'missing') {
        // the dropped picture: the vector's change names its frame, in the numbering of the untampered stream
        expect(changed, detail).toBeDefined();
        expectMissing.push([changed as number, changed as number]);
      }
    });
    if (refGops.includes('missing')) expect(missing, detail).toEqual(expectMissing);
    else if (!refGops.includes('invalid')) expect(missing, detail).toEqual([]);
  });

  it('a dropped P slice (hash list): AUTHENTIC_WITH_GAPS, frame 35 missing, all 99 frames present authentic — reference: VALID, BUT HAS MISSING FRAMES', async () => {
    const v = vector('tampered_drop_p.h264');
    expect(run(v, 'ca').verdict.video).toBe('VALID_WITH_MISSING_FRAMES');
    const report = await keyframeVerify(v.file);
    const { input, missing } = frameStatuses(report);
    expect(report.verdict).toBe('AUTHENTIC_WITH_GAPS');
    expect(missing).toEqual([[35, 35]]);
    expect(runs(input, (s) => s === 'authentic')).toEqual([[0, 98]]);
  });

  it('a flipped byte (hash list): NOT_AUTHENTIC, frame 35 tampered, the rest authentic — reference: VIDEO IS INVALID', async () => {
    const v = vector('tampered_flip_p.h264');
    expect(run(v, 'ca').verdict.video).toBe('INVALID');
    const report = await keyframeVerify(v.file);
    const { input } = frameStatuses(report);
    expect(report.verdict).toBe('NOT_AUTHENTIC');
    expect(runs(input, (s) => s === 'tampered')).toEqual([[35, 35]]);
    expect(runs(input, (s) => s !== 'authentic')).toEqual([[35, 35]]);
  });

  it('low bitrate mode: a dropped or flipped P slice makes GOP 2 (frames 25–49) not authentic, GOPs 1 and 3 authentic — reference: VIDEO IS INVALID', async () => {
    for (const [file, gop2] of [
      ['tampered_lowbitrate_flip_p.h264', [25, 49]],
      ['tampered_lowbitrate_drop_p.h264', [25, 48]],
    ] as const) {
      const v = vector(file);
      expect(run(v, 'ca').verdict.video).toBe('INVALID');
      const report = await keyframeVerify(file);
      const { input } = frameStatuses(report);
      expect(report.verdict, file).toBe('NOT_AUTHENTIC');
      const authentic = runs(input, (s) => s === 'authentic');
      // GOP 4 is signed by no SEI (no end-of-stream SEI): not authentic either
      expect(authentic, file).toEqual([
        [0, 24],
        [gop2[1] + 1, gop2[1] + 25],
      ]);
      expect(runs(input, (s) => s === 'tampered'), file).toEqual([[gop2[0], gop2[1]]]);
    }
  });

  it('the certificate SEI stripped: no frame authentic and not UNSIGNED (the GOP SEIs claim a signature) — reference: PUBLIC KEY COULD NOT BE VALIDATED', async () => {
    const v = vector('tampered_certsei_stripped.h264');
    expect(run(v, 'ca').verdict.public_key).toBe('COULD_NOT_BE_VALIDATED');
    const report = await keyframeVerify(v.file);
    expect(['UNTRUSTED_SIGNER', 'NOT_AUTHENTIC']).toContain(report.verdict);
    expect(runs(frameStatuses(report).input, (s) => s === 'authentic')).toEqual([]);
  });

  it.each(['unsigned_320x240_2s.h264', 'unsigned_320x240_4s_slices.h264'])('%s (the unsigned input): UNSIGNED — reference: NO COMPLETE GOPS / NOT SIGNED', async (file) => {
    const v = vector(file);
    expect(run(v, 'ca').verdict.public_key).toBe('COULD_NOT_BE_VALIDATED');
    const report = await keyframeVerify(file);
    expect(report.verdict).toBe('UNSIGNED');
    expect(report.frames).toBe(run(v, 'ca').verdict.frames_received);
  });

  it('a root that did not issue the chain: UNTRUSTED_SIGNER — reference: PUBLIC KEY IS NOT VALID (video valid)', async () => {
    const v = vector('signed_default.h264');
    expect(run(v, 'wrong_ca').verdict).toMatchObject({ public_key: 'NOT_VALID', video: 'VALID' });
    const report = await keyframeVerify(v.file, WRONG_ROOT);
    expect(report.verdict).toBe('UNTRUSTED_SIGNER');
    expect(report.sessions.map((s) => s.trust)).not.toContain('trusted');
  });

  it.each(['signed_example_app.mp4', 'signed_example_app_certsei.mp4'])(
    '%s (example app, claims a time about 1975, before its certificate was issued): not AUTHENTIC, nothing tampered — the reference does not check time (VIDEO IS VALID)',
    async (file) => {
      const v = vector(file);
      expect(run(v, 'ca').verdict.video).toBe('VALID');
      const report = await keyframeVerify(file);
      // the certificates were issued on 2026-12-06: a chain checked at the claimed recording time does not hold
      expect(report.verdict).not.toBe('AUTHENTIC');
      // nothing in the file was altered: the reference validated GOP 1, and GOP 2 is pending (no SEI after it survives qtdemux)
      expect(report.sessions.flatMap((s) => s.ranges).filter((g) => g.status === 'tampered')).toEqual([]);
    },
  );
});

// ---- keyframe's own output, which the reference validates --------------------------------------------------------------

describe("keyframe's own signed stream: the reference validator accepts it, keyframe verify agrees and localises further", () => {
  const kf = (file: string): Vector => {
    const v = kfVectors.find((x) => x.file === `keyframe/${file}`);
    if (v === undefined) throw new Error(`no ${file} in keyframe/keyframe.json`);
    return v;
  };

  it('the validator is the reference release r25.12.3', () => {
    expect(kfMeta.validator.tag).toBe('r25.12.3');
  });

  it.each(['kf_hashlist_4s.h264', 'kf_lowbitrate_4s.h264', 'kf_hashlist_multislice.h264'])('%s: reference PUBLIC KEY IS VALID, VIDEO IS VALID; keyframe AUTHENTIC, every frame', async (file) => {
    const v = kf(file);
    for (const r of v.validations) expect(r.verdict, r.run).toMatchObject({ public_key: 'VALID', video: 'VALID', frames_pending: 0 });
    const report = await keyframeVerify(v.file, KF_ROOT);
    const { input, missing } = frameStatuses(report);
    expect(report.verdict).toBe('AUTHENTIC');
    expect(report.frames).toBe(run(v, 'ca').verdict.frames_received);
    expect(runs(input, (s) => s === 'authentic')).toEqual([[0, report.frames - 1]]);
    expect(missing).toEqual([]);
  });

  it.each([
    ['kf_hashlist_drop_p.h264', 'VALID_WITH_MISSING_FRAMES'],
    ['kf_lowbitrate_drop_p.h264', 'INVALID'],
  ])('%s: reference %s; keyframe AUTHENTIC_WITH_GAPS, frame 35 missing, the 99 frames present authentic', async (file, refVideo) => {
    const v = kf(file);
    expect(run(v, 'ca').verdict.video).toBe(refVideo);
    expect(v.change?.frame_index).toBe(35);
    const report = await keyframeVerify(v.file, KF_ROOT);
    const { input, missing } = frameStatuses(report);
    expect(report.verdict).toBe('AUTHENTIC_WITH_GAPS');
    expect(missing).toEqual([[35, 35]]);
    expect(runs(input, (s) => s === 'authentic')).toEqual([[0, 98]]);
  });

  it.each(['kf_hashlist_flip_p.h264', 'kf_lowbitrate_flip_p.h264'])('%s: reference VIDEO IS INVALID; keyframe NOT_AUTHENTIC, frame 35 tampered, the rest authentic', async (file) => {
    const v = kf(file);
    expect(run(v, 'ca').verdict.video).toBe('INVALID');
    const report = await keyframeVerify(v.file, KF_ROOT);
    const { input } = frameStatuses(report);
    expect(report.verdict).toBe('NOT_AUTHENTIC');
    expect(runs(input, (s) => s !== 'authentic')).toEqual([[35, 35]]);
    expect(input[35]).toBe('tampered');
  });
});
