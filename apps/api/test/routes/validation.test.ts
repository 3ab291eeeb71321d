import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { buildTestApp } from '../../../../test-support/apps.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../../test-support/redis.js';

const prefix = uniquePrefix('api-validation');
let app: FastifyInstance;
let redis: Redis;
let scheduledId: string;

beforeAll(async () => {
  app = await buildTestApp(prefix);
  redis = new Redis(redisUrl());
  const res = await app.inject({ method: 'POST', url: '/scheduled', payload: valid() });
  scheduledId = res.json().id;
});
afterAll(async () => {
  await app.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

function valid(over: Record<string, unknown> = {}) {
  return { recipient: '5511999999999', message: 'Hi', sendAt: Date.now() + 60_000, channel: 'whatsapp', ...over };
}

/** Every key of this test's prefix with its content, to prove a refused request changed nothing. */
async function snapshot(): Promise<string> {
  const keys = (await redis.keys(`{${prefix}-p0}*`)).sort();
  const dump = await Promise.all(keys.map(async (k) => `${k}=${(await redis.dump(k))?.toString('hex')}`));
  return dump.join('\n');
}

const YEAR = 365 * 86_400_000;

const badBodies: [string, unknown][] = [
  ['unknown field', valid({ priority: 'high' })],
  ['missing recipient', { message: 'Hi', sendAt: 1, channel: 'sms' }],
  ['recipient with letters', valid({ recipient: 'abc123' })],
  ['recipient too short', valid({ recipient: '+12' })],
  ['recipient as number', valid({ recipient: 5511999999999 })],
  ['bad channel', valid({ channel: 'fax' })],
  ['empty message', valid({ message: '' })],
  ['message over 4096 characters', valid({ message: 'x'.repeat(4097) })],
  ['message as number', valid({ message: 42 })],
  ['no message nor template', { recipient: '5511999999999', sendAt: 1, channel: 'sms' }],
  ['template on sms', valid({ channel: 'sms', message: undefined, template: { name: 'x', language: 'en_US' } })],
  ['sendAt more than a year ahead', valid({ sendAt: Date.now() + YEAR + 60_000 })],
  ['sendAt unparseable', valid({ sendAt: 'tomorrow' })],
  ['sendAt ISO without offset', valid({ sendAt: '2027-01-01T10:00:00' })],
  ['sendAt impossible date', valid({ sendAt: '2027-02-30T10:00:00Z' })],
  ['sendAt negative', valid({ sendAt: -1 })],
  ['sendAt fractional', valid({ sendAt: 1.5 })],
  ['sendAt as numeric string', valid({ sendAt: String(Date.now()) })],
  ['metadata nested', valid({ metadata: { a: { b: 1 } } })],
  ['metadata over 2 KB', valid({ metadata: { a: 'x'.repeat(1000), b: 'x'.repeat(1000), c: 'x'.repeat(100) } })],
  ['callbackUrl not http', valid({ callbackUrl: 'ftp://example.com' })],
  ['body is an array', [valid()]],
  ['body is null', null],
];

describe('bad input on POST /scheduled', () => {
  it.each(badBodies)('%s → 400 VALIDATION_ERROR with details, nothing stored', async (_name, payload) => {
    const before = await snapshot();
    const res = await app.inject({ method: 'POST', url: '/scheduled', payload: JSON.stringify(payload), headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    const json = res.json();
    expect(json).toMatchObject({ statusCode: 400, code: 'VALIDATION_ERROR', error: 'Bad Request' });
    expect(json.details.length).toBeGreaterThan(0);
    expect(res.body).not.toMatch(/at .*\.(ts|js):\d+/);
    expect(await snapshot()).toBe(before);
  });

  it('names the field and the allowed values', async () => {
    const res = await app.inject({ method: 'POST', url: '/scheduled', payload: valid({ channel: 'fax', sendAt: 'soon' }) });
    expect(res.json().details).toEqual([
      { path: '/sendAt', message: expect.stringContaining('epoch ms or ISO-8601') },
      { path: '/channel', message: 'must be one of: sms, whatsapp' },
    ]);
  });

  it('bad JSON → 400, not JSON → 415, over 64 KB → 413, nothing stored', async () => {
    const before = await snapshot();
    const badJson = await app.inject({ method: 'POST', url: '/scheduled', payload: '{"recipient":', headers: { 'content-type': 'application/json' } });
    expect(badJson.json()).toEqual({ statusCode: 400, code: 'VALIDATION_ERROR', error: 'Bad Request', message: 'Body is not valid JSON', details: [{ path: '/', message: 'is not valid JSON' }] });
    const empty = await app.inject({ method: 'POST', url: '/scheduled', payload: '', headers: { 'content-type': 'application/json' } });
    expect(empty.json()).toMatchObject({ statusCode: 400, code: 'VALIDATION_ERROR', details: [{ path: '/', message: 'is empty' }] });
    const text = await app.inject({ method: 'POST', url: '/scheduled', payload: 'hello', headers: { 'content-type': 'text/plain' } });
    expect(text.statusCode).toBe(415);
    expect(text.json().code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const huge = await app.inject({ method: 'POST', url: '/scheduled', payload: JSON.stringify(valid({ message: 'x'.repeat(70_000) })), headers: { 'content-type': 'application/json' } });
    expect(huge.statusCode).toBe(413);
    expect(huge.json()).toMatchObject({ statusCode: 413, code: 'PAYLOAD_TOO_LARGE' });
    const proto = await app.inject({ method: 'POST', url: '/scheduled', payload: '{"__proto__":{"x":1},"recipient":"5511999999999"}', headers: { 'content-type': 'application/json' } });
    expect(proto.statusCode).toBe(400);
    // a 400 that is not about JSON says what it is about
    const short = await app.inject({ method: 'POST', url: '/scheduled', payload: '{"a":1}', headers: { 'content-type': 'application/json', 'content-length': '5' } });
    expect(short.json()).toEqual({ statusCode: 400, code: 'BAD_REQUEST', error: 'Bad Request', message: 'Request body size did not match Content-Length' });
    expect(await snapshot()).toBe(before);
  });
});

describe('bad ids and queries', () => {
  it.each([
    ['GET', '/scheduled/01ARZ3NDEKTSV4RRFFQ69G5FAV'],
    ['GET', '/scheduled/not-an-id'],
    ['GET', '/messages/%00%01'],
    ['PUT', '/scheduled/../../etc'],
    ['DELETE', '/scheduled/01ARZ3NDEKTSV4RRFFQ69G5FAV'],
    ['DELETE', '/scheduled/x'.padEnd(75, 'x')],
    ['POST', '/failed/zzz/retry'],
  ])('%s %s → 404 MESSAGE_NOT_FOUND', async (method, url) => {
    const res = await app.inject({ method: method as 'GET', url, payload: method === 'PUT' ? { message: 'x' } : undefined });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ statusCode: 404, error: 'Not Found' });
  });

  it.each(['limit=0', 'limit=501', 'limit=-1', 'limit=abc', 'cursor=!!', 'cursor=MTox', 'channel=fax', 'from=yesterday', 'unknown=1'])(
    'GET /scheduled?%s → 400',
    async (query) => {
      const res = await app.inject({ url: `/scheduled?${query}` });
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toMatch(/VALIDATION_ERROR|INVALID_CURSOR/);
    },
  );

  it('PUT with an empty or invalid body changes nothing', async () => {
    const before = await snapshot();
    for (const payload of [{}, { sendAt: 'x' }, { channel: 'fax' }, { message: '' }, { status: 'delivered' }]) {
      const res = await app.inject({ method: 'PUT', url: `/scheduled/${scheduledId}`, payload });
      expect(res.statusCode).toBe(400);
    }
    expect(await snapshot()).toBe(before);
  });

  it('routes that take no body refuse one with fields, and change nothing', async () => {
    const everything = async () => {
      const keys = (await redis.keys(`*${prefix}*`)).sort();
      return (await Promise.all(keys.map(async (k) => `${k}=${(await redis.dump(k))?.toString('hex')}`))).join('\n');
    };
    const before = await everything();
    for (const [method, url] of [
      ['DELETE', `/scheduled/${scheduledId}`],
      ['POST', `/failed/${scheduledId}/retry`],
      ['DELETE', '/batches/01ARZ3NDEKTSV4RRFFQ69G5FAV'],
      ['PUT', '/suppressions/sms/15550001234'],
      ['DELETE', '/suppressions/sms/15550001234'],
    ] as const) {
      const res = await app.inject({ method, url, payload: { reason: 'x' } });
      expect(res.statusCode, `${method} ${url}`).toBe(400);
      expect(res.json()).toMatchObject({ statusCode: 400, code: 'VALIDATION_ERROR', details: [{ path: '/', message: 'must be no body (or an empty JSON object)' }] });
    }
    expect(await everything()).toBe(before);
    // no body, or an empty object, is what these routes take
    const other = (await app.inject({ method: 'POST', url: '/scheduled', payload: valid() })).json().id;
    expect((await app.inject({ method: 'DELETE', url: `/scheduled/${other}`, payload: {} })).statusCode).toBe(200);
    expect((await app.inject({ method: 'PUT', url: '/suppressions/sms/15550001234' })).statusCode).toBe(201);
    expect((await app.inject({ method: 'DELETE', url: '/suppressions/sms/15550001234', payload: {} })).statusCode).toBe(200);
  });

  it('a very long id is still a 404 in the same shape', async () => {
    const res = await app.inject({ method: 'DELETE', url: '/scheduled/'.padEnd(1500, 'x') });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ statusCode: 404, code: 'MESSAGE_NOT_FOUND' });
    expect(res.json().message.length).toBeLessThan(200);
  });

  it('an id too long for the HTTP parser (a request line over 16 KB) is a 431 in the same shape', async () => {
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const res = await fetch(`${address}/scheduled/${'a'.repeat(20_000)}`);
    expect(res.status).toBe(431);
    expect(await res.json()).toEqual({
      statusCode: 431,
      code: 'HEADERS_TOO_LARGE',
      error: 'Request Header Fields Too Large',
      message: 'The request line and headers are larger than 16 KB',
    });
  });

  it('an unknown route is a 404 in the same shape', async () => {
    const res = await app.inject({ url: '/nope' });
    expect(res.json()).toMatchObject({ statusCode: 404, code: 'ROUTE_NOT_FOUND', error: 'Not Found' });
  });
});
