/**
 * The administrators' routes for the KMS and its groups: status, cameras, groups (create, show, members, leader,
 * refresh, rebase). Only an administrator reaches them; each change is audited under admin:NAME.
 */
import type { SecureServer } from '../../server/kit.js';
import type { KmsHttpOptions } from '../http.js';
import { admin, body, optInt, optString, requiredSerial } from './common.js';
import type { A } from './common.js';

export function adminRoutes(server: SecureServer, o: Pick<KmsHttpOptions, 'service' | 'crlStatus'>): void {
  const app = server.app;
  const s = o.service;
  app.get('/v1/admin/status', async (req) => {
    admin(req);
    return { ...s.status(), connections: server.connections.stats(), relay: { bytes: s.mailbox.usage().total, limits: s.mailbox.limits }, crls: o.crlStatus?.() ?? [] };
  });
  app.get('/v1/admin/cameras', async (req) => {
    admin(req);
    return { cameras: s.cameras() };
  });
  app.get('/v1/admin/groups', async (req) => {
    admin(req);
    return { groups: s.groupIds().map((id) => s.show(id)) };
  });
  app.post<A>('/v1/admin/groups', async (req, reply) => {
    const actor = admin(req);
    const b = body(req);
    const members = b['members'] ?? [];
    if (!Array.isArray(members) || members.some((m) => typeof m !== 'string')) throw Object.assign(new Error('members must be a list of camera serials'), { statusCode: 400 });
    const mode = optString(b, 'mode');
    const view = await s.createGroup(
      {
        id: optString(b, 'id') ?? '',
        members: members as string[],
        ...(mode !== undefined ? { mode: mode as never } : {}),
        ...(optInt(b, 'degree') !== undefined ? { degree: optInt(b, 'degree') as number } : {}),
        ...(optString(b, 'leader') !== undefined ? { leader: optString(b, 'leader') as string } : {}),
        ...(optInt(b, 'refreshPeriodMs') !== undefined ? { refreshPeriodMs: optInt(b, 'refreshPeriodMs') as number } : {}),
        ...(optInt(b, 'batchWindowMs') !== undefined ? { batchWindowMs: optInt(b, 'batchWindowMs') as number } : {}),
      },
      actor,
    );
    return reply.code(201).send(view);
  });
  app.get<A>('/v1/admin/groups/:g', async (req) => {
    admin(req);
    return s.show(req.params.g);
  });
  app.post<A>('/v1/admin/groups/:g/members', async (req) => {
    const actor = admin(req);
    return s.requestChange(req.params.g, requiredSerial(req), 'join', actor);
  });
  app.delete<A>('/v1/admin/groups/:g/members/:serial', async (req) => s.requestChange(req.params.g, req.params.serial, 'leave', admin(req)));
  app.put<A>('/v1/admin/groups/:g/leader', async (req) => {
    const actor = admin(req);
    return s.setLeader(req.params.g, requiredSerial(req), actor);
  });
  app.post<A>('/v1/admin/groups/:g/refresh', async (req) => {
    const actor = admin(req);
    const scope = optString(body(req), 'scope') ?? 'root';
    if (scope !== 'root' && scope !== 'tree') throw Object.assign(new Error('scope must be root or tree'), { statusCode: 400 });
    return { group: req.params.g, epoch: await s.refresh(req.params.g, scope, actor) };
  });
  app.post<A>('/v1/admin/groups/:g/rebase', async (req) => s.rebase(req.params.g, admin(req)));
}
