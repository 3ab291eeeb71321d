import { afterAll, beforeAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startRedisServer, type SpawnedRedis } from '../../packages/store/src/index.js';
import { spawnApi, spawnWorker, type WorkerProcess } from '../../test-support/processes.js';
import { FeedWatcher, uniquePrefix } from '../../test-support/redis.js';
import { FeedClient, type Frame } from '../../apps/api/test/ws/feed-client.js';

const COUNT = 120;
/** API 1 is killed once its client has received this many frames (while messages keep coming). */
const KILL_AFTER_FRAMES = 45;

const prefix = uniquePrefix('fault-api');
let redis: SpawnedRedis;
let admin: Redis;
let feed: FeedWatcher;
const processes: WorkerProcess[] = [];
const clients: FeedClient[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  admin = new Redis(redis.url);
  feed = await FeedWatcher.start(prefix, redis.url);
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(processes.map((p) => p.stop()));
  admin?.disconnect();
  await feed?.close();
  await redis?.stop();
});

const env = () => ({ REDIS_URL: redis.url, QUEUE_PREFIX: prefix });
const connect = async (port: number, since?: string) => {
  const client = await FeedClient.connect(`ws://127.0.0.1:${port}/ws${since ? `?since=${since}` : ''}`);
  clients.push(client);
  return client;
};
const ids = (frames: Frame[]) => frames.filter((f) => f.id !== undefined).map((f) => f.id!);

it('an API instance SIGKILLed under a WS client: the client resumes on another with ?since=, missing nothing, getting nothing twice', async () => {
  const [api1, api2, worker] = await Promise.all([spawnApi(env()), spawnApi(env()), spawnWorker({ ...env(), SIMULATED_LATENCY_MS: '5' })]);
  processes.push(api1, api2, worker);
  const onFirst = await connect(api1.port);
  const onSecond = await connect(api2.port);

  // messages keep coming through API 2, a few at a time, before, during and after the kill
  const posted: string[] = [];
  const produce = async () => {
    while (posted.length < COUNT) {
      const batch = await Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          fetch(`http://127.0.0.1:${api2.port}/scheduled`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ recipient: '5511999999999', message: `api crash ${posted.length + i}`, sendAt: Date.now(), channel: 'sms' }),
          }).then((r) => r.json() as Promise<{ id: string }>),
        ),
      );
      posted.push(...batch.map((b) => b.id));
    }
  };
  const producing = produce();

  await onFirst.waitFor(() => onFirst.frames.length >= KILL_AFTER_FRAMES, `${KILL_AFTER_FRAMES} frames`);
  await api1.crash();
  await onFirst.closed;
  const beforeKill = onFirst.frames.slice();
  const lastSeen = ids(beforeKill).at(-1)!;
  const missed = (await admin.xrange(`{${prefix}-p0}:feed:events`, `(${lastSeen}`, '+')).length;
  const postedAtKill = posted.length;
  const resumed = await connect(api2.port, lastSeen);

  await producing;
  for (const id of posted) await feed.waitFor('messageDelivered', id, 60_000);
  const stream = (await admin.xrange(`{${prefix}-p0}:feed:events`, '-', '+')).map(([id]) => id);
  const last = stream.at(-1)!;
  await resumed.waitFor((f) => f.id === last, 'the last event on the resumed client');
  await onSecond.waitFor((f) => f.id === last, 'the last event on the client that stayed');

  // what the client saw, before and after the kill, is the stream from its first event on: in order, once each
  const seen = [...ids(beforeKill), ...ids(resumed.frames)];
  expect(resumed.frames.some((f) => f.event === 'resync')).toBe(false);
  expect(seen).toEqual(stream.slice(stream.indexOf(seen[0]!)));
  expect(ids(onSecond.frames)).toEqual(stream.slice(stream.indexOf(ids(onSecond.frames)[0]!)));
  expect(new Set(seen).size).toBe(seen.length);
  // the kill fell in the middle of the activity: events came after it, through the resumed client
  expect(ids(resumed.frames).length).toBeGreaterThan(0);
  console.log(`API killed after ${beforeKill.length} frames (${postedAtKill}/${COUNT} messages posted); ${missed} events happened before the client was back, replayed; ${seen.length} events in all`);
}, 120_000);
