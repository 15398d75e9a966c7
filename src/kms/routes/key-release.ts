/**
 * The content-key route (administrators, e.g. the licence server): a KID's key, released only once the release
 * is audited (KmsService.releaseContentKey); no audit row, no key.
 */
import type { SecureServer } from '../../server/kit.js';
import type { KmsHttpOptions } from '../http.js';
import { admin, body, optString } from './common.js';
import type { A } from './common.js';

export function keyReleaseRoutes(server: SecureServer, o: KmsHttpOptions): void {
  const s = o.service;
  server.app.post<A>('/v1/admin/content-key', async (req) => {
    const actor = admin(req);
    const kid = optString(body(req), 'kid');
    if (kid === undefined || !/^[0-9a-fA-F]{32}$/.test(kid)) throw Object.assign(new Error('kid must be 32 hex digits'), { statusCode: 400 });
    // audited before anything is answered; no audit row, no key (the error is a 500 with nothing in it)
    const k = s.releaseContentKey(Buffer.from(kid, 'hex'), actor);
    if (k === undefined) throw Object.assign(new Error('no content key for that KID'), { statusCode: 404 });
    o.log.info({ event: 'content-key', actor, kid: kid.toLowerCase(), camera: k.cameraId, epoch: k.epoch }, 'content key released');
    return { kid: kid.toLowerCase(), group: k.groupId, camera: k.cameraId, epoch: k.epoch, key: k.key.toString('hex') };
  });
}
