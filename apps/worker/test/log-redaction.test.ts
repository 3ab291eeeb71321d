import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { Agent } from 'undici';
import type { Channel } from '@punctual/shared';
import { Keyspace } from '@punctual/store';
import { FakeHttpServer } from '../../../test-support/fake-http.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { TestMessages } from '../../../test-support/messages.js';
import { startTestWorker } from '../../../test-support/apps.js';
import { twilioEnv, twilioError } from '../../../test-support/providers.js';
import { loadConfig } from '../src/config.js';
import { createChannelRegistry } from '../src/channels/registry.js';
import { createHttpAgent } from '../src/http-client.js';
import type { ChannelProvider } from '../src/channels/provider.js';
import { privateValuesOf, redactText, serializeError, withSafeErrors } from '../src/log-redaction.js';

const NUMBER = '5511987654321';
const BODY = 'Secret body Ana, see you at 4pm';

/** A pino logger whose lines land in `lines`, parsed. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) {
          raw.push(line);
          lines.push(JSON.parse(line));
        }
        done();
      },
    }),
  );
  return { log, lines, raw };
}

describe('redactText', () => {
  it('replaces phone numbers, the message text and its template variables, whole or quoted', () => {
    const values = privateValuesOf({ message: BODY });
    expect(redactText(`The 'To' number +${NUMBER} is not a valid phone number.`, values)).toBe("The 'To' number [number] is not a valid phone number.");
    expect(redactText(`Body '${BODY.slice(0, 15)}' rejected; "${BODY}" too`, values)).toBe("Body '[redacted]' rejected; \"[redacted]\" too");
    expect(redactText(`to whatsapp:+${NUMBER}`)).toBe('to whatsapp:[number]');
    const template = privateValuesOf({ template: { name: 'appt', language: 'en_US', variables: ['Ana Souza', 'Rua X 12'] } });
    expect(redactText('Parameter “Ana Souza” is invalid for Rua X 12 (#131008)', template)).toBe('Parameter “[redacted]” is invalid for [redacted] (#131008)');
    expect(redactText("Param text['body'] is required", values)).toBe("Param text['body'] is required");
    expect(privateValuesOf({ template: { name: 'appt', language: 'en_US' } })).toEqual([]);
  });
});

describe('serializeError', () => {
  let redis: Redis;
  const key = `${uniquePrefix('log-redaction')}:string`;
  beforeAll(async () => {
    redis = new Redis(redisUrl());
    await redis.set(key, 'x');
  });
  afterAll(async () => {
    await redis.del(key);
    redis.disconnect();
  });

  it("drops a Redis error's command and its arguments, and keeps what went wrong", async () => {
    const err = await redis.hset(key, 'recipient', `+${NUMBER}`, 'message', BODY).catch((e: unknown) => e);
    expect(JSON.stringify((err as { command: unknown }).command)).toContain(NUMBER);
    const { log, raw, lines } = capturingLogger();
    withSafeErrors(pino({ level: 'silent' })).error({ err }, 'not this logger');
    withSafeErrors(log).error({ err }, 'redis failed');
    expect(raw).toHaveLength(1);
    expect(raw[0]).not.toContain(NUMBER);
    expect(raw[0]).not.toContain(BODY);
    expect(lines[0]!.err).toMatchObject({ type: 'ReplyError', message: expect.stringMatching(/^WRONGTYPE/) });
    expect(lines[0]!.err).not.toHaveProperty('command');
    expect(serializeError(new Error(`outer +${NUMBER}`, { cause: Object.assign(new Error('inner'), { code: 'ECONNRESET', args: [BODY] }) }))).toEqual({
      type: 'Error',
      message: 'outer [number]',
      stack: expect.stringMatching(/^Error: outer \[number\]\n/),
      cause: { type: 'Error', message: 'inner', stack: expect.any(String), code: 'ECONNRESET' },
    });
  });
});

describe("the worker's logs through failures that quote a number and a message", () => {
  const prefix = uniquePrefix('log-redaction-worker');
  const keyspace = new Keyspace({ prefix, partitions: 1 });
  const captured = capturingLogger();
  let twilio: FakeHttpServer;
  let receiver: FakeHttpServer;
  let agent: Agent;
  let messages: TestMessages;
  let redis: Redis;
  let worker: Awaited<ReturnType<typeof startTestWorker>>;

  beforeAll(async () => {
    twilio = await FakeHttpServer.start(() => twilioError(400, 21211, `The 'To' number +${NUMBER} is not a valid phone number. Body '${BODY.slice(0, 15)}' refused`));
    // echoes what it got, as a careless receiver might, and refuses it
    receiver = await FakeHttpServer.start((request) => ({ status: 500, body: request.body }));
    agent = createHttpAgent({ timeoutMs: 5000 });
    messages = await TestMessages.create(prefix);
    redis = new Redis(redisUrl());
    /**
     * WhatsApp: "accepted", but the record is clobbered meanwhile, so recording the delivery
     * fails in Redis with an error whose command arguments hold the provider's answer.
     */
    const clobbering: ChannelProvider = {
      name: 'clobbering provider',
      async send(message) {
        await redis.del(keyspace.record(message.id));
        await redis.set(keyspace.record(message.id), 'clobbered');
        return { providerMessageId: `${message.recipient} ${message.message}` };
      },
    };
    const sms = createChannelRegistry(loadConfig(twilioEnv(twilio.url)), agent).get('sms')!;
    // suppression repair runs this often: the second test waits for a failed run
    worker = await startTestWorker(prefix, { CALLBACK_ALLOW_PRIVATE: 'true', CALLBACK_TIMEOUT_MS: '2000', RECONCILE_INTERVAL_MS: '500' }, {
      channels: new Map<Channel, ChannelProvider>([['sms', sms], ['whatsapp', clobbering]]),
      log: captured.log,
    });
  });
  afterAll(async () => {
    await worker.close();
    await messages.close();
    redis.disconnect();
    await agent.close();
    await twilio.close();
    await receiver.close();
    await deletePrefix(prefix);
  });

  /** Resolves with the first captured line with this `msg`. */
  async function line(msg: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = captured.lines.find((l) => l.msg === msg);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no "${msg}" line within ${timeoutMs} ms: ${captured.raw.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it('never carries the recipient or the text: provider errors, callback failures, job failures', async () => {
    await messages.schedule({ recipient: NUMBER, message: BODY, channel: 'sms', callbackUrl: `${receiver.url}/hook` });
    await messages.schedule({ recipient: NUMBER, message: BODY, channel: 'whatsapp' });

    expect((await line('delivery failed')).error).toBe("21211: The 'To' number [number] is not a valid phone number. Body '[redacted]' refused");
    expect(await line('callback will be retried')).toMatchObject({ error: 'callback answered HTTP 500' });
    // the clobbered record cannot be decoded: the deliver script's error, with its arguments dropped
    expect(await line('delivery job failed unexpectedly')).toMatchObject({ err: { type: 'ReplyError', message: expect.stringMatching(/^ERR .*invalid token/) } });
    for (const text of captured.raw) {
      expect(text).not.toContain(NUMBER);
      expect(text).not.toContain(BODY.slice(0, 15));
    }
  });

  it('never carries the recipient when storing a provider opt-out, or repairing suppressions, fails in Redis', async () => {
    // a journal of the wrong type fails every suppression change, its arguments holding the recipient
    await redis.set(keyspace.suppressionJournal(), 'clobbered');
    twilio.respondWith(() => twilioError(400, 21610, 'Attempt to send to unsubscribed recipient'));
    await messages.schedule({ recipient: NUMBER, message: BODY, channel: 'sms' });

    const redisError = { err: { type: 'ReplyError', message: expect.stringMatching(/^WRONGTYPE/) } };
    expect(await line('provider reports the recipient unsubscribed, but the opt-out was not stored')).toMatchObject(redisError);
    expect(await line('suppression repair failed; trying again later')).toMatchObject(redisError);
    for (const text of captured.raw) {
      expect(text).not.toContain(NUMBER);
      expect(text).not.toContain(BODY.slice(0, 15));
    }
  });
});
