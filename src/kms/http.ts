/**
 * The KMS over HTTPS (fastify 5): TLS 1.3 with a client certificate required on every connection, no route
 * without one. Cameras (device certificates under the factory CA) reach /v1/enrol, /v1/me and /v1/groups/…;
 * administrators (operator-CA client certificates named in the config) reach /v1/admin/…. Any authentication or
 * authorisation failure is one answer: 403 {"error":"forbidden"}; a refused protocol message is one answer too:
 * 403 {"error":"group-key message refused"} — details go to the audit log, never to the peer.
 *
 * Binary bodies are application/octet-stream. A list of bundles is framed as (u32 length ‖ bundle)*.
 *
 * Here: the TLS server and the one check of the peer's kind before any route. The routes are in routes/, one module
 * per concern (enrolment, camera-facing group keys with the bundle framing, relay, administration, key release).
 */
import type { TLSSocket, TlsOptions } from 'node:tls';
import { createSecureServer, FORBIDDEN } from '../server/kit.js';
import type { SecureServer } from '../server/kit.js';
import type { ServerLimits } from '../server/limits.js';
import type { Logger } from '../server/log.js';
import type { CrlStatus } from '../server/crl-watch.js';
import type { Peer, PeerClassifier } from './peers.js';
import type { KmsService } from './service.js';
import { adminRoutes } from './routes/admin.js';
import { enrolmentRoutes } from './routes/enrolment.js';
import { groupKeyRoutes } from './routes/group-key.js';
import { keyReleaseRoutes } from './routes/key-release.js';
import { relayRoutes } from './routes/relay.js';
import { accountRoutes } from './routes/accounts.js';
import { auditRoutes } from './routes/audit.js';
import type { AuditRouteOptions } from './routes/audit.js';
import type { AccessService } from './access.js';
import type { KmsDb } from './db.js';

export { frameBundles, unframeBundles } from './routes/group-key.js';

declare module 'fastify' {
  interface FastifyRequest {
    peer: Peer | undefined;
  }
}

export interface KmsHttpOptions {
  readonly service: KmsService;
  /** Accounts, grants, licences (access.ts). */
  readonly access: AccessService;
  /** The audit log's export for administrators. */
  readonly audit: Omit<AuditRouteOptions, 'db'> & { readonly db: KmsDb };
  readonly peers: PeerClassifier;
  readonly tls: TlsOptions;
  readonly limits: ServerLimits;
  readonly maxWaitMs: number;
  readonly log: Logger;
  /** The CRLs in force and their state (src/server/crl-watch.ts). */
  readonly crlStatus?: () => readonly CrlStatus[];
}

export function buildKmsServer(o: KmsHttpOptions): SecureServer {
  const server = createSecureServer({ name: 'kms', tls: o.tls, limits: o.limits, log: o.log });
  const app = server.app;
  app.decorateRequest('peer', undefined);
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: o.limits.maxBodyBytes }, (_req, body, done) => done(null, body));
  app.addHook('onRequest', async (req, reply) => {
    const peer = await o.peers.classify(req.raw.socket as TLSSocket);
    const wantsAdmin = req.url.startsWith('/v1/admin/');
    if (peer === undefined || (peer.kind === 'admin') !== wantsAdmin) {
      o.log.warn({ event: 'forbidden', url: req.url.split('?')[0], peer: peer === undefined ? 'unknown' : peer.kind }, 'forbidden');
      return reply.code(403).send(FORBIDDEN);
    }
    req.peer = peer;
    return undefined;
  });

  enrolmentRoutes(server, o);
  groupKeyRoutes(server, o);
  relayRoutes(server, o);
  adminRoutes(server, o);
  keyReleaseRoutes(server, o);
  accountRoutes(server, o.access);
  auditRoutes(server, o.audit);
  return server;
}
