import { afterAll, beforeAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { DeliveryQueues, Keyspace } from '../src/index.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';

const YEAR = 365 * 86_400_000;
const prefix = uniquePrefix('store-delivery-queues');
const keyspace = new Keyspace({ prefix, partitions: 1 });
let redis: Redis;
let deliveries: DeliveryQueues;

beforeAll(() => {
  redis = new Redis(redisUrl());
  deliveries = new DeliveryQueues(keyspace, redis);
});
afterAll(async () => {
  await deliveries.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

it('stores a scheduled job as a compact listpack hash with only its id and delay as options', async () => {
  const id = '01JZZZZZZZZZZZZZZZZZZZZZZZ';
  const sendAt = Date.now() + YEAR;
  await deliveries.enqueue(id, sendAt);
  const queue = deliveries.of(id);
  const key = queue.toKey(id);
  // above hash-max-listpack-value (64 B by default) Redis turns the hash into a ~3x larger hashtable
  expect(JSON.parse((await redis.hget(key, 'opts'))!)).toEqual({ jobId: id, delay: expect.any(Number) });
  expect((await redis.hget(key, 'opts'))!.length).toBeLessThanOrEqual(64);
  expect(await redis.object('ENCODING', key)).toBe('listpack');
  const job = (await queue.getJob(id))!;
  expect(job.timestamp + job.delay - sendAt).toBeGreaterThanOrEqual(0);
  expect(job.timestamp + job.delay - sendAt).toBeLessThan(1000);
});
