import { expect, it } from 'vitest';
import { useStack } from '../../test-support/apps.js';

const DAY = 86_400_000;
const stack = useStack('fault-clock');

const post = (sendAt: number | string) =>
  stack.app.inject({ method: 'POST', url: '/scheduled', payload: { recipient: '5511999999999', message: 'Hi', sendAt, channel: 'sms' } });

it('now, an hour ago and a past ISO time with an offset are delivered at once', async () => {
  const answers = await Promise.all([post(Date.now()), post(Date.now() - 3_600_000), post('2020-01-01T09:00:00-03:00')]);
  expect(answers.map((r) => r.statusCode)).toEqual([201, 201, 201]);
  for (const res of answers) {
    const { id } = res.json();
    await stack.feed.waitFor('messageDelivered', id);
    expect(stack.feed.events(id)).toEqual(['messageScheduled', 'messageSending', 'messageDelivered']);
  }
});

it('364 days ahead is scheduled, listed and not delivered; 366 days ahead is refused', async () => {
  const sendAt = Date.now() + 364 * DAY;
  const res = await post(sendAt);
  expect(res.statusCode).toBe(201);
  const { id } = res.json();
  expect(res.json().data).toMatchObject({ status: 'scheduled', sendAt });
  const job = await stack.app.deliveries.of(id).getJob(id);
  expect(await job!.getState()).toBe('delayed');
  // due at sendAt, or a millisecond after (the delay is measured when BullMQ stamps the job)
  expect(job!.timestamp + job!.delay - sendAt).toBeGreaterThanOrEqual(0);
  expect(job!.timestamp + job!.delay - sendAt).toBeLessThan(1000);

  const tooFar = await post(Date.now() + 366 * DAY);
  expect(tooFar.statusCode).toBe(400);
  expect(tooFar.json().code).toBe('VALIDATION_ERROR');

  // a message due now goes through first: the far one was left alone meanwhile
  const sentinel = (await post(Date.now())).json().id;
  await stack.feed.waitFor('messageDelivered', sentinel);
  expect((await stack.app.inject({ url: `/scheduled/${id}` })).json().data.status).toBe('scheduled');
  const listed = (await stack.app.inject({ url: '/scheduled?limit=500' })).json().messages.map((m: { id: string }) => m.id);
  expect(listed).toEqual([id]);
  expect(stack.feed.events(id)).toEqual(['messageScheduled']);
});
