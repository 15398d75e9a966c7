/**
 * The shared server kit: every keyframe HTTPS service (the KMS now, the NVR next) is made here, so that each one
 * is bounded the same way (limits.ts, docs/security.md):
 *
 * - TLS 1.3 from node:tls, with a handshake timeout: a socket that never finishes its handshake is closed;
 * - a connection cap that sheds unauthenticated connections first (connections.ts);
 * - header and whole-request timeouts, checked every second: a body trickled a byte at a time is cut off (408);
 * - an idle timeout and a keep-alive timeout; a body limit (413);
 * - one error mapping from keyframe's typed errors to HTTP statuses; a refusal never says why;
 * - a log line (rate-limited) whenever a limit bites.
 *
 * fastify 5 builds the routes; the kit builds the node:https server under it (`serverFactory`) so that every
 * limit is set on the server itself, before it listens.
 */
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket, TlsOptions } from 'node:tls';
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance } from 'fastify';
import { ErrorCodes, GroupKeyRefusal, InputError, KeyframeError, errnoCode, ioError, isKeyframeError } from '../errors.js';
import { ConnectionGuard } from './connections.js';
import type { ServerLimits } from './limits.js';
import { LimitReporter } from './log.js';
import type { Logger } from './log.js';

export interface SecureServerOptions {
  /** The service's name, for logs. */
  readonly name: string;
  /** Key, certificate chain, trust anchors, CRLs, requestCert… (node:tls); TLS 1.3 is enforced here. */
  readonly tls: TlsOptions;
  readonly limits: ServerLimits;
  readonly log: Logger;
  /** Whether a connection whose handshake completed counts as authenticated (default: its certificate verified). */
  readonly isAuthenticated?: (socket: TLSSocket) => boolean;
}

export interface SecureServer {
  readonly app: FastifyInstance;
  readonly connections: ConnectionGuard;
  readonly limitsHit: LimitReporter;
  /** Listens; an address in use or not available is one error naming it (exit 2), not a stack trace. */
  listen(host: string, port: number): Promise<{ url: string; port: number }>;
  /** Replaces the TLS context (new CRLs, a renewed certificate) for every handshake from now on. */
  setSecureContext(options: TlsOptions): void;
}

/** The answer to any authentication or authorisation failure: nothing about why. */
export const FORBIDDEN = { error: 'forbidden' } as const;

/** HTTP status and body for an error thrown by a route. */
export function httpStatusOf(e: unknown): { status: number; body: Record<string, string> } {
  if (e instanceof GroupKeyRefusal) return { status: 403, body: { error: e.message, code: e.code } };
  if (isKeyframeError(e)) {
    switch (e.code) {
      case ErrorCodes.INPUT:
      case ErrorCodes.USAGE:
      case ErrorCodes.GROUPKEY_MESSAGE:
        return { status: 400, body: { error: e.message, code: e.code } };
      case ErrorCodes.NOT_FOUND:
        return { status: 404, body: { error: e.message, code: e.code } };
      case ErrorCodes.EXISTS:
      case ErrorCodes.GROUPKEY_REFUSED:
      case ErrorCodes.DIVERGED:
        return { status: 409, body: { error: e.message, code: e.code } };
      case ErrorCodes.LIMIT:
        return { status: 429, body: { error: e.message, code: e.code } };
      case ErrorCodes.TOO_LARGE:
        return { status: 413, body: { error: e.message, code: e.code } };
      case ErrorCodes.UNAVAILABLE:
        return { status: 503, body: { error: e.message, code: e.code } };
      default:
        return { status: 500, body: { error: e.message, code: e.code } };
    }
  }
  return { status: 500, body: { error: 'internal error', code: ErrorCodes.INTERNAL } };
}

export function createSecureServer(o: SecureServerOptions): SecureServer {
  const l = o.limits;
  const limitsHit = new LimitReporter(o.log);
  const connections = new ConnectionGuard(l.maxConnections, limitsHit, o.isAuthenticated);
  let server: Server | undefined;
  const app = Fastify({
    logger: false,
    bodyLimit: l.maxBodyBytes,
    forceCloseConnections: true,
    return503OnClosing: true,
    serverFactory: (handler) => {
      const s = createServer(
        {
          ...o.tls,
          minVersion: 'TLSv1.3',
          handshakeTimeout: l.handshakeTimeoutMs,
          headersTimeout: l.headersTimeoutMs,
          requestTimeout: l.requestTimeoutMs,
          keepAliveTimeout: l.keepAliveTimeoutMs,
          // header and request timeouts are enforced by a periodic check: every second, not Node's 30 s
          connectionsCheckingInterval: Math.min(1_000, l.headersTimeoutMs),
        },
        handler,
      );
      s.headersTimeout = l.headersTimeoutMs;
      s.requestTimeout = l.requestTimeoutMs;
      s.keepAliveTimeout = l.keepAliveTimeoutMs;
      if (l.maxRequestsPerSocket > 0) s.maxRequestsPerSocket = l.maxRequestsPerSocket;
      s.setTimeout(l.idleTimeoutMs);
      connections.attach(s);
      s.on('tlsClientError', (err: Error & { code?: string }) => {
        if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') limitsHit.hit('handshake-timeout', { timeoutMs: l.handshakeTimeoutMs });
        else if (err.code !== 'ECONNRESET') limitsHit.hit('handshake-failed', { reason: err.code ?? err.message });
      });
      server = s;
      return s;
    },
    clientErrorHandler: (err: Error & { code?: string }, socket) => {
      let status = 400;
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
        status = 408;
        limitsHit.hit('request-timeout', { timeoutMs: l.requestTimeoutMs, headersTimeoutMs: l.headersTimeoutMs });
      } else if (err.code === 'HPE_HEADER_OVERFLOW') {
        status = 431;
        limitsHit.hit('header-size');
      }
      if (err.code !== 'ECONNRESET' && !socket.destroyed && socket.writable) {
        const body = JSON.stringify({ error: status === 408 ? 'request timeout' : status === 431 ? 'headers too large' : 'bad request' });
        socket.write(`HTTP/1.1 ${status} ${status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      }
      socket.destroy();
    },
  });
  app.setErrorHandler((e: FastifyError, req, reply) => {
    const code = e.statusCode;
    if (!isKeyframeError(e) && code !== undefined && code >= 400 && code < 500) {
      if (code === 413) limitsHit.hit('body-size', { maxBodyBytes: l.maxBodyBytes, url: req.url.split('?')[0] });
      return reply.code(code).send({ error: e.message, code: ErrorCodes.INPUT });
    }
    const r = httpStatusOf(e);
    if (r.status === 429) limitsHit.hit('quota', { url: req.url.split('?')[0], detail: e.message });
    if (r.status === 413) limitsHit.hit('body-size', { url: req.url.split('?')[0], detail: e.message });
    if (r.status === 500) o.log.error({ event: 'error', url: req.url.split('?')[0], error: e.message }, 'request failed');
    return reply.code(r.status).send(r.body);
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'no such endpoint' }));

  return {
    app,
    connections,
    limitsHit,
    setSecureContext: (options) => {
      if (server === undefined) throw new Error('setSecureContext before the server exists');
      server.setSecureContext(options);
    },
    listen: async (host, port) => {
      try {
        // a deep accept queue: a burst of connections is accepted (and shed if need be), not dropped by the kernel
        await app.listen({ host, port, backlog: 4096 });
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') throw new InputError(`${o.name}: cannot listen on ${host}: unknown host`);
        if (code === 'EACCES') throw new InputError(`${o.name}: cannot listen on ${host}:${port}: permission denied (ports below 1024 need privileges)`);
        const io = ioError(e, `${host.includes(':') ? `[${host}]` : host}:${port}`, 'listen on');
        if (io !== undefined) throw new KeyframeError(io.code, `${o.name}: ${io.message}`, { cause: e });
        throw e;
      }
      const p = ((server as Server).address() as AddressInfo).port;
      const h = host.includes(':') ? `[${host}]` : host;
      return { url: `https://${h}:${p}`, port: p };
    },
  };
}
