import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildTestApp } from '../../../../test-support/apps.js';
import { deletePrefix, uniquePrefix } from '../../../../test-support/redis.js';
import { FeedClient, listen, refusedUpgrade } from './feed-client.js';

const prefix = uniquePrefix('ws-limits');
let app: FastifyInstance;
let url: string;
const clients: FeedClient[] = [];

const auth = (tenant: string) => ({ authorization: `Bearer key-of-${tenant}` });
const connect = async (tenant: string) => {
  const client = await FeedClient.connect(`${url}/ws`, { headers: auth(tenant) });
  clients.push(client);
  return client;
};

async function gauge(): Promise<number> {
  const text = (await app.inject({ url: '/metrics' })).body;
  return Number(/^punctual_ws_clients (\d+)$/m.exec(text)![1]);
}

async function until(check: () => boolean | Promise<boolean>, what: string) {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not ${what} within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(async () => {
  app = await buildTestApp(prefix, {
    API_KEYS: ['a', 'b', 'c'].map((t) => `tenant-${t}:key-of-tenant-${t}`).join(','),
    WS_MAX_CLIENTS_PER_TENANT: '3',
  });
  url = await listen(app);
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await app.close();
  await deletePrefix(prefix);
});

it('refuses one more upgrade of a tenant at WS_MAX_CLIENTS_PER_TENANT with a plain 429, others unaffected', async () => {
  const [first] = [await connect('tenant-a'), await connect('tenant-a'), await connect('tenant-a')];
  expect(await gauge()).toBe(3);

  const refused = await refusedUpgrade(`${url}/ws`, auth('tenant-a'));
  expect(refused).toEqual({
    status: 429,
    body: { statusCode: 429, code: 'FEED_CLIENT_LIMIT_REACHED', error: 'Too Many Requests', message: expect.stringContaining('3 live-feed connections') },
  });
  await connect('tenant-b');
  expect(await gauge()).toBe(4);

  // a closed connection gives its slot back
  await first!.close();
  await until(async () => (await gauge()) === 3, 'three clients');
  await connect('tenant-a');
  expect(await gauge()).toBe(4);
});

it('holds the limit when many upgrades of one tenant arrive at once', async () => {
  const attempts = await Promise.allSettled(Array.from({ length: 12 }, () => connect('tenant-c')));
  expect(attempts.filter((a) => a.status === 'fulfilled')).toHaveLength(3);
  for (const a of attempts) if (a.status === 'rejected') expect(String(a.reason)).toContain('429');
  expect(app.feed.clientCount).toBe(7);
});

it('counts open sockets in punctual_ws_clients, back to 0 when they close', async () => {
  expect(await gauge()).toBe(7);
  await Promise.all(clients.map((c) => c.close()));
  await until(async () => (await gauge()) === 0, 'zero clients');
});
