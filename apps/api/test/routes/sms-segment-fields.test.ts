import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildTestApp } from '../../../../test-support/apps.js';
import { deletePrefix, uniquePrefix } from '../../../../test-support/redis.js';

const prefix = uniquePrefix('api-segments');
let app: FastifyInstance;

beforeAll(async () => {
  app = await buildTestApp(prefix);
});
afterAll(async () => {
  await app.close();
  await deletePrefix(prefix);
});

const inAnHour = () => Date.now() + 3_600_000;

async function post(payload: Record<string, unknown>) {
  const res = await app.inject({ method: 'POST', url: '/scheduled', payload: { recipient: '+15551234567', sendAt: inAnHour(), ...payload } });
  expect(res.statusCode).toBe(201);
  return res.json().data;
}

describe('encoding and segments in the API', () => {
  it('shows them on SMS records from POST, GET and PUT, and never on WhatsApp ones', async () => {
    const sms = await post({ channel: 'sms', message: `${'a'.repeat(159)}€` });
    expect(sms).toMatchObject({ encoding: 'GSM-7', segments: 2 });
    expect((await app.inject({ url: `/scheduled/${sms.id}` })).json().data).toMatchObject({ encoding: 'GSM-7', segments: 2 });

    const put = await app.inject({ method: 'PUT', url: `/scheduled/${sms.id}`, payload: { message: 'Olá 👋' } });
    expect(put.json().data).toMatchObject({ encoding: 'UCS-2', segments: 1 });
    const moved = (await app.inject({ method: 'PUT', url: `/scheduled/${sms.id}`, payload: { channel: 'whatsapp' } })).json().data;
    expect(moved).not.toHaveProperty('encoding');
    expect(moved).not.toHaveProperty('segments');

    const whatsapp = await post({ channel: 'whatsapp', message: 'hello' });
    expect(whatsapp).not.toHaveProperty('segments');
    const listed = (await app.inject({ url: '/scheduled?channel=sms' })).json().messages;
    expect(listed).toEqual([]);
  });

  it('describes them in the OpenAPI schema of the record', async () => {
    const spec = (await app.inject({ url: '/openapi.json' })).json();
    const record = spec.paths['/scheduled'].post.responses['201'].content['application/json'].schema.properties.data;
    expect(record.properties.encoding).toMatchObject({ type: 'string', enum: ['GSM-7', 'UCS-2'], description: expect.stringContaining('GSM 03.38') });
    expect(record.properties.segments).toMatchObject({ type: 'integer', description: expect.stringContaining('153 per part') });
    expect(record.properties.throttledAt).toMatchObject({ format: 'date-time', description: expect.stringContaining('THROTTLE_MAX_MS') });
    expect(record.required).not.toContain('segments');
  });
});
