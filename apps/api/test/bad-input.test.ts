import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { Redis } from 'ioredis';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { KEY_A, TWO_TENANTS, bearer, buildTestApi, fingerprint, newMessage } from './helpers.js';

const prefix = uniquePrefix('bad-input');
let app: FastifyInstance;
let redis: Redis;
let scheduledId: string;
let failedId: string;

const auth = bearer(KEY_A);
const json = { ...auth, 'content-type': 'application/json' };
const YEAR_MS = 365 * 24 * 3600 * 1000;

beforeAll(async () => {
  redis = new Redis(redisUrl());
  app = await buildTestApi(prefix, { API_KEYS: TWO_TENANTS, RATE_LIMIT_MAX: '0' });
  const post = (over = {}) => app.inject({ method: 'POST', url: '/scheduled', headers: auth, payload: newMessage(over) });
  scheduledId = (await post()).json().id;
  failedId = (await post({ sendAt: Date.now() - 1000 })).json().id;
  await app.store.claim(failedId, Date.now());
  await app.store.markFailed(failedId, Date.now(), 'PERMANENT: test');
});
afterAll(async () => {
  await app.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

interface Case {
  name: string;
  request: InjectOptions;
  status: number;
  code: string;
}

/** A body: an object is sent as JSON; a string is sent as is (as JSON unless headers say otherwise). */
const withBody = (method: 'POST' | 'PUT', url: string, body: unknown, headers: Record<string, string> = json): InjectOptions => ({
  method,
  url,
  headers,
  payload: typeof body === 'string' ? body : JSON.stringify(body),
});

const deep = (depth: number, open: string, close: string, inner = '1') => open.repeat(depth) + inner + close.repeat(depth);
const emoji = (n: number) => '\u{1F600}'.repeat(n);

/** Body mistakes, each valid but for one thing, for both routes that take a body. */
function bodyCases(method: 'POST' | 'PUT', url: () => string): Case[] {
  const base = method === 'POST' ? newMessage() : { message: 'changed' };
  const bad = (name: string, over: Record<string, unknown>, code = 'VALIDATION_ERROR'): Case => ({
    name: `${method}: ${name}`,
    request: withBody(method, url(), { ...base, ...over }),
    status: 400,
    code,
  });
  const raw = (name: string, payload: string, status: number, code: string, headers: Record<string, string> = json): Case => ({
    name: `${method}: ${name}`,
    request: withBody(method, url(), payload, headers),
    status,
    code,
  });
  return [
    bad('recipient as a number', { recipient: 5511999999999 }),
    bad('recipient null', { recipient: null }),
    bad('recipient as an object', { recipient: { number: '5511999999999' } }),
    bad('recipient with letters', { recipient: '55119abc99999' }),
    bad('recipient too long', { recipient: '+1234567890123456' }),
    bad('message as a number', { message: 42 }),
    bad('message null', { message: null }),
    bad('message as an object', { message: { text: 'hi' } }),
    bad('message as an array', { message: ['hi'] }),
    bad('message empty', { message: '' }),
    bad('message with a NUL byte', { message: 'hi\u0000there' }),
    bad('message of 4097 emoji', { message: emoji(4097) }),
    bad('message of 4097 characters', { message: 'x'.repeat(4097) }),
    bad('channel unknown', { channel: 'fax' }),
    bad('channel null', { channel: null }),
    bad('sendAt as a numeric string', { sendAt: String(Date.now() + 60_000) }),
    bad('sendAt negative', { sendAt: -1 }),
    bad('sendAt fractional', { sendAt: Date.now() + 0.5 }),
    bad('sendAt huge', { sendAt: 1e20 }),
    bad('sendAt beyond a safe integer', { sendAt: 2 ** 53 + 2 }),
    bad('sendAt more than a year ahead', { sendAt: Date.now() + YEAR_MS + 60_000 }),
    bad('sendAt "NaN"', { sendAt: 'NaN' }),
    bad('sendAt "Infinity"', { sendAt: 'Infinity' }),
    bad('sendAt "-Infinity"', { sendAt: '-Infinity' }),
    bad('sendAt ISO without offset', { sendAt: '2030-01-01T10:00:00' }),
    bad('sendAt date only', { sendAt: '2030-01-01' }),
    bad('sendAt impossible date', { sendAt: '2030-13-45T99:99:00Z' }),
    bad('sendAt null', { sendAt: null }),
    bad('sendAt as an object', { sendAt: { ms: 1 } }),
    bad('an unknown field', { priority: 'high' }),
    bad('a constructor field', { constructor: 'x' }),
    bad('metadata nested', { metadata: { a: { b: 1 } } }),
    bad('metadata as an array', { metadata: ['a'] }),
    bad('metadata over 2 KB', { metadata: { a: 'x'.repeat(1000), b: 'x'.repeat(1000), c: 'x'.repeat(100) } }),
    bad('a metadata key of 65 characters', { metadata: { ['k'.repeat(65)]: 1 } }),
    bad('a template on sms', { channel: 'sms', message: undefined, template: { name: 'HX1', language: 'en_US' } }),
    bad('callbackUrl not http', { callbackUrl: 'javascript:alert(1)' }),
    raw('sendAt 1e400 (Infinity)', JSON.stringify({ ...base, sendAt: 1 }).replace('"sendAt":1', '"sendAt":1e400'), 400, 'VALIDATION_ERROR'),
    raw('__proto__ key', JSON.stringify(base).replace('{', '{"__proto__":{"isAdmin":true},'), 400, 'VALIDATION_ERROR'),
    raw('constructor.prototype key', JSON.stringify(base).replace('{', '{"constructor":{"prototype":{"x":1}},'), 400, 'VALIDATION_ERROR'),
    raw('a duplicate key', JSON.stringify(base).replace('{', '{"message":"first",'), 400, 'VALIDATION_ERROR'),
    raw('a duplicate key spelled with an escape', JSON.stringify(base).replace('{', '{"\\u006dessage":"first",'), 400, 'VALIDATION_ERROR'),
    raw('10,000 nested arrays', deep(10_000, '[', ']'), 400, 'VALIDATION_ERROR'),
    raw('10,000 nested objects', deep(10_000, '{"a":', '}'), 400, 'VALIDATION_ERROR'),
    raw('nesting in a field', JSON.stringify({ ...base, recipient: 0 }).replace('"recipient":0', `"recipient":${deep(10_000, '[', ']')}`), 400, 'VALIDATION_ERROR'),
    raw('a body of 64 KB + 1', JSON.stringify({ ...base, pad: '' }).replace('"pad":""', `"pad":"${'x'.repeat(64 * 1024)}"`), 413, 'PAYLOAD_TOO_LARGE'),
    raw('invalid JSON', '{"recipient":', 400, 'VALIDATION_ERROR'),
    raw('an empty JSON body', '', 400, 'VALIDATION_ERROR'),
    raw('null', 'null', 400, 'VALIDATION_ERROR'),
    raw('an array', '[]', 400, 'VALIDATION_ERROR'),
    raw('a string', '"hello"', 400, 'VALIDATION_ERROR'),
    raw('a number', '42', 400, 'VALIDATION_ERROR'),
    raw('text/plain', JSON.stringify(base), 415, 'UNSUPPORTED_MEDIA_TYPE', { ...auth, 'content-type': 'text/plain' }),
    raw('a form', 'recipient=5511999999999', 415, 'UNSUPPORTED_MEDIA_TYPE', { ...auth, 'content-type': 'application/x-www-form-urlencoded' }),
    raw('XML', '<message/>', 415, 'UNSUPPORTED_MEDIA_TYPE', { ...auth, 'content-type': 'application/xml' }),
    raw('no content type', JSON.stringify(base), 415, 'UNSUPPORTED_MEDIA_TYPE', auth),
  ];
}

// 5000 characters: beyond the router's maxParamLength (2048)
const MALFORMED_IDS = ['abc', '01j0000000000000000000000a', '01J00000000000000000000000X', '%00', '..%2F..%2Fetc', '%F0%9F%92%A5', "1'%20OR%20'1'='1", 'x'.repeat(300), 'x'.repeat(5000)];

function idCases(): Case[] {
  return MALFORMED_IDS.flatMap((id) => [
    { name: `GET /scheduled/${id.slice(0, 30)}`, request: { method: 'GET', url: `/scheduled/${id}`, headers: auth }, status: 404, code: 'MESSAGE_NOT_FOUND' },
    { name: `GET /messages/${id.slice(0, 30)}`, request: { method: 'GET', url: `/messages/${id}`, headers: auth }, status: 404, code: 'MESSAGE_NOT_FOUND' },
    { name: `PUT /scheduled/${id.slice(0, 30)}`, request: withBody('PUT', `/scheduled/${id}`, { message: 'x' }), status: 404, code: 'MESSAGE_NOT_FOUND' },
    { name: `DELETE /scheduled/${id.slice(0, 30)}`, request: { method: 'DELETE', url: `/scheduled/${id}`, headers: auth }, status: 404, code: 'MESSAGE_NOT_FOUND' },
    { name: `POST /failed/${id.slice(0, 30)}/retry`, request: { method: 'POST', url: `/failed/${id}/retry`, headers: auth }, status: 404, code: 'MESSAGE_NOT_FOUND' },
  ] satisfies Case[]);
}

function queryCases(): Case[] {
  const lists = ['/scheduled', '/delivered', '/failed', '/canceled'];
  const bad: [string, string][] = [
    ['limit=0', 'VALIDATION_ERROR'],
    ['limit=501', 'VALIDATION_ERROR'],
    ['limit=-1', 'VALIDATION_ERROR'],
    ['limit=abc', 'VALIDATION_ERROR'],
    ['limit=1.5', 'VALIDATION_ERROR'],
    ['limit=', 'VALIDATION_ERROR'],
    ['limit=1&limit=2', 'VALIDATION_ERROR'],
    ['limit=99999999999999999999999', 'VALIDATION_ERROR'],
    ['cursor=abc', 'INVALID_CURSOR'],
    ['cursor=not*base64', 'INVALID_CURSOR'],
    [`cursor=${Buffer.from('123:notanid').toString('base64url')}`, 'INVALID_CURSOR'],
    [`cursor=${'A'.repeat(201)}`, 'VALIDATION_ERROR'],
    ['channel=fax', 'VALIDATION_ERROR'],
    ['recipient=abc', 'VALIDATION_ERROR'],
    ['from=NaN', 'VALIDATION_ERROR'],
    ['to=Infinity', 'VALIDATION_ERROR'],
    ['from=2030-01-01T00:00:00', 'VALIDATION_ERROR'],
    ['from=-5', 'VALIDATION_ERROR'],
    ['unknown=1', 'VALIDATION_ERROR'],
    ['__proto__=1', 'VALIDATION_ERROR'],
  ];
  const lists_ = lists.flatMap((list) =>
    bad.map(([query, code]) => ({ name: `GET ${list}?${query.slice(0, 40)}`, request: { method: 'GET' as const, url: `${list}?${query}`, headers: auth }, status: 400, code })),
  );
  const single = [
    { method: 'GET' as const, url: () => `/scheduled/${scheduledId}?unknown=1` },
    { method: 'GET' as const, url: () => `/messages/${scheduledId}?unknown=1` },
    { method: 'DELETE' as const, url: () => `/scheduled/${scheduledId}?force=true` },
    { method: 'POST' as const, url: () => `/failed/${failedId}/retry?now=1` },
  ];
  return [
    ...lists_,
    ...single.map(({ method, url }) => ({ name: `${method} ${url()} (unknown query)`, request: { method, url: url(), headers: auth }, status: 400, code: 'VALIDATION_ERROR' })),
    { name: 'POST /scheduled?unknown=1', request: withBody('POST', '/scheduled?unknown=1', newMessage()), status: 400, code: 'VALIDATION_ERROR' },
    { name: 'PUT with an empty object', request: withBody('PUT', `/scheduled/${scheduledId}`, {}), status: 400, code: 'VALIDATION_ERROR' },
  ];
}

function expectCleanError(body: string, status: number, code: string) {
  const error = JSON.parse(body) as Record<string, unknown>;
  expect(error).toMatchObject({ statusCode: status, code, error: expect.any(String), message: expect.any(String) });
  for (const key of Object.keys(error)) expect(['statusCode', 'code', 'error', 'message', 'details']).toContain(key);
  if (code === 'VALIDATION_ERROR' && error.details !== undefined) {
    expect(error.details).toEqual(expect.arrayContaining([{ path: expect.any(String), message: expect.any(String) }]));
  }
  expect(body).not.toMatch(/node_modules|\.[jt]s:\d|\bat [A-Za-z.<]+ \(|ReplyError|ERR |ajv|Lua|redis/i);
}

describe('bad input changes nothing and gets a clean 4xx', () => {
  // lazy: the ids exist only once beforeAll has run
  const cases = () => [
    ...bodyCases('POST', () => '/scheduled'),
    ...bodyCases('PUT', () => `/scheduled/${scheduledId}`),
    ...idCases(),
    ...queryCases(),
  ];

  it('answers every case with its status and code, and leaves Redis as it was', async () => {
    const failures: string[] = [];
    let count = 0;
    for (const c of cases()) {
      const before = await fingerprint(redis, prefix);
      const response = await app.inject(c.request);
      count++;
      try {
        expect(response.statusCode).toBe(c.status);
        expectCleanError(response.body, c.status, c.code);
        expect(await fingerprint(redis, prefix)).toEqual(before);
      } catch (err) {
        failures.push(`${c.name}: got ${response.statusCode} ${response.body.slice(0, 200)} (${(err as Error).message.split('\n')[0]})`);
      }
    }
    expect(failures).toEqual([]);
    expect(count).toBeGreaterThan(200);
  });

  it('gives validation errors details naming the field', async () => {
    const response = await app.inject(withBody('POST', '/scheduled', newMessage({ recipient: 5511999999999, extra: true })));
    const error = response.json();
    expect(error.code).toBe('VALIDATION_ERROR');
    expect(error.details.map((d: { path: string }) => d.path)).toEqual(expect.arrayContaining(['/recipient']));
  });

  it('names the metadata key that is too long, and takes one of 64 characters', async () => {
    const long = 'k'.repeat(65);
    const refused = await app.inject(withBody('POST', '/scheduled', newMessage({ metadata: { [long]: 1 } })));
    expect(refused.json().details).toEqual([{ path: `/metadata/${long}`, message: 'as a key must NOT have more than 64 characters' }]);
    const ok = await app.inject(withBody('POST', '/scheduled', newMessage({ metadata: { ['k'.repeat(64)]: 1 } })));
    expect(ok.statusCode).toBe(201);
  });

  it('answers an over-long id like any malformed one', async () => {
    const response = await app.inject({ url: `/scheduled/${'x'.repeat(5000)}`, headers: auth });
    expect(response.json()).toEqual({ statusCode: 404, code: 'MESSAGE_NOT_FOUND', error: 'Not Found', message: `Message ${'x'.repeat(64)} not found` });
  });

  it('counts message length in characters as users see them: 4096 emoji pass, 4097 fail', async () => {
    const ok = await app.inject(withBody('POST', '/scheduled', newMessage({ message: emoji(4096) })));
    expect(ok.statusCode).toBe(201);
    expect(ok.json().data.message).toBe(emoji(4096));
    const cjk = await app.inject(withBody('POST', '/scheduled', newMessage({ message: '\u4f60'.repeat(4096) })));
    expect(cjk.statusCode).toBe(201);
    const tooLong = await app.inject(withBody('POST', '/scheduled', newMessage({ message: `${emoji(4096)}x` })));
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json().details[0].path).toBe('/message');
  });

  it('keeps serving after all of it', async () => {
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
    expect((await app.inject({ url: `/scheduled/${scheduledId}`, headers: auth })).statusCode).toBe(200);
  });
});
