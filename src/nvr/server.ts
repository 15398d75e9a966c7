/**
 * The NVR service: ingest over HTTPS with mutual TLS on the shared server kit (src/server/kit.ts), the camera
 * protocol of protocol.ts. `keyframe nvr serve` calls startNvr; tests start it in-process or spawn the command.
 *
 * - Only device certificates chaining to the manufacturer root are accepted in the handshake; the path's serial
 *   must be the client certificate's (403, no reason given, otherwise).
 * - CRL files are watched (src/server/crl-watch.ts, as the KMS does): a new set applies to new handshakes and,
 *   through a check on every request, to cameras already connected — a revoked camera is refused within the
 *   watch interval, without a restart.
 * - Bodies are streamed to the store and hashed as they arrive, bounded per object kind (413); the kit's request
 *   timeout cuts off a trickled body.
 * - SIGTERM (close()): new requests get 503, requests in flight finish, then the server and the index close.
 */
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { ErrorCodes, KeyframeError, NotFoundError, errnoCode, ioError } from '../errors.js';
import { isRevokedIn } from '../pki/crl-set.js';
import { certsToPem, parseCertificates, toPem } from '../pki/pem.js';
import { loadTlsIdentity, peerDeviceSerial, tlsBrowserServerOptions, tlsServerOptions } from '../pki/tls.js';
import type { KeyObject } from 'node:crypto';
import { auditOrigin } from '../audit/export.js';
import { publicKeyObject, verifyCertificate } from '../pki/verify.js';
import { buildViewerServer } from './viewer.js';
import { RevocationFeed } from './revocations.js';
import { ExportService } from './exports.js';
import { openOperatorIdentity } from '../pki/operator-identity.js';
import type { OperatorIdentity } from '../pki/operator-identity.js';
import { mkdir } from 'node:fs/promises';
import { X509Certificate } from '../pki/x509.js';
import type { X509Crl } from '../pki/x509.js';
import { CrlWatcher } from '../server/crl-watch.js';
import { FORBIDDEN, createSecureServer } from '../server/kit.js';
import { silentLogger } from '../server/log.js';
import type { Logger } from '../server/log.js';
import { withDirLock } from '../util/fs.js';
import { removeTemporaries } from './check.js';
import type { NvrConfig } from './config.js';
import { NvrIndex } from './db.js';
import { IngestService } from './ingest.js';
import type { PutObject } from './ingest.js';
import { INGEST_PREFIX, parseIngestPath } from './protocol.js';
import { StampingService } from './stamping.js';
import { SegmentStore } from './store.js';
import { openNvrStamper } from './tsa.js';
import { PeerClassifier } from '../kms/peers.js';
import { readBody, registerAdmin } from './admin.js';
import { NvrOps, parseRingReport } from './ops.js';
import { RING_REPORT_LIMIT } from './protocol.js';
import { RetentionService } from './retention-service.js';

export interface RunningNvr {
  readonly url: string;
  readonly port: number;
  readonly ingest: IngestService;
  readonly index: NvrIndex;
  readonly store: SegmentStore;
  /** The NVR's time-stamping of record-chain heads (stamping.ts), when a TSA is configured. */
  readonly stamping?: StampingService;
  /** Retention, locks, timeline (retention-service.ts, locks.ts, ops.ts). */
  readonly ops: NvrOps;
  /** The viewers' listener (viewer.ts), when configured. */
  readonly viewerUrl?: string;
  /** Stops accepting, lets requests in flight finish (at most `graceMs`, default 10 s), closes everything. */
  close(graceMs?: number): Promise<void>;
}

export interface StartNvrOptions {
  readonly logger?: Logger;
  /** Create the index when it does not exist (default: refuse; nvr init makes it). */
  readonly createDatabase?: boolean;
}

function certsIn(path: string, what: string): X509Certificate[] {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`${what} not found: ${path}`);
    throw ioError(e, path, 'read') ?? e;
  }
  const certs = parseCertificates(pem, path);
  if (certs.length === 0) throw new KeyframeError(ErrorCodes.INPUT, `${path}: no ${what} in it`);
  return certs;
}

/**
 * The KMS whose access tokens the viewers' listener takes: its certificate (the chain file's first) must chain to
 * the operator CA; its public key checks the tokens, its subject is their issuer.
 */
async function kmsTokenKey(chainFile: string, operatorCerts: readonly X509Certificate[]): Promise<{ publicKey: KeyObject; issuer: string }> {
  const chain = certsIn(chainFile, 'KMS certificate chain');
  const leaf = chain[0] as X509Certificate;
  const r = await verifyCertificate(leaf, { roots: [...operatorCerts], intermediates: chain.slice(1), purpose: 'tls-server' });
  if (!r.valid) throw new KeyframeError(ErrorCodes.CERT_INVALID, `NVR config: the KMS certificate in ${chainFile} does not chain to the operator CA: ${r.reason ?? r.code ?? 'invalid'}`);
  return { publicKey: publicKeyObject(leaf), issuer: auditOrigin(leaf) };
}

/** Holds the store's lock file until `release` is called (a second NVR on the same store is refused at once). */
async function holdLock(dir: string): Promise<() => Promise<void>> {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let ended!: Promise<void>;
  await new Promise<void>((locked, failed) => {
    // a lock left by a killed NVR is taken over on the second attempt: wait that long, not for a live owner
    ended = withDirLock(dir, async () => {
      locked();
      await held;
    }, { waitMs: 1_000 }).catch((e: unknown) => failed(e instanceof Error ? e : new Error(String(e))));
  });
  return async () => {
    release();
    await ended;
  };
}

export async function startNvr(config: NvrConfig, options: StartNvrOptions = {}): Promise<RunningNvr> {
  const log = options.logger ?? silentLogger();
  const identity = loadTlsIdentity(config.identity, config.keystore);
  const roots = certsIn(config.trust.root, 'manufacturer root certificate');
  // CRL issuers: the root, the factory CA, and the operator CA (`ca crl` writes all three CRLs in one file)
  const issuers = [
    ...roots,
    ...(config.trust.factory !== undefined ? certsIn(config.trust.factory, 'factory CA certificate') : []),
    ...(config.trust.operator !== undefined ? certsIn(config.trust.operator, 'operator CA certificate') : []),
  ];
  // the admin API (admin.ts): operator-CA client certificates named in "admins"; the operator CA joins the
  // handshake's roots only then, and every route is guarded by peer kind
  const factoryCerts = config.trust.factory !== undefined ? certsIn(config.trust.factory, 'factory CA certificate') : [];
  const operatorCerts = config.trust.operator !== undefined ? certsIn(config.trust.operator, 'operator CA certificate') : [];
  const adminOn = config.admins.length > 0;
  if (adminOn && (factoryCerts[0] === undefined || operatorCerts[0] === undefined)) throw new KeyframeError(ErrorCodes.INPUT, 'NVR config: "admins" needs trust.factory and trust.operator (administrators are operator-CA certificates)');
  const tlsRoots = adminOn ? [...roots, ...operatorCerts] : roots;
  const store = new SegmentStore(config.store);
  await store.prepare();
  const unlock = await holdLock(config.store);
  let watcher: CrlWatcher | undefined;
  let peers: PeerClassifier | undefined;
  let index: NvrIndex | undefined;
  let stamping: StampingService | undefined;
  let retention: RetentionService | undefined;
  let revocations: RevocationFeed | undefined;
  let exporter: OperatorIdentity | undefined;
  let exports: ExportService | undefined;
  try {
    // a CRL change finds the server once it exists
    const later: { apply?: (crls: readonly X509Crl[]) => Promise<void> } = {};
    if (config.trust.crls !== undefined) {
      watcher = await CrlWatcher.start({ files: config.trust.crls, issuers, log, intervalMs: config.crlCheckMs, onChange: async (set) => {
        peers?.setCrls(set.crls);
        await later.apply?.(set.crls);
      } });
    }
    const w = watcher;
    index = NvrIndex.open(config.database, { groupCommit: true, ...(options.createDatabase === true ? { create: true } : {}) });
    // uploads a crash interrupted were never acknowledged: their temporaries go (the lock is held: nothing else writes)
    const stale = await removeTemporaries(store);
    if (stale > 0) log.info({ event: 'temporaries-removed', count: stale }, `removed ${stale} temporaries of interrupted uploads`);
    const ix = index;
    // the TSA is opened (and checked: its certificate, purpose and key) before anything listens
    if (config.tsa !== undefined) stamping = new StampingService({ index: ix, stamper: await openNvrStamper(config.tsa.dir, config.tsa.keystore), log, intervalMs: config.tsa.intervalMs });
    const ingest = new IngestService({ index: ix, store, roots, crls: () => w?.current.crls, limits: config.objectLimits, freeSpaceFloor: config.freeSpaceFloor, log, keepLiveSegment: config.viewer !== undefined });
    await ingest.settlePending();
    const crls = w?.current.crls;
    if (adminOn) peers = new PeerClassifier({ root: roots[0] as X509Certificate, factory: factoryCerts[0] as X509Certificate, operator: operatorCerts[0] as X509Certificate, admins: config.admins, ...(crls !== undefined ? { crls } : {}) });
    retention = new RetentionService({ index: ix, store, floorBytes: config.freeSpaceFloor, targetBytes: config.freeSpaceTarget, config: config.retention, log });
    const ops = new NvrOps(ix, retention);
    const server = createSecureServer({ name: 'nvr', tls: await tlsServerOptions(identity, { roots: tlsRoots, ...(crls !== undefined ? { crls } : {}) }), limits: config.limits, log });
    later.apply = async (set) => server.setSecureContext(await tlsServerOptions(identity, { roots: tlsRoots, crls: set }));
    let closing = false;
    const peerCerts = new WeakMap<TLSSocket, X509Certificate>();
    const peerOf = (socket: TLSSocket): X509Certificate => {
      let c = peerCerts.get(socket);
      if (c === undefined) {
        c = new X509Certificate(new Uint8Array(socket.getPeerCertificate().raw));
        peerCerts.set(socket, c);
      }
      return c;
    };
    const { app } = server;
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    if (peers !== undefined) registerAdmin(app, { ops, peers, log });
    // an upload that would leave the disk under its floor runs retention first (ingest's own check answers 507)
    const rs = retention;
    app.addHook('preHandler', async (req) => {
      if (req.method === 'PUT' && req.url.startsWith(`${INGEST_PREFIX}/`)) {
        const cl = Number(req.headers['content-length'] ?? 0);
        await rs.beforeIngest(Number.isFinite(cl) ? cl : 0);
      }
    });
    app.route({
      method: ['GET', 'PUT', 'POST'],
      url: `${INGEST_PREFIX}/*`,
      handler: async (req, reply) => {
        if (closing) return reply.code(503).header('connection', 'close').send({ error: 'shutting down' });
        const obj = parseIngestPath(req.url.split('?')[0] ?? '');
        const isGet = req.method === 'GET';
        const early = (status: number, body: unknown): unknown => (isGet ? reply.code(status).send(body) : reply.code(status).header('connection', 'close').send(body));
        if (obj === undefined) return early(400, { error: 'not an ingest path' });
        const socket = req.raw.socket as TLSSocket;
        const serial = peerDeviceSerial(socket);
        if (serial === undefined || serial !== obj.serial) return early(403, FORBIDDEN);
        const peer = peerOf(socket);
        if (w !== undefined && isRevokedIn(w.current, peer)) return early(403, FORBIDDEN);
        if (obj.kind === 'ring') {
          if (req.method !== 'PUT') return early(405, { error: 'method not allowed' });
          ops.putRing(obj.serial, parseRingReport(await readBody(req.body ?? req.raw, RING_REPORT_LIMIT)));
          return reply.code(204).send();
        }
        if (isGet !== (obj.kind === 'have' || obj.kind === 'sessions')) return early(405, { error: 'method not allowed' });
        if (obj.kind === 'sessions') {
          const q = req.query as Record<string, string | undefined>;
          const limit = q['limit'] !== undefined && /^[1-9]\d{0,3}$/.test(q['limit']) ? Math.min(1000, Number(q['limit'])) : 100;
          const before = q['before'];
          if (before !== undefined && !Number.isFinite(Date.parse(before))) return early(400, { error: 'before must be an ISO time' });
          return reply.send(ingest.sessions(obj.serial, before, limit));
        }
        if (obj.kind === 'have') return reply.send(ingest.have(obj.serial, obj.session) ?? { session: obj.session, chain: false, init: false, segments: [], records: [], ended: false });
        const cl = req.headers['content-length'];
        const r = await ingest.put(obj as PutObject, peer, (req.body as AsyncIterable<Uint8Array> | undefined) ?? req.raw, cl !== undefined ? Number(cl) : undefined);
        if (r.status >= 400) reply.header('connection', 'close');
        return reply.code(r.status).send(r.body);
      },
    });
    await retention.start();
    let viewer: ReturnType<typeof buildViewerServer> | undefined;
    if (config.viewer !== undefined && config.kms !== undefined) {
      const kmsKey = await kmsTokenKey(config.kms.chain, operatorCerts);
      if (config.kms.revocations !== false) {
        // ended sessions' tokens refused at once, their live sockets closed (revocations.ts)
        revocations = new RevocationFeed({
          url: config.kms.revocations,
          ca: operatorCerts.map((c) => toPem(c.rawData, 'CERTIFICATE')).join(''),
          publicKey: kmsKey.publicKey,
          issuer: kmsKey.issuer,
          log,
          onChange: (c) => {
            const closedSockets = viewer?.live.revoke(c.stale ? 'all' : new Set(c.ended)) ?? 0;
            if (c.ended.length > 0 || closedSockets > 0) log.info({ event: 'sessions-ended', sessions: c.ended.length, liveClosed: closedSockets }, `${c.ended.length} session(s) ended at the KMS: their tokens are refused`);
          },
        });
        await revocations.start();
      }
      if (config.exporter !== undefined) {
        const e = config.exporter;
        exporter = await openOperatorIdentity(e.identity, 'exporter', { roots: operatorCerts, ...(e.keystore !== undefined ? { keystore: e.keystore } : {}) });
        try {
          await mkdir(e.dir, { recursive: true, mode: 0o700 });
        } catch (err) {
          throw ioError(err, e.dir, 'create directory') ?? err;
        }
        exports = new ExportService({ config, exporter, dir: e.dir, locks: ops.locks, durable: () => ix.durable(), log });
        await exports.load();
        log.info({ event: 'exporter', subject: exporter.config.name, dir: e.dir }, `exports through the viewers' listener signed by ${exporter.config.name}`);
      }
      viewer = buildViewerServer({ tls: await tlsBrowserServerOptions(identity), rootPem: certsToPem(roots), limits: config.limits, log, index: ix, store, ops, feed: ingest.live, kms: { ...kmsKey, audience: config.kms.name, licence: config.kms.licence }, ...(revocations !== undefined ? { revocations } : {}), ...(exports !== undefined ? { exports } : {}) });
    }
    const { url, port } = await server.listen(config.listen.host, config.listen.port);
    const viewerAt = viewer !== undefined && config.viewer !== undefined ? await viewer.listen(config.viewer.host, config.viewer.port) : undefined;
    if (stamping !== undefined && config.tsa !== undefined) {
      stamping.start();
      log.info({ event: 'stamping', tsa: stamping.stamper.description, intervalMs: config.tsa.intervalMs }, `time-stamping record-chain heads every ${config.tsa.intervalMs} ms as ${stamping.stamper.description}`);
    }
    const st = stamping;
    log.info({ event: 'store', store: config.store, database: config.database, freeSpaceFloor: config.freeSpaceFloor }, 'store open');
    let closed = false;
    return {
      url,
      port,
      ingest,
      index: ix,
      store,
      ...(st !== undefined ? { stamping: st } : {}),
      ...(viewerAt !== undefined ? { viewerUrl: viewerAt.url } : {}),
      ops,
      close: async (graceMs = 10_000) => {
        if (closed) return;
        closed = true;
        closing = true;
        await Promise.race([ingest.drained(), new Promise((r) => setTimeout(r, graceMs).unref())]);
        await st?.stop();
        await st?.stamper.close();
        await rs.stop();
        w?.close();
        revocations?.stop();
        await viewer?.app.close();
        await exports?.close();
        await exporter?.close();
        await app.close();
        ix.close();
        await unlock();
      },
    };
  } catch (e) {
    revocations?.stop();
    await exporter?.close();
    await stamping?.stop();
    await stamping?.stamper.close();
    await retention?.stop();
    watcher?.close();
    index?.close();
    await unlock();
    throw e;
  }
}
