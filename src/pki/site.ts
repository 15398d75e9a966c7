/**
 * A site TLS identity (NVR, KMS, operator tools): a key pair in a key store and an operator-CA certificate.
 * Layout of OUT: site.json { version, kind, name, keystore spec, keyLabel, algorithm }, cert.pem, chain.pem
 * (certificate + operator CA), keys/ (default software key store).
 */
import type { X509Certificate } from './x509.js';
import { join, resolve } from 'node:path';
import { formatKeyStoreSpec } from '../keystore/spec.js';
import type { KeyPairAlgorithm, KeyStore } from '../keystore/types.js';
import { writeFileAtomic } from '../util/fs.js';
import { buildKeyedDir } from './_keyed-dir.js';
import { issueSiteCertificate } from './ca.js';
import type { SiteCertificateOptions } from './ca.js';
import type { CaStore } from './ca-store.js';
import { certsToPem } from './pem.js';

export interface SiteConfig {
  readonly version: 1;
  readonly kind: 'site';
  readonly name: string;
  readonly keystore: string;
  readonly keyLabel: string;
  readonly algorithm: KeyPairAlgorithm;
  readonly createdAt: string;
}

export interface CreateSiteOptions extends SiteCertificateOptions {
  readonly out: string;
  readonly ca: CaStore;
  readonly caKeyStore: KeyStore;
  readonly keystore?: string;
  readonly keyLabel?: string;
  readonly algorithm?: KeyPairAlgorithm;
  /** Replace an existing site directory at `out` (checked by the caller). */
  readonly replace?: boolean;
}

export async function createSite(options: CreateSiteOptions): Promise<{ config: SiteConfig; certificate: X509Certificate }> {
  const keyLabel = options.keyLabel ?? 'tls';
  const algorithm = options.algorithm ?? 'ec-p256';
  return buildKeyedDir(options.out, options.keystore, keyLabel, algorithm, async ({ tmp, store, finalSpec }) => {
    const certificate = await issueSiteCertificate(options.ca, options.caKeyStore, store, keyLabel, options);
    const config: SiteConfig = {
      version: 1,
      kind: 'site',
      name: options.name,
      keystore: formatKeyStoreSpec(finalSpec, resolve(options.out)),
      keyLabel,
      algorithm,
      createdAt: (options.now ?? new Date()).toISOString(),
    };
    await writeFileAtomic(join(tmp, 'site.json'), JSON.stringify(config, null, 2) + '\n');
    await writeFileAtomic(join(tmp, 'cert.pem'), certsToPem([certificate]));
    await writeFileAtomic(join(tmp, 'chain.pem'), certsToPem([certificate, options.ca.certs.operator]));
    return { config, certificate };
  }, { replace: options.replace === true });
}
