/**
 * Certification authority operations: set-up, enrolment tokens, issuance from a CSR (device) or for a site
 * (TLS), revocation and CRLs. All signatures are made by the CA keys inside the CA's key store.
 */
import {
  AuthorityKeyIdentifierExtension,
  Extension,
  SubjectKeyIdentifierExtension,
  X509CertificateGenerator,
  X509CrlGenerator,
  X509CrlReason,
} from './x509.js';
import type { Pkcs10CertificateRequest, X509Certificate, X509Crl } from './x509.js';
import { CRLNumber, id_ce_cRLNumber } from '@peculiar/asn1-x509';
import { AsnConvert } from '@peculiar/asn1-schema';
import { createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { join, resolve } from 'node:path';
import { EnrolmentError, ErrorCodes, InputError, NotFoundError, PkiError } from '../errors.js';
import { formatKeyStoreSpec, parseKeyStoreSpec } from '../keystore/spec.js';
import type { KeyPairAlgorithm, KeyStore } from '../keystore/types.js';
import { buildDirAtomic, writeFileAtomic } from '../util/fs.js';
import { emptyDb, CA_NAMES, CaStore } from './ca-store.js';
import type { CaConfig, CaDb, CaName, IssuedCertificate } from './ca-store.js';
import { sha256Hex } from './_certs.js';
import { csrChallengePassword, csrDeviceSerial, csrSignatureValid } from './csr.js';
import { DEFAULT_TOKEN_TTL_MS, newToken, redeemToken } from './enrol.js';
import { certsToPem, toPem } from './pem.js';
import {
  VALIDITY_DAYS,
  assertAltName,
  assertDeviceSerial,
  assertPrintable,
  caExtensions,
  deviceExtensions,
  exporterExtensions,
  names,
  newCertificateSerial,
  siteExtensions,
  tsaExtensions,
  validity,
} from './profile.js';
import { keyPairAlgorithmOf, keyStoreCrypto, keyStoreKeyPair, webPublicKey } from './signer.js';
import { openKeyStore } from '../keystore/open.js';

export const DEFAULT_ORG = 'keyframe';


export interface InitCaOptions {
  readonly dir: string;
  /** Key store spec for the CA keys; default `file:DIR/keys` (passphrase from $KEYFRAME_KEYSTORE_PIN). */
  readonly keystore?: string;
  readonly org?: string;
  readonly algorithm?: KeyPairAlgorithm;
  readonly now?: Date;
  /** Replace an existing CA directory at `dir` (checked by the caller). */
  readonly replace?: boolean;
}

export interface InitCaResult {
  readonly dir: string;
  readonly root: X509Certificate;
  readonly factory: X509Certificate;
  readonly operator: X509Certificate;
  readonly keystore: string;
}

const LABELS: Record<CaName, string> = { root: 'ca-root', factory: 'ca-factory', operator: 'ca-operator' };

/**
 * Creates a CA directory: manufacturer root (pathLen 1) → factory CA (pathLen 0), and a separate operator root
 * for site TLS. The directory appears complete or not at all; with a PKCS#11 store, keys made before a failure
 * are destroyed again.
 */
export async function initCa(options: InitCaOptions): Promise<InitCaResult> {
  const org = options.org ?? DEFAULT_ORG;
  assertPrintable(org, 'organisation name');
  const algorithm = options.algorithm ?? 'ec-p256';
  const now = options.now ?? new Date();
  const finalSpec = parseKeyStoreSpec(options.keystore ?? `file:${join(options.dir, 'keys')}`);
  return buildDirAtomic(options.dir, async (tmp) => {
    // a default store lives inside DIR: build it in the temporary directory, record the final path
    const insideDir = finalSpec.kind === 'file' && finalSpec.dir === resolve(options.dir, 'keys');
    const workSpec = insideDir ? { ...finalSpec, dir: join(tmp, 'keys') } : finalSpec;
    const store = await openKeyStore(workSpec, { create: true });
    const created: string[] = [];
    try {
      for (const name of CA_NAMES) {
        if ((await store.info(LABELS[name])) !== undefined) {
          throw new PkiError(ErrorCodes.KEY_EXISTS, `the key store already holds a key "${LABELS[name]}": use an empty key store for a new CA`);
        }
      }
      for (const name of CA_NAMES) {
        await store.generateKeyPair(LABELS[name], algorithm);
        created.push(LABELS[name]);
      }
      const rootKeys = await keyStoreKeyPair(store, LABELS.root);
      const factoryKeys = await keyStoreKeyPair(store, LABELS.factory);
      const operatorKeys = await keyStoreKeyPair(store, LABELS.operator);
      const root = await X509CertificateGenerator.createSelfSigned(
        {
          serialNumber: newCertificateSerial(),
          name: names.root(org),
          ...validity(VALIDITY_DAYS.root, now),
          keys: { privateKey: rootKeys.privateKey, publicKey: rootKeys.publicKey } as never,
          signingAlgorithm: rootKeys.signingAlgorithm as never,
          extensions: await caExtensions(rootKeys.publicKey, 1),
        },
        keyStoreCrypto,
      );
      const factory = await X509CertificateGenerator.create(
        {
          serialNumber: newCertificateSerial(),
          subject: names.factory(org),
          issuer: root.subjectName,
          ...validity(VALIDITY_DAYS.factory, now),
          publicKey: factoryKeys.publicKey as never,
          signingKey: rootKeys.privateKey as never,
          signingAlgorithm: rootKeys.signingAlgorithm as never,
          extensions: await caExtensions(factoryKeys.publicKey, 0, root),
        },
        keyStoreCrypto,
      );
      const operator = await X509CertificateGenerator.createSelfSigned(
        {
          serialNumber: newCertificateSerial(),
          name: names.operator(org),
          ...validity(VALIDITY_DAYS.operator, now),
          keys: { privateKey: operatorKeys.privateKey, publicKey: operatorKeys.publicKey } as never,
          signingAlgorithm: operatorKeys.signingAlgorithm as never,
          extensions: await caExtensions(operatorKeys.publicKey, 0),
        },
        keyStoreCrypto,
      );
      const config: CaConfig = { version: 1, org, keystore: formatKeyStoreSpec(finalSpec, resolve(options.dir)), labels: LABELS, createdAt: now.toISOString() };
      const db = emptyDb();
      const record = (cert: X509Certificate, issuer: CaName): IssuedCertificate => ({
        serialNumber: cert.serialNumber,
        issuer,
        subject: cert.subject,
        notBefore: cert.notBefore.toISOString(),
        notAfter: cert.notAfter.toISOString(),
        sha256: sha256Hex(cert),
        issuedAt: now.toISOString(),
      });
      db.certificates.push(record(factory, 'root'));
      await writeFileAtomic(join(tmp, 'root.pem'), certsToPem([root]));
      await writeFileAtomic(join(tmp, 'factory.pem'), certsToPem([factory]));
      await writeFileAtomic(join(tmp, 'operator.pem'), certsToPem([operator]));
      await writeFileAtomic(join(tmp, 'certs', `${factory.serialNumber}.pem`), certsToPem([factory]));
      await writeFileAtomic(join(tmp, 'ca.json'), JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
      await writeFileAtomic(join(tmp, 'db.json'), JSON.stringify(db, null, 2) + '\n', { mode: 0o600 });
      await writeFileAtomic(
        join(tmp, 'audit.log'),
        `${JSON.stringify({ time: now.toISOString(), event: 'ca-init', org, root: sha256Hex(root), factory: sha256Hex(factory), operator: sha256Hex(operator) })}\n`,
        { mode: 0o600 },
      );
      return { dir: options.dir, root, factory, operator, keystore: config.keystore };
    } catch (e) {
      if (!insideDir) for (const label of created) await store.deleteKey(label).catch(() => undefined);
      throw e;
    } finally {
      await store.close();
    }
  }, { replace: options.replace === true });
}

/** Issues a one-time enrolment token for a device serial. The token is returned once and stored as a hash. */
export async function issueEnrolmentToken(ca: CaStore, deviceSerial: string, options: { ttlMs?: number; now?: Date } = {}): Promise<string> {
  assertDeviceSerial(deviceSerial);
  const now = options.now ?? new Date();
  const ttl = options.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
  if (!Number.isFinite(ttl) || ttl <= 0 || ttl > 30 * 86_400_000) throw new InputError('token lifetime must be between 1 ms and 30 days');
  const { token, record } = newToken(deviceSerial, now, ttl);
  await ca.update(async (db) => {
    db.tokens.push(record);
  });
  await ca.audit('token-issued', { token: record.id, serial: deviceSerial, expires: record.expiresAt });
  return token;
}

export interface IssueDeviceOptions {
  /** The enrolment token; default: the CSR's challengePassword. */
  readonly token?: string;
  readonly days?: number;
  readonly now?: Date;
  /**
   * The device serial may already hold a valid certificate: issue anyway, and revoke the old one(s) with reason
   * superseded, recorded in the database and the audit log. Without it such a request is refused.
   */
  readonly reissue?: boolean;
}

/** The certificates of a device serial that are neither revoked nor expired at `now`. */
export function validDeviceCertificates(db: CaDb, deviceSerial: string, now: Date): IssuedCertificate[] {
  return db.certificates.filter((c) => c.issuer === 'factory' && c.deviceSerial === deviceSerial && c.revoked === undefined && Date.parse(c.notAfter) > now.getTime());
}

/** The refusal when a serial already holds a valid certificate and --reissue was not given. */
export function alreadyCertified(deviceSerial: string, valid: readonly IssuedCertificate[]): PkiError {
  return new PkiError(
    ErrorCodes.EXISTS,
    `device ${deviceSerial} already has a valid certificate (serial ${valid.map((c) => c.serialNumber).join(', ')}): refused; --reissue issues a new one and revokes the old (reason superseded)`,
  );
}

/**
 * The factory CA's decision on a device CSR: proof of possession (the CSR is signed by the key it certifies),
 * a device serial in the subject, and a one-time token issued for that serial. Any refusal is one
 * EnrolmentError; the CA's audit log gets the reason. The certificate's subject is the CA's, not the CSR's.
 */
export async function issueDeviceCertificate(ca: CaStore, store: KeyStore, csr: Pkcs10CertificateRequest, options: IssueDeviceOptions = {}): Promise<X509Certificate> {
  const now = options.now ?? new Date();
  const refuse = async (reason: string, serial?: string): Promise<never> => {
    await ca.audit('enrol-refused', { reason, serial });
    throw new EnrolmentError(reason);
  };
  if (!(await csrSignatureValid(csr))) return refuse('CSR signature does not verify with its own public key');
  const serial = csrDeviceSerial(csr);
  if (serial === undefined) return refuse('CSR subject has no single serialNumber');
  try {
    assertDeviceSerial(serial);
  } catch {
    return refuse('CSR serialNumber is not a valid device serial');
  }
  const token = options.token ?? csrChallengePassword(csr);
  if (token === undefined) return refuse('no enrolment token', serial);
  const spki = Buffer.from(csr.publicKey.rawData);
  let algorithm: KeyPairAlgorithm;
  let nodeKey: KeyObject;
  try {
    nodeKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    algorithm = keyPairAlgorithmOf(nodeKey);
  } catch {
    return refuse('unsupported key algorithm in CSR', serial);
  }
  const subjectKey = await webPublicKey(nodeKey);
  const factoryKeys = await keyStoreKeyPair(store, ca.config.labels.factory);
  const outcome = await ca.update(async (db): Promise<{ cert: X509Certificate; superseded: IssuedCertificate[] } | { refusal: string }> => {
    const redemption = redeemToken(db, token, serial, now);
    if ('refusal' in redemption) return redemption; // db is still written: a spent token stays spent
    const valid = validDeviceCertificates(db, serial, now);
    // thrown inside the update: db.json stays as it was, so the token is not spent by this refusal
    if (valid.length > 0 && options.reissue !== true) throw alreadyCertified(serial, valid);
    const issued = await X509CertificateGenerator.create(
      {
        serialNumber: newCertificateSerial(),
        subject: names.device(ca.config.org, serial),
        issuer: ca.certs.factory.subjectName,
        ...validity(options.days ?? VALIDITY_DAYS.device, now),
        publicKey: spki,
        signingKey: factoryKeys.privateKey as never,
        signingAlgorithm: factoryKeys.signingAlgorithm as never,
        extensions: await deviceExtensions(subjectKey, algorithm, ca.certs.factory),
      },
      keyStoreCrypto,
    );
    db.certificates.push({
      serialNumber: issued.serialNumber,
      issuer: 'factory',
      subject: issued.subject,
      deviceSerial: serial,
      notBefore: issued.notBefore.toISOString(),
      notAfter: issued.notAfter.toISOString(),
      sha256: sha256Hex(issued),
      issuedAt: now.toISOString(),
    });
    await ca.writeIssued(issued.serialNumber, certsToPem([issued]));
    for (const old of valid) old.revoked = { time: now.toISOString(), reason: 'superseded', supersededBy: issued.serialNumber };
    return { cert: issued, superseded: valid.map((c) => ({ ...c })) };
  });
  if ('refusal' in outcome) return refuse(outcome.refusal, serial);
  const cert = outcome.cert;
  await ca.audit('device-issued', { serial, certSerial: cert.serialNumber, sha256: sha256Hex(cert), ...(outcome.superseded.length > 0 ? { reissue: true } : {}) });
  for (const old of outcome.superseded) {
    await ca.audit('revoked', { certSerial: old.serialNumber, serial, reason: 'superseded', time: now.toISOString(), supersededBy: cert.serialNumber });
  }
  return cert;
}

export interface SiteCertificateOptions {
  /** Common name, e.g. the host name of the NVR or KMS. */
  readonly name: string;
  /** DNS names and IP addresses for subjectAltName. */
  readonly altNames: readonly string[];
  /** Also allow TLS client authentication (servers that call other servers). */
  readonly clientAuth?: boolean;
  readonly days?: number;
  readonly now?: Date;
}

/** What the operator CA certifies: site TLS servers, time-stamping authorities, evidence exporters. */
export type OperatorCertificateKind = 'site' | 'tsa' | 'exporter';

interface OperatorRequest {
  readonly kind: OperatorCertificateKind;
  readonly name: string;
  readonly days: number;
  readonly now: Date;
  readonly extensions: (subjectKey: Awaited<ReturnType<typeof keyStoreKeyPair>>['publicKey']) => Promise<Extension[]>;
  readonly audit: Record<string, string | undefined>;
}

/** Issues an operator-CA certificate for the key pair held in `subjectStore` under `label`, recorded in db.json. */
async function issueOperatorCertificate(ca: CaStore, caStore: KeyStore, subjectStore: KeyStore, label: string, request: OperatorRequest): Promise<X509Certificate> {
  const subjectKeys = await keyStoreKeyPair(subjectStore, label);
  const spki = (await subjectStore.getPublicKey(label)).export({ format: 'der', type: 'spki' });
  const operatorKeys = await keyStoreKeyPair(caStore, ca.config.labels.operator);
  const cert = await ca.update(async (db) => {
    const issued = await X509CertificateGenerator.create(
      {
        serialNumber: newCertificateSerial(),
        subject: names.site(ca.config.org, request.name),
        issuer: ca.certs.operator.subjectName,
        ...validity(request.days, request.now),
        publicKey: spki,
        signingKey: operatorKeys.privateKey as never,
        signingAlgorithm: operatorKeys.signingAlgorithm as never,
        extensions: await request.extensions(subjectKeys.publicKey),
      },
      keyStoreCrypto,
    );
    db.certificates.push({
      serialNumber: issued.serialNumber,
      issuer: 'operator',
      subject: issued.subject,
      purpose: request.kind,
      notBefore: issued.notBefore.toISOString(),
      notAfter: issued.notAfter.toISOString(),
      sha256: sha256Hex(issued),
      issuedAt: request.now.toISOString(),
    });
    await ca.writeIssued(issued.serialNumber, certsToPem([issued]));
    return issued;
  });
  await ca.audit(`${request.kind}-issued`, { ...request.audit, certSerial: cert.serialNumber });
  return cert;
}

/** Issues an operator-CA TLS certificate for a key pair held in `siteStore` under `label`. */
export async function issueSiteCertificate(
  ca: CaStore,
  caStore: KeyStore,
  siteStore: KeyStore,
  label: string,
  options: SiteCertificateOptions,
): Promise<X509Certificate> {
  assertPrintable(options.name, 'site name');
  for (const n of options.altNames) assertAltName(n);
  return issueOperatorCertificate(ca, caStore, siteStore, label, {
    kind: 'site',
    name: options.name,
    days: options.days ?? VALIDITY_DAYS.site,
    now: options.now ?? new Date(),
    extensions: (key) => siteExtensions(key, ca.certs.operator, options.altNames, options.clientAuth ?? false),
    audit: { name: options.name },
  });
}

export interface SinglePurposeCertificateOptions {
  /** Common name: the TSA's name (e.g. NVR-TSA) or the exporter's (a person, or a recorder). */
  readonly name: string;
  readonly days?: number;
  readonly now?: Date;
}

/**
 * Issues an operator-CA certificate for a time-stamping authority (RFC 3161): EKU id-kp-timeStamping only,
 * critical, as RFC 3161 §2.3 requires and OpenSSL enforces.
 */
export async function issueTsaCertificate(ca: CaStore, caStore: KeyStore, tsaStore: KeyStore, label: string, options: SinglePurposeCertificateOptions): Promise<X509Certificate> {
  assertPrintable(options.name, 'TSA name');
  return issueOperatorCertificate(ca, caStore, tsaStore, label, {
    kind: 'tsa',
    name: options.name,
    days: options.days ?? VALIDITY_DAYS.tsa,
    now: options.now ?? new Date(),
    extensions: (key) => tsaExtensions(key, ca.certs.operator),
    audit: { name: options.name },
  });
}

/** Issues an operator-CA certificate for an evidence exporter: EKU keyframe evidence-export only, critical. */
export async function issueExporterCertificate(ca: CaStore, caStore: KeyStore, exporterStore: KeyStore, label: string, options: SinglePurposeCertificateOptions): Promise<X509Certificate> {
  assertPrintable(options.name, 'exporter name');
  return issueOperatorCertificate(ca, caStore, exporterStore, label, {
    kind: 'exporter',
    name: options.name,
    days: options.days ?? VALIDITY_DAYS.exporter,
    now: options.now ?? new Date(),
    extensions: (key) => exporterExtensions(key, ca.certs.operator),
    audit: { name: options.name },
  });
}

export const REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

export function parseRevocationReason(text: string): RevocationReason {
  const found = REVOCATION_REASONS.find((r) => r.toLowerCase() === text.toLowerCase());
  if (found === undefined) throw new InputError(`unknown revocation reason "${text}" (one of ${REVOCATION_REASONS.join(', ')})`);
  return found;
}

export interface RevokeOptions {
  /** Revoke every certificate of this device serial … */
  readonly deviceSerial?: string;
  /** … or one certificate by its serial number (hex). */
  readonly certSerial?: string;
  readonly reason?: RevocationReason;
  /** Revocation time; default now. May be in the past (e.g. the known time of a key compromise). */
  readonly time?: Date;
}

/** Marks certificates revoked in the CA database; the next CRL lists them. Returns the revoked records. */
export async function revoke(ca: CaStore, options: RevokeOptions): Promise<IssuedCertificate[]> {
  if ((options.deviceSerial === undefined) === (options.certSerial === undefined)) throw new InputError('name either a device serial or a certificate serial number');
  const time = options.time ?? new Date();
  const reason = options.reason ?? 'unspecified';
  const certSerial = options.certSerial?.toLowerCase().replace(/^0x/, '');
  const revoked = await ca.update(async (db) => {
    const targets = db.certificates.filter((c) =>
      options.deviceSerial !== undefined ? c.deviceSerial === options.deviceSerial : c.serialNumber.toLowerCase() === certSerial,
    );
    if (targets.length === 0) {
      throw new NotFoundError(options.deviceSerial !== undefined ? `no certificate issued to device ${options.deviceSerial}` : `no certificate with serial number ${options.certSerial ?? ''}`);
    }
    const fresh = targets.filter((c) => c.revoked === undefined);
    if (fresh.length === 0) throw new PkiError(ErrorCodes.EXISTS, `already revoked: ${targets.map((c) => c.serialNumber).join(', ')}`);
    for (const c of fresh) c.revoked = { time: time.toISOString(), reason };
    return fresh.map((c) => ({ ...c }));
  });
  for (const c of revoked) await ca.audit('revoked', { certSerial: c.serialNumber, serial: c.deviceSerial, reason, time: time.toISOString() });
  return revoked;
}

export interface CrlOptions {
  /** Days until nextUpdate; default 7. */
  readonly days?: number;
  readonly now?: Date;
}

/** Issues a CRL for one CA (numbered, with the authority key identifier), listing its revoked certificates. */
export async function issueCrl(ca: CaStore, store: KeyStore, issuer: CaName, options: CrlOptions = {}): Promise<X509Crl> {
  const now = options.now ?? new Date();
  const days = options.days ?? 7;
  if (!Number.isFinite(days) || days <= 0 || days > 366) throw new InputError('CRL validity must be 1 … 366 days');
  const issuerCert = ca.certs[issuer];
  const keys = await keyStoreKeyPair(store, ca.config.labels[issuer]);
  const ski = issuerCert.getExtension(SubjectKeyIdentifierExtension);
  if (ski === null) throw new PkiError(ErrorCodes.CA_STATE, `${issuer} CA certificate has no subject key identifier`);
  return ca.update(async (db) => {
    db.crlNumber[issuer] += 1;
    const number = db.crlNumber[issuer];
    const crlNumber = new Extension(id_ce_cRLNumber, false, AsnConvert.serialize(new CRLNumber(number)));
    return X509CrlGenerator.create(
      {
        issuer: issuerCert.subjectName,
        thisUpdate: new Date(Math.floor(now.getTime() / 1000) * 1000),
        nextUpdate: new Date(Math.floor(now.getTime() / 1000) * 1000 + days * 86_400_000),
        entries: db.certificates
          .filter((c) => c.issuer === issuer && c.revoked !== undefined)
          .map((c) => ({
            serialNumber: c.serialNumber,
            revocationDate: new Date(c.revoked?.time ?? now),
            reason: X509CrlReason[(c.revoked?.reason ?? 'unspecified') as keyof typeof X509CrlReason],
          })),
        extensions: [new AuthorityKeyIdentifierExtension(ski.keyId), crlNumber],
        signingKey: keys.privateKey as never,
        signingAlgorithm: keys.signingAlgorithm as never,
      },
      keyStoreCrypto,
    );
  });
}

/** CRLs of all three CAs, PEM-concatenated: what `keyframe ca crl` writes. */
export async function issueAllCrls(ca: CaStore, store: KeyStore, options: CrlOptions = {}): Promise<string> {
  let pem = '';
  for (const issuer of CA_NAMES) pem += toPem((await issueCrl(ca, store, issuer, options)).rawData, 'X509 CRL');
  return pem;
}

export { CaStore };
export type { CaName };
