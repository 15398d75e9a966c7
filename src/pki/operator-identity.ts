/**
 * Single-purpose operator-CA identities: a time-stamping authority (`keyframe ca tsa-cert`) and an evidence exporter
 * (`keyframe ca exporter-cert`). Each is a key pair in a key store and an operator-CA certificate whose only,
 * critical extended key usage is that purpose. Layout of OUT:
 *
 *   identity.json   { version, kind: "tsa" | "exporter", name, keystore spec (no secret), keyLabel, algorithm, createdAt }
 *   cert.pem        the certificate
 *   chain.pem       certificate + operator CA
 *   keys/           the default software key store (file:OUT/keys)
 *
 * Opening an identity for use checks that it is one: the right kind, a certificate that certifies the key in the
 * store, and a path to a trust anchor (the operator CA at the end of chain.pem unless the caller names roots) for
 * the purpose, unrevoked when CRLs are given. A camera directory, a site (TLS) identity, a self-signed, revoked or
 * wrong-purpose certificate is refused.
 */
import type { X509Certificate, X509Crl } from './x509.js';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, InputError, NotFoundError, PkiError, errnoCode } from '../errors.js';
import { openKeyStore } from '../keystore/open.js';
import { formatKeyStoreSpec, parseKeyStoreSpec } from '../keystore/spec.js';
import type { KeyPairAlgorithm, KeyStore, SignOptions } from '../keystore/types.js';
import { writeFileAtomic } from '../util/fs.js';
import { buildKeyedDir } from './_keyed-dir.js';
import { isSelfIssued } from './_certs.js';
import { issueExporterCertificate, issueTsaCertificate } from './ca.js';
import type { CaStore } from './ca-store.js';
import type { CertPurpose } from './_checks.js';
import { certsToPem, parseCertificates } from './pem.js';
import { subjectOf, verifyCertificate } from './verify.js';

export type OperatorIdentityKind = 'tsa' | 'exporter';

export const IDENTITY_FILE = 'identity.json';

export interface OperatorIdentityConfig {
  readonly version: 1;
  readonly kind: OperatorIdentityKind;
  readonly name: string;
  readonly keystore: string;
  readonly keyLabel: string;
  readonly algorithm: KeyPairAlgorithm;
  readonly createdAt: string;
}

const PURPOSE: Readonly<Record<OperatorIdentityKind, CertPurpose>> = { tsa: 'timestamping', exporter: 'evidence-export' };
const WHAT: Readonly<Record<OperatorIdentityKind, string>> = { tsa: 'time-stamping authority (TSA)', exporter: 'evidence exporter' };
const A_WHAT: Readonly<Record<OperatorIdentityKind, string>> = { tsa: 'a time-stamping authority (TSA)', exporter: 'an evidence exporter' };
const COMMAND: Readonly<Record<OperatorIdentityKind, string>> = { tsa: 'keyframe ca tsa-cert', exporter: 'keyframe ca exporter-cert' };

export interface CreateOperatorIdentityOptions {
  readonly kind: OperatorIdentityKind;
  readonly out: string;
  readonly ca: CaStore;
  readonly caKeyStore: KeyStore;
  readonly name: string;
  readonly keystore?: string;
  readonly keyLabel?: string;
  readonly algorithm?: KeyPairAlgorithm;
  readonly days?: number;
  readonly now?: Date;
}

/** Creates OUT with a key generated in its key store and an operator-CA certificate for the purpose. */
export async function createOperatorIdentity(options: CreateOperatorIdentityOptions): Promise<{ config: OperatorIdentityConfig; certificate: X509Certificate }> {
  const keyLabel = options.keyLabel ?? options.kind;
  const algorithm = options.algorithm ?? 'ec-p256';
  return buildKeyedDir(options.out, options.keystore, keyLabel, algorithm, async ({ tmp, store, finalSpec }) => {
    const issue = options.kind === 'tsa' ? issueTsaCertificate : issueExporterCertificate;
    const certificate = await issue(options.ca, options.caKeyStore, store, keyLabel, {
      name: options.name,
      ...(options.days !== undefined ? { days: options.days } : {}),
      ...(options.now !== undefined ? { now: options.now } : {}),
    });
    const config: OperatorIdentityConfig = {
      version: 1,
      kind: options.kind,
      name: options.name,
      keystore: formatKeyStoreSpec(finalSpec),
      keyLabel,
      algorithm,
      createdAt: (options.now ?? new Date()).toISOString(),
    };
    await writeFileAtomic(join(tmp, IDENTITY_FILE), JSON.stringify(config, null, 2) + '\n');
    await writeFileAtomic(join(tmp, 'cert.pem'), certsToPem([certificate]));
    await writeFileAtomic(join(tmp, 'chain.pem'), certsToPem([certificate, options.ca.certs.operator]));
    return { config, certificate };
  });
}

/** An opened identity: its configuration, key store and chain (certificate first). */
export interface OperatorIdentity {
  readonly dir: string;
  readonly config: OperatorIdentityConfig;
  readonly store: KeyStore;
  readonly certificate: X509Certificate;
  readonly chain: readonly X509Certificate[];
  /** Signs SHA-256(data) with the identity's key (ECDSA DER or RSA PKCS#1 v1.5). */
  sign(data: Uint8Array): Promise<Buffer>;
  /** Signs SHA-256 of the concatenated chunks, read one at a time (an export file); see KeyStore.signStream. */
  signStream(chunks: AsyncIterable<Uint8Array>, options?: SignOptions): Promise<Buffer>;
  close(): Promise<void>;
}

/** Why `dir` is not an identity of `kind`, when it is recognisably something else. */
function otherKind(dir: string, kind: OperatorIdentityKind): string | undefined {
  const hint = `create one with \`${COMMAND[kind]}\``;
  if (existsSync(join(dir, 'device.json'))) return `${dir} is a camera (device) directory, not ${A_WHAT[kind]} identity: ${hint}`;
  if (existsSync(join(dir, 'site.json'))) return `${dir} is a site (TLS) identity, not ${A_WHAT[kind]} identity: ${hint}`;
  return undefined;
}

async function readConfig(dir: string, kind: OperatorIdentityKind): Promise<OperatorIdentityConfig> {
  let text: string;
  try {
    text = await readFile(join(dir, IDENTITY_FILE), 'utf8');
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
    if (!existsSync(dir)) throw new NotFoundError(`${WHAT[kind]} identity not found: ${dir}`);
    throw new InputError(otherKind(dir, kind) ?? `${dir} is not ${A_WHAT[kind]} identity (no ${IDENTITY_FILE}): create one with \`${COMMAND[kind]}\``);
  }
  let config: OperatorIdentityConfig;
  try {
    config = JSON.parse(text) as OperatorIdentityConfig;
  } catch {
    throw new InputError(`${join(dir, IDENTITY_FILE)} is not valid JSON`);
  }
  if (config.version !== 1 || typeof config.keystore !== 'string' || typeof config.keyLabel !== 'string' || (config.kind !== 'tsa' && config.kind !== 'exporter')) {
    throw new InputError(`${join(dir, IDENTITY_FILE)} is not a keyframe identity configuration`);
  }
  if (config.kind !== kind) throw new InputError(`${dir} is ${A_WHAT[config.kind]} identity, not ${A_WHAT[kind]} identity: create one with \`${COMMAND[kind]}\``);
  return config;
}

export interface OpenIdentityOptions {
  /** Key store spec overriding identity.json (e.g. another PIN source). */
  readonly keystore?: string;
  /** Trust anchors for the check; default: the self-signed CA certificate at the end of chain.pem (the operator CA). */
  readonly roots?: readonly X509Certificate[];
  /** With CRLs, a revoked identity (or one whose CA is revoked) is refused. */
  readonly crls?: readonly X509Crl[];
  /** Check time; default now. */
  readonly now?: Date;
}

/**
 * Opens an identity directory of `kind` for use and checks it (see the module comment). Usage errors (another kind of
 * directory, malformed files) are KF_ERR_INPUT or KF_ERR_NOT_FOUND; a certificate that does not qualify is
 * KF_ERR_CERT_INVALID, and one that does not match the key KF_ERR_CERT_MISMATCH.
 */
export async function openOperatorIdentity(dir: string, kind: OperatorIdentityKind, options: OpenIdentityOptions = {}): Promise<OperatorIdentity> {
  const config = await readConfig(dir, kind);
  const chainPath = join(dir, 'chain.pem');
  if (!existsSync(chainPath)) throw new InputError(`${dir} has no certificate (chain.pem)`);
  const chain = parseCertificates(await readFile(chainPath), chainPath);
  const certificate = chain[0];
  if (certificate === undefined) throw new InputError(`${chainPath} holds no certificate`);
  const anchor = chain.length > 1 ? chain[chain.length - 1] : undefined;
  const roots = options.roots ?? (anchor !== undefined && isSelfIssued(anchor) ? [anchor] : []);
  const result = await verifyCertificate(certificate, {
    roots,
    intermediates: chain.slice(1),
    purpose: PURPOSE[kind],
    ...(options.crls !== undefined ? { crls: options.crls } : {}),
    ...(options.now !== undefined ? { at: options.now, now: options.now } : {}),
  });
  if (!result.valid) {
    throw new PkiError(ErrorCodes.CERT_INVALID, `${WHAT[kind]} ${subjectOf(certificate)} refused: ${result.reason ?? result.code ?? 'certificate not valid'}`);
  }
  const store = await openKeyStore(parseKeyStoreSpec(options.keystore ?? config.keystore));
  try {
    const spki = (await store.getPublicKey(config.keyLabel)).export({ format: 'der', type: 'spki' });
    if (!Buffer.from(certificate.publicKey.rawData).equals(spki)) throw new PkiError(ErrorCodes.CERT_MISMATCH, `${chainPath}: the certificate does not certify the key "${config.keyLabel}" of the key store`);
  } catch (e) {
    await store.close();
    throw e;
  }
  return {
    dir,
    config,
    store,
    certificate,
    chain,
    sign: (data) => store.sign(config.keyLabel, data),
    signStream: (chunks, signOptions) => store.signStream(config.keyLabel, chunks, signOptions),
    close: () => store.close(),
  };
}
