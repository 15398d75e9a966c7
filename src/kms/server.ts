/**
 * Starts the KMS: opens its identity's key store, the database and the trust anchors, loads every group, serves
 * HTTPS with mutual TLS and runs the periodic refresh. `keyframe kms serve` calls this; tests and benchmarks call
 * it in-process or spawn the command.
 */
import { readFileSync } from 'node:fs';
import { ErrorCodes, KeyframeError, NotFoundError, errnoCode } from '../errors.js';
import { openKeyStore } from '../keystore/open.js';
import type { KeyStore } from '../keystore/types.js';
import { parseCertificates } from '../pki/pem.js';
import { isRevokedIn } from '../pki/crl-set.js';
import type { CrlSet } from '../pki/crl-set.js';
import { CrlWatcher } from '../server/crl-watch.js';
import { loadTlsIdentity, tlsBrowserServerOptions, tlsServerOptions } from '../pki/tls.js';
import { toPem } from '../pki/pem.js';
import type { SecureServer } from '../server/kit.js';
import { AccessService } from './access.js';
import { auditOrigin } from './audit-checkpoints.js';
import { buildBrowserListener } from './browser.js';
import type { KmsHttpOptions } from './http.js';
import type { X509Certificate } from '../pki/x509.js';
import type { KmsConfig } from './config.js';
import type { KmsDb } from './db.js';
import { buildKmsServer } from './http.js';
import { PeerClassifier } from './peers.js';
import { silentLogger } from '../server/log.js';
import type { Logger } from '../server/log.js';
import { openKmsState } from './state.js';
import { KmsService } from './service.js';

export interface RunningKms {
  readonly url: string;
  readonly port: number;
  readonly service: KmsService;
  readonly access: AccessService;
  /** The browser-facing listener's address, when configured. */
  readonly browserUrl?: string;
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

export interface StartKmsOptions {
  readonly logger?: Logger;
  readonly refreshTickMs?: number;
  /** Create the database when it does not exist (a new KMS: `kms serve --new-database`); default: refuse. */
  readonly createDatabase?: boolean;
}

export async function startKms(config: KmsConfig, options: StartKmsOptions = {}): Promise<RunningKms> {
  const logger = options.logger ?? silentLogger();
  const log = (event: string, detail: Record<string, unknown>): void => logger.info({ event, ...detail }, event);
  const identity = loadTlsIdentity(config.identity, config.keystore);
  const root = one(config.trust.root, 'manufacturer root certificate');
  const factory = one(config.trust.factory, 'factory CA certificate');
  const operator = one(config.trust.operator, 'operator CA certificate');
  let store: KeyStore | undefined;
  let db: KmsDb | undefined;
  let service: KmsService | undefined;
  let watcher: CrlWatcher | undefined;
  let browser: SecureServer | undefined;
  // a late CRL change finds these once they exist
  let apply: ((set: CrlSet) => Promise<void>) | undefined;
  try {
    if (config.trust.crls !== undefined) {
      watcher = await CrlWatcher.start({ files: config.trust.crls, issuers: [root, factory, operator], log: logger, intervalMs: config.crlCheckMs, onChange: (set) => apply?.(set) });
    }
    const crls = watcher?.current.crls;
    store = await openKeyStore(identity.keystore);
    const info = await store.info(identity.keyLabel);
    if (info?.algorithm !== 'ec-p256') throw new KeyframeError(ErrorCodes.UNSUPPORTED, `the KMS key ${identity.keyLabel} must be an ec-p256 key pair (it signs bundles and runs the enrolment ECDH)`);
    const state = await openKmsState({ database: config.database, store, ...(options.createDatabase === true ? { create: true } : {}) });
    db = state.db;
    const sealer = state.sealer;
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
    const kmsCert = identity.chain[0] as X509Certificate;
    const svcA = service;
    const access = new AccessService({
      db,
      sealer,
      findKey: (kid, actor) => svcA.findContentKey(kid, actor),
      membersOf: (group) => svcA.membersOf(group),
      signToken: (input) => (store as KeyStore).sign(identity.keyLabel, input, { dsaEncoding: 'ieee-p1363' }),
      issuer: auditOrigin(kmsCert),
      audiences: config.nvrs,
      totpRequiredForAdmins: config.totpRequiredForAdmins,
      sessionIdleMs: config.sessionIdleMs,
      sessionMaxMs: config.sessionMaxMs,
      liveGraceMs: config.liveGraceMs,
      log,
    });
    const audit = { db, origin: auditOrigin(kmsCert), chain: identity.chain.map((c) => toPem(c.rawData, 'CERTIFICATE')), checkpoint: () => svcA.checkpoints.checkpoint() };
    const crlStatus = (): ReturnType<NonNullable<KmsHttpOptions['crlStatus']>> => watcher?.status() ?? [];
    const server = buildKmsServer({
      service,
      access,
      audit,
      peers,
      tls,
      limits: config.limits,
      maxWaitMs: config.maxWaitMs,
      log: logger,
      crlStatus,
    });
    browser = config.browser === undefined ? undefined : buildBrowserListener({ access, tls: await tlsBrowserServerOptions(identity), limits: config.limits, log: logger, origins: config.viewerOrigins, adminApi: { service, audit, crlStatus } });
    const svc0 = service;
    // a new CRL: new handshakes check it, connected peers are judged again, revoked members leave their groups
    apply = async (set) => {
      server.setSecureContext(await tlsServerOptions(identity, { roots: [root, operator], crls: set.crls }));
      peers.setCrls(set.crls);
      svc0.setCrls(set.crls);
      await svc0.evictRevoked((cert) => isRevokedIn(set, cert), 'kms:crl');
    };
    const initial = watcher?.current;
    if (initial !== undefined) await svc0.evictRevoked((cert) => isRevokedIn(initial, cert), 'kms:crl');
    const { url, port } = await server.listen(config.listen.host, config.listen.port);
    const app = server.app;
    const browserAt = config.browser === undefined || browser === undefined ? undefined : await browser.listen(config.browser.host, config.browser.port);
    const browserApp = browser?.app;
    service.startRefreshTimer(options.refreshTickMs ?? Math.max(250, Math.min(60_000, Math.floor(config.refreshPeriodMs / 4))));
    const svc = service;
    const st = store;
    const d = db;
    return {
      url,
      port,
      service: svc,
      access,
      ...(browserAt !== undefined ? { browserUrl: browserAt.url } : {}),
      close: async () => {
        watcher?.close();
        await browserApp?.close();
        await app.close();
        access.flushAudit(); // licence decisions still queued are committed before the last checkpoint
        await svc.close();
        d.close();
        await st.close();
      },
    };
  } catch (e) {
    watcher?.close();
    await browser?.app.close();
    await service?.close();
    db?.close();
    await store?.close();
    throw e;
  }
}
