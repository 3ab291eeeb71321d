import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { buildTestApp } from '../../../../test-support/apps.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../../test-support/redis.js';
import { FeedClient, listen, refusedUpgrade, schedule } from './feed-client.js';

const redis = new Redis(redisUrl());
const prefixes: string[] = [];
const apps: FastifyInstance[] = [];

async function startApi(env: Record<string, string> = {}) {
  const prefix = uniquePrefix('ws-resume');
  prefixes.push(prefix);
  const app = await buildTestApp(prefix, env);
  apps.push(app);
  return { app, prefix, stream: (partition = 0) => `{${prefix}-p${partition}}:feed:events` };
}

afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  redis.disconnect();
  await Promise.all(prefixes.map((p) => deletePrefix(p)));
});

/** Schedules messages one after another until told to stop; resolves with their ids. */
function keepScheduling(app: FastifyInstance) {
  const ids: string[] = [];
  let stop = false;
  const done = (async () => {
    while (!stop) ids.push(await schedule(app));
    return ids;
  })();
  return { ids, stop: () => ((stop = true), done) };
}

describe('one partition', () => {
  let api: Awaited<ReturnType<typeof startApi>>;
  let url: string;
  beforeAll(async () => {
    api = await startApi();
    url = await listen(api.app);
  });

  it('resumes after a disconnect during activity with nothing missed and nothing twice', async () => {
    const first = await FeedClient.connect(`${url}/ws`);
    const activity = keepScheduling(api.app);
    await first.waitFor(() => first.frames.length >= 5, 'five frames');
    await first.close();
    const since = first.frames.at(-1)!.id!;

    const second = await FeedClient.connect(`${url}/ws?since=${since}`);
    const seenBefore = second.frames.length;
    await second.waitFor(() => second.frames.length >= seenBefore + 5, 'five more frames');
    const ids = await activity.stop();
    await second.waitForEvent('messageScheduled', ids.at(-1)!);

    const stream = await redis.xrange(api.stream(), '-', '+');
    const received = [...first.frames, ...second.frames];
    expect(received.map((f) => f.id)).toEqual(stream.map(([id]) => id));
    expect(received.map((f) => f.data!.id)).toEqual(ids);
    expect(second.frames.some((f) => f.event === 'resync')).toBe(false);
    await second.close();
  });

  it('sends one resync frame, then what is left, when since was trimmed away', async () => {
    const ids = [await schedule(api.app), await schedule(api.app), await schedule(api.app), await schedule(api.app)];
    const entries = (await redis.xrange(api.stream(), '-', '+')) as [string, string[]][];
    const since = entries.find(([, fields]) => JSON.parse(fields[fields.indexOf('data') + 1]!).id === ids[0])![0];
    await redis.xtrim(api.stream(), 'MAXLEN', 2);

    const client = await FeedClient.inject(api.app, `/ws?since=${since}`);
    const last = await client.waitForEvent('messageScheduled', ids[3]!);
    expect(client.frames.map((f) => f.event)).toEqual(['resync', 'messageScheduled', 'messageScheduled']);
    expect(client.frames[0]).toEqual({ event: 'resync' });
    expect(client.frames.slice(1).map((f) => f.data!.id)).toEqual(ids.slice(2));

    const next = await schedule(api.app);
    await client.waitForEvent('messageScheduled', next);
    expect(client.frames.at(-1)!.id! > last.id!).toBe(true);
    await client.close();
  });

  it('replays nothing and continues live when since is the newest event', async () => {
    await schedule(api.app);
    const newest = (await redis.xrevrange(api.stream(), '+', '-', 'COUNT', 1))[0]![0];
    const client = await FeedClient.inject(api.app, `/ws?since=${newest}`);
    const id = await schedule(api.app);
    await client.waitForEvent('messageScheduled', id);
    expect(client.frames.map((f) => f.data?.id)).toEqual([id]);
    await client.close();
  });

  it('sends resync, then everything retained, for a since the feed never had', async () => {
    const id = await schedule(api.app);
    const retained = await redis.xlen(api.stream());
    const client = await FeedClient.inject(api.app, '/ws?since=99999999999999-0');
    await client.waitForEvent('messageScheduled', id);
    expect(client.frames[0]).toEqual({ event: 'resync' });
    expect(client.frames).toHaveLength(retained + 1);
    await client.close();
  });

  it('refuses a malformed since with a 400 in the error shape, before upgrading', async () => {
    for (const since of ['abc', '1-2-3', '1700000000000-0_1700000000000-1', '99999999999999999999-0']) {
      const { status, body } = await refusedUpgrade(`${url}/ws?since=${since}`);
      expect(status, since).toBe(400);
      expect(body).toMatchObject({ statusCode: 400, code: 'VALIDATION_ERROR', error: 'Bad Request' });
      expect(body.message).toContain('since');
    }
  });
});

describe('a tenant among busier ones', () => {
  it("parses only the client's own tenant's events when it replays", async () => {
    // an API of its own: the other tests count what the stream retains
    const api = await startApi();
    const since = (await redis.xrevrange(api.stream(), '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
    const own = await schedule(api.app);
    // thousands of another tenant's events after it: a copy of the real entry, tenant changed
    const [[, fields]] = (await redis.xrevrange(api.stream(), '+', '-', 'COUNT', 1)) as [string, string[]][];
    const theirs = fields!.map((v, i) => (fields![i - 1] === 'tenant' ? 'someone-else' : v));
    const pipeline = redis.pipeline();
    for (let i = 0; i < 3000; i++) pipeline.xadd(api.stream(), '*', ...theirs);
    await pipeline.exec();
    const last = await schedule(api.app);

    const parse = vi.spyOn(JSON, 'parse');
    try {
      const client = await FeedClient.inject(api.app, `/ws?since=${since}`);
      await client.waitForEvent('messageScheduled', last);
      expect(client.frames.map((f) => f.data?.id)).toEqual([own, last]);
      // the frames this client got, and a little besides: not one per event of the other tenant
      expect(parse.mock.calls.length).toBeLessThan(100);
      await client.close();
    } finally {
      parse.mockRestore();
    }
  });
});

describe('several partitions', () => {
  it('resumes from a composite id covering every partition', async () => {
    const api = await startApi({ QUEUE_PARTITIONS: '3' });
    const first = await FeedClient.inject(api.app, '/ws');
    const before = [await schedule(api.app), await schedule(api.app), await schedule(api.app)];
    await first.waitFor(() => first.frames.length === 3, 'three frames');
    await first.close();
    const since = first.frames.at(-1)!.id!;
    expect(since.split('_')).toHaveLength(3);

    const missed: string[] = [];
    for (let i = 0; i < 12; i++) missed.push(await schedule(api.app));
    const partitions = new Set(
      await Promise.all([0, 1, 2].map(async (p) => ((await redis.xlen(api.stream(p))) > 0 ? p : -1))),
    );
    expect(partitions.size).toBeGreaterThan(1);

    const second = await FeedClient.inject(api.app, `/ws?since=${since}`);
    await second.waitFor(() => second.frames.length >= missed.length, 'the missed frames');
    const live = await schedule(api.app);
    await second.waitForEvent('messageScheduled', live);
    expect(second.frames.map((f) => f.data!.id).sort()).toEqual([...missed, live].sort());
    expect(new Set([...first.frames, ...second.frames].map((f) => f.data!.id)).size).toBe(before.length + missed.length + 1);
    await second.close();

    const plain = await api.app.inject({ method: 'GET', url: '/ws?since=1700000000000-0' });
    expect(plain.statusCode).toBe(400);
    expect(plain.json()).toMatchObject({ code: 'VALIDATION_ERROR' });
  });
});
