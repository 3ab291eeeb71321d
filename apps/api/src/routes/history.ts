import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ListQuery, MessageEnvelope, MessageIdParams, MessagePage, NoBody, NoQuery } from '@punctual/shared';
import { MessageNotFound, refusalError } from '../errors.js';
import { COMMON_ERRORS, errorResponses } from '../error-body.js';
import { listOptions, wellFormedId } from '../message-input.js';

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
    async (request, reply) => {
      const id = wellFormedId(request.params.id, MessageNotFound);
      const record = await app.store.get(request.tenant, id);
      if (!record) throw new MessageNotFound(id);
      reply.header('etag', `"${record.version}"`);
      return { success: true as const, data: record };
    },
  );

  app.post(
    '/failed/:id/retry',
    { schema: { tags: ['history'], summary: 'Deliver a failed message again now', params: MessageIdParams, querystring: NoQuery, body: NoBody, response: { 202: MessageEnvelope, ...errorResponses(404, 409, 422, ...COMMON_ERRORS) } } },
    async (request, reply) => {
      const id = wellFormedId(request.params.id, MessageNotFound);
      const result = await app.scheduler.retry(request.tenant, id, Date.now());
      // a retried message is scheduled again, within the tenant's cap
      if (!result.ok) throw refusalError(result, app.scheduler.maxScheduledPerTenant, id);
      return reply.code(202).send({ success: true, data: result.record });
    },
  );
};

export default history;
