import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ListQuery, MessageEnvelope, MessageIdParams, MessagePage, NoQuery } from '@punctual/shared';
import { MessageNotFailed, MessageNotFound } from '../errors.js';
import { COMMON_ERRORS, errorResponses } from './error-responses.js';
import { listOptions } from './list-query.js';
import { messageId } from './message-id.js';

/** Delivered, failed and canceled lists (newest first), any message by id, retry of a failure. */
const history: FastifyPluginAsyncTypebox = async (app) => {
  for (const status of ['delivered', 'failed', 'canceled'] as const) {
    app.get(
      `/${status}`,
      { schema: { tags: ['history'], summary: `${status} messages, newest first`, querystring: ListQuery, response: { 200: MessagePage, ...errorResponses(400, ...COMMON_ERRORS) } } },
      (request) => app.store.list(request.tenant, status, listOptions(request.query)),
    );
  }

  app.get(
    '/messages/:id',
    { schema: { tags: ['history'], summary: 'A message in any state', params: MessageIdParams, querystring: NoQuery, response: { 200: MessageEnvelope, ...errorResponses(404, ...COMMON_ERRORS) } } },
    async (request) => {
      const id = messageId(request.params.id);
      const record = await app.store.get(request.tenant, id);
      if (!record) throw new MessageNotFound(id);
      return { success: true as const, data: record };
    },
  );

  app.post(
    '/failed/:id/retry',
    { schema: { tags: ['history'], summary: 'Deliver a failed message again now', params: MessageIdParams, querystring: NoQuery, response: { 202: MessageEnvelope, ...errorResponses(404, 409, ...COMMON_ERRORS) } } },
    async (request, reply) => {
      const id = messageId(request.params.id);
      const now = Date.now();
      const result = await app.store.rescheduleFailed(request.tenant, id, now);
      if (!result.ok) {
        if (result.reason === 'not_found') throw new MessageNotFound(id);
        throw new MessageNotFailed(id, result.status);
      }
      // Stored as scheduled and due: should this enqueue fail, the reconciler enqueues it.
      await app.deliveries.enqueue(id, now).catch((err) =>
        request.log.warn({ err }, 'retry job not enqueued; the reconciler will'),
      );
      return reply.code(202).send({ success: true, data: result.record });
    },
  );
};

export default history;
