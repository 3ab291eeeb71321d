/**
 * The minimal batch reference: a bare Fastify handler taking POST /scheduled/batch
 * ({messages: [POST /scheduled body, …]}, 1–1,000 items, the product's item schema) that writes
 * every job with one BullMQ `addBulk` and every record (HSET + an index ZADD) with one pipeline,
 * both at once: the obvious fast way, with no product code. A bad item refuses the whole batch.
 */
import Fastify from 'fastify';
import { Type } from '@sinclair/typebox';
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { monotonicFactory } from 'ulid';
import { CreateMessageBody } from '@punctual/shared';

const BatchBody = Type.Object({ messages: Type.Array(CreateMessageBody, { minItems: 1, maxItems: 1000 }) });
type BatchBody = { messages: CreateMessageBody[] };

const redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true });
await redis.connect();
const base = `{${process.env.QUEUE_PREFIX}}`;
const queue = new Queue('deliveries', { connection: redis, prefix: base });
const newId = monotonicFactory();
const app = Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024 });

const toMs = (value: number | string) => (typeof value === 'number' ? value : Date.parse(value));

app.get('/health', async () => ({ status: 'ok' }));

app.post<{ Body: BatchBody }>('/scheduled/batch', { schema: { body: BatchBody } }, async (request) => {
  const now = Date.now();
  const records = request.body.messages.map((message) => {
    const id = newId(now);
    return { ...message, id, sendAt: toMs(message.sendAt), status: 'scheduled', createdAt: now, updatedAt: now, attempts: 0 };
  });
  const write = redis.pipeline();
  for (const record of records) {
    write.hset(`${base}:m:${record.id}`, Object.fromEntries(Object.entries(record).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])));
    write.zadd(`${base}:scheduled`, record.sendAt, record.id);
  }
  await Promise.all([
    queue.addBulk(records.map((r) => ({ name: 'deliver', data: { id: r.id }, opts: { jobId: r.id, delay: Math.max(0, r.sendAt - now) } }))),
    write.exec(),
  ]);
  return { accepted: records.length, results: records.map((r, index) => ({ index, status: 201, id: r.id })) };
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
