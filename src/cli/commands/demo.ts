/**
 * `keyframe demo` (what `npm start` runs): a local walk-through on embedded defaults — a CA under DATA/ca,
 * one provisioned camera under DATA/cameras, its certificate verified against the manufacturer root with a
 * fresh CRL; then, when ffmpeg is installed, the camera records a few seconds of a test pattern signed and
 * encrypted (a fresh content key held in memory only), the recording is verified offline without the key and
 * with it, and exported as an evidence bundle. Re-running reuses what exists. The key store passphrase comes from $KEYFRAME_KEYSTORE_PIN or, for
 * the demo only, from DATA/secrets/keystore.pin (created 0600 on first run).
 */
import type { Command } from 'commander';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DEFAULT_PIN_ENV } from '../../keystore/spec.js';
import { initCa, issueAllCrls } from '../../pki/ca.js';
import { requireCaDir } from '../../pki/ca-store.js';
import { recordSession } from '../../camera/record.js';
import { ErrorCodes, KeyframeError } from '../../errors.js';
import { openDevice, provisionDevice, type Device } from '../../pki/device.js';
import type { X509Certificate, X509Crl } from '../../pki/x509.js';
import { exportBundle } from '../../recording/bundle.js';
import { verifyEvidence } from '../../recording/evidence.js';
import { parseCrls } from '../../pki/pem.js';
import { fingerprintSha256, verifyCertificate } from '../../pki/verify.js';
import { writeFileAtomic } from '../../util/fs.js';
import { println } from '../context.js';
import type { CliContext } from '../context.js';
import { subjectOf } from '../../pki/verify.js';

async function demoPinSpec(data: string): Promise<string> {
  if (process.env[DEFAULT_PIN_ENV] !== undefined && process.env[DEFAULT_PIN_ENV] !== '') return `pin-env=${DEFAULT_PIN_ENV}`;
  const pinFile = join(data, 'secrets', 'keystore.pin');
  if (!existsSync(pinFile)) {
    await mkdir(join(data, 'secrets'), { recursive: true, mode: 0o700 });
    await writeFileAtomic(pinFile, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600, exclusive: true });
  }
  return `pin-file=${pinFile}`;
}

function hasFfmpeg(): boolean {
  try {
    execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Steps 5–7: record, verify, export (needs ffmpeg for the test pattern). */
async function demoRecording(data: string, device: Device, root: X509Certificate, crls: X509Crl[], say: (line: string) => void): Promise<void> {
  if (!hasFfmpeg()) {
    say('5. recording skipped: ffmpeg is not installed (npm test installs it; or: apt-get install ffmpeg)');
    return;
  }
  const media = join(data, 'media');
  await mkdir(media, { recursive: true });
  const source = join(media, 'testsrc-640x360-25.h264');
  if (!existsSync(source)) {
    execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-t', '4', '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-bf', '0', '-g', '25', '-pix_fmt', 'yuv420p', '-bsf:v', 'h264_mp4toannexb', '-f', 'h264', `${source}.tmp`]);
    renameSync(`${source}.tmp`, source);
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const rec = join(data, 'recordings', `${device.config.serial}-${stamp}`);
  const key = { key: randomBytes(16), kid: randomBytes(16) };
  const r = await recordSession({ device, source, seconds: 5, out: rec, key, scheme: 'cbcs', realTime: false });
  say(`5. recorded ${r.seconds} s, signed in the camera, encrypted (cbcs, KID ${r.kid ?? ''}; the key stays in memory)`);
  say(`   $ keyframe record --device ${device.dir} --source ${source} --duration 5 --out ${rec} --key … --kid … --fast`);
  const noKey = await verifyEvidence(rec, { roots: [root], crls });
  const withKey = await verifyEvidence(rec, { roots: [root], crls, keys: { all: key.key } });
  say(`6. verified offline              $ keyframe verify ${rec} --root ${join(data, 'ca', 'root.pem')} --crl ${join(data, 'ca', 'crl.pem')}`);
  say(`   without the key (fragment records): ${noKey.verdict}; with the key (signed video, ${withKey.frames} frames): ${withKey.verdict}`);
  const exporterDir = join(data, 'exporters', 'NVR-0001');
  if (!existsSync(exporterDir)) throw new KeyframeError(ErrorCodes.NOT_FOUND, `exporter identity missing: ${exporterDir}`);
  const exporter = await openDevice(exporterDir);
  try {
    const bundle = `${rec}.kfe.tar`;
    const m = await exportBundle({ recording: rec, out: bundle, exporter, reason: 'keyframe demo' });
    const b = await verifyEvidence(bundle, { roots: [root], crls });
    say(`7. exported an evidence bundle   $ keyframe export ${rec} --out ${bundle} --exporter ${exporterDir} --reason "keyframe demo"`);
    say(`   ${m.files.length} files signed by ${m.exporter.subject}; verify: ${b.verdict}`);
  } finally {
    await exporter.close();
  }
}

export function registerDemoCommand(program: Command, ctx: CliContext): void {
  program
    .command('demo')
    .description('local demo on embedded defaults (what `npm start` runs)')
    .option('--data <DIR>', 'data directory', './data')
    .option('--serial <S>', 'camera serial to provision', 'CAM-0001')
    .action(async (o: { data: string; serial: string }) => {
      const data = resolve(o.data);
      const say = (line: string): void => println(ctx.stdout, line);
      await mkdir(data, { recursive: true });
      const pin = await demoPinSpec(data);
      say(`keyframe demo — data in ${data}`);
      say(`key stores: software (scrypt + AES-256-GCM), passphrase from ${pin.replace('pin-', '').replace('=', ' ')}`);

      const caDir = join(data, 'ca');
      if (!existsSync(caDir)) {
        const r = await initCa({ dir: caDir, keystore: `file:${join(caDir, 'keys')};${pin}` });
        say(`1. created the CA                $ keyframe ca init --dir ${caDir}`);
        say(`   manufacturer root  ${subjectOf(r.root)}`);
        say(`   factory CA         ${subjectOf(r.factory)}`);
        say(`   operator CA        ${subjectOf(r.operator)}`);
      } else {
        say(`1. CA exists                     ${caDir}`);
      }
      const ca = await requireCaDir(caDir);
      const caStore = await ca.openKeyStore();
      try {
        const camDir = join(data, 'cameras', o.serial);
        if (!existsSync(camDir)) {
          const r = await provisionDevice({ ca, caKeyStore: caStore, dir: camDir, serial: o.serial, keystore: `file:${join(camDir, 'keys')};${pin}` });
          say(`2. provisioned camera ${o.serial}      $ keyframe device provision --ca ${caDir} --serial ${o.serial} --out ${camDir}`);
          say(`   key generated inside the camera key store, CSR signed by it, one-time enrolment token checked`);
          say(`   certificate ${subjectOf(r.certificate)}`);
        } else {
          say(`2. camera exists                 ${camDir}`);
        }
        const exporterDir = join(data, 'exporters', 'NVR-0001');
        if (!existsSync(exporterDir)) await provisionDevice({ ca, caKeyStore: caStore, dir: exporterDir, serial: 'NVR-0001', keystore: `file:${join(exporterDir, 'keys')};${pin}` });
        const crlPath = join(caDir, 'crl.pem');
        await writeFileAtomic(crlPath, await issueAllCrls(ca, caStore));
        say(`3. published CRLs                $ keyframe ca crl --ca ${caDir} --out ${crlPath}`);

        const device = await openDevice(camDir);
        try {
          const cert = device.certificate;
          if (cert === undefined) {
            say(`4. camera ${o.serial} has no certificate`);
            ctx.setExitCode(1);
            return;
          }
          const crls = parseCrls(readFileSync(crlPath), crlPath);
          const result = await verifyCertificate(cert, { roots: [ca.certs.root], intermediates: device.chain, crls });
          say(`4. verified the camera           $ keyframe cert verify ${join(camDir, 'device.pem')} --root ${join(caDir, 'root.pem')} --chain ${join(camDir, 'chain.pem')} --crl ${crlPath}`);
          say(`   ${result.valid ? 'OK' : 'INVALID'}: ${subjectOf(cert)}${result.reason !== undefined ? ` — ${result.reason}` : ''}`);
          say(`   SHA-256 ${fingerprintSha256(cert)}`);
          for (const c of result.chain) say(`   ← ${c.subject}`);
          if (!result.valid) {
            ctx.setExitCode(1);
            return;
          }
          await demoRecording(data, device, ca.certs.root, crls, say);
        } finally {
          await device.close();
        }
      } finally {
        await caStore.close();
      }
    });
}
