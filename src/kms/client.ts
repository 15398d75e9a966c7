/**
 * An HTTPS client for the KMS with mutual TLS: one keep-alive agent per client, TLS 1.3, our certificate presented
 * and the KMS's checked against the pinned operator root (tlsClientOptions). Answers are mapped back to typed
 * errors: 403 → the generic refusal, 400 → KF_ERR_INPUT, 404 → KF_ERR_NOT_FOUND, 409 → the server's code,
 * anything unreachable → KF_ERR_UNAVAILABLE.
 */
import { Agent, request } from 'node:https';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { ErrorCodes, GroupKeyRefusal, KeyframeError } from '../errors.js';
import type { ErrorCode } from '../errors.js';

export interface KmsResponse {
  readonly status: number;
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** DER of the certificate the KMS presented on this connection (when asked for). */
  readonly peerCertificate: Buffer | undefined;
}

const KNOWN = new Set<string>(Object.values(ErrorCodes));

export interface RequestOptions {
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  /** Also return the KMS's certificate on this connection (costly: only where it is checked, at enrolment). */
  readonly peerCertificate?: boolean;
}

/** OpenSSL's verification failures of the server's certificate (Node gives them as error codes). */
const UNTRUSTED_SERVER = /^(CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|INVALID_CA|INVALID_PURPOSE|PATH_LENGTH|ERR_TLS_CERT_ALTNAME|HOSTNAME_MISMATCH|CRL_)/;

export interface KmsClientOptions {
  readonly maxSockets?: number;
  /** What the KMS's certificate is checked against, for messages (e.g. "--kms-root ca/operator.pem"). */
  readonly trustName?: string;
  /** Who this client is, for messages ("device CAM-1", "administrator ops"). */
  readonly who?: string;
}

export class KmsClient {
  readonly url: URL;
  private readonly agent: Agent;
  private readonly o: KmsClientOptions;

  constructor(url: string, tls: ConnectionOptions, options: KmsClientOptions = {}) {
    this.url = new URL(url);
    if (this.url.protocol !== 'https:') throw new KeyframeError(ErrorCodes.INPUT, `KMS URL must be https: ${url}`);
    this.agent = new Agent({ ...tls, keepAlive: true, maxSockets: options.maxSockets ?? 4 });
    this.o = options;
  }

  /** A transport failure in words: an untrusted KMS, our certificate refused in the handshake, or unreachable. */
  private explain(e: Error & { code?: string }, handshakeDone: boolean, bodyBytes: number): KeyframeError {
    const code = e.code ?? e.message;
    const origin = this.url.origin;
    if (UNTRUSTED_SERVER.test(code)) {
      return new KeyframeError(ErrorCodes.TLS, `the KMS at ${origin} is not trusted: its certificate does not chain to ${this.o.trustName ?? 'the pinned operator CA'} (${code}); check the URL and the root given`, { cause: e });
    }
    // a large body cut off: the KMS refused the request (too large, over a quota) and closed while it was sent
    if (bodyBytes > 65_536 && (code === 'ECONNRESET' || code === 'EPIPE')) {
      return new KeyframeError(ErrorCodes.UNAVAILABLE, `the KMS at ${origin} closed the connection while a ${bodyBytes}-byte request was sent (refused: too large or over a quota) (${code})`, { cause: e });
    }
    if (handshakeDone && (code === 'ECONNRESET' || code === 'EPIPE' || /^ERR_SSL_.*ALERT/.test(code))) {
      return new KeyframeError(
        ErrorCodes.FORBIDDEN,
        `the KMS at ${origin} refused ${this.o.who ?? 'this identity'}'s certificate in the TLS handshake (${code}): a camera needs a certificate from the factory CA the KMS trusts (not self-signed, not revoked), an administrator one from its operator CA`,
        { cause: e },
      );
    }
    return new KeyframeError(ErrorCodes.UNAVAILABLE, `KMS ${origin} unreachable: ${code}`, { cause: e });
  }

  request(method: string, path: string, body?: Uint8Array | Record<string, unknown>, options: RequestOptions = {}): Promise<KmsResponse> {
    const isBinary = body instanceof Uint8Array;
    const payload = body === undefined ? undefined : isBinary ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : Buffer.from(JSON.stringify(body));
    return this.send(method, path, isBinary, payload, options, true);
  }

  /**
   * One request; `retry`: a kept-alive connection the KMS closed as idle just as it was reused (ECONNRESET or
   * EPIPE on a reused socket, before any answer) is retried once on a new connection — the KMS never saw that
   * request.
   */
  private send(method: string, path: string, isBinary: boolean, payload: Buffer | undefined, options: RequestOptions, retry: boolean): Promise<KmsResponse> {
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, this.url),
        {
          method,
          agent: this.agent,
          headers: payload === undefined ? {} : { 'content-type': isBinary ? 'application/octet-stream' : 'application/json', 'content-length': payload.length },
          ...(options.signal !== undefined ? { signal: options.signal } : {}),
          timeout: options.timeoutMs ?? 60_000,
        },
        (res) => {
          const socket = res.socket as TLSSocket | null;
          const peer = options.peerCertificate === true ? (socket?.getPeerCertificate?.()?.raw as Buffer | undefined) : undefined;
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers, peerCertificate: peer });
          });
        },
      );
      req.on('timeout', () => req.destroy(new KeyframeError(ErrorCodes.UNAVAILABLE, `KMS ${this.url.origin}: no answer in time`)));
      // a handshake completed on a new connection and then closed without an answer: the KMS refused our certificate
      let handshakeDone = false;
      req.on('socket', (s) => {
        if (!req.reusedSocket) (s as TLSSocket).once('secureConnect', () => (handshakeDone = true));
      });
      req.on('error', (e: Error & { code?: string }) => {
        if (retry && req.reusedSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE') && options.signal?.aborted !== true) {
          this.send(method, path, isBinary, payload, options, false).then(resolve, reject);
          return;
        }
        if (e instanceof KeyframeError || e.name === 'AbortError') reject(e);
        else reject(this.explain(e, handshakeDone, payload?.length ?? 0));
      });
      req.end(payload);
    });
  }

  /** The request, with any non-2xx answer turned into a typed error. */
  async call(method: string, path: string, body?: Uint8Array | Record<string, unknown>, options: RequestOptions = {}): Promise<KmsResponse> {
    const r = await this.request(method, path, body, options);
    if (r.status >= 200 && r.status < 300) return r;
    let message = `KMS answered ${r.status}`;
    let code: string | undefined;
    try {
      const j = JSON.parse(r.body.toString('utf8')) as { error?: unknown; code?: unknown };
      if (typeof j.error === 'string') message = j.error;
      if (typeof j.code === 'string') code = j.code;
    } catch {
      // not JSON: keep the status line
    }
    if (r.status === 403 && message === 'forbidden') {
      // the KMS says nothing more (one answer for every authentication failure); the client knows what it asked
      throw new KeyframeError(
        ErrorCodes.FORBIDDEN,
        path.startsWith('/v1/admin/')
          ? `the KMS does not accept ${this.o.who ?? 'this identity'} as an administrator: its certificate must come from the KMS's operator CA and its common name be listed under "admins" in kms.json`
          : `the KMS does not accept ${this.o.who ?? 'this identity'} (forbidden): a camera's certificate must come from the factory CA the KMS trusts and not be revoked`,
      );
    }
    if (r.status === 403) throw new GroupKeyRefusal(`KMS: ${message}`);
    if (r.status === 400) throw new KeyframeError(ErrorCodes.INPUT, `KMS: ${message}`);
    if (r.status === 404) throw new KeyframeError(ErrorCodes.NOT_FOUND, `KMS: ${message}`);
    throw new KeyframeError(code !== undefined && KNOWN.has(code) ? (code as ErrorCode) : ErrorCodes.UNAVAILABLE, `KMS: ${message}`);
  }

  async json<T>(method: string, path: string, body?: Record<string, unknown>): Promise<T> {
    const r = await this.call(method, path, body);
    return JSON.parse(r.body.toString('utf8')) as T;
  }

  close(): void {
    this.agent.destroy();
  }
}
