/**
 * The CA directory and its state. Layout of DIR:
 *
 *   root.pem factory.pem operator.pem   the CA certificates
 *   ca.json                             { version, org, keystore spec (no secret), key labels, createdAt }
 *   db.json                             issued certificates, revocations, enrolment tokens (hashes), CRL numbers
 *   certs/<serial>.pem                  every certificate issued
 *   audit.log                           one JSON line per CA decision (never a token or key)
 *   keys/                               the default software key store (file:DIR/keys)
 *
 * Every change to db.json happens under DIR/.lock and is written atomically. A writer waits up to
 * CA_LOCK_WAIT_MS (30 s) for another one to finish (parallel `device provision` runs queue up); a lock left by a
 * dead process is taken over.
 */
import type { X509Certificate } from './x509.js';
import { existsSync } from 'node:fs';
import { appendFile, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorCodes, KeyframeError, NotFoundError, PkiError, errnoCode } from '../errors.js';
import { openKeyStore } from '../keystore/open.js';
import { parseKeyStoreSpec } from '../keystore/spec.js';
import type { KeyStore } from '../keystore/types.js';
import { withDirLock, writeFileAtomic } from '../util/fs.js';
import { parseCertificates } from './pem.js';

export type CaName = 'root' | 'factory' | 'operator';

/** How long a CA writer waits for the lock held by another process before giving up (KF_ERR_LOCKED). */
export const CA_LOCK_WAIT_MS = 30_000;
export const CA_NAMES: readonly CaName[] = ['root', 'factory', 'operator'];

export interface CaConfig {
  readonly version: 1;
  readonly org: string;
  readonly keystore: string;
  readonly labels: Readonly<Record<CaName, string>>;
  readonly createdAt: string;
}

export interface RevocationRecord {
  readonly time: string;
  readonly reason: string;
  /** For a certificate replaced by `--reissue`: the serial number of the certificate that superseded it. */
  readonly supersededBy?: string;
}

export interface IssuedCertificate {
  readonly serialNumber: string;
  readonly issuer: CaName;
  readonly subject: string;
  readonly deviceSerial?: string;
  /** For operator-CA certificates: what they certify (absent in databases written before it was recorded). */
  readonly purpose?: 'site' | 'tsa' | 'exporter';
  readonly notBefore: string;
  readonly notAfter: string;
  readonly sha256: string;
  readonly issuedAt: string;
  revoked?: RevocationRecord;
}

export interface TokenRecord {
  readonly id: string;
  readonly deviceSerial: string;
  readonly secretSha256: string;
  readonly issuedAt: string;
  readonly expiresAt: string;
  usedAt?: string;
}

export interface CaDb {
  version: 1;
  crlNumber: Record<CaName, number>;
  certificates: IssuedCertificate[];
  tokens: TokenRecord[];
}

export function emptyDb(): CaDb {
  return { version: 1, crlNumber: { root: 0, factory: 0, operator: 0 }, certificates: [], tokens: [] };
}

export interface CaCertificates {
  readonly root: X509Certificate;
  readonly factory: X509Certificate;
  readonly operator: X509Certificate;
}

async function readJson<T>(path: string, what: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new PkiError(ErrorCodes.CA_STATE, `${what} missing: ${path} (is this a CA directory made by \`keyframe ca init\`?)`);
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new PkiError(ErrorCodes.CA_STATE, `${what} is damaged: ${path} is not valid JSON`);
  }
}

/** An opened CA directory. Reads are lock-free; `update` serialises writers. */
export class CaStore {
  readonly dir: string;
  readonly config: CaConfig;
  readonly certs: CaCertificates;

  private constructor(dir: string, config: CaConfig, certs: CaCertificates) {
    this.dir = dir;
    this.config = config;
    this.certs = certs;
  }

  static async open(dir: string): Promise<CaStore> {
    const config = await readJson<CaConfig>(join(dir, 'ca.json'), 'CA configuration');
    if (config.version !== 1 || typeof config.keystore !== 'string' || typeof config.org !== 'string') {
      throw new PkiError(ErrorCodes.CA_STATE, `unsupported CA configuration in ${join(dir, 'ca.json')}`);
    }
    const load = async (name: CaName): Promise<X509Certificate> => {
      let pem: string;
      try {
        pem = await readFile(join(dir, `${name}.pem`), 'utf8');
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') throw new PkiError(ErrorCodes.CA_STATE, `CA certificate missing: ${join(dir, `${name}.pem`)}`);
        throw e;
      }
      const [cert] = parseCertificates(pem, join(dir, `${name}.pem`));
      if (cert === undefined) throw new PkiError(ErrorCodes.CA_STATE, `no certificate in ${join(dir, `${name}.pem`)}`);
      return cert;
    };
    const certs = { root: await load('root'), factory: await load('factory'), operator: await load('operator') };
    return new CaStore(dir, config, certs);
  }

  /** Opens the CA's key store; `override` replaces the spec recorded at `ca init` (e.g. another PIN source). */
  async openKeyStore(override?: string): Promise<KeyStore> {
    return openKeyStore(override !== undefined ? parseKeyStoreSpec(override) : parseKeyStoreSpec(this.config.keystore, resolve(this.dir)));
  }

  async readDb(): Promise<CaDb> {
    const db = await readJson<CaDb>(join(this.dir, 'db.json'), 'CA database');
    if (db.version !== 1 || !Array.isArray(db.certificates) || !Array.isArray(db.tokens)) {
      throw new PkiError(ErrorCodes.CA_STATE, `CA database ${join(this.dir, 'db.json')} is damaged`);
    }
    return db;
  }

  /**
   * Read-modify-write of db.json under the directory lock. `change` may throw to abort: db.json is then left
   * exactly as it was. `change` may also return side files to write (certificates) before db.json is replaced.
   */
  async update<T>(change: (db: CaDb) => Promise<T>): Promise<T> {
    return withDirLock(this.dir, async () => {
      const db = await this.readDb();
      const result = await change(db);
      await writeFileAtomic(join(this.dir, 'db.json'), JSON.stringify(db, null, 2) + '\n', { mode: 0o600 });
      return result;
    }, { waitMs: CA_LOCK_WAIT_MS });
  }

  async writeIssued(serialNumber: string, pem: string): Promise<string> {
    const path = join(this.dir, 'certs', `${serialNumber}.pem`);
    await writeFileAtomic(path, pem, { exclusive: true });
    return path;
  }

  /** One JSON line per decision. Never pass tokens, PINs or keys here. */
  async audit(event: string, details: Record<string, string | number | boolean | undefined>): Promise<void> {
    const line = JSON.stringify({ time: new Date().toISOString(), event, ...details });
    await appendFile(join(this.dir, 'audit.log'), `${line}\n`, { mode: 0o600 });
  }
}

export async function requireCaDir(dir: string): Promise<CaStore> {
  if (!existsSync(dir)) throw new NotFoundError(`CA directory not found: ${dir}`);
  try {
    return await CaStore.open(dir);
  } catch (e) {
    if (e instanceof KeyframeError) throw e;
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`CA directory not found: ${dir}`);
    throw e;
  }
}
