import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildTestApp } from '../../../../test-support/apps.js';
import { deletePrefix, uniquePrefix } from '../../../../test-support/redis.js';
import { FeedClient, listen, newMessage, refusedUpgrade, schedule } from './feed-client.js';

const prefix = uniquePrefix('ws-filters');
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  app = await buildTestApp(prefix, { WS_ALLOWED_ORIGINS: 'https://console.example.com, http://localhost:3000' });
  url = await listen(app);
});

afterAll(async () => {
  await app?.close();
  await deletePrefix(prefix);
});

describe('filters', () => {
  it('sends only the events of the requested channel', async () => {
    const client = await FeedClient.inject(app, '/ws?channel=whatsapp');
    const sms = await schedule(app, { channel: 'sms' });
    const whatsapp = await schedule(app, { channel: 'whatsapp' });
    await client.waitForEvent('messageScheduled', whatsapp);
    expect(client.eventsOf(sms)).toEqual([]);
    expect(client.frames.every((f) => f.data?.channel === 'whatsapp')).toBe(true);
    await client.close();
  });

  it('sends only the events that leave a message in the requested status', async () => {
    const client = await FeedClient.inject(app, '/ws?status=canceled');
    const kept = await schedule(app);
    const canceled = await schedule(app);
    await app.inject({ method: 'PUT', url: `/scheduled/${kept}`, payload: { message: 'changed' } });
    await app.inject({ method: 'DELETE', url: `/scheduled/${canceled}` });
    await client.waitForEvent('messageDeleted', canceled);
    expect(client.frames.map((f) => [f.event, f.data?.id])).toEqual([['messageDeleted', canceled]]);
    await client.close();
  });

  it("never sends another tenant's events", async () => {
    const client = await FeedClient.inject(app, '/ws');
    const now = Date.now();
    const result = await app.scheduler.schedule('other-tenant', { ...newMessage(), channel: 'sms' }, now);
    const foreign = result.ok ? result.record.id : '';
    const own = await schedule(app);
    await client.waitForEvent('messageScheduled', own);
    expect(client.eventsOf(foreign)).toEqual([]);
    await client.close();
  });

  it('refuses a bad filter with a 400 in the error shape, before upgrading', async () => {
    for (const query of ['channel=fax', 'status=lost', 'limit=3']) {
      const { status, body } = await refusedUpgrade(`${url}/ws?${query}`);
      expect(status, query).toBe(400);
      expect(body).toMatchObject({ statusCode: 400, code: 'VALIDATION_ERROR', error: 'Bad Request' });
      expect(body.details).toEqual(expect.any(Array));
    }
  });
});

describe('origin', () => {
  it('refuses an origin that is not allowed with a 403 in the error shape', async () => {
    const { status, body } = await refusedUpgrade(`${url}/ws`, { origin: 'https://evil.example.com' });
    expect(status).toBe(403);
    expect(body).toEqual({
      statusCode: 403,
      code: 'ORIGIN_NOT_ALLOWED',
      error: 'Forbidden',
      message: 'Origin https://evil.example.com may not open the live feed',
    });
  });

  it('accepts an allowed origin and a client that sends none', async () => {
    const browser = await FeedClient.connect(`${url}/ws`, { origin: 'http://localhost:3000' });
    const server = await FeedClient.connect(`${url}/ws`);
    const id = await schedule(app);
    await Promise.all([browser.waitForEvent('messageScheduled', id), server.waitForEvent('messageScheduled', id)]);
    await Promise.all([browser.close(), server.close()]);
  });
});

it('answers a plain GET /ws (no upgrade) with 426', async () => {
  const res = await app.inject({ method: 'GET', url: '/ws' });
  expect(res.statusCode).toBe(426);
  expect(res.json()).toMatchObject({ statusCode: 426, code: 'UPGRADE_REQUIRED', error: 'Upgrade Required' });
});
