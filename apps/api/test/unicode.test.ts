import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { KEY_A, TWO_TENANTS, bearer, buildTestApi, fingerprint, newMessage } from './helpers.js';

const prefix = uniquePrefix('unicode');
let app: FastifyInstance;
let redis: Redis;
let smsId: string;
let whatsappId: string;

const LONE = '\ud800';
const headers = { ...bearer(KEY_A), 'content-type': 'application/json' };
// JSON.stringify writes a lone surrogate as the escape `\ud800`, as a hostile client would
const send = (method: 'POST' | 'PUT', url: string, body: unknown) => app.inject({ method, url, headers, payload: JSON.stringify(body) });

beforeAll(async () => {
  redis = new Redis(redisUrl());
  app = await buildTestApi(prefix, { API_KEYS: TWO_TENANTS, RATE_LIMIT_MAX: '0' });
  smsId = (await send('POST', '/scheduled', newMessage())).json().id;
  whatsappId = (await send('POST', '/scheduled', newMessage({ channel: 'whatsapp', message: undefined, template: { name: 'hello', language: 'en_US' } }))).json().id;
});
afterAll(async () => {
  await app.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

const template = (over: Record<string, unknown>) => ({ name: 'hello', language: 'en_US', variables: ['a'], ...over });

/** [name, the fields that carry the lone surrogate, the path the 400 names] */
const FIELDS: [string, Record<string, unknown>, string][] = [
  ['message', { message: `x${LONE}` }, '/message'],
  ['message (low surrogate alone)', { message: 'x\udc00y' }, '/message'],
  ['recipient', { recipient: `551199999999${LONE}` }, '/recipient'],
  ['a metadata value', { metadata: { note: `a${LONE}` } }, '/metadata/note'],
  ['a metadata key', { metadata: { [`k${LONE}`]: 'v' } }, '/metadata/k\ufffd'],
  ['a template name', { channel: 'whatsapp', message: undefined, template: template({ name: `n${LONE}` }) }, '/template/name'],
  ['a template variable', { channel: 'whatsapp', message: undefined, template: template({ variables: ['ok', `v${LONE}`] }) }, '/template/variables/1'],
  ['callbackUrl', { callbackUrl: `https://example.com/${LONE}` }, '/callbackUrl'],
  ['an unknown field name', { [`x${LONE}`]: 1 }, '/x\ufffd'],
];

describe('text that is not well-formed Unicode', () => {
  it.each(FIELDS)('is a 400 naming the field when it is in %s, on POST and PUT, and stores nothing', async (_name, fields, path) => {
    const before = await fingerprint(redis, prefix);
    const put = (fields as { template?: unknown }).template ? whatsappId : smsId;
    const { channel: _channel, ...changes } = fields;
    for (const response of [await send('POST', '/scheduled', newMessage(fields)), await send('PUT', `/scheduled/${put}`, changes)]) {
      expect(response.statusCode, response.body).toBe(400);
      expect(response.json()).toMatchObject({
        statusCode: 400,
        code: 'VALIDATION_ERROR',
        error: 'Bad Request',
        details: [{ path, message: expect.stringContaining('well-formed') }],
      });
    }
    expect(await fingerprint(redis, prefix)).toEqual(before);
  });

  it('refuses only the batch items that carry it, each naming its field as a single POST would', async () => {
    const response = await send('POST', '/scheduled/batch', { messages: [newMessage(), ...FIELDS.map(([, fields]) => newMessage(fields))] });
    expect(response.statusCode, response.body).toBe(200);
    const { batchId, accepted, rejected, results } = response.json();
    expect({ accepted, rejected }).toEqual({ accepted: 1, rejected: FIELDS.length });
    expect(results[0]).toMatchObject({ index: 0, status: 201 });
    FIELDS.forEach(([, , path], i) =>
      expect(results[i + 1], path).toMatchObject({
        index: i + 1,
        status: 400,
        error: { statusCode: 400, code: 'VALIDATION_ERROR', details: [{ path, message: expect.stringContaining('well-formed') }] },
      }),
    );
    // the good item alone is stored
    const listed = (await app.inject({ url: `/scheduled?batchId=${batchId}`, headers: bearer(KEY_A) })).json();
    expect(listed.messages.map((m: { id: string }) => m.id)).toEqual([results[0].id]);
  });

  it.each([
    ['bytes that are not UTF-8', Buffer.from([0x61, 0xff, 0xfe, 0x62])],
    ['a surrogate encoded as UTF-8 bytes (CESU-8)', Buffer.from([0xed, 0xa0, 0x80])],
    ['a truncated sequence', Buffer.from([0xe2, 0x82])],
  ])('is a 400 when the body carries %s, which decoding would turn into U+FFFD, and stores nothing', async (_name, bytes) => {
    const before = await fingerprint(redis, prefix);
    const [head, tail] = JSON.stringify(newMessage({ message: 'MARK' })).split('MARK') as [string, string];
    const payload = Buffer.concat([Buffer.from(head), bytes, Buffer.from(tail)]);
    for (const [method, url] of [['POST', '/scheduled'], ['PUT', `/scheduled/${smsId}`], ['POST', '/scheduled/batch']] as const) {
      const body = url.endsWith('batch') ? Buffer.concat([Buffer.from('{"messages":['), payload, Buffer.from(']}')]) : payload;
      const response = await app.inject({ method, url, headers, payload: body });
      expect(response.statusCode, response.body).toBe(400);
      expect(response.json()).toMatchObject({ statusCode: 400, code: 'VALIDATION_ERROR', details: [{ path: '/', message: expect.stringContaining('UTF-8') }] });
    }
    expect(await fingerprint(redis, prefix)).toEqual(before);
  });

  it('accepts surrogate pairs (emoji), escaped or not', async () => {
    const escaped = await app.inject({ method: 'POST', url: '/scheduled', headers, payload: JSON.stringify(newMessage({ message: 'hi' })).replace('"hi"', '"\\ud83d\\ude00"') });
    expect(escaped.statusCode).toBe(201);
    expect(escaped.json().data.message).toBe('\u{1F600}');
    const updated = await send('PUT', `/scheduled/${smsId}`, { message: '\u{1F600}', metadata: { '\u{1F600}': '\u{1F600}' } });
    expect(updated.statusCode).toBe(200);
    expect(updated.json().data.metadata).toEqual({ '\u{1F600}': '\u{1F600}' });
  });
});
