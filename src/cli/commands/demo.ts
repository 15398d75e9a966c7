/**
 * `keyframe demo` (what `npm start` runs): a local walk-through on embedded defaults — a CA under DATA/ca,
 * one provisioned camera under DATA/cameras, its certificate verified against the manufacturer root with a
 * fresh CRL; then, when ffmpeg is installed, the camera records a few seconds of a test pattern signed and
 * encrypted, each record time-stamped by the site's TSA (NVR-TSA, an operator-CA identity), the recording is
 * verified offline without the key and with it, and exported as an evidence bundle by an operator-CA exporter
 * identity, its signature time-stamped too.
 * The content key comes from group keys: a KMS (DATA/kms, in-process on a free loopback port for the demo) makes
 * a group `demo` holding the camera, the camera enrols and syncs, and records under its content key of the
 * current epoch (held in memory only; the KMS releases it for the KID to an administrator). Re-running reuses what exists. The key store passphrase comes from $KEYFRAME_KEYSTORE_PIN or, for
 * the demo only, from DATA/secrets/keystore.pin (created 0600 on first run).
 */
import type { Command } from 'commander';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { localPinSpec } from '../../supervisor/local-site.js';
import { initCa, issueAllCrls } from '../../pki/ca.js';
import { requireCaDir } from '../../pki/ca-store.js';
import { recordSession } from '../../camera/record.js';
import { ErrorCodes, KeyframeError } from '../../errors.js';
import { openDevice, provisionDevice, type Device } from '../../pki/device.js';
import { createOperatorIdentity, openOperatorIdentity } from '../../pki/operator-identity.js';
import { localStamper } from '../../tsp/stamper.js';
import type { X509Certificate, X509Crl } from '../../pki/x509.js';
import { exportBundle } from '../../recording/bundle.js';
import { verifyEvidence } from '../../recording/evidence.js';
import { parseCrls } from '../../pki/pem.js';
import { fingerprintSha256, verifyCertificate } from '../../pki/verify.js';
import { writeFileAtomic } from '../../util/fs.js';
import { println } from '../context.js';
import { loadKmsConfig } from '../../kms/config.js';
import { openCameraAgent } from '../../camera/kms-agent.js';
import { openAdminClient } from '../../kms/open.js';
import { startKms } from '../../kms/server.js';
import { initKms } from '../../kms/init.js';
import type { CaStore } from '../../pki/ca-store.js';
import type { KeyStore } from '../../keystore/types.js';
import type { CliContext } from '../context.js';
import { subjectOf } from '../../pki/verify.js';

function hasFfmpeg(): boolean {
  try {
    execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface DemoKey {
  readonly key: Buffer;
  readonly kid: Buffer;
  /** Asks the KMS which camera and epoch a KID belongs to, and whether its key matches. */
  resolve(kid: Buffer, key: Buffer): Promise<string>;
  close(): Promise<void>;
}

/** Step 5: the KMS, the camera's enrolment, group `demo`, and the camera's content key of the current epoch. */
async function demoGroupKey(data: string, pin: string, ca: CaStore, caStore: KeyStore, device: Device, say: (line: string) => void): Promise<DemoKey> {
  const dir = join(data, 'kms');
  const serial = device.config.serial;
  const configPath = join(dir, 'kms.json');
  // first run: a new KMS as `keyframe kms init` makes it (identities, the CA's CRL wired in, the database)
  if (!existsSync(configPath)) await initKms({ dir, ca, caKeyStore: caStore, name: 'localhost', ips: ['127.0.0.1'], port: 8443, admin: 'ops', keystore: `file:${join(dir, 'kms', 'keys')};${pin}`, adminKeystore: `file:${join(dir, 'admin', 'keys')};${pin}` });
  const config = loadKmsConfig(configPath);
  // the demo's KMS listens on a free port for as long as the demo runs; `kms serve` uses the configured one
  const kms = await startKms({ ...config, listen: { host: '127.0.0.1', port: 0 }, batchWindowMs: 0 });
  try {
    const agent = await openCameraAgent({ url: kms.url, deviceDir: device.dir, stateDir: join(device.dir, 'kms'), kmsRoots: [ca.certs.operator] });
    const admin = await openAdminClient(kms.url, join(dir, 'admin'));
    try {
      const generation = await agent.camera.enrol();
      const known = (await admin.json<{ groups: { id: string }[] }>('GET', '/v1/admin/groups')).groups.some((g) => g.id === 'demo');
      if (known) await admin.json('POST', '/v1/admin/groups/demo/refresh', {});
      else await admin.json('POST', '/v1/admin/groups', { id: 'demo', members: [serial], leader: serial });
      // the administrator's certificate gets keys only through a grant, like any account (audited)
      const granted = (await admin.json<{ grants: { principal: { kind: string; name?: string }; scope: { group?: string } }[] }>('GET', '/v1/admin/grants')).grants.some((g) => g.principal.kind === 'certificate' && g.principal.name === 'ops' && g.scope.group === 'demo');
      if (!granted) await admin.json('POST', '/v1/admin/grants', { certificate: 'ops', group: 'demo', rights: ['playback'], lastMs: 365 * 86_400_000 });
      const synced = await agent.camera.sync('demo');
      const k = await agent.camera.currentContentKey('demo');
      say(`5. group keys: KMS at ${kms.url}  $ keyframe kms serve --config ${configPath}`);
      say(`   ${serial} enrolled (key generation ${generation})  $ keyframe kms enrol --device ${device.dir} --kms-root ${join(data, 'ca', 'operator.pem')}`);
      say(`   group demo ${known ? 'refreshed' : 'created'}, epoch ${synced.epoch}  $ keyframe kms group ${known ? 'refresh demo' : `create demo --member ${serial} --leader ${serial}`} --identity ${join(dir, 'admin')}`);
      say(`   the camera's content key of epoch ${synced.epoch}: KID ${Buffer.from(k.kid).toString('hex')} (key in memory only)`);
      return {
        key: Buffer.from(k.key),
        kid: Buffer.from(k.kid),
        resolve: async (kid, key) => {
          const r = await admin.json<{ camera: string; epoch: number; key: string }>('POST', '/v1/admin/content-key', { kid: kid.toString('hex') });
          return `the KMS names camera ${r.camera}, epoch ${r.epoch}; key ${r.key === key.toString('hex') ? 'matches' : 'DIFFERS'}`;
        },
        close: async () => {
          admin.close();
          await agent.close();
          await kms.close();
        },
      };
    } catch (e) {
      admin.close();
      await agent.close();
      throw e;
    }
  } catch (e) {
    await kms.close();
    throw e;
  }
}

/** Steps 6–8: record, verify, export (needs ffmpeg for the test pattern). */
async function demoRecording(data: string, device: Device, root: X509Certificate, operator: X509Certificate, crls: X509Crl[], key: DemoKey, say: (line: string) => void): Promise<void> {
  if (!hasFfmpeg()) {
    say('6. recording skipped: ffmpeg is not installed (npm test installs it; or: apt-get install ffmpeg)');
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
  const tsaDir = join(data, 'tsa', 'NVR-TSA');
  const exporterDir = join(data, 'exporters', 'operator');
  for (const dir of [tsaDir, exporterDir]) if (!existsSync(dir)) throw new KeyframeError(ErrorCodes.NOT_FOUND, `identity missing: ${dir}`);
  const stamper = await localStamper(tsaDir);
  try {
    const r = await recordSession({ device, source, seconds: 5, out: rec, key: { key: key.key, kid: key.kid }, scheme: 'cbcs', realTime: false, stamper });
    say(`6. recorded ${r.seconds} s, signed in the camera, encrypted (cbcs, KID ${r.kid ?? ''}; the key stays in memory)`);
    say(`   ${r.timestamped} records time-stamped as they were written by ${stamper.description} (RFC 3161)`);
    say(`   $ keyframe record --device ${device.dir} --source ${source} --duration 5 --out ${rec} --key … --kid … --fast --tsa ${tsaDir}`);
    const trust = { roots: [root], crls, exporterRoots: [operator] };
    const noKey = await verifyEvidence(rec, trust);
    const withKey = await verifyEvidence(rec, { ...trust, keys: { all: key.key } });
    const proven = noKey.fragmentLayer?.time?.ranges.map((g) => g.notAfter).filter((t): t is string => t !== null).pop();
    say(`7. verified offline              $ keyframe verify ${rec} --root ${join(data, 'ca', 'root.pem')} --crl ${join(data, 'ca', 'crl.pem')} --exporter-root ${join(data, 'ca', 'operator.pem')}`);
    say(`   without the key (fragment records): ${noKey.verdict}; with the key (signed video, ${withKey.frames} frames): ${withKey.verdict}`);
    say(`   proven time: the whole recording existed by ${proven ?? 'unproven'} (camera clock not needed)`);
    say(`   KID ${key.kid.toString('hex')}: ${await key.resolve(key.kid, key.key)}`);
    const exporter = await openOperatorIdentity(exporterDir, 'exporter', { crls });
    try {
      const bundle = `${rec}.kfe.tar`;
      const { manifest: m } = await exportBundle({ recording: rec, out: bundle, exporter, reason: 'keyframe demo', stamper });
      const b = await verifyEvidence(bundle, trust);
      say(`8. exported an evidence bundle   $ keyframe export ${rec} --out ${bundle} --exporter ${exporterDir} --reason "keyframe demo" --tsa ${tsaDir}`);
      say(`   ${m.files.length} files signed by ${m.exporter.subject} (issuer ${m.exporter.issuer}), signature time-stamped; verify: ${b.verdict}`);
    } finally {
      await exporter.close();
    }
  } finally {
    await stamper.close();
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
      const pin = await localPinSpec(data);
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
        // the site's time-stamping authority (the NVR's role) and an evidence exporter, both from the operator CA
        const tsaDir = join(data, 'tsa', 'NVR-TSA');
        if (!existsSync(tsaDir)) {
          await createOperatorIdentity({ kind: 'tsa', out: tsaDir, ca, caKeyStore: caStore, name: 'NVR-TSA', keystore: `file:${join(tsaDir, 'keys')};${pin}` });
          say(`   created the TSA NVR-TSA         $ keyframe ca tsa-cert --ca ${caDir} --name NVR-TSA --out ${tsaDir}`);
        }
        const exporterDir = join(data, 'exporters', 'operator');
        if (!existsSync(exporterDir)) {
          await createOperatorIdentity({ kind: 'exporter', out: exporterDir, ca, caKeyStore: caStore, name: 'keyframe demo operator', keystore: `file:${join(exporterDir, 'keys')};${pin}` });
          say(`   created an evidence exporter    $ keyframe ca exporter-cert --ca ${caDir} --name "keyframe demo operator" --out ${exporterDir}`);
        }
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
          const key = await demoGroupKey(data, pin, ca, caStore, device, say);
          try {
            await demoRecording(data, device, ca.certs.root, ca.certs.operator, crls, key, say);
          } finally {
            await key.close();
          }
        } finally {
          await device.close();
        }
      } finally {
        await caStore.close();
      }
    });
}
