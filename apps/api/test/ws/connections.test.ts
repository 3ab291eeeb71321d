import { afterAll, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildTestApp } from '../../../../test-support/apps.js';
import { deletePrefix, uniquePrefix } from '../../../../test-support/redis.js';
import { FeedClient, listen, newMessage, schedule } from './feed-client.js';

const prefixes: string[] = [];
const apps: FastifyInstance[] = [];

async function startApi(env: Record<string, string> = {}) {
  const prefix = uniquePrefix('ws-conn');
  prefixes.push(prefix);
  const app = await buildTestApp(prefix, env);
  apps.push(app);
  return { app, url: await listen(app) };
}

afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await Promise.all(prefixes.map((p) => deletePrefix(p)));
});

/** A message whose event frame is large (past the API's body limit), written through the API's own scheduler. */
async function scheduleLarge(app: FastifyInstance): Promise<string> {
  const now = Date.now();
  const result = await app.scheduler.schedule('default', { ...newMessage(), channel: 'sms', message: 'x'.repeat(256 * 1024) }, now);
  if (!result.ok) throw new Error(result.reason);
  return result.record.id;
}

it('drops a client that stops reading (1013) while a reading one keeps receiving', async () => {
  const { app, url } = await startApi({ WS_MAX_BUFFERED_BYTES: '1024' });
  const fast = await FeedClient.connect(`${url}/ws`);
  const slow = await FeedClient.connect(`${url}/ws`);
  slow.socket.pause();

  let sent = 0;
  while (app.feed.clientCount > 1) {
    if (++sent > 500) throw new Error('the slow client was never dropped');
    await fast.waitForEvent('messageScheduled', await scheduleLarge(app));
  }
  expect(app.feed.clientCount).toBe(1);

  slow.socket.resume();
  expect(await slow.closed).toEqual({ code: 1013, reason: 'client too slow: frames are not being read' });
  expect(slow.frames.length).toBeLessThan(sent);

  const after = await schedule(app);
  await fast.waitForEvent('messageScheduled', after);
  expect(fast.frames).toHaveLength(sent + 1);
  await fast.close();
});

it('pings every client and cuts off one that does not answer', async () => {
  const { app, url } = await startApi({ WS_PING_INTERVAL_MS: '300' });
  const answering = await FeedClient.connect(`${url}/ws`);
  const silent = await FeedClient.connect(`${url}/ws`, { autoPong: false });
  let pings = 0;
  answering.socket.on('ping', () => pings++);

  expect((await silent.closed).code).toBe(1006);
  const pingsThen = pings;
  await new Promise<void>((resolve) => answering.socket.on('ping', () => pings >= pingsThen + 2 && resolve()));
  expect(answering.socket.readyState).toBe(answering.socket.OPEN);
  expect(app.feed.clientCount).toBe(1);

  const id = await schedule(app);
  await answering.waitForEvent('messageScheduled', id);
  await answering.close();
});

it('closes every client with 1001 and stops the relay when the app closes', async () => {
  const { app, url } = await startApi();
  const live = await FeedClient.connect(`${url}/ws`);
  const filtered = await FeedClient.connect(`${url}/ws?channel=sms`);
  const injected = await FeedClient.inject(app, '/ws');
  expect(app.feed.clientCount).toBe(3);

  await app.close();
  for (const client of [live, filtered, injected]) {
    expect((await client.closed).code).toBe(1001);
  }
  expect(app.feed.running).toBe(false);
  expect(app.feed.clientCount).toBe(0);
});

it('keeps no HTTP object of the upgrade alive for the life of a connection, and still ends it on a socket error', async () => {
  const { app, url } = await startApi();
  const client = await FeedClient.connect(`${url}/ws`);
  const [server] = [...app.websocketServer.clients] as unknown as { _socket: { _httpMessage: unknown } & NodeJS.EventEmitter }[];
  // the upgrade's stand-in response is no longer attached to the TCP socket (with Fastify's listeners on it)
  expect(server._socket._httpMessage).toBeNull();
  const [onError] = (server as unknown as NodeJS.EventEmitter).listeners('error');
  expect((server as unknown as NodeJS.EventEmitter).listenerCount('error')).toBe(1);

  onError(new Error('read ECONNRESET'));
  expect((await client.closed).code).toBe(1006);
  await expect.poll(() => app.feed.clientCount).toBe(0);
});
