/** Opening KMS clients from identity directories: an administrator (site directory); a camera's is src/camera/kms-agent.ts. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, KeyframeError, NotFoundError, errnoCode } from '../errors.js';
import { parseCertificates } from '../pki/pem.js';
import { loadTlsIdentity, tlsClientOptions } from '../pki/tls.js';
import type { X509Certificate } from '../pki/x509.js';
import { KmsClient } from './client.js';

export function servername(url: string): string | undefined {
  const host = new URL(url).hostname;
  return /^[\d.]+$/.test(host) || host.includes(':') ? undefined : host;
}

/** An administrator's client: the operator-CA identity in `identityDir`; the KMS must chain to its operator CA. */
export async function openAdminClient(url: string, identityDir: string): Promise<KmsClient> {
  if (existsSync(join(identityDir, 'device.json'))) {
    throw new KeyframeError(ErrorCodes.INPUT, `${identityDir} is a camera (device) identity: administering the KMS needs its administrator identity, an operator-CA client identity (kms init makes DIR/admin)`);
  }
  const identity = loadTlsIdentity(identityDir);
  const operator = identity.chain.at(-1) as X509Certificate;
  if (identity.chain.length < 2) throw new KeyframeError(ErrorCodes.INPUT, `${identityDir}/chain.pem must hold the certificate and the operator CA`);
  const sn = servername(url);
  return new KmsClient(url, await tlsClientOptions(identity, { roots: [operator] }, sn), { trustName: `the operator CA in ${join(identityDir, 'chain.pem')}`, who: `administrator identity ${identityDir}` });
}

export function readRoots(path: string): X509Certificate[] {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`certificate file not found: ${path}`);
    throw e;
  }
  return parseCertificates(pem, path);
}
