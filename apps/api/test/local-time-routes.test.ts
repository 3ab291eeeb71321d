import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { buildTestApi, fingerprint, newMessage } from './helpers.js';

const prefix = uniquePrefix('api-local-time');
let app: FastifyInstance;
let redis: Redis;

beforeAll(async () => {
  redis = new Redis(redisUrl());
  app = await buildTestApi(prefix);
});
afterAll(async () => {
  await app.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

/** Expected instants are written with their offset, as the local clock reads them. */
const at = (iso: string) => Date.parse(iso);
const NIGHT = { start: '21:00', end: '08:00' };

async function create(over: Record<string, unknown>) {
  const res = await app.inject({ method: 'POST', url: '/scheduled', payload: newMessage(over) });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data;
}

async function put(id: string, payload: Record<string, unknown>, headers: Record<string, string> = {}) {
  return app.inject({ method: 'PUT', url: `/scheduled/${id}`, payload, headers });
}

describe('a local sendAt read in timeZone', () => {
  it.each([
    ['America/New_York', 'an ordinary day', '2027-06-10T09:00:00', '2027-06-10T09:00:00-04:00'],
    ['America/New_York', 'the spring gap: forward by the gap', '2027-03-14T02:30:00', '2027-03-14T03:30:00-04:00'],
    ['America/New_York', 'the autumn overlap: the earlier', '2027-11-07T01:30:00', '2027-11-07T01:30:00-04:00'],
    ['Europe/Berlin', 'an ordinary day', '2027-06-10T09:00:00', '2027-06-10T09:00:00+02:00'],
    ['Europe/Berlin', 'the spring gap: forward by the gap', '2027-03-28T02:30:00', '2027-03-28T03:30:00+02:00'],
    ['Europe/Berlin', 'the autumn overlap: the earlier', '2027-10-31T02:30:00', '2027-10-31T02:30:00+02:00'],
  ])('%s, %s', async (timeZone, _case, local, expected) => {
    const record = await create({ sendAt: local, timeZone });
    expect(record.sendAt).toBe(at(expected));
    expect(record.timeZone).toBe(timeZone);
    expect(record.requestedSendAt).toBeUndefined();
  });

  it('keeps the zone as sent, and reads offset forms as before', async () => {
    expect((await create({ sendAt: '2027-06-10T09:00:00', timeZone: 'US/Eastern' })).timeZone).toBe('US/Eastern');
    const withOffset = await create({ sendAt: '2027-06-10T09:00:00-03:00', timeZone: 'Europe/Berlin' });
    expect(withOffset.sendAt).toBe(at('2027-06-10T12:00:00Z'));
  });

  it('gives two zones the same local time at their own instants (one batch)', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/scheduled/batch',
      payload: { messages: ['America/New_York', 'Asia/Tokyo'].map((timeZone) => newMessage({ sendAt: '2027-06-10T09:00:00', timeZone })) },
    });
    const ids = res.json().results.map((r: { id: string }) => r.id);
    const records = await Promise.all(ids.map(async (id: string) => (await app.inject({ url: `/scheduled/${id}` })).json().data));
    expect(records.map((r) => r.sendAt)).toEqual([at('2027-06-10T09:00:00-04:00'), at('2027-06-10T09:00:00+09:00')]);
  });

  it.each([
    ['a local time without timeZone', { sendAt: '2027-06-10T09:00:00' }, '/sendAt'],
    ['an unknown zone', { sendAt: '2027-06-10T09:00:00', timeZone: 'Mars/Olympus_Mons' }, '/timeZone'],
    ['an offset as a zone', { sendAt: 1_900_000_000_000, timeZone: '+01:00' }, '/timeZone'],
    ['a day that does not exist', { sendAt: '2027-02-30T09:00:00', timeZone: 'America/New_York' }, '/sendAt'],
    ['more than a year ahead', { sendAt: `${new Date().getUTCFullYear() + 2}-01-10T09:00:00`, timeZone: 'UTC' }, '/sendAt'],
    ['quiet hours without timeZone', { quietHours: NIGHT }, '/quietHours'],
    ['an empty window', { quietHours: { start: '08:00', end: '08:00' }, timeZone: 'UTC' }, '/quietHours'],
    ['a window end that is no time', { quietHours: { start: '21:00', end: '24:00' }, timeZone: 'UTC' }, '/quietHours/end'],
  ])('refuses %s with a 400 and stores nothing', async (_case, over, path) => {
    const before = await fingerprint(redis, prefix);
    const res = await app.inject({ method: 'POST', url: '/scheduled', payload: newMessage(over) });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'VALIDATION_ERROR', details: [expect.objectContaining({ path })] });
    expect(await fingerprint(redis, prefix)).toEqual(before);
  });
});

describe('quiet hours', () => {
  it.each([
    ['late evening: to the next morning', '2027-06-10T23:30:00', '2027-06-11T08:00:00-04:00'],
    ['at the start', '2027-06-10T21:00:00', '2027-06-11T08:00:00-04:00'],
    ['after midnight: to the same morning', '2027-06-11T03:00:00', '2027-06-11T08:00:00-04:00'],
    ['a minute before the end', '2027-06-11T07:59:00', '2027-06-11T08:00:00-04:00'],
  ])('a window across midnight, %s', async (_case, local, expected) => {
    const record = await create({ sendAt: local, timeZone: 'America/New_York', quietHours: NIGHT });
    expect(record.sendAt).toBe(at(expected));
    expect(record.requestedSendAt).toBe(at(`${local}-04:00`));
    expect(record.quietHours).toEqual(NIGHT);
  });

  it.each([
    ['at the end', '2027-06-11T08:00:00'],
    ['a minute before the start', '2027-06-10T20:59:00'],
  ])('a window across midnight, %s: unchanged', async (_case, local) => {
    const record = await create({ sendAt: local, timeZone: 'America/New_York', quietHours: NIGHT });
    expect(record.sendAt).toBe(at(`${local}-04:00`));
    expect(record.requestedSendAt).toBeUndefined();
  });

  it('applies to epoch and offset send times too, read in the zone', async () => {
    const record = await create({ sendAt: at('2027-06-11T03:30:00Z'), timeZone: 'America/New_York', quietHours: NIGHT });
    expect(record.sendAt).toBe(at('2027-06-11T08:00:00-04:00'));
    expect(record.requestedSendAt).toBe(at('2027-06-11T03:30:00Z'));
  });

  it('a time already past, while now is inside the window: held until the window ends', async () => {
    const now = Date.now();
    const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
    const window = { start: hhmm(now - 3_600_000), end: hhmm(now + 3_600_000) };
    const asked = now - 60_000;
    const record = await create({ sendAt: asked, timeZone: 'UTC', quietHours: window });
    expect(record.requestedSendAt).toBe(asked);
    expect(hhmm(record.sendAt)).toBe(window.end);
    expect(record.sendAt).toBeGreaterThan(now);
    expect(record.sendAt).toBeLessThanOrEqual(now + 3_600_000);
  });

  it('a PUT that changes the time, the window or the zone is checked again', async () => {
    const zone = 'America/New_York';
    const { id } = await create({ sendAt: '2027-06-10T12:00:00', timeZone: zone, quietHours: NIGHT });
    const read = async () => (await app.inject({ url: `/scheduled/${id}` })).json().data;

    // a local time, read in the record's zone, into the window
    let res = await put(id, { sendAt: '2027-06-10T23:00:00' });
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toMatchObject({ sendAt: at('2027-06-11T08:00:00-04:00'), requestedSendAt: at('2027-06-10T23:00:00-04:00') });
    // a plain epoch time out of the window: not moved, the asked time forgotten
    res = await put(id, { sendAt: at('2027-06-10T16:00:00Z') });
    expect(res.json().data.sendAt).toBe(at('2027-06-10T16:00:00Z'));
    expect(res.json().data.requestedSendAt).toBeUndefined();
    // a plain epoch time into the window: moved
    res = await put(id, { sendAt: at('2027-06-11T02:00:00Z') });
    expect(res.json().data).toMatchObject({ sendAt: at('2027-06-11T08:00:00-04:00'), requestedSendAt: at('2027-06-11T02:00:00Z') });
    // no window any more: back to the asked time
    res = await put(id, { quietHours: null });
    expect(res.json().data.sendAt).toBe(at('2027-06-11T02:00:00Z'));
    expect(res.json().data.requestedSendAt).toBeUndefined();
    expect(res.json().data.quietHours).toBeUndefined();
    // a window again
    res = await put(id, { quietHours: NIGHT });
    expect(res.json().data.sendAt).toBe(at('2027-06-11T08:00:00-04:00'));
    // another zone: the asked time (04:00 in Berlin) is in Berlin's night
    res = await put(id, { timeZone: 'Europe/Berlin' });
    expect(res.json().data).toMatchObject({ timeZone: 'Europe/Berlin', sendAt: at('2027-06-11T08:00:00+02:00'), requestedSendAt: at('2027-06-11T02:00:00Z') });
    // a change of text keeps the time
    res = await put(id, { message: 'changed' });
    expect(res.json().data.sendAt).toBe(at('2027-06-11T08:00:00+02:00'));
    // If-Match still holds on the path that reads the record first
    const { version } = await read();
    expect((await put(id, { sendAt: '2027-06-10T12:00:00' }, { 'if-match': String(version - 1) })).statusCode).toBe(412);
    expect((await put(id, { sendAt: '2027-06-10T12:00:00' }, { 'if-match': String(version) })).json().data.sendAt).toBe(at('2027-06-10T12:00:00+02:00'));
  });

  it('PUT refuses a window with no zone, an unknown zone, a local time with no zone, and changes nothing', async () => {
    const { id } = await create({ sendAt: at('2027-06-10T12:00:00Z') });
    const before = await fingerprint(redis, prefix);
    for (const [payload, path] of [
      [{ quietHours: NIGHT }, '/quietHours'],
      [{ timeZone: 'Nope/Nope' }, '/timeZone'],
      [{ sendAt: '2027-06-10T09:00:00' }, '/sendAt'],
    ] as const) {
      const res = await put(id, payload);
      expect(res.statusCode).toBe(400);
      expect(res.json().details[0].path).toBe(path);
    }
    expect(await fingerprint(redis, prefix)).toEqual(before);
    expect((await put('01KD0Q7Y5R8N3M2X4Z6B9C1D2E', { timeZone: 'UTC' })).statusCode).toBe(404);
  });

  it('concurrent PUTs on a record with a window each end in a record a single PUT would make', async () => {
    const zone = 'America/New_York';
    const { id } = await create({ sendAt: '2027-06-10T12:00:00', timeZone: zone, quietHours: NIGHT });
    const times = ['2027-06-10T22:00:00', '2027-06-10T13:00:00', '2027-06-11T01:00:00', '2027-06-10T15:00:00'];
    const answers = await Promise.all(times.map((sendAt) => put(id, { sendAt })));
    expect(answers.map((r) => r.statusCode)).toEqual([200, 200, 200, 200]);
    const record = (await app.inject({ url: `/scheduled/${id}` })).json().data;
    const asked = record.requestedSendAt ?? record.sendAt;
    const inWindow = [at('2027-06-10T22:00:00-04:00'), at('2027-06-11T01:00:00-04:00')].includes(asked);
    expect(record.sendAt).toBe(inWindow ? at('2027-06-11T08:00:00-04:00') : asked);
  });
});
