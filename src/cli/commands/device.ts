/** `keyframe device …`: a camera's identity — key in its secure element, and its certificate. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { csrToPem, deviceCsr, initDevice, installCertificate, openDevice, provisionDevice, selfSignDevice } from '../../pki/device.js';
import type { Device } from '../../pki/device.js';
import { parseCertificates } from '../../pki/pem.js';
import { checkOutput, readFileOrThrow, writeFileAtomic } from '../../util/fs.js';
import { KeyframeError, ErrorCodes } from '../../errors.js';
import { println } from '../context.js';
import type { CliContext } from '../context.js';
import { displayName, subjectOf } from '../../pki/verify.js';
import { fingerprintSha256 } from '../../pki/verify.js';
import { parseAlgorithm, parsePositiveInt } from '../options.js';
import { dirHolding, readToken, withCa } from './ca.js';

async function withDevice<T>(dir: string, keystore: string | undefined, fn: (device: Device) => Promise<T>): Promise<T> {
  const device = await openDevice(resolve(dir), keystore);
  try {
    return await fn(device);
  } finally {
    await device.close();
  }
}

/** A device's certificate is replaced only with --force. */
function refuseReplacingCertificate(dev: Device, force: boolean): void {
  if (dev.certificate !== undefined && !force) {
    throw new KeyframeError(ErrorCodes.EXISTS, `refusing to overwrite the certificate of ${dev.dir} (${subjectOf(dev.certificate)}): it has one already (--force replaces it)`);
  }
}

export function registerDeviceCommands(program: Command, ctx: CliContext): void {
  const device = program.command('device').description("a camera's identity: key pair in its secure element, certificate");

  device
    .command('provision')
    .description('factory provisioning: key generated in the device key store, CSR, certificate from the factory CA')
    .requiredOption('--ca <DIR>', 'CA directory (factory CA)')
    .requiredOption('--serial <S>', 'device serial number')
    .requiredOption('--out <DEV>', 'device directory to create (must not exist)')
    .option('--keystore <SPEC>', 'device key store (default file:DEV/keys)')
    .option('--alg <ALG>', 'ec-p256 (default) or rsa-2048')
    .option('--key-label <LABEL>', 'label of the device key in its store', 'device')
    .option('--days <N>', 'certificate validity in days (default 15 years)')
    .option('--ca-keystore <SPEC>', 'CA key store, overriding the one recorded at init')
    .option('--reissue', 'the serial has a valid certificate already: issue a new one and revoke the old (reason superseded)')
    .option('--force', 'replace an existing device directory DEV (its key is lost)')
    .action(async (o: { ca: string; serial: string; out: string; keystore?: string; alg?: string; keyLabel: string; days?: string; caKeystore?: string; reissue?: boolean; force?: boolean }) => {
      const days = o.days !== undefined ? parsePositiveInt(o.days, '--days', 36500) : undefined;
      const algorithm = parseAlgorithm(o.alg);
      const plan = await checkOutput(o.out, { kind: 'dir', force: o.force === true, sameKind: dirHolding('device.json', 'a keyframe device directory') });
      const out = plan.path;
      await withCa(o.ca, o.caKeystore, async (ca, caKeyStore) => {
        const result = await provisionDevice({
          ca,
          caKeyStore,
          dir: out,
          replace: plan.replace,
          reissue: o.reissue === true,
          serial: o.serial,
          algorithm,
          keyLabel: o.keyLabel,
          ...(o.keystore !== undefined ? { keystore: o.keystore } : {}),
          ...(days !== undefined ? { days } : {}),
        });
        println(ctx.stdout, `provisioned ${o.serial} in ${out}`);
        println(ctx.stdout, `  key        ${result.config.algorithm} "${result.config.keyLabel}" in ${result.config.keystore.replace(/;pin-.*$/, '')} (never leaves it)`);
        println(ctx.stdout, `  device.pem ${subjectOf(result.certificate)}  SHA-256 ${fingerprintSha256(result.certificate)}`);
        println(ctx.stdout, `  chain.pem  device + ${subjectOf(ca.certs.factory)}`);
      });
    });

  device
    .command('init')
    .description('create a device directory with a key pair and no certificate (then csr or self-sign)')
    .requiredOption('--device <DEV>', 'device directory to create (must not exist)')
    .requiredOption('--serial <S>', 'device serial number')
    .option('--keystore <SPEC>', 'device key store (default file:DEV/keys)')
    .option('--alg <ALG>', 'ec-p256 (default) or rsa-2048')
    .option('--key-label <LABEL>', 'label of the device key in its store', 'device')
    .option('--org <NAME>', 'organisation in the subject', 'keyframe')
    .option('--force', 'replace an existing device directory DEV (its key is lost)')
    .action(async (o: { device: string; serial: string; keystore?: string; alg?: string; keyLabel: string; org: string; force?: boolean }) => {
      const algorithm = parseAlgorithm(o.alg);
      const plan = await checkOutput(o.device, { kind: 'dir', force: o.force === true, sameKind: dirHolding('device.json', 'a keyframe device directory') });
      const dir = plan.path;
      const config = await initDevice({
        dir,
        replace: plan.replace,
        serial: o.serial,
        algorithm,
        keyLabel: o.keyLabel,
        org: o.org,
        ...(o.keystore !== undefined ? { keystore: o.keystore } : {}),
      });
      println(ctx.stdout, `created device ${config.serial} in ${dir}: ${config.algorithm} key "${config.keyLabel}" in ${config.keystore.replace(/;pin-.*$/, '')}`);
    });

  device
    .command('csr')
    .description('write a PKCS#10 request signed by the device key (for an external CA, or `ca issue`)')
    .requiredOption('--device <DEV>', 'device directory')
    .requiredOption('--out <REQ.pem>', 'output file (must not exist)')
    .option('--token-file <FILE>', 'put this enrolment token in the request (challengePassword)')
    .option('--keystore <SPEC>', 'device key store, overriding device.json')
    .option('--force', 'replace REQ.pem if it exists')
    .action(async (o: { device: string; out: string; tokenFile?: string; keystore?: string; force?: boolean }) => {
      const out = (await checkOutput(o.out, { kind: 'file', inputs: o.tokenFile !== undefined ? [o.tokenFile] : [], force: o.force === true })).path;
      const token = o.tokenFile !== undefined ? await readToken(o.tokenFile) : undefined;
      await withDevice(o.device, o.keystore, async (dev) => {
        const csr = await deviceCsr(dev, token !== undefined ? { challengePassword: token } : {});
        await writeFileAtomic(out, csrToPem(csr), { exclusive: o.force !== true, mode: token !== undefined ? 0o600 : 0o644 });
        println(ctx.stdout, `wrote CSR for ${subjectOf(csr)} to ${out}`);
      });
    });

  device
    .command('install-cert')
    .description('install a certificate (plus its CA chain) — refused unless it certifies the device key')
    .requiredOption('--device <DEV>', 'device directory')
    .argument('<CERT.pem>', 'certificate, optionally followed by its issuing CA certificates')
    .option('--keystore <SPEC>', 'device key store, overriding device.json')
    .option('--force', 'replace the certificate the device has already')
    .action(async (certPath: string, o: { device: string; keystore?: string; force?: boolean }) => {
      const certs = parseCertificates(await readFileOrThrow(certPath, 'certificate'), certPath);
      await withDevice(o.device, o.keystore, async (dev) => {
        const cert = await installCertificate(dev, certs, { force: o.force === true });
        println(ctx.stdout, `installed ${subjectOf(cert)} (issuer ${displayName(cert.issuerName)}) in ${dev.dir}`);
      });
    });

  device
    .command('self-sign')
    .description('make a self-signed device certificate (identity NOT established unless the verifier pins it)')
    .requiredOption('--device <DEV>', 'device directory')
    .option('--days <N>', 'validity in days (default 15 years)')
    .option('--keystore <SPEC>', 'device key store, overriding device.json')
    .option('--force', 'replace the certificate the device has already')
    .action(async (o: { device: string; days?: string; keystore?: string; force?: boolean }) => {
      const days = o.days !== undefined ? parsePositiveInt(o.days, '--days', 36500) : undefined;
      await withDevice(o.device, o.keystore, async (dev) => {
        refuseReplacingCertificate(dev, o.force === true);
        const cert = await selfSignDevice(dev, days !== undefined ? { days } : {});
        println(ctx.stdout, `self-signed ${subjectOf(cert)} in ${dev.dir}`);
        println(ctx.stdout, `  SHA-256 ${fingerprintSha256(cert)} — a verifier must pin this fingerprint (--pin) to trust it`);
      });
    });

  device
    .command('show')
    .description('print a device: serial, key store, certificate and fingerprint')
    .requiredOption('--device <DEV>', 'device directory')
    .option('--keystore <SPEC>', 'device key store, overriding device.json')
    .action(async (o: { device: string; keystore?: string }) => {
      await withDevice(o.device, o.keystore, async (dev) => {
        println(ctx.stdout, `serial     ${dev.config.serial}`);
        println(ctx.stdout, `key        ${dev.config.algorithm} "${dev.config.keyLabel}" in ${dev.store.description}`);
        if (dev.certificate === undefined) {
          println(ctx.stdout, 'certificate none (run `keyframe device csr` or `keyframe device self-sign`)');
          return;
        }
        println(ctx.stdout, `subject    ${subjectOf(dev.certificate)}`);
        println(ctx.stdout, `issuer     ${displayName(dev.certificate.issuerName)}`);
        println(ctx.stdout, `valid      ${dev.certificate.notBefore.toISOString()} … ${dev.certificate.notAfter.toISOString()}`);
        println(ctx.stdout, `SHA-256    ${fingerprintSha256(dev.certificate)}`);
      });
    });
}
