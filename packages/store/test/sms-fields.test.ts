import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Keyspace, Scheduler, smsFieldsOf, storedSegments, type NewMessage } from '../src/index.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';

const prefix = uniquePrefix('sms-fields');
let redis: Redis;
let scheduler: Scheduler;

beforeAll(async () => {
  redis = new Redis(redisUrl());
  scheduler = await Scheduler.create(redis, { keyspace: new Keyspace({ prefix, partitions: 2 }), eventsMaxLen: 10_000 });
});
afterAll(async () => {
  await scheduler.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

async function schedule(over: Partial<NewMessage>) {
  const now = Date.now();
  const result = await scheduler.schedule('default', { recipient: '5511999999999', channel: 'sms', sendAt: now + 60_000, message: 'hello', ...over }, now);
  if (!result.ok) throw new Error(result.reason);
  return result.record;
}

async function update(id: string, patch: Parameters<Scheduler['update']>[2]) {
  const result = await scheduler.update('default', id, patch, Date.now());
  if (!result.ok) throw new Error(result.reason);
  const stored = await scheduler.store.get('default', id);
  expect(stored).toEqual(result.record);
  return result.record;
}

const gsm160 = 'a'.repeat(160);

describe('encoding and segments of SMS records', () => {
  it.each([
    ['160 GSM characters', gsm160, 'GSM-7', 1],
    ['161 GSM characters', `${gsm160}a`, 'GSM-7', 2],
    ['€ counting two: 159 + € is 161 septets', `${'a'.repeat(159)}€`, 'GSM-7', 2],
    ['€ counting two: 158 + € is 160 septets', `${'a'.repeat(158)}€`, 'GSM-7', 1],
    ['an emoji makes it UCS-2, two code units: 68 + 😀 is 70', `${'a'.repeat(68)}😀`, 'UCS-2', 1],
    ['an emoji makes it UCS-2, two code units: 69 + 😀 is 71', `${'a'.repeat(69)}😀`, 'UCS-2', 2],
  ])('computes them when the message is scheduled: %s', async (_, message, encoding, segments) => {
    const record = await schedule({ message });
    expect(record).toMatchObject({ encoding, segments });
    expect(await scheduler.store.get('default', record.id)).toMatchObject({ encoding, segments });
  });

  it('stores none on WhatsApp messages and templates', async () => {
    const text = await schedule({ channel: 'whatsapp', message: 'hello' });
    const template = await schedule({ channel: 'whatsapp', message: undefined, template: { name: 'reminder', language: 'en_US' } });
    for (const record of [text, template]) {
      expect(record).not.toHaveProperty('encoding');
      expect(record).not.toHaveProperty('segments');
    }
  });

  it('counts again when a PUT changes the text or the channel', async () => {
    const m = await schedule({ message: 'hello' });
    expect(await update(m.id, { message: `${gsm160}😀` })).toMatchObject({ encoding: 'UCS-2', segments: 3 });
    expect(await update(m.id, { sendAt: Date.now() + 120_000 })).toMatchObject({ encoding: 'UCS-2', segments: 3 });
    const whatsapp = await update(m.id, { channel: 'whatsapp' });
    expect(whatsapp).not.toHaveProperty('encoding');
    expect(whatsapp).not.toHaveProperty('segments');
    // moved back to SMS with its stored text: that text is counted
    expect(await update(m.id, { channel: 'sms' })).toMatchObject({ encoding: 'UCS-2', segments: 3 });
    expect(await update(m.id, { channel: 'sms', message: '{curly}' })).toMatchObject({ encoding: 'GSM-7', segments: 1 });
  });

  it('drops them when a WhatsApp message gets a new text, or a template replaces the text', async () => {
    const m = await schedule({ channel: 'whatsapp', message: 'hello' });
    const text = await update(m.id, { message: 'new text' });
    expect(text).not.toHaveProperty('segments');
    const template = await update(m.id, { template: { name: 'reminder', language: 'en_US' }, message: null });
    expect(template).not.toHaveProperty('segments');
    expect(template).not.toHaveProperty('encoding');
  });

  it('keeps one place of computation, and counts records stored before it from their text', () => {
    expect(smsFieldsOf('sms', 'hello')).toEqual({ encoding: 'GSM-7', segments: 1 });
    expect(smsFieldsOf('whatsapp', 'hello')).toBeUndefined();
    expect(smsFieldsOf('sms', undefined)).toBeUndefined();
    expect(storedSegments({ segments: '4', message: 'x' })).toBe(4);
    expect(storedSegments({ message: `${gsm160}a` })).toBe(2);
  });
});
