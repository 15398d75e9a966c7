/**
 * The relay routes: a camera posts a message to cameras of its group (or, paper schemes, to the KMS) and reads its
 * inbox by long poll. The relay's quotas are checked on the declared length before a body is read.
 */
import type { FastifyRequest } from 'fastify';
import type { SecureServer } from '../../server/kit.js';
import type { KmsHttpOptions } from '../http.js';
import { abortOnClose, camera, nonNegative, wait } from './common.js';
import type { G } from './common.js';

const recipients = (req: FastifyRequest<G>): string[] => (req.query['to'] ?? '').split(',').filter((t) => t !== '');

export function relayRoutes(server: SecureServer, o: KmsHttpOptions): void {
  const app = server.app;
  const s = o.service;
  app.post<G & { Body: Buffer }>(
    '/v1/groups/:g/messages',
    {
      // the relay's quotas are checked on the declared length before the body is read; a refusal closes the
      // connection, so that the rest of a refused body is not read either
      onRequest: async (req, reply) => {
        const length = Number(req.headers['content-length'] ?? Number.NaN);
        if (!Number.isSafeInteger(length) || length < 0) return;
        try {
          s.admitPost(req.params.g, camera(req), recipients(req), length);
        } catch (e) {
          void reply.header('connection', 'close');
          throw e;
        }
      },
    },
    async (req, reply) => {
      await s.post(req.params.g, camera(req), recipients(req), req.body);
      return reply.code(204).send();
    },
  );
  app.get<G>('/v1/groups/:g/inbox', async (req, reply) => {
    const after = nonNegative(req.query['after'], 'after must be a non-negative integer');
    const page = await s.inbox(req.params.g, camera(req), after, wait(req.query, o.maxWaitMs), abortOnClose(reply));
    return { items: page.items.map((m) => ({ seq: m.seq, from: m.from, body: m.body.toString('base64') })), more: page.more };
  });
}
