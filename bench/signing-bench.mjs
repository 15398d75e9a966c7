// Signed video (SEI layer) benchmark on a 1080p25 4 Mbit/s x264 stream (20 s, zerolatency, no B-frames, GOP 50,
// Annex-B; made with ffmpeg, cached), with provisioned devices as a camera has them (factory CA, device
// certificate, per-camera counter on disk). Measures
//  - signing CPU seconds per second of video (StreamSigner over the NAL units, SEIs built and signed), with the
//    device key in the software key store and in SoftHSM2 (PKCS#11, in process, so its CPU time counts);
//  - signature bytes per second: the Media Signing SEIs (NAL unit bytes, as `keyframe sign` reports them), split
//    into the steady state (unit SEIs) and the once-per-session part (certificate SEI), and per TLV;
//  - verification on one core: `keyframe verify`'s pipeline (AnnexBSplitter over 1 MiB chunks, StreamVerifier,
//    root and chain checked) in MB/s of the signed stream, and as a ratio to raw node:crypto SHA-256 over the
//    same bytes (one update over the whole buffer) in the same run; and the StreamVerifier alone on NAL units.
//    Twice: on the 20 s clip (one session: its set-up, the X.509 chain check, is included) and on a 2-minute
//    session (the clip's NAL units six times over, signed as one session), where the set-up no longer counts.
//    The verifier keeps parsed certificate chains per process (a camera sends the same chain in every session), so
//    after the first run the clip's chain is a known one: its path, validity and signatures at the recording start
//    are still checked, on certificates already parsed. The clip is measured once more with that cache emptied
//    before every run (firstSession: a camera's first session in the process).
// CPU time from process.cpuUsage (user+system), medians of RUNS. Results: bench/results/signing.json.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { machine, median } from './_machine.mjs';

const RUNS = Number(process.env.RUNS ?? 5);
const VERIFY_RUNS = Number(process.env.VERIFY_RUNS ?? 21);
/**
 * Verification runs before the measured ones: the JIT takes 20 to 40 runs of the clip to settle (the first block,
 * the pipeline's, was still a quarter slower after ten), and its compiler threads count in the process's CPU time.
 */
const VERIFY_WARMUP = Number(process.env.VERIFY_WARMUP ?? 30);
const LONG_REPEAT = 6;
const SECONDS = 20;
const FPS = 25;
const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

// ---- a throwaway SoftHSM token, configured before the module is loaded ------------------------------------------
const work = mkdtempSync(join(tmpdir(), 'kf-bench-sign-'));
mkdirSync(join(work, 'tokens'));
const conf = join(work, 'softhsm2.conf');
writeFileSync(conf, `directories.tokendir = ${join(work, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
process.env.SOFTHSM2_CONF = conf;
process.env.KF_BENCH_PIN = 'benchmark passphrase';
const pinFile = join(work, 'token.pin');
writeFileSync(pinFile, '987654', { mode: 0o600 });
execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--so-pin', '12345678', '--pin', '987654'], { stdio: 'pipe' });

await import('reflect-metadata');
const dist = new URL('../dist/', import.meta.url);
const load = (p) => import(new URL(p, dist).href);
const { initCa } = await load('pki/ca.js');
const { CaStore } = await load('pki/ca-store.js');
const { openDevice, provisionDevice } = await load('pki/device.js');
const { parseCertificates } = await load('pki/pem.js');
const { deviceSigner } = await load('signing/device.js');
const { StreamVerifier } = await load('signing/verifier.js');
const { parseSigningSei } = await load('signing/sei.js');
const { forgetParsedChains } = await load('signing/trust.js');
const { decodeTlvs } = await load('signing/tlv.js');
const { AnnexBSplitter, splitAnnexB, writeAnnexB } = await load('media/h264/index.js');

// ---- the clip ----------------------------------------------------------------------------------------------------
const CACHE = join(tmpdir(), 'keyframe-bench-clips');
function makeClip() {
  mkdirSync(CACHE, { recursive: true });
  const path = join(CACHE, `1080p25-4M-${SECONDS}s-g50.h264`);
  if (existsSync(path)) return path;
  const tmp = `${path}.${process.pid}.tmp`;
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=1920x1080:rate=${FPS}`, '-t', String(SECONDS),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-bf', '0', '-b:v', '4M', '-maxrate', '4M', '-bufsize', '8M',
    '-g', '50', '-keyint_min', '50', '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-bsf:v', 'h264_mp4toannexb', '-f', 'h264', tmp]);
  renameSync(tmp, path);
  return path;
}
const source = readFileSync(makeClip());
const sourceNals = splitAnnexB(source);

// ---- devices: a factory CA, one camera with its key in the software key store, one in SoftHSM ----------------------
const caDir = join(work, 'ca');
await initCa({ dir: caDir, keystore: `file:${join(caDir, 'keys')};pin-env=KF_BENCH_PIN`, org: 'Bench Cameras' });
const ca = await CaStore.open(caDir);
const caStore = await ca.openKeyStore();
const [root] = parseCertificates(readFileSync(join(caDir, 'root.pem')), 'root.pem');
const devices = {
  software: join(work, 'dev-soft'),
  'pkcs11 (SoftHSM)': join(work, 'dev-hsm'),
};
await provisionDevice({ ca, caKeyStore: caStore, dir: devices.software, serial: 'SN-SOFT', keystore: `file:${join(devices.software, 'keys')};pin-env=KF_BENCH_PIN` });
await provisionDevice({ ca, caKeyStore: caStore, dir: devices['pkcs11 (SoftHSM)'], serial: 'SN-HSM', keystore: `pkcs11:module=${SOFTHSM_MODULE};token=bench;pin-file=${pinFile}` });
await caStore.close();

const cpuMs = (c) => (c.user + c.system) / 1000;

/** Signs the clip once: CPU for the signer alone (NAL units in, NAL units out), and the signed stream. */
async function signOnce(device, repeat = 1) {
  const signer = await deviceSigner(device, { start: new Date() });
  const out = [];
  const c0 = process.cpuUsage();
  for (let k = 0; k < repeat; k++) for (const nal of sourceNals) for (const o of await signer.push(nal)) out.push(o);
  for (const o of await signer.finish()) out.push(o);
  const cpu = cpuMs(process.cpuUsage(c0));
  return { cpu, out, stats: { ...signer.stats } };
}

function seiBytes(nals) {
  const perTag = {};
  const r = { unitSeis: 0, unitSeiBytes: 0, certificateSeiBytes: 0, perTag };
  for (const nal of nals) {
    const p = parseSigningSei(nal);
    if (p === undefined) continue;
    if (p.kind !== 'unit') {
      r.certificateSeiBytes += nal.length;
      continue;
    }
    r.unitSeis++;
    r.unitSeiBytes += nal.length;
    for (const t of decodeTlvs(p.signedData.subarray(17))) perTag[t.tag] = (perTag[t.tag] ?? 0) + 3 + t.value.length;
    perTag[3] = (perTag[3] ?? 0) + 3 + p.signature.length;
  }
  return r;
}

const TAG_NAMES = { 1: 'general', 2: 'hash list', 3: 'signature', 0x81: 'parameter sets', 0x82: 'end marker' };

const signing = {};
let signed;
let signedLong;
for (const [name, dir] of Object.entries(devices)) {
  const device = await openDevice(dir);
  await signOnce(device); // warm-up: key store session, JIT
  if (name === 'software') signedLong = writeAnnexB((await signOnce(device, LONG_REPEAT)).out);
  const cpu = [];
  let last;
  for (let r = 0; r < RUNS; r++) {
    last = await signOnce(device);
    cpu.push(last.cpu);
  }
  await device.close();
  const b = seiBytes(last.out);
  const unitEnvelope = b.unitSeiBytes - Object.values(b.perTag).reduce((a, v) => a + v, 0);
  signing[name] = {
    cpuMsMedian: +median(cpu).toFixed(1),
    cpuMsMin: +Math.min(...cpu).toFixed(1),
    cpuMsMax: +Math.max(...cpu).toFixed(1),
    coreShare: +(median(cpu) / 1000 / SECONDS).toFixed(5),
    units: last.stats.units,
    frames: last.stats.frames,
    seiBytes: last.stats.seiBytes,
    bytes: {
      unitSeiBytesPerSecond: +(b.unitSeiBytes / SECONDS).toFixed(1),
      unitSeiBytesPerSecondWithStartCodes: +((b.unitSeiBytes + 4 * b.unitSeis) / SECONDS).toFixed(1),
      allSeiBytesPerSecond: +(last.stats.seiBytes / SECONDS).toFixed(1),
      certificateSeiBytes: b.certificateSeiBytes,
      perUnitSeiTlvBytesPerSecond: Object.fromEntries(Object.entries(b.perTag).map(([tag, v]) => [`${tag} ${TAG_NAMES[tag] ?? ''}`.trim(), +(v / SECONDS).toFixed(1)])),
      unitSeiEnvelopeBytesPerSecond: +(unitEnvelope / SECONDS).toFixed(1),
    },
  };
  if (name === 'software') signed = writeAnnexB(last.out);
  process.stdout.write(`sign ${name}: ${signing[name].cpuMsMedian} ms CPU for ${SECONDS} s (${(signing[name].coreShare * 100).toFixed(2)} % of a core), ${signing[name].bytes.unitSeiBytesPerSecond} B/s unit SEIs\n`);
}

// ---- verification -------------------------------------------------------------------------------------------------
const CHUNK = 1 << 20;
async function verifyPipeline(stream) {
  const c0 = process.cpuUsage();
  const v = new StreamVerifier({ roots: [root] });
  const splitter = new AnnexBSplitter();
  for (let p = 0; p < stream.length; p += CHUNK) for (const nal of splitter.push(stream.subarray(p, p + CHUNK))) await v.push(nal);
  for (const nal of splitter.flush()) await v.push(nal);
  const report = await v.finish();
  const cpu = cpuMs(process.cpuUsage(c0));
  if (report.verdict !== 'AUTHENTIC') throw new Error(`verify: ${report.verdict}`);
  return cpu;
}
async function verifyNalsOnly(nals) {
  const c0 = process.cpuUsage();
  const v = new StreamVerifier({ roots: [root] });
  for (const nal of nals) await v.push(nal);
  const report = await v.finish();
  const cpu = cpuMs(process.cpuUsage(c0));
  if (report.verdict !== 'AUTHENTIC') throw new Error(`verify: ${report.verdict}`);
  return cpu;
}
function rawSha256(stream) {
  const c0 = process.cpuUsage();
  createHash('sha256').update(stream).digest();
  return cpuMs(process.cpuUsage(c0));
}

async function measureVerification(name, stream, seconds, firstSession = false) {
  const nals = splitAnnexB(stream);
  // one block of runs per mode, so that the garbage one mode leaves (the splitter's copies) is collected within it
  const block = async (run) => {
    for (let r = 0; r < VERIFY_WARMUP; r++) await run();
    const cpu = [];
    for (let r = 0; r < VERIFY_RUNS; r++) cpu.push(await run());
    return cpu;
  };
  const raw = await block(() => rawSha256(stream));
  const pipe = await block(() => verifyPipeline(stream));
  const nalsOnly = await block(() => verifyNalsOnly(nals));
  const cold = firstSession
    ? {
        pipe: await block(() => (forgetParsedChains(), verifyPipeline(stream))),
        nalsOnly: await block(() => (forgetParsedChains(), verifyNalsOnly(nals))),
      }
    : undefined;
  raw.push(...(await block(() => rawSha256(stream))));
  const mb = stream.length / 1e6;
  const mbps = (ms) => +(mb / (ms / 1000)).toFixed(1);
  const v = {
    seconds,
    streamBytes: stream.length,
    pipeline: { cpuMsMedian: +median(pipe).toFixed(1), mbPerSecond: mbps(median(pipe)), ratioToRawSha256: +(median(raw) / median(pipe)).toFixed(3), coreShare: +(median(pipe) / 1000 / seconds).toFixed(5) },
    verifierOnNalUnits: { cpuMsMedian: +median(nalsOnly).toFixed(1), mbPerSecond: mbps(median(nalsOnly)), ratioToRawSha256: +(median(raw) / median(nalsOnly)).toFixed(3) },
    rawSha256: { cpuMsMedian: +median(raw).toFixed(1), mbPerSecond: mbps(median(raw)) },
  };
  if (cold !== undefined) {
    const mode = (cpu) => ({ cpuMsMedian: +median(cpu).toFixed(1), mbPerSecond: mbps(median(cpu)), ratioToRawSha256: +(median(raw) / median(cpu)).toFixed(3) });
    v.firstSession = { pipeline: mode(cold.pipe), verifierOnNalUnits: mode(cold.nalsOnly) };
  }
  process.stdout.write(`verify ${name}: ${v.pipeline.mbPerSecond} MB/s (${v.pipeline.ratioToRawSha256} of raw SHA-256 at ${v.rawSha256.mbPerSecond} MB/s); StreamVerifier alone ${v.verifierOnNalUnits.mbPerSecond} MB/s (${v.verifierOnNalUnits.ratioToRawSha256})\n`);
  if (v.firstSession !== undefined) {
    const f = v.firstSession;
    process.stdout.write(`verify ${name}, first session of the camera: ${f.pipeline.mbPerSecond} MB/s (${f.pipeline.ratioToRawSha256}); StreamVerifier alone ${f.verifierOnNalUnits.mbPerSecond} MB/s (${f.verifierOnNalUnits.ratioToRawSha256})\n`);
  }
  return v;
}
const verification = {
  clip: await measureVerification(`${SECONDS} s clip`, signed, SECONDS, true),
  twoMinuteSession: await measureVerification(`${SECONDS * LONG_REPEAT} s session`, signedLong, SECONDS * LONG_REPEAT),
};

rmSync(work, { recursive: true, force: true });

// each goal against each measurement: true when met
const met = {
  'signing coreShare ≤ 0.02': Object.fromEntries(Object.entries(signing).map(([k, v]) => [k, v.coreShare <= 0.02])),
  'unit SEI bytes per second ≤ 400': Object.fromEntries(Object.entries(signing).map(([k, v]) => [k, v.bytes.unitSeiBytesPerSecond <= 400])),
  'verification ≥ 200 MB/s and ≥ 0.25 of raw SHA-256': Object.fromEntries(
    Object.entries(verification).flatMap(([k, v]) =>
      [
        ...['verifierOnNalUnits', 'pipeline'].map((mode) => [`${k} ${mode}`, v[mode]]),
        ...(v.firstSession !== undefined ? ['verifierOnNalUnits', 'pipeline'].map((mode) => [`${k} firstSession ${mode}`, v.firstSession[mode]]) : []),
      ].map(([key, m]) => [key, { mbPerSecond: m.mbPerSecond >= 200, ratio: m.ratioToRawSha256 >= 0.25 }]),
    ),
  ),
};

const out = {
  benchmark: 'signed video, SEI layer: signing CPU and bytes, verification throughput (1080p25, 4 Mbit/s, x264 zerolatency, GOP 50, 1 s units)',
  method: [
    `medians of ${RUNS} runs after one warm-up; CPU = process.cpuUsage user+system`,
    'signing: StreamSigner (deviceSigner: key store, chain, counter on disk) over the NAL units of the clip, SEIs built and signed; splitting and writing the Annex-B stream not counted; coreShare = CPU seconds per second of video',
    'bytes: NAL unit bytes of the Media Signing SEIs (as `keyframe sign` reports them); unit SEIs are the steady state, the certificate SEI comes once per session; WithStartCodes adds the 4-byte start code of each unit SEI',
    `verification (medians of ${VERIFY_RUNS} runs after ${VERIFY_WARMUP} warm-up runs, one block of runs per mode: a long-running verifier; a cold \`keyframe verify\` process pays the JIT on top): AnnexBSplitter over 1 MiB chunks of the signed stream in memory + StreamVerifier with the root (signatures, chain at recording time), verdict AUTHENTIC; verifierOnNalUnits: the StreamVerifier alone, NAL units split beforehand; ratioToRawSha256 = raw node:crypto SHA-256 CPU over the same bytes (one update) ÷ verification CPU; clip: the ${SECONDS} s clip, one session whose set-up (certificate chain check at the recording start) is included, on a chain already parsed by an earlier run (the per-process parsed-chain cache: a known camera); clip.firstSession: the same with that cache emptied before each run (a camera's first session: chain parsed and its certificates checked from scratch, trust anchor work still cached); twoMinuteSession: the clip's NAL units ${LONG_REPEAT} times over signed as one session`,
  ],
  goals: { 'signing coreShare': '≤ 0.02', 'unit SEI bytes per second': '≤ 400', 'verification MB/s': '≥ 200', 'verification ratioToRawSha256': '≥ 0.25' },
  machine: { ...machine(), loadavg: loadavg().map((x) => +x.toFixed(2)) },
  clip: { width: 1920, height: 1080, fps: FPS, seconds: SECONDS, bitrate: '4M', gop: 50, bytes: source.length, nalUnits: sourceNals.length },
  signing,
  verification,
  met,
};
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/signing.json', import.meta.url), JSON.stringify(out, null, 2) + '\n');
console.log(JSON.stringify({ signing, verification, met }, null, 2));
