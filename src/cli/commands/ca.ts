/** `keyframe ca …`: the manufacturer and operator certification authorities. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { displaySubjectText } from '../../pki/_certs.js';
import { UsageError } from '../../errors.js';
import { issueAllCrls, issueDeviceCertificate, issueEnrolmentToken, initCa, parseRevocationReason, revoke } from '../../pki/ca.js';
import { requireCaDir } from '../../pki/ca-store.js';
import type { CaStore } from '../../pki/ca-store.js';
import { certsToPem, parseCsr } from '../../pki/pem.js';
import { createOperatorIdentity, type OperatorIdentityKind } from '../../pki/operator-identity.js';
import { createSite } from '../../pki/site.js';
import { checkOutput, readFileOrThrow, writeFileAtomic } from '../../util/fs.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyStore } from '../../keystore/types.js';
import { println } from '../context.js';
import type { CliContext } from '../context.js';
import { subjectOf } from '../../pki/verify.js';
import { fingerprintSha256 } from '../../pki/verify.js';
import { collect, parseAlgorithm, parseIsoTime, parsePositiveInt } from '../options.js';

/** Opens the CA directory and its key store, runs `fn`, closes the store. */
export async function withCa<T>(dir: string, keystore: string | undefined, fn: (ca: CaStore, store: KeyStore) => Promise<T>): Promise<T> {
  const ca = await requireCaDir(resolve(dir));
  const store = await ca.openKeyStore(keystore);
  try {
    return await fn(ca, store);
  } finally {
    await store.close();
  }
}

/** --force replaces a directory only if it holds this file: never an unrelated directory. */
export function dirHolding(file: string, what: string): { what: string; test: (dir: string) => Promise<boolean> } {
  return { what, test: async (dir) => existsSync(join(dir, file)) };
}

export async function readToken(path: string): Promise<string> {
  return (await readFileOrThrow(path, 'token file')).toString('utf8').trim();
}

export function registerCaCommands(program: Command, ctx: CliContext): void {
  const ca = program.command('ca').description('manufacturer root, factory CA and operator CA');

  ca.command('init')
    .description('create a manufacturer root CA (pathLen 1), a factory CA (pathLen 0) and a separate operator CA')
    .requiredOption('--dir <DIR>', 'CA directory to create (must not exist)')
    .option('--keystore <SPEC>', 'key store for the CA keys (default file:DIR/keys)')
    .option('--org <NAME>', 'organisation name in the CA subjects', 'keyframe')
    .option('--alg <ALG>', 'CA key algorithm: ec-p256 (default) or rsa-2048')
    .option('--force', 'replace an existing CA directory DIR (its keys and records are lost)')
    .action(async (o: { dir: string; keystore?: string; org: string; alg?: string; force?: boolean }) => {
      const algorithm = parseAlgorithm(o.alg);
      const out = await checkOutput(o.dir, { kind: 'dir', force: o.force === true, sameKind: dirHolding('ca.json', 'a keyframe CA directory') });
      const result = await initCa({ dir: out.path, org: o.org, algorithm, replace: out.replace, ...(o.keystore ? { keystore: o.keystore } : {}) });
      println(ctx.stdout, `created CA in ${result.dir} (keys in ${result.keystore.replace(/;pin-.*$/, '')})`);
      println(ctx.stdout, `  root.pem      ${subjectOf(result.root)}  SHA-256 ${fingerprintSha256(result.root)}`);
      println(ctx.stdout, `  factory.pem   ${subjectOf(result.factory)}  SHA-256 ${fingerprintSha256(result.factory)}`);
      println(ctx.stdout, `  operator.pem  ${subjectOf(result.operator)}  SHA-256 ${fingerprintSha256(result.operator)}`);
    });

  ca.command('token')
    .description('issue a one-time enrolment token bound to a device serial (written to a 0600 file)')
    .requiredOption('--ca <DIR>', 'CA directory')
    .requiredOption('--serial <S>', 'device serial the token is for')
    .requiredOption('--out <FILE>', 'file to write the token to (must not exist)')
    .option('--ttl <MINUTES>', 'token lifetime in minutes', '60')
    .option('--force', 'replace FILE if it exists')
    .action(async (o: { ca: string; serial: string; out: string; ttl: string; force?: boolean }) => {
      const ttl = parsePositiveInt(o.ttl, '--ttl', 30 * 24 * 60);
      const out = (await checkOutput(o.out, { kind: 'file', force: o.force === true })).path;
      const store = await requireCaDir(resolve(o.ca));
      const token = await issueEnrolmentToken(store, o.serial, { ttlMs: ttl * 60_000 });
      await writeFileAtomic(out, `${token}\n`, { mode: 0o600, exclusive: o.force !== true });
      println(ctx.stdout, `enrolment token for ${o.serial} written to ${out} (valid ${ttl} min, single use)`);
    });

  ca.command('issue')
    .description('factory CA: issue a device certificate for a CSR carrying a valid enrolment token')
    .requiredOption('--ca <DIR>', 'CA directory')
    .requiredOption('--csr <REQ.pem>', 'PKCS#10 request signed by the device key')
    .requiredOption('--out <CERT.pem>', 'where to write the device certificate and the factory CA (must not exist)')
    .option('--token-file <FILE>', 'enrolment token (default: the challengePassword in the CSR)')
    .option('--days <N>', 'validity in days')
    .option('--ca-keystore <SPEC>', 'CA key store, overriding the one recorded at init')
    .option('--reissue', 'the device serial has a valid certificate already: issue anyway and revoke the old one (reason superseded)')
    .option('--force', 'replace CERT.pem if it exists')
    .action(async (o: { ca: string; csr: string; out: string; tokenFile?: string; days?: string; caKeystore?: string; reissue?: boolean; force?: boolean }) => {
      const days = o.days !== undefined ? parsePositiveInt(o.days, '--days', 36500) : undefined;
      const out = (await checkOutput(o.out, { kind: 'file', inputs: [o.csr, ...(o.tokenFile !== undefined ? [o.tokenFile] : [])], force: o.force === true })).path;
      const csr = parseCsr(await readFileOrThrow(o.csr, 'certificate request'), o.csr);
      const token = o.tokenFile !== undefined ? await readToken(o.tokenFile) : undefined;
      await withCa(o.ca, o.caKeystore, async (caDir, store) => {
        const cert = await issueDeviceCertificate(caDir, store, csr, { ...(token !== undefined ? { token } : {}), ...(days !== undefined ? { days } : {}), reissue: o.reissue === true });
        await writeFileAtomic(out, certsToPem([cert, caDir.certs.factory]), { exclusive: o.force !== true });
        println(ctx.stdout, `issued ${subjectOf(cert)} (serial ${cert.serialNumber}) → ${out}`);
      });
    });

  ca.command('site-cert')
    .description('operator CA: create a TLS identity (key + certificate) for an NVR, KMS or other site server')
    .requiredOption('--ca <DIR>', 'CA directory')
    .requiredOption('--name <NAME>', 'common name, e.g. nvr.example.org')
    .requiredOption('--out <DIR>', 'directory to create: site.json, cert.pem, chain.pem, keys/')
    .option('--dns <NAME>', 'DNS subjectAltName (repeatable)', collect, [])
    .option('--ip <ADDR>', 'IP subjectAltName (repeatable)', collect, [])
    .option('--client-auth', 'also allow TLS client authentication', false)
    .option('--keystore <SPEC>', 'key store for the site key (default file:OUT/keys)')
    .option('--alg <ALG>', 'ec-p256 (default) or rsa-2048')
    .option('--days <N>', 'validity in days (default 825)')
    .option('--ca-keystore <SPEC>', 'CA key store, overriding the one recorded at init')
    .option('--force', 'replace an existing site directory DIR (its key is lost)')
    .action(
      async (o: { ca: string; name: string; out: string; dns: string[]; ip: string[]; clientAuth: boolean; keystore?: string; alg?: string; days?: string; caKeystore?: string; force?: boolean }) => {
        const days = o.days !== undefined ? parsePositiveInt(o.days, '--days', 36500) : undefined;
        const plan = await checkOutput(o.out, { kind: 'dir', force: o.force === true, sameKind: dirHolding('site.json', 'a keyframe site directory') });
        const out = plan.path;
        await withCa(o.ca, o.caKeystore, async (caDir, caKeyStore) => {
          const { certificate } = await createSite({
            out,
            replace: plan.replace,
            ca: caDir,
            caKeyStore,
            name: o.name,
            altNames: [...o.dns, ...o.ip],
            clientAuth: o.clientAuth,
            algorithm: parseAlgorithm(o.alg),
            ...(o.keystore !== undefined ? { keystore: o.keystore } : {}),
            ...(days !== undefined ? { days } : {}),
          });
          println(ctx.stdout, `created site identity ${subjectOf(certificate)} in ${out} (SHA-256 ${fingerprintSha256(certificate)})`);
        });
      },
    );

  const identityCommand = (kind: OperatorIdentityKind, name: string, description: string, example: string): void => {
    ca.command(name)
      .description(description)
      .requiredOption('--ca <DIR>', 'CA directory')
      .requiredOption('--name <NAME>', `common name, e.g. ${example}`)
      .requiredOption('--out <DIR>', 'directory to create: identity.json, cert.pem, chain.pem, keys/')
      .option('--keystore <SPEC>', 'key store for the key (default file:OUT/keys)')
      .option('--alg <ALG>', 'ec-p256 (default) or rsa-2048')
      .option('--days <N>', `validity in days (default ${kind === 'tsa' ? 1825 : 825})`)
      .option('--ca-keystore <SPEC>', 'CA key store, overriding the one recorded at init')
      .action(async (o: { ca: string; name: string; out: string; keystore?: string; alg?: string; days?: string; caKeystore?: string }) => {
        const days = o.days !== undefined ? parsePositiveInt(o.days, '--days', 36500) : undefined;
        const out = resolve(o.out);
        await withCa(o.ca, o.caKeystore, async (caDir, caKeyStore) => {
          const { certificate } = await createOperatorIdentity({
            kind,
            out,
            ca: caDir,
            caKeyStore,
            name: o.name,
            algorithm: parseAlgorithm(o.alg),
            ...(o.keystore !== undefined ? { keystore: o.keystore } : {}),
            ...(days !== undefined ? { days } : {}),
          });
          const what = kind === 'tsa' ? 'time-stamping authority (EKU timeStamping, critical)' : 'evidence exporter (EKU keyframe evidence-export, critical)';
          println(ctx.stdout, `created ${what} ${subjectOf(certificate)} in ${out} (serial ${certificate.serialNumber}, SHA-256 ${fingerprintSha256(certificate)})`);
        });
      });
  };
  identityCommand('tsa', 'tsa-cert', 'operator CA: create an RFC 3161 time-stamping authority identity (key + certificate with the critical EKU timeStamping only)', 'NVR-TSA');
  identityCommand('exporter', 'exporter-cert', 'operator CA: create an evidence exporter identity for `keyframe export` (a person or a recorder; EKU keyframe evidence-export only)', '"J. Smith"');

  ca.command('revoke')
    .description('revoke the certificates of a device (or one certificate by serial number)')
    .requiredOption('--ca <DIR>', 'CA directory')
    .option('--serial <S>', 'device serial: revokes every certificate issued to it')
    .option('--cert-serial <HEX>', 'one certificate, by its serial number')
    .option('--reason <R>', 'keyCompromise, cessationOfOperation, superseded, … (default unspecified)')
    .option('--time <ISO>', 'revocation time (default now), e.g. the known time of a key compromise')
    .action(async (o: { ca: string; serial?: string; certSerial?: string; reason?: string; time?: string }) => {
      if ((o.serial === undefined) === (o.certSerial === undefined)) throw new UsageError('give exactly one of --serial or --cert-serial');
      const reason = o.reason !== undefined ? parseRevocationReason(o.reason) : undefined;
      const time = o.time !== undefined ? parseIsoTime(o.time, '--time') : undefined;
      const caDir = await requireCaDir(resolve(o.ca));
      const revoked = await revoke(caDir, {
        ...(o.serial !== undefined ? { deviceSerial: o.serial } : {}),
        ...(o.certSerial !== undefined ? { certSerial: o.certSerial } : {}),
        ...(reason !== undefined ? { reason } : {}),
        ...(time !== undefined ? { time } : {}),
      });
      for (const c of revoked) println(ctx.stdout, `revoked ${displaySubjectText(c.subject)} (serial ${c.serialNumber}) at ${c.revoked?.time ?? ''}, reason ${c.revoked?.reason ?? ''}`);
      println(ctx.stdout, 'publish a new CRL: keyframe ca crl --ca DIR --out CRL.pem');
    });

  ca.command('crl')
    .description('issue CRLs of the root, factory and operator CAs (one PEM file)')
    .requiredOption('--ca <DIR>', 'CA directory')
    .requiredOption('--out <CRL.pem>', 'output file')
    .option('--days <N>', 'days until nextUpdate', '7')
    .option('--ca-keystore <SPEC>', 'CA key store, overriding the one recorded at init')
    .option('--force', 'replace CRL.pem if it exists (as a periodic re-issue does)')
    .action(async (o: { ca: string; out: string; days: string; caKeystore?: string; force?: boolean }) => {
      const days = parsePositiveInt(o.days, '--days', 366);
      const out = (await checkOutput(o.out, { kind: 'file', force: o.force === true })).path;
      await withCa(o.ca, o.caKeystore, async (caDir, store) => {
        const pem = await issueAllCrls(caDir, store, { days });
        await writeFileAtomic(out, pem);
        const db = await caDir.readDb();
        println(ctx.stdout, `wrote CRLs of root, factory and operator CAs to ${out}: ${db.certificates.filter((c) => c.revoked).length} revoked certificate(s), next update in ${days} days`);
      });
    });

  ca.command('list')
    .description('list issued certificates and their status')
    .requiredOption('--ca <DIR>', 'CA directory')
    .option('--json', 'JSON output', false)
    .action(async (o: { ca: string; json: boolean }) => {
      const caDir = await requireCaDir(resolve(o.ca));
      const db = await caDir.readDb();
      const certificates = db.certificates.map((c) => ({ ...c, subject: displaySubjectText(c.subject) }));
      if (o.json) {
        println(ctx.stdout, JSON.stringify(certificates, null, 2));
        return;
      }
      const serialWidth = Math.max('SERIAL NUMBER'.length, ...certificates.map((c) => c.serialNumber.length));
      const rows = certificates.map((c) => ({ c, status: c.revoked ? `REVOKED ${c.revoked.time} (${c.revoked.reason})` : 'valid' }));
      const statusWidth = Math.max('STATUS'.length, ...rows.map((r) => r.status.length));
      println(ctx.stdout, `${'SERIAL NUMBER'.padEnd(serialWidth)}  ${'ISSUER'.padEnd(8)}  ${'NOT AFTER'.padEnd(10)}  ${'STATUS'.padEnd(statusWidth)}  SUBJECT`);
      for (const { c, status } of rows) {
        println(ctx.stdout, `${c.serialNumber.padEnd(serialWidth)}  ${c.issuer.padEnd(8)}  ${c.notAfter.slice(0, 10).padEnd(10)}  ${status.padEnd(statusWidth)}  ${c.subject}`);
      }
    });
}
