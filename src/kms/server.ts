/**
 * Starts the KMS: opens its identity's key store, the database and the trust anchors, loads every group, serves
 * HTTPS with mutual TLS and runs the periodic refresh. `keyframe kms serve` calls this; tests and benchmarks call
 * it in-process or spawn the command.
 */
import { readFileSync } from 'node:fs';
import { ErrorCodes, KeyframeError, NotFoundError, errnoCode } from '../errors.js';
import { openKeyStore } from '../keystore/open.js';
import type { KeyStore } from '../keystore/types.js';
import { parseCertificates, parseCrls } from '../pki/pem.js';
import { loadTlsIdentity, tlsServerOptions } from '../pki/tls.js';
import type { X509Certificate } from '../pki/x509.js';
import type { KmsConfig } from './config.js';
import { KmsDb } from './db.js';
import { buildKmsServer } from './http.js';
import { PeerClassifier } from './peers.js';
import { silentLogger } from '../server/log.js';
import type { Logger } from '../server/log.js';
import { Sealer } from './seal.js';
import { KmsService } from './service.js';

export interface RunningKms {
  readonly url: string;
  readonly port: number;
  readonly service: KmsService;
  close(): Promise<void>;
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`${what} not found: ${path}`);
    throw e;
  }
}

function one(path: string, what: string): X509Certificate {
  const certs = parseCertificates(readPem(path, what), path);
  if (certs.length !== 1) throw new KeyframeError(ErrorCodes.INPUT, `${path}: expected one ${what}, found ${certs.length}`);
  return certs[0] as X509Certificate;
}

export async function startKms(config: KmsConfig, options: { readonly logger?: Logger; readonly refreshTickMs?: number } = {}): Promise<RunningKms> {
  const logger = options.logger ?? silentLogger();
  const log = (event: string, detail: Record<string, unknown>): void => logger.info({ event, ...detail }, event);
  const identity = loadTlsIdentity(config.identity, config.keystore);
  const root = one(config.trust.root, 'manufacturer root certificate');
  const factory = one(config.trust.factory, 'factory CA certificate');
  const operator = one(config.trust.operator, 'operator CA certificate');
  const crls = config.trust.crls !== undefined ? parseCrls(readPem(config.trust.crls, 'CRL file'), config.trust.crls) : undefined;
  let store: KeyStore | undefined;
  let db: KmsDb | undefined;
  let service: KmsService | undefined;
  try {
    store = await openKeyStore(identity.keystore);
    const info = await store.info(identity.keyLabel);
    if (info?.algorithm !== 'ec-p256') throw new KeyframeError(ErrorCodes.UNSUPPORTED, `the KMS key ${identity.keyLabel} must be an ec-p256 key pair (it signs bundles and runs the enrolment ECDH)`);
    db = KmsDb.open(config.database);
    const sealer = await Sealer.open(store);
    service = await KmsService.start({
      db,
      store,
      sealer,
      identityLabel: identity.keyLabel,
      identityChain: identity.chain,
      trust: { root, factory, ...(crls !== undefined ? { crls } : {}) },
      refreshPeriodMs: config.refreshPeriodMs,
      batchWindowMs: config.batchWindowMs,
      log,
    });
    const tls = await tlsServerOptions(identity, { roots: [root, operator], ...(crls !== undefined ? { crls } : {}) });
    const peers = new PeerClassifier({ root, factory, operator, admins: config.admins, ...(crls !== undefined ? { crls } : {}) });
    const server = buildKmsServer({ service, peers, tls, limits: config.limits, maxWaitMs: config.maxWaitMs, log: logger });
    const { url, port } = await server.listen(config.listen.host, config.listen.port);
    const app = server.app;
    service.startRefreshTimer(options.refreshTickMs ?? Math.max(250, Math.min(60_000, Math.floor(config.refreshPeriodMs / 4))));
    const svc = service;
    const st = store;
    const d = db;
    return {
      url,
      port,
      service: svc,
      close: async () => {
        await app.close();
        await svc.close();
        d.close();
        await st.close();
      },
    };
  } catch (e) {
    await service?.close();
    db?.close();
    await store?.close();
    throw e;
  }
}
