/**
 * The content-key route for certificate administrators: a KID's key, through the same decision as a licence
 * (access.ts): released only where a grant to that certificate (`"certificate": CN`) covers the KID's epoch, and
 * only once the decision is audited — no audit entry, no key. Anything not granted, an unknown KID included, is
 * the one generic 403.
 */
import type { SecureServer } from '../../server/kit.js';
import type { KmsHttpOptions } from '../http.js';
import { clientContext } from './accounts.js';
import { admin, body, optString } from './common.js';
import type { A } from './common.js';

export function keyReleaseRoutes(server: SecureServer, o: KmsHttpOptions): void {
  server.app.post<A>('/v1/admin/content-key', async (req, reply) => {
    const actor = admin(req);
    const kid = optString(body(req), 'kid');
    if (kid === undefined || !/^[0-9a-fA-F]{32}$/.test(kid)) throw Object.assign(new Error('kid must be 32 hex digits'), { statusCode: 400 });
    try {
      const answer = await o.access.adminLicence(actor.slice('admin:'.length), [Buffer.from(kid, 'hex')], clientContext(req));
      const d = answer.decisions[0];
      const k = answer.keys[0];
      if (d === undefined || k === undefined) return reply.code(403).send({ error: 'forbidden' });
      const found = answer.found.get(kid.toLowerCase());
      o.log.info({ event: 'content-key', actor, kid: kid.toLowerCase(), camera: found?.cameraId, epoch: found?.epoch, audit: answer.audit }, 'content key released');
      return { kid: kid.toLowerCase(), group: found?.groupId, camera: found?.cameraId, epoch: found?.epoch, key: k.key.toString('hex') };
    } catch (e) {
      if ((e as { name?: string }).name === 'LicenceDenied') return reply.code(403).send({ error: 'forbidden' });
      throw e;
    }
  });
}
