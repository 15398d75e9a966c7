/**
 * The viewer web app (issue 14), served by the NVR's viewers' listener beside its API: the page, its one script and
 * its one style sheet as scripts/build-web.mjs built them into dist/web, and `/config.json`, which tells the page
 * where the KMS's browser listener is (logins, access tokens, licences) and this NVR's name (the audience of its
 * tokens). Everything under /v1/ is the API (viewer.ts); nothing here needs a token, as a login page cannot.
 *
 * No inline script or style anywhere, and a Content-Security-Policy that allows only this origin's script and
 * style, video from blob: URLs (Media Source Extensions), and connections to this origin (HTTPS and WebSocket) and
 * the KMS's. The files are read once at start; ETag = SHA-256, revalidated on every load (`no-cache`).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Where `npm run build` puts the web app: dist/web at the package's root (from src/nvr or dist/nvr alike). */
export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../dist/web/', import.meta.url));

export interface WebAppOptions {
  /** The built app (index.html, app.js, app.css). */
  readonly dir: string;
  /** The KMS's browser listener, as an origin (https://host:port). */
  readonly kmsOrigin: string;
  /** This NVR's name: the audience of the access tokens the page asks the KMS for. */
  readonly audience: string;
}

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

const FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

function asset(body: Buffer, type: string): Asset {
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url')}"` };
}

/** The policy for the app's pages: this origin's script and style only, MSE video, the API, live sockets, the KMS. */
export function contentSecurityPolicy(kmsOrigin: string, host: string | undefined): string {
  const wss = host !== undefined && /^[A-Za-z0-9.:[\]-]+$/.test(host) ? ` wss://${host}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    `connect-src 'self'${wss} ${kmsOrigin}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * Registers `/`, `/app.js`, `/app.css` and `/config.json`. A web app that was not built leaves `/` answering 503
 * with how to build it; the API is not affected.
 */
export function registerWebApp(app: FastifyInstance, o: WebAppOptions): { readonly built: boolean } {
  const assets = new Map<string, Asset>();
  const built = Object.keys(FILES).every((name) => existsSync(join(o.dir, name)));
  if (built) for (const [name, type] of Object.entries(FILES)) assets.set(name, asset(readFileSync(join(o.dir, name)), type));
  assets.set('config.json', asset(Buffer.from(JSON.stringify({ kms: o.kmsOrigin, audience: o.audience })), 'application/json; charset=utf-8'));
  const send = (req: FastifyRequest, reply: FastifyReply, name: string): FastifyReply => {
    const a = assets.get(name);
    void reply
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cross-origin-opener-policy', 'same-origin')
      .header('cross-origin-resource-policy', 'same-origin')
      .header('strict-transport-security', 'max-age=31536000')
      .header('content-security-policy', contentSecurityPolicy(o.kmsOrigin, req.headers.host));
    if (a === undefined) return reply.code(503).type('text/plain; charset=utf-8').send('the viewer web app is not built: run npm run build (or npm install)\n');
    void reply.header('cache-control', 'no-cache').header('etag', a.etag);
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.type(a.type).send(a.body);
  };
  app.get('/', async (req, reply) => send(req, reply, 'index.html'));
  for (const name of Object.keys(FILES).concat('config.json')) app.get(`/${name}`, async (req, reply) => send(req, reply, name));
  return { built };
}
