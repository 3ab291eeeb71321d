import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { CloneType } from '@sinclair/typebox';
import {
  BatchCanceled,
  BatchCreated,
  BatchIdParams,
  BatchSummary,
  CreateBatchBody,
  CreateMessageBody,
  CreateMessageHeaders,
  ErrorResponse,
  NoBody,
  NoQuery,
  type BatchItemResult,
} from '@punctual/shared';
import type { BatchItem, BatchRefusal } from '@punctual/store';
import { BatchNotFound, InvalidField, refusalError } from '../errors.js';
import { COMMON_ERRORS, errorBody, errorResponses, refusalBody, validationBody, type ErrorBody } from '../error-body.js';
import { ILL_FORMED_TEXT, illFormedText } from '../json-body.js';
import { toNewMessage, wellFormedId } from '../message-input.js';
import { bodyValidator } from '../validation.js';

/** 1,000 items of up to ~4 KB each (a 4,096-character message, metadata, a callback URL). */
export const BATCH_BODY_LIMIT = 4 * 1024 * 1024;

const NOT_FOUND = { 404: CloneType(ErrorResponse, { description: 'No such batch for this tenant (an unknown or malformed id)' }) };

/**
 * Batches: many POST /scheduled bodies in one request, each checked and answered as a single
 * POST would be but written in one round trip per partition; the batch's counts by status; and
 * the cancel of whatever of it is still scheduled.
 */
const batches: FastifyPluginAsyncTypebox = async (app) => {
  const validMessage = bodyValidator<CreateMessageBody>(CreateMessageBody);

  /** The error a single POST of the item would have answered with, as its body; `opted_out:tenant` says which list refused it. */
  function refusal(refused: BatchRefusal): ErrorBody {
    const [reason, detail] = refused.split(':') as [string, string | undefined];
    return refusalBody(refusalError({ reason, detail }, app.scheduler.maxScheduledPerTenant)) ?? errorBody(500, 'INTERNAL_ERROR', 'Internal Server Error');
  }

  /**
   * An item as a single POST's body would be checked: its text is well-formed Unicode (what the
   * JSON parser checks of a single POST, left to this route: `textCheckedPerItem`), its schema,
   * then the rules the schema cannot say.
   */
  function readItem(item: unknown, now: number): { message: BatchItem['message'] } | { error: ErrorBody } {
    const illFormed = illFormedText(item);
    if (illFormed !== null) return { error: refusalBody(new InvalidField(illFormed, ILL_FORMED_TEXT))! };
    if (!validMessage(item)) return { error: validationBody('body', validMessage.errors ?? []) };
    try {
      return { message: toNewMessage(item, now) };
    } catch (err) {
      const body = refusalBody(err as Error);
      if (!body) throw err;
      return { error: body };
    }
  }

  app.post(
    '/scheduled/batch',
    {
      bodyLimit: BATCH_BODY_LIMIT,
      config: { idempotent: true, textCheckedPerItem: true },
      schema: {
        tags: ['batches'],
        summary: 'Schedule up to 1,000 messages, each answered on its own',
        description:
          'Each item is a POST /scheduled body and gets the status and error body a single POST would get; a refused item stops no other. ' +
          'The tenant cap counts the items in order. Idempotency-Key applies to the whole batch.',
        headers: CreateMessageHeaders,
        querystring: NoQuery,
        body: CreateBatchBody,
        response: { 200: BatchCreated, ...errorResponses(400, 409, 413, 415, 422, ...COMMON_ERRORS) },
      },
    },
    async (request) => {
      const now = Date.now();
      // an idempotent request's id is reserved with its key: a retry writes the same items again, not twice
      const id = request.idempotentMessageId || app.store.newMessageId(now);
      const results = new Array<BatchItemResult>(request.body.messages.length);
      const items: BatchItem[] = [];
      request.body.messages.forEach((item, index) => {
        const read = readItem(item, now);
        if ('error' in read) results[index] = { index, status: read.error.statusCode, error: read.error };
        else items.push({ index, message: read.message });
      });
      const outcomes = await app.scheduler.scheduleBatch(request.tenant, id, items, now);
      let accepted = 0;
      items.forEach(({ index }, i) => {
        const outcome = outcomes[i]!;
        if (outcome.ok) {
          accepted++;
          results[index] = { index, status: 201, id: outcome.record.id };
        } else {
          const error = refusal(outcome.reason);
          results[index] = { index, status: error.statusCode, error };
        }
      });
      const rejected = results.length - accepted;
      request.log.info({ batchId: id, accepted, rejected }, 'batch scheduled');
      return { batchId: id, accepted, rejected, results };
    },
  );

  app.get(
    '/batches/:id',
    {
      schema: {
        tags: ['batches'],
        summary: "A batch's messages counted by status",
        params: BatchIdParams,
        querystring: NoQuery,
        response: { 200: BatchSummary, ...NOT_FOUND, ...errorResponses(...COMMON_ERRORS) },
      },
    },
    async (request) => {
      const id = wellFormedId(request.params.id, BatchNotFound);
      const summary = await app.scheduler.batches.summary(request.tenant, id);
      if (!summary) throw new BatchNotFound(id);
      return summary;
    },
  );

  app.delete(
    '/batches/:id',
    {
      schema: {
        tags: ['batches'],
        summary: 'Cancel every message of a batch that is still scheduled; none of them is sent after the 200',
        params: BatchIdParams,
        querystring: NoQuery,
        body: NoBody,
        response: { 200: BatchCanceled, ...NOT_FOUND, ...errorResponses(...COMMON_ERRORS) },
      },
    },
    async (request) => {
      const id = wellFormedId(request.params.id, BatchNotFound);
      const canceled = await app.scheduler.cancelBatch(request.tenant, id, Date.now());
      if (canceled === null) throw new BatchNotFound(id);
      request.log.info({ batchId: id, canceled }, 'batch canceled');
      return { canceled };
    },
  );
};

export default batches;
