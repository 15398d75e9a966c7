/** The enrolment route: a camera, authenticated by its device certificate, enrols (KmsService.enrol). */
import type { SecureServer } from '../../server/kit.js';
import { GroupKeyRefusal } from '../../errors.js';
import type { KmsHttpOptions } from '../http.js';

export function enrolmentRoutes(server: SecureServer, o: KmsHttpOptions): void {
  const s = o.service;
  server.app.post('/v1/enrol', async (req) => {
    const p = req.peer;
    if (p?.kind !== 'camera') throw new GroupKeyRefusal('not a camera');
    const r = await s.enrol(p.serial, p.cert);
    return { serial: p.serial, generation: r.generation, blob: r.blob.toString('base64'), confirmation: r.confirmation.toString('base64'), kmsChain: r.kmsChainPem };
  });
}
