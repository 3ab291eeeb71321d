/**
 * The minimal reference for receipts: a bare Fastify handler that takes Twilio's form-encoded
 * status callback, checks X-Twilio-Signature the same way (HMAC-SHA1 of PUBLIC_BASE_URL + path +
 * sorted parameters, constant-time compare) and makes one Redis write (the status by SID).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import Fastify from 'fastify';
import { Redis } from 'ioredis';

const redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true });
await redis.connect();
const token = process.env.TWILIO_AUTH_TOKEN!;
const baseUrl = process.env.PUBLIC_BASE_URL!;
const key = `${process.env.QUEUE_PREFIX!}:receipts`;
const app = Fastify({ logger: false });

app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => done(null, body));
app.get('/health', async () => ({ status: 'ok' }));

app.post('/webhooks/twilio/status', async (request, reply) => {
  const params = [...new URLSearchParams(request.body as string)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  let data = baseUrl + request.url;
  for (const [name, value] of params) data += name + value;
  const expected = createHmac('sha1', token).update(data, 'utf8').digest();
  const given = Buffer.from(String(request.headers['x-twilio-signature'] ?? ''), 'base64');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return reply.code(403).send();
  const fields = Object.fromEntries(params);
  await redis.hset(key, fields.MessageSid!, fields.MessageStatus!);
  return reply.code(200).send();
});

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, async () => {
    await app.close();
    redis.disconnect();
    process.exit(0);
  });
}
