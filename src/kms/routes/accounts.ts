/**
 * Accounts and grants for certificate-holding administrators (mutual TLS, /v1/admin/…): the same operations
 * `keyframe user …` and `keyframe grant …` run. Every change is audited under admin:NAME with the client's address.
 * Bodies are checked by JSON schemas before a handler runs; passwords are never logged or echoed.
 */
import type { FastifyRequest } from 'fastify';
import type { SecureServer } from '../../server/kit.js';
import type { AccessService, GrantSpec } from '../access.js';
import type { AuditContext } from '../audit-store.js';
import { admin } from './common.js';

type U = { Params: { name: string }; Body: Record<string, unknown> };
type Gr = { Params: { id: string }; Body: Record<string, unknown>; Querystring: { all?: string } };

const NAME = { type: 'string', minLength: 1, maxLength: 64 } as const;
const PASSWORD = { type: 'string', minLength: 1, maxLength: 1024 } as const;

export function clientContext(req: FastifyRequest): AuditContext {
  const ua = req.headers['user-agent'];
  return { ...(req.socket.remoteAddress !== undefined ? { address: req.socket.remoteAddress } : {}), ...(typeof ua === 'string' ? { userAgent: ua } : {}) };
}

export function accountRoutes(server: SecureServer, access: AccessService): void {
  const app = server.app;
  app.get('/v1/admin/users', async (req) => {
    admin(req);
    return { users: access.listUsers() };
  });
  app.post<U>('/v1/admin/users', { schema: { body: { type: 'object', required: ['name', 'role', 'password'], additionalProperties: false, properties: { name: NAME, role: { type: 'string' }, password: PASSWORD } } } }, async (req, reply) => {
    const actor = admin(req);
    return reply.code(201).send(await access.addUser({ name: req.body['name'], role: req.body['role'], password: req.body['password'] }, actor, clientContext(req)));
  });
  app.get<U>('/v1/admin/users/:name', async (req) => {
    admin(req);
    return access.showUser(req.params.name);
  });
  app.put<U>('/v1/admin/users/:name/password', { schema: { body: { type: 'object', required: ['password'], additionalProperties: false, properties: { password: PASSWORD } } } }, async (req) => access.setPassword(req.params.name, req.body['password'], admin(req), clientContext(req)));
  app.put<U>('/v1/admin/users/:name/role', { schema: { body: { type: 'object', required: ['role'], additionalProperties: false, properties: { role: { type: 'string' } } } } }, async (req) => access.setRole(req.params.name, req.body['role'], admin(req), clientContext(req)));
  app.put<U>('/v1/admin/users/:name/disabled', { schema: { body: { type: 'object', required: ['disabled'], additionalProperties: false, properties: { disabled: { type: 'boolean' } } } } }, async (req) => access.setDisabled(req.params.name, req.body['disabled'] === true, admin(req), clientContext(req)));
  app.post<U>('/v1/admin/users/:name/totp', async (req) => access.enrolTotp(req.params.name, admin(req), clientContext(req)));
  app.delete<U>('/v1/admin/users/:name/totp', async (req) => access.clearTotp(req.params.name, admin(req), clientContext(req)));

  app.get<Gr>('/v1/admin/grants', async (req) => {
    admin(req);
    return { grants: access.grants(req.query.all === '1' || req.query.all === 'true') };
  });
  const int = { type: 'integer' } as const;
  app.post<Gr>(
    '/v1/admin/grants',
    {
      schema: {
        body: {
          type: 'object',
          required: ['rights'],
          additionalProperties: false,
          properties: {
            user: NAME,
            role: { type: 'string' },
            certificate: NAME,
            camera: { type: 'string' },
            group: { type: 'string' },
            rights: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 4 },
            from: int,
            to: int,
            lastMs: int,
            validFrom: int,
            validTo: int,
            caseId: { type: 'string' },
          },
        },
      },
    },
    async (req, reply) => reply.code(201).send(access.addGrant(req.body as unknown as GrantSpec, admin(req), clientContext(req))),
  );
  app.delete<Gr>('/v1/admin/grants/:id', async (req) => {
    const id = Number(req.params.id);
    if (!Number.isSafeInteger(id) || id < 1) throw Object.assign(new Error('a grant id is a positive integer'), { statusCode: 400 });
    return access.revokeGrant(id, admin(req), clientContext(req));
  });
}
