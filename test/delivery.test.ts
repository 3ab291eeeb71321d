import { describe, expect, it } from 'vitest';
import { useStack } from '../test-support/apps.js';

const stack = useStack('e2e-delivery');

async function schedule(sendAt: number, over: Record<string, unknown> = {}) {
  const res = await stack.app.inject({
    method: 'POST',
    url: '/scheduled',
    payload: { recipient: '5511999999999', message: 'Hi', sendAt, channel: 'whatsapp', ...over },
  });
  expect(res.statusCode).toBe(201);
  return res.json().data as { id: string; sendAt: number };
}

const get = async (id: string) => (await stack.app.inject({ url: `/messages/${id}` })).json().data;

describe('delivery', () => {
  it('delivers at sendAt and records it', async () => {
    const sendAt = Date.now() + 300;
    const { id } = await schedule(sendAt);
    const delivered = await stack.feed.waitFor('messageDelivered', id);
    const record = await get(id);
    expect(record).toMatchObject({ status: 'delivered', attempts: 1, providerMessageId: expect.stringMatching(/^SIM/) });
    expect(Date.parse(record.deliveredAt)).toBeGreaterThanOrEqual(sendAt);
    expect(delivered.data.status).toBe('delivered');
    expect(stack.feed.events(id)).toEqual(['messageScheduled', 'messageSending', 'messageDelivered']);
    const list = (await stack.app.inject({ url: '/delivered?limit=500' })).json().messages.map((m: { id: string }) => m.id);
    expect(list).toContain(id);
  });

  it('delivers a message whose sendAt is in the past at once', async () => {
    const { id } = await schedule(Date.now() - 60_000);
    await stack.feed.waitFor('messageDelivered', id);
    expect((await get(id)).status).toBe('delivered');
  });

  it('reschedules earlier: delivered once, at the new time', async () => {
    const { id } = await schedule(Date.now() + 3_600_000);
    const newSendAt = Date.now() + 200;
    const put = await stack.app.inject({ method: 'PUT', url: `/scheduled/${id}`, payload: { sendAt: newSendAt } });
    expect(put.statusCode).toBe(200);
    await stack.feed.waitFor('messageDelivered', id);
    const record = await get(id);
    expect(Date.parse(record.deliveredAt)).toBeGreaterThanOrEqual(newSendAt);
    expect(stack.feed.events(id).filter((e) => e === 'messageDelivered')).toHaveLength(1);
  });

  it('reschedules later: not sent at the old time, delivered once at the new one', async () => {
    const oldSendAt = Date.now() + 150;
    const { id } = await schedule(oldSendAt);
    const newSendAt = Date.now() + 900;
    expect((await stack.app.inject({ method: 'PUT', url: `/scheduled/${id}`, payload: { sendAt: newSendAt } })).statusCode).toBe(200);
    await stack.feed.waitFor('messageDelivered', id);
    const record = await get(id);
    expect(Date.parse(record.deliveredAt)).toBeGreaterThanOrEqual(newSendAt);
    expect(stack.feed.events(id)).toEqual(['messageScheduled', 'messageUpdated', 'messageSending', 'messageDelivered']);
  });

  it('a message canceled before it is due is never sent', async () => {
    const sendAt = Date.now() + 250;
    const canceled = await schedule(sendAt);
    const sentinel = await schedule(sendAt + 100);
    expect((await stack.app.inject({ method: 'DELETE', url: `/scheduled/${canceled.id}` })).statusCode).toBe(200);
    await stack.feed.waitFor('messageDelivered', sentinel.id);
    expect((await get(canceled.id)).status).toBe('canceled');
    expect(stack.feed.events(canceled.id)).toEqual(['messageScheduled', 'messageDeleted']);
  });

  it('DELETE racing the due moment: each message ends canceled or delivered, never both', async () => {
    const due = Date.now() + 200;
    const messages = await Promise.all(Array.from({ length: 20 }, () => schedule(due)));
    const answers = await Promise.all(
      messages.map(async ({ id }, i) => {
        // spread the DELETEs around the due moment
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now() - 20 + i * 4)));
        return (await stack.app.inject({ method: 'DELETE', url: `/scheduled/${id}` })).statusCode;
      }),
    );
    for (const [i, { id }] of messages.entries()) {
      if (answers[i] === 200) {
        expect((await get(id)).status).toBe('canceled');
      } else {
        expect(answers[i]).toBe(409);
        await stack.feed.waitFor('messageDelivered', id);
      }
    }
    const sentinel = await schedule(Date.now());
    await stack.feed.waitFor('messageDelivered', sentinel.id);
    for (const [i, { id }] of messages.entries()) {
      const events = stack.feed.events(id);
      if (answers[i] === 200) expect(events).not.toContain('messageSending');
      else expect(events.filter((e) => e === 'messageDelivered')).toHaveLength(1);
      expect(events.includes('messageDeleted') && events.includes('messageDelivered')).toBe(false);
    }
  });

  it('PUT and DELETE after delivery → 409 MESSAGE_NOT_SCHEDULED', async () => {
    const { id } = await schedule(Date.now());
    await stack.feed.waitFor('messageDelivered', id);
    const put = await stack.app.inject({ method: 'PUT', url: `/scheduled/${id}`, payload: { message: 'again' } });
    const del = await stack.app.inject({ method: 'DELETE', url: `/scheduled/${id}` });
    expect([put.statusCode, del.statusCode]).toEqual([409, 409]);
    expect(del.json()).toMatchObject({ code: 'MESSAGE_NOT_SCHEDULED', message: expect.stringContaining('delivered') });
  });
});
