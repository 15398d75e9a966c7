/**
 * `keyframe demo` (what `npm start` runs): a local walk-through on embedded defaults — a CA under DATA/ca,
 * one provisioned camera under DATA/cameras, its certificate verified against the manufacturer root with a
 * fresh CRL. Re-running reuses what exists. The key store passphrase comes from $KEYFRAME_KEYSTORE_PIN or, for
 * the demo only, from DATA/secrets/keystore.pin (created 0600 on first run).
 */
import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DEFAULT_PIN_ENV } from '../../keystore/spec.js';
import { initCa, issueAllCrls } from '../../pki/ca.js';
import { requireCaDir } from '../../pki/ca-store.js';
import { openDevice, provisionDevice } from '../../pki/device.js';
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
          if (!result.valid) ctx.setExitCode(1);
        } finally {
          await device.close();
        }
      } finally {
        await caStore.close();
      }
    });
}
