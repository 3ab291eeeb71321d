import { expect, it } from 'vitest';
import { useStack } from '../test-support/apps.js';

const stack = useStack('e2e-failures', { SIMULATED_FAILURE_RATE: '1' });

it('a simulated failure ends failed with lastError, listed under /failed', async () => {
  const res = await stack.app.inject({
    method: 'POST',
    url: '/scheduled',
    payload: { recipient: '+5511999999999', message: 'Hi', sendAt: Date.now(), channel: 'sms' },
  });
  const { id } = res.json();
  await stack.feed.waitFor('messageFailed', id);
  const record = (await stack.app.inject({ url: `/messages/${id}` })).json().data;
  expect(record).toMatchObject({ status: 'failed', attempts: 1, lastError: expect.stringMatching(/^SIMULATED_FAILURE/) });
  expect(record.failedAt).toEqual(expect.any(String));
  expect(record.deliveredAt).toBeUndefined();
  const failed = (await stack.app.inject({ url: '/failed' })).json().messages.map((m: { id: string }) => m.id);
  expect(failed).toEqual([id]);
});
