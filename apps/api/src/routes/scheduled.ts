import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  CreateMessageBody,
  CreateMessageHeaders,
  CreatedEnvelope,
  DeletedEnvelope,
  ListQuery,
  MessageEnvelope,
  MessageIdParams,
  MessagePage,
  NoQuery,
  UpdateMessageBody,
} from '@punctual/shared';
import type { Transition } from '@punctual/store';
import { MessageNotFound, MessageNotScheduled, ScheduledLimitReached } from '../errors.js';
import { bindLog } from '../logger.js';
import { toNewMessage, toPatch } from '../message-input.js';
import { COMMON_ERRORS, errorResponses } from './error-responses.js';
import { listOptions } from './list-query.js';
import { messageId } from './message-id.js';

/** The record of a transition the store accepted, or the error it refused it with. */
export function accepted(id: string, result: Transition) {
  if (result.ok) return result.record;
  if (result.reason === 'not_found') throw new MessageNotFound(id);
  throw new MessageNotScheduled(id, result.status);
}

export interface ScheduledRoutesOptions {
  /** MAX_SCHEDULED_PER_TENANT: outstanding scheduled messages a tenant may have. */
  maxScheduledPerTenant: number;
}

const scheduled: FastifyPluginAsyncTypebox<ScheduledRoutesOptions> = async (app, { maxScheduledPerTenant }) => {
  app.post(
    '/scheduled',
    {
      config: { idempotent: true },
      schema: {
        tags: ['scheduled'],
        summary: 'Schedule a message',
        headers: CreateMessageHeaders,
        querystring: NoQuery,
        body: CreateMessageBody,
        response: { 201: CreatedEnvelope, ...errorResponses(400, 409, 413, 415, 422, ...COMMON_ERRORS) },
      },
    },
    async (request, reply) => {
      const now = Date.now();
      const input = toNewMessage(request.body, now);
      const id = app.store.newMessageId(now);
      if (!(await app.store.reserveScheduled(request.tenant, maxScheduledPerTenant))) {
        throw new ScheduledLimitReached(maxScheduledPerTenant);
      }
      bindLog(reply, { messageId: id });
      try {
        // Job first: if the record write then fails, the job finds no record and does nothing,
        // so a 5xx really means nothing was stored.
        await app.deliveries.enqueue(id, input.sendAt);
        const record = await app.store.schedule(request.tenant, id, input, now);
        request.log.info({ channel: record.channel }, 'message scheduled');
        return reply.code(201).send({ success: true, id, data: record });
      } catch (err) {
        await app.store.releaseScheduled(request.tenant);
        throw err;
      }
    },
  );

  app.get(
    '/scheduled',
    { schema: { tags: ['scheduled'], summary: 'Scheduled messages by sendAt', querystring: ListQuery, response: { 200: MessagePage, ...errorResponses(400, ...COMMON_ERRORS) } } },
    (request) => app.store.list(request.tenant, 'scheduled', listOptions(request.query)),
  );

  app.get(
    '/scheduled/:id',
    { schema: { tags: ['scheduled'], summary: 'One message (any state, as GET /messages/:id)', params: MessageIdParams, querystring: NoQuery, response: { 200: MessageEnvelope, ...errorResponses(404, ...COMMON_ERRORS) } } },
    async (request) => {
      const id = messageId(request.params.id);
      const record = await app.store.get(request.tenant, id);
      if (!record) throw new MessageNotFound(id);
      return { success: true as const, data: record };
    },
  );

  app.put(
    '/scheduled/:id',
    {
      schema: {
        tags: ['scheduled'],
        summary: 'Change a scheduled message; a new sendAt moves its delivery',
        params: MessageIdParams,
        querystring: NoQuery,
        body: UpdateMessageBody,
        response: { 200: MessageEnvelope, ...errorResponses(400, 404, 409, 413, 415, ...COMMON_ERRORS) },
      },
    },
    async (request) => {
      const id = messageId(request.params.id);
      const now = Date.now();
      const current = await app.store.get(request.tenant, id);
      if (!current) throw new MessageNotFound(id);
      if (current.status !== 'scheduled') throw new MessageNotScheduled(id, current.status);
      const record = accepted(id, await app.store.update(request.tenant, id, toPatch(request.body, current, now), now));
      if (record.sendAt !== current.sendAt) {
        // The record is already changed: a job left at the old time re-delays itself when it
        // fires, or the reconciler promotes it, so a failure here is not the client's to retry.
        await app.deliveries.reschedule(id, record.sendAt, now).catch((err) =>
          request.log.warn({ err }, 'delivery job not moved; the worker will correct it'),
        );
      }
      request.log.info('message updated');
      return { success: true as const, data: record };
    },
  );

  app.delete(
    '/scheduled/:id',
    { schema: { tags: ['scheduled'], summary: 'Cancel a scheduled message', params: MessageIdParams, querystring: NoQuery, response: { 200: DeletedEnvelope, ...errorResponses(404, 409, ...COMMON_ERRORS) } } },
    async (request) => {
      const id = messageId(request.params.id);
      accepted(id, await app.store.cancel(request.tenant, id, Date.now()));
      await app.deliveries.discard(id);
      request.log.info('message canceled');
      return { success: true as const, id };
    },
  );
};

export default scheduled;
