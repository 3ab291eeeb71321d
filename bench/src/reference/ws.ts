/**
 * The minimal WebSocket fan-out reference: bare Fastify + @fastify/websocket doing the product's
 * I/O with no product code. POST /scheduled writes the record and XADDs its event to a Redis
 * stream in one MULTI; one XREAD BLOCK loop reads the stream and sends each event, serialized
 * once, as the product's frame {"event","id","data"} to every open socket.
 */
import Fastify from 'fastify';
import websocket from '@fastify/websocket';
import type { WebSocket } from 'ws';
import { Redis } from 'ioredis';
import { monotonicFactory } from 'ulid';
import { CreateMessageBody } from '@punctual/shared';
import { referenceKeys } from './keys.js';

const redis = new Redis(process.env.REDIS_URL!);
const reader = new Redis(process.env.REDIS_URL!);
const keys = referenceKeys(process.env.QUEUE_PREFIX!);
const stream = `${keys.base}:events`;
const newId = monotonicFactory();
const sockets = new Set<WebSocket>();
const app = Fastify({ logger: false });
await app.register(websocket);

app.get('/health', async () => ({ status: 'ok' }));

app.get('/ws', { websocket: true }, (socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
});

app.post<{ Body: CreateMessageBody }>('/scheduled', { schema: { body: CreateMessageBody } }, async (request, reply) => {
  const now = Date.now();
  const id = newId(now);
  const sendAt = typeof request.body.sendAt === 'number' ? request.body.sendAt : Date.parse(request.body.sendAt);
  const record = { ...request.body, id, sendAt, status: 'scheduled', createdAt: now, updatedAt: now, attempts: 0 };
  const fields = Object.fromEntries(Object.entries(record).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)]));
  await redis
    .multi()
    .hset(keys.record(id), fields)
    .xadd(stream, 'MAXLEN', '~', '10000', '*', 'event', 'messageScheduled', 'data', JSON.stringify(record))
    .exec();
  return reply.code(201).send({ success: true, id, data: record });
});

let running = true;
async function relay() {
  let last = '$';
  while (running) {
    const reply = await reader.xread('BLOCK', 1000, 'STREAMS', stream, last).catch(() => null);
    for (const [, entries] of reply ?? []) {
      for (const [entryId, flat] of entries) {
        last = entryId;
        const frame = `{"event":${JSON.stringify(flat[1])},"id":"${entryId}","data":${flat[3]}}`;
        for (const socket of sockets) socket.send(frame);
      }
    }
  }
}
const relaying = relay();

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, async () => {
    running = false;
    reader.disconnect();
    await relaying;
    await app.close();
    redis.disconnect();
    process.exit(0);
  });
}
