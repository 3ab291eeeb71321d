import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Channel } from '@punctual/shared';
import { FakeHttpServer, type RecordedRequest } from '../../../test-support/fake-http.js';
import { deletePrefix, uniquePrefix } from '../../../test-support/redis.js';
import { TestMessages } from '../../../test-support/messages.js';
import { startTestWorker } from '../../../test-support/apps.js';
import { ProviderError, type ChannelProvider } from '../src/channels/provider.js';

const prefix = uniquePrefix('callback-secrets');
const SECRETS = { acme: 'whsec_acme_1111', globex: 'whsec_globex_2222', fallback: 'whsec_default_3333' };

/** Accepts every message except to recipients ending in 0, which it refuses for good. */
const provider: ChannelProvider = {
  name: 'test provider',
  async send(message) {
    if (message.recipient.endsWith('0')) throw new ProviderError('21211: invalid number', { transient: false });
    return { providerMessageId: `SM${message.id}` };
  },
};

let receiver: FakeHttpServer;
let messages: TestMessages;
let worker: Awaited<ReturnType<typeof startTestWorker>>;

beforeAll(async () => {
  receiver = await FakeHttpServer.start(() => ({ status: 204 }));
  messages = await TestMessages.create(prefix);
  worker = await startTestWorker(
    prefix,
    {
      CALLBACK_ALLOW_PRIVATE: 'true',
      CALLBACK_SECRET: SECRETS.fallback,
      CALLBACK_SECRETS: `acme:${SECRETS.acme},globex:${SECRETS.globex}`,
    },
    { channels: new Map<Channel, ChannelProvider>([['sms', provider], ['whatsapp', provider]]) },
  );
});
afterAll(async () => {
  await worker.close();
  await messages.close();
  await receiver.close();
  await deletePrefix(prefix);
});

/** Schedules a message due now for `tenant`, with a callbackUrl naming the tenant. */
async function schedule(tenant: string, recipient: string): Promise<string> {
  return (await messages.schedule({ recipient, message: 'signed', callbackUrl: `${receiver.url}/${tenant}` }, tenant)).id;
}

function signedWith(request: RecordedRequest, secret: string): boolean {
  const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(request.headers['x-signature'])) ?? [];
  return v1 !== undefined && createHmac('sha256', secret).update(`${t}.${request.body}`).digest('hex') === v1;
}

it("signs each tenant's callbacks with its own secret, CALLBACK_SECRET for the others, never another tenant's", async () => {
  const sent = [
    { tenant: 'acme', id: await schedule('acme', '5511999999991'), secret: SECRETS.acme },
    { tenant: 'acme', id: await schedule('acme', '5511999999990'), secret: SECRETS.acme },
    { tenant: 'globex', id: await schedule('globex', '5511999999992'), secret: SECRETS.globex },
    { tenant: 'globex', id: await schedule('globex', '5511999999980'), secret: SECRETS.globex },
    { tenant: 'initech', id: await schedule('initech', '5511999999993'), secret: SECRETS.fallback },
  ];
  await receiver.waitForRequests(sent.length);
  for (const { tenant, id, secret } of sent) {
    const request = receiver.requests.find((r) => JSON.parse(r.body).data.id === id)!;
    expect(request.path).toBe(`/${tenant}`);
    expect(JSON.parse(request.body).event).toBe(id === sent[1]!.id || id === sent[3]!.id ? 'messageFailed' : 'messageDelivered');
    expect(signedWith(request, secret)).toBe(true);
    for (const other of Object.values(SECRETS).filter((s) => s !== secret)) expect(signedWith(request, other)).toBe(false);
  }
});
