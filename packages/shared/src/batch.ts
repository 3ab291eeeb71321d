import { Type, type Static } from '@sinclair/typebox';
import { ErrorResponse } from './errors.js';
import { MESSAGE_ID_PATTERN, MessageId } from './message.js';

/** A batch's id: a ULID, like a message's. */
export const BatchId = Type.String({ pattern: MESSAGE_ID_PATTERN, description: 'Batch id (ULID)' });

/** Items of one POST /scheduled/batch. */
export const MAX_BATCH_ITEMS = 1000;

export const CreateBatchBody = Type.Object(
  {
    messages: Type.Array(
      Type.Unknown({
        description: 'A POST /scheduled body. Each item is validated on its own: a bad one gets its 400 in `results`, the others go on',
      }),
      { minItems: 1, maxItems: MAX_BATCH_ITEMS },
    ),
  },
  {
    additionalProperties: false,
    examples: [
      {
        messages: [
          { recipient: '12025550143', message: 'Your appointment is tomorrow at 10:00', sendAt: '2027-03-14T09:00:00', timeZone: 'America/New_York', channel: 'sms' },
          { recipient: '5511999999999', message: 'Sua consulta é amanhã às 10:00', sendAt: '2027-03-14T09:00:00', timeZone: 'America/Sao_Paulo', channel: 'whatsapp' },
        ],
      },
    ],
  },
);
export type CreateBatchBody = Static<typeof CreateBatchBody>;

export const BatchItemResult = Type.Union([
  Type.Object({ index: Type.Integer(), status: Type.Literal(201), id: MessageId }),
  Type.Object({ index: Type.Integer(), status: Type.Integer({ description: 'What a single POST of this item would have answered' }), error: ErrorResponse }),
]);
export type BatchItemResult = Static<typeof BatchItemResult>;

export const BatchCreated = Type.Object({
  batchId: BatchId,
  accepted: Type.Integer({ minimum: 0 }),
  rejected: Type.Integer({ minimum: 0 }),
  results: Type.Array(BatchItemResult, { description: 'One per item, in the order sent' }),
});
export type BatchCreated = Static<typeof BatchCreated>;

export const BatchCounts = Type.Object({
  scheduled: Type.Integer({ minimum: 0 }),
  sending: Type.Integer({ minimum: 0 }),
  delivered: Type.Integer({ minimum: 0 }),
  failed: Type.Integer({ minimum: 0 }),
  canceled: Type.Integer({ minimum: 0 }),
});
export type BatchCounts = Static<typeof BatchCounts>;

export const BatchSummary = Type.Object({
  id: BatchId,
  createdAt: Type.String({ format: 'date-time' }),
  total: Type.Integer({ minimum: 0, description: 'Messages the batch created' }),
  counts: BatchCounts,
});
export type BatchSummary = Static<typeof BatchSummary>;

export const BatchCanceled = Type.Object({
  canceled: Type.Integer({ minimum: 0, description: 'Messages of the batch that were still scheduled: none of them is ever sent' }),
});

/** Any text: a malformed id names no batch, so it is a 404 like an unknown one. */
export const BatchIdParams = Type.Object({ id: Type.String() });
