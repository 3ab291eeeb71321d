import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { CloneType } from '@sinclair/typebox';
import {
  CreateMessageBody,
  CreateMessageHeaders,
  CreatedEnvelope,
  DeletedEnvelope,
  ErrorResponse,
  IfMatchHeaders,
  MessageEnvelope,
  MessageIdParams,
  MessagePage,
  NoBody,
  NoQuery,
  ScheduledListQuery,
  UpdateMessageBody,
} from '@punctual/shared';
import type { MessageStore, ScheduleOutcome, Scheduler, Transition } from '@punctual/store';
import { BatchNotFound, MessageNotFound, refusalError } from '../errors.js';
import { bindLog } from '../logger.js';
import { listOptions, toNewMessage, toPatch, wellFormedId } from '../message-input.js';
import { needsStoredRules } from '../send-time.js';
import { COMMON_ERRORS, errorResponses } from '../error-body.js';

/** Reads of the record a PUT makes at most: each retry follows another change that got in between its read and its write. */
const UPDATE_REREADS = 10;

const BATCH_NOT_FOUND = { 404: CloneType(ErrorResponse, { description: 'No such batch for this tenant (?batchId=)' }) };

/**
 * A PUT. A new time that depends on the record's zone or quiet window is worked out from the
 * record as read, and written only if the record is still that version; a plain new sendAt is
 * written at once unless the record has a quiet window (`recheck`), then worked out the same way.
 */
async function updateMessage(
  { scheduler, store }: { scheduler: Scheduler; store: MessageStore },
  tenant: string,
  id: string,
  body: UpdateMessageBody,
  now: number,
  ifVersion: number | undefined,
): Promise<Transition> {
  if (!needsStoredRules(body)) {
    const result = await scheduler.update(tenant, id, toPatch(body, now), now, ifVersion, body.sendAt !== undefined);
    if (result.ok || result.reason !== 'recheck') return result;
  }
  for (let read = 1; ; read++) {
    const current = await store.get(tenant, id);
    if (!current) return { ok: false, reason: 'not_found' };
    const result = await scheduler.update(tenant, id, toPatch(body, now, current), now, ifVersion ?? current.version);
    const raced = !result.ok && result.reason === 'version_mismatch' && ifVersion === undefined;
    if (!raced || read === UPDATE_REREADS) return result;
  }
}

/** `If-Match: 4` or `"4"` (an entity tag); `*` is any version. */
function ifMatchVersion(header: string | undefined): number | undefined {
  if (header === undefined || header === '*') return undefined;
  return Number(header.replace(/"/g, ''));
}

const scheduled: FastifyPluginAsyncTypebox = async (app) => {
  /** The record of a change the scheduler made, or the error it refused it with. */
  const accepted = (id: string | undefined, result: Transition | ScheduleOutcome) => {
    if (!result.ok) throw refusalError(result, app.scheduler.maxScheduledPerTenant, id);
    return result.record;
  };

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
      // an idempotent request's message id is reserved with its key: a retry reuses it
      const id = request.idempotentMessageId || undefined;
      const result = await app.scheduler.schedule(request.tenant, toNewMessage(request.body, now), now, { id });
      if (!result.ok && result.reason === 'exists' && id) {
        // an earlier attempt with this key stored it (then failed or timed out): the same answer again
        const existing = await app.store.get(request.tenant, id);
        if (existing) return reply.code(201).header('idempotent-replayed', 'true').send({ success: true, id, data: existing });
      }
      const record = accepted(id, result);
      bindLog(reply, { messageId: record.id });
      request.log.info({ channel: record.channel }, 'message scheduled');
      return reply.code(201).header('etag', `"${record.version}"`).send({ success: true, id: record.id, data: record });
    },
  );

  app.get(
    '/scheduled',
    { schema: { tags: ['scheduled'], summary: 'Scheduled messages by sendAt', querystring: ScheduledListQuery, response: { 200: MessagePage, ...BATCH_NOT_FOUND, ...errorResponses(400, ...COMMON_ERRORS) } } },
    async (request) => {
      const { batchId } = request.query;
      // one batch's list: a batch this tenant does not have is a 404, as on /batches/{id}
      if (batchId !== undefined && !(await app.scheduler.batches.summary(request.tenant, batchId))) throw new BatchNotFound(batchId);
      return app.store.list(request.tenant, 'scheduled', listOptions(request.query));
    },
  );

  app.get(
    '/scheduled/:id',
    { schema: { tags: ['scheduled'], summary: 'One message (any state, as GET /messages/:id)', params: MessageIdParams, querystring: NoQuery, response: { 200: MessageEnvelope, ...errorResponses(404, ...COMMON_ERRORS) } } },
    async (request, reply) => {
      const id = wellFormedId(request.params.id, MessageNotFound);
      const record = await app.store.get(request.tenant, id);
      if (!record) throw new MessageNotFound(id);
      reply.header('etag', `"${record.version}"`);
      return { success: true as const, data: record };
    },
  );

  app.put(
    '/scheduled/:id',
    {
      schema: {
        tags: ['scheduled'],
        summary: 'Change a scheduled message; a new sendAt moves its delivery',
        headers: IfMatchHeaders,
        params: MessageIdParams,
        querystring: NoQuery,
        body: UpdateMessageBody,
        response: { 200: MessageEnvelope, ...errorResponses(400, 404, 409, 412, 413, 415, 422, ...COMMON_ERRORS) },
      },
    },
    async (request, reply) => {
      const id = wellFormedId(request.params.id, MessageNotFound);
      const now = Date.now();
      const record = accepted(id, await updateMessage(app, request.tenant, id, request.body, now, ifMatchVersion(request.headers['if-match'])));
      request.log.info('message updated');
      reply.header('etag', `"${record.version}"`);
      return { success: true as const, data: record };
    },
  );

  app.delete(
    '/scheduled/:id',
    {
      schema: {
        tags: ['scheduled'],
        summary: 'Cancel a scheduled message',
        headers: IfMatchHeaders,
        params: MessageIdParams,
        querystring: NoQuery,
        body: NoBody,
        response: { 200: DeletedEnvelope, ...errorResponses(404, 409, 412, ...COMMON_ERRORS) },
      },
    },
    async (request) => {
      const id = wellFormedId(request.params.id, MessageNotFound);
      accepted(id, await app.scheduler.cancel(request.tenant, id, Date.now(), ifMatchVersion(request.headers['if-match'])));
      request.log.info('message canceled');
      return { success: true as const, id };
    },
  );
};

export default scheduled;
