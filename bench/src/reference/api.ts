/**
 * The minimal reference API: a bare Fastify handler with the product's request schema that does
 * the same I/O as POST /scheduled (a delayed BullMQ job, then the record HSET and its index ZADD
 * in one MULTI), plus GET/PUT/DELETE of one message and a page from a cursor, with no product
 * code around them. It must be the fastest honest way to do that I/O (contract section 9): no
 * logger (the product runs at LOG_LEVEL=warn in the bench, so neither writes a line per request),
 * no per-request work beyond building the record, and slim job options (see keys.ts).
 */
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { Job } from 'bullmq';
import { monotonicFactory } from 'ulid';
import { CreateMessageBody, UpdateMessageBody } from '@punctual/shared';
import { referenceJobOptions, referenceKeys, referenceQueue } from './keys.js';
import { referenceRecord } from './record.js';

// ioredis auto-pipelining was measured and left off: no less CPU per POST at 20 or 50 connections
const redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true });
await redis.connect();
const keys = referenceKeys(process.env.QUEUE_PREFIX!);
const queue = referenceQueue(process.env.QUEUE_PREFIX!, redis);
const newId = monotonicFactory();
const app = Fastify({ logger: false });

const toMs = (value: number | string) => (typeof value === 'number' ? value : Date.parse(value));

app.get('/health', async () => ({ status: 'ok' }));

app.post<{ Body: CreateMessageBody }>('/scheduled', { schema: { body: CreateMessageBody } }, async (request, reply) => {
  const now = Date.now();
  const id = newId(now);
  const { recipient, message, channel } = request.body;
  const sendAt = toMs(request.body.sendAt);
  const fields = referenceRecord(id, { recipient, message, channel, sendAt }, now);
  await queue.add('deliver', { id }, referenceJobOptions(id, sendAt - now));
  await redis.multi().hset(keys.record(id), fields).zadd(keys.index, sendAt, id).exec();
  return reply.code(201).send({ success: true, id, data: fields });
});

app.get<{ Params: { id: string } }>('/scheduled/:id', async (request, reply) => {
  const record = await redis.hgetall(keys.record(request.params.id));
  if (!record.id) return reply.code(404).send({ statusCode: 404 });
  return { success: true, data: record };
});

app.put<{ Params: { id: string }; Body: UpdateMessageBody }>('/scheduled/:id', { schema: { body: UpdateMessageBody } }, async (request, reply) => {
  const { id } = request.params;
  const record = await redis.hgetall(keys.record(id));
  if (!record.id) return reply.code(404).send({ statusCode: 404 });
  const now = Date.now();
  const changes: Record<string, string> = { updatedAt: String(now) };
  for (const [k, v] of Object.entries(request.body)) changes[k] = typeof v === 'object' ? JSON.stringify(v) : String(v);
  const sendAt = request.body.sendAt === undefined ? undefined : toMs(request.body.sendAt);
  if (sendAt !== undefined) changes.sendAt = String(sendAt);
  const write = redis.multi().hset(keys.record(id), changes);
  if (sendAt !== undefined) write.zadd(keys.index, sendAt, id);
  await write.exec();
  if (sendAt !== undefined) await (await Job.fromId(queue, id))?.changeDelay(Math.max(0, sendAt - now));
  return { success: true, data: { ...record, ...changes } };
});

app.delete<{ Params: { id: string } }>('/scheduled/:id', async (request, reply) => {
  const { id } = request.params;
  if ((await redis.hget(keys.record(id), 'status')) !== 'scheduled') return reply.code(404).send({ statusCode: 404 });
  await redis.multi().hset(keys.record(id), 'status', 'canceled', 'updatedAt', Date.now()).zrem(keys.index, id).exec();
  await queue.remove(id);
  return { success: true, id };
});

app.get<{ Querystring: { cursor?: string; limit?: string } }>('/scheduled', async (request) => {
  const limit = Number(request.query.limit ?? 100);
  const [score, id] = request.query.cursor ? Buffer.from(request.query.cursor, 'base64url').toString().split(':') : [];
  const min = score === undefined ? '-inf' : score;
  // the boundary's score again, skipping members up to and including the boundary id
  const batch = await redis.zrangebyscore(keys.index, min, '+inf', 'WITHSCORES', 'LIMIT', 0, limit + 1 + (id ? 64 : 0));
  const members: [string, string][] = [];
  for (let i = 0; i < batch.length; i += 2) {
    if (id && batch[i + 1] === score && batch[i]! <= id) continue;
    members.push([batch[i]!, batch[i + 1]!]);
  }
  const page = members.slice(0, limit);
  const read = redis.pipeline();
  for (const [member] of page) read.hgetall(keys.record(member));
  const records = ((await read.exec()) ?? []).map(([, r]) => r);
  const last = page[page.length - 1];
  const nextCursor = members.length > limit && last ? Buffer.from(`${last[1]}:${last[0]}`).toString('base64url') : null;
  return { messages: records, nextCursor };
});

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, async () => {
    await app.close();
    await queue.close();
    redis.disconnect();
    process.exit(0);
  });
}
