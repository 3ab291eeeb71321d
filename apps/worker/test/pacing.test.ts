import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Keyspace, PACING_BURST_MS, Pacer, Scheduler, type NewMessage } from '@punctual/store';
import type { MessageRecord } from '@punctual/shared';
import { FakeHttpServer, type FakeAnswer, type RecordedRequest } from '../../../test-support/fake-http.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { startTestWorker } from '../../../test-support/apps.js';
import { DeliveryPacing } from '../src/pacing.js';
import { TWILIO_PATH, WHATSAPP_PHONE_NUMBER_ID, twilioEnv, twilioError, twilioMessage, whatsAppCloudEnv } from '../../../test-support/providers.js';

type Worker = Awaited<ReturnType<typeof startTestWorker>>;
const META_PATH = `/v21.0/${WHATSAPP_PHONE_NUMBER_ID}/messages`;

interface Arrival {
  at: number;
  channel: 'sms' | 'whatsapp';
  /** The message text, unique per message in these tests. */
  text: string;
}

/**
 * Twilio and the Cloud API on one fake server that notes when each request arrived; `answer`
 * decides what each provider says (accepted by default).
 */
class Providers {
  readonly arrivals: Arrival[] = [];
  answer: (arrival: Arrival, n: number) => FakeAnswer | undefined = () => undefined;
  private readonly counts = new Map<string, number>();
  private readonly arrivalOf = new WeakMap<RecordedRequest, Arrival>();

  private constructor(readonly fake: FakeHttpServer) {}

  static async start(): Promise<Providers> {
    const providers = new Providers(await FakeHttpServer.start());
    providers.fake.respondWith((request) => providers.respond(request));
    return providers;
  }

  env(): Record<string, string> {
    return { ...twilioEnv(this.fake.url), ...whatsAppCloudEnv(`${this.fake.url}/v21.0`) };
  }

  of(text: string): Arrival[] {
    return this.arrivals.filter((a) => a.text === text);
  }

  async waitFor(count: number, match: (a: Arrival) => boolean, timeoutMs = 20_000): Promise<void> {
    await this.fake.waitForRequests(count, (r) => this.arrivalOf.has(r) && match(this.arrivalOf.get(r)!), timeoutMs);
  }

  private respond(request: RecordedRequest): FakeAnswer {
    const at = Date.now();
    const arrival: Arrival =
      request.path === TWILIO_PATH
        ? { at, channel: 'sms', text: new URLSearchParams(request.body).get('Body') ?? '' }
        : { at, channel: 'whatsapp', text: JSON.parse(request.body).text?.body ?? '' };
    this.arrivals.push(arrival);
    this.arrivalOf.set(request, arrival);
    const n = this.counts.get(arrival.text) ?? 0;
    this.counts.set(arrival.text, n + 1);
    const answer = this.answer(arrival, n);
    if (answer) return answer;
    if (request.path === META_PATH) return { status: 200, body: { messaging_product: 'whatsapp', messages: [{ id: `wamid.${this.arrivals.length}` }] } };
    return { status: 201, body: twilioMessage(`SM${String(this.arrivals.length).padStart(32, '0')}`) };
  }
}

/** Schedules through the real Scheduler on `partitions`, choosing ids so messages land in the partition asked for. */
class Messages {
  private constructor(
    private readonly redis: Redis,
    readonly scheduler: Scheduler,
    private readonly keyspace: Keyspace,
  ) {}

  /** A Pacer of the same prefix, on the scheduler's connection. */
  pacer(): Pacer {
    return new Pacer(this.redis, this.keyspace);
  }

  static async create(prefix: string, partitions: number): Promise<Messages> {
    const redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    const keyspace = new Keyspace({ prefix, partitions });
    return new Messages(redis, await Scheduler.create(redis, { keyspace, eventsMaxLen: 10_000 }), keyspace);
  }

  async schedule(input: Partial<NewMessage>, partition = 0): Promise<MessageRecord> {
    const now = Date.now();
    let id = this.scheduler.store.newMessageId(now);
    while (this.keyspace.partitionOf(id) !== partition) id = this.scheduler.store.newMessageId(now);
    const message: NewMessage = { recipient: '+15551230000', channel: 'sms', sendAt: now, message: 'hello', ...input };
    const result = await this.scheduler.schedule('default', message, now, { id });
    if (!result.ok) throw new Error(result.reason);
    return result.record;
  }

  async get(id: string): Promise<MessageRecord> {
    return (await this.scheduler.store.get('default', id))!;
  }

  async waitFor(id: string, check: (r: MessageRecord) => boolean, timeoutMs = 20_000): Promise<MessageRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const record = await this.get(id);
      if (check(record)) return record;
      if (Date.now() > deadline) throw new Error(`message ${id} is still ${record.status}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async close(): Promise<void> {
    await this.scheduler.close();
    this.redis.disconnect();
  }
}

/** A prefix, two (or one) workers, the fake providers and a scheduler, for one describe block. */
function useFleet(name: string, env: Record<string, string>, workerCount: number, partitions: number) {
  const fleet = { prefix: uniquePrefix(name), workers: [] as Worker[] } as { prefix: string; workers: Worker[]; providers: Providers; messages: Messages };
  beforeAll(async () => {
    fleet.providers = await Providers.start();
    fleet.messages = await Messages.create(fleet.prefix, partitions);
    for (let i = 0; i < workerCount; i++) {
      fleet.workers.push(await startTestWorker(fleet.prefix, { ...fleet.providers.env(), QUEUE_PARTITIONS: String(partitions), ...env }));
    }
  });
  afterAll(async () => {
    await Promise.all(fleet.workers.map((w) => w.close()));
    await fleet.messages?.close();
    await fleet.providers?.fake.close();
    await deletePrefix(fleet.prefix);
  });
  return fleet;
}

async function metric(worker: Worker, name: string): Promise<number> {
  const values = (await worker.metrics.getSingleMetric(name)?.get())?.values ?? [];
  return values.reduce((sum, v) => sum + v.value, 0);
}

describe('the SMS rate, fleet-wide, in segments (two workers, three partitions)', () => {
  const rate = 5;
  const fleet = useFleet('pacing-rate', { SMS_RATE_PER_SECOND: String(rate) }, 2, 3);

  it('never hands more segments to Twilio than the rate allows, and WhatsApp goes past the SMS queue', async () => {
    const { providers, messages } = fleet;
    const t0 = Date.now();
    const sms: { text: string; segments: number }[] = [];
    for (let i = 0; i < 12; i++) {
      // 1, 2 and 3 segments in turn: 160, 306 and 459 GSM characters
      const segments = 1 + (i % 3);
      const text = `sms ${String(i).padStart(2, '0')} `.padEnd([160, 306, 459][i % 3]!, 'x');
      const record = await messages.schedule({ message: text, sendAt: t0 }, i % 3);
      expect(record).toMatchObject({ encoding: 'GSM-7', segments });
      sms.push({ text, segments });
    }
    const whatsapp = [];
    for (let i = 0; i < 4; i++) whatsapp.push(await messages.schedule({ channel: 'whatsapp', message: `whatsapp ${i}`, sendAt: t0 }, i % 3));

    await providers.waitFor(4, (a) => a.channel === 'whatsapp');
    // the SMS queue, 24 segments at 5 a second, is still being paced when WhatsApp is all out
    expect(providers.arrivals.filter((a) => a.channel === 'sms').length).toBeLessThan(sms.length);

    await providers.waitFor(sms.length, (a) => a.channel === 'sms');
    const segmentsOf = new Map(sms.map((m) => [m.text, m.segments]));
    const arrivals = providers.arrivals.filter((a) => a.channel === 'sms').sort((a, b) => a.at - b.at);
    expect(arrivals).toHaveLength(sms.length);
    // Each message reaches Twilio after its slot, and the slots of any k messages from t0 span at
    // least their segments at the rate (less the burst and the last message's own segments):
    // a one-sided bound that a slow machine can only make easier to meet.
    let units = 0;
    for (const arrival of arrivals) {
      const segments = segmentsOf.get(arrival.text)!;
      units += segments;
      expect(units - segments).toBeLessThanOrEqual((rate * (arrival.at - t0 + PACING_BURST_MS)) / 1000 + 1e-9);
    }
    // counted in segments: 12 messages at 5 messages a second would all be out within 2.4 s
    expect(arrivals.at(-1)!.at - t0).toBeGreaterThanOrEqual(((24 - 3) * 1000) / rate - PACING_BURST_MS);

    for (const worker of fleet.workers) {
      expect(await metric(worker, 'punctual_worker_delivery_attempts_total')).toBeGreaterThan(0);
    }
    const waits = await Promise.all(fleet.workers.map((w) => w.metrics.getSingleMetric('punctual_pacing_wait_seconds')!.get()));
    const sum = (label: string, suffix: string) =>
      waits.flatMap((w) => w.values).filter((v) => v.metricName === `punctual_pacing_wait_seconds_${suffix}` && v.labels.channel === label).reduce((s, v) => s + v.value, 0);
    expect(sum('sms', 'count')).toBeGreaterThanOrEqual(sms.length);
    expect(sum('sms', 'sum')).toBeGreaterThan(1);
    expect(sum('whatsapp', 'count')).toBe(0);
  });
});

describe('sendAt order (one worker, one partition)', () => {
  const fleet = useFleet('pacing-order', { SMS_RATE_PER_SECOND: '2' }, 1, 1);

  it('hands messages over in sendAt order, whatever order they were scheduled in', async () => {
    const due = Date.now() + 1500;
    const order = [3, 0, 4, 1, 2];
    // BullMQ's due time is sendAt or a millisecond after (delays are relative): 20 ms apart
    for (const i of order) await fleet.messages.schedule({ message: `ordered ${i}`, sendAt: due + 20 * i });
    await fleet.providers.waitFor(order.length, (a) => a.text.startsWith('ordered'));
    const arrived = fleet.providers.arrivals.filter((a) => a.text.startsWith('ordered')).map((a) => a.text);
    expect(arrived).toEqual(['ordered 0', 'ordered 1', 'ordered 2', 'ordered 3', 'ordered 4']);
  });
});

describe('a provider 429 (two workers, three partitions, no rate set)', () => {
  const fleet = useFleet('pacing-429', {}, 2, 3);

  it('pauses SMS on every worker and partition without spending the attempt; WhatsApp keeps going', async () => {
    const { providers, messages } = fleet;
    providers.answer = (a) => (a.channel === 'sms' ? { ...twilioError(429, 20429, 'Too Many Requests'), headers: { 'retry-after': '30' } } : undefined);
    const first = await messages.schedule({ message: 'first sms' }, 0);
    const throttled = await messages.waitFor(first.id, (r) => r.throttledAt !== undefined);
    expect(throttled).toMatchObject({ status: 'sending', attempts: 0, lastError: '20429: Too Many Requests' });
    // every worker knows of the pause (the other one reads it from Redis)
    const deadline = Date.now() + 10_000;
    while (!fleet.workers.every((w) => w.pacing.throttleOf('sms').until > Date.now())) {
      if (Date.now() > deadline) throw new Error('the pause did not reach every worker');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(fleet.workers.every((w) => w.pacing.throttleOf('whatsapp').until === 0)).toBe(true);

    const held = [];
    for (let i = 0; i < 6; i++) held.push(await messages.schedule({ message: `held sms ${i}` }, i % 3));
    const whatsapp = await messages.schedule({ channel: 'whatsapp', message: 'whatsapp during the pause' }, 1);
    await messages.waitFor(whatsapp.id, (r) => r.status === 'delivered');
    expect(providers.of('whatsapp during the pause')).toHaveLength(1);
    // the SMS scheduled before it are held (still scheduled: cancelable) and none reached Twilio
    expect(providers.arrivals.filter((a) => a.channel === 'sms').map((a) => a.text)).toEqual(['first sms']);
    for (const m of held) expect((await messages.get(m.id)).status).toBe('scheduled');
    expect((await messages.scheduler.cancel('default', held[0]!.id, Date.now())).ok).toBe(true);
  });
});

describe('THROTTLE_MAX_MS', () => {
  const fleet = useFleet('pacing-throttle-max', { THROTTLE_MAX_MS: '1000' }, 1, 1);

  it('fails a message still refused with 429 that long after the first 429, naming it', async () => {
    const { providers, messages } = fleet;
    providers.answer = () => ({ ...twilioError(429, 20429, 'Too Many Requests'), headers: { 'retry-after': '1' } });
    const m = await messages.schedule({ message: 'always throttled' });
    const failed = await messages.waitFor(m.id, (r) => r.status === 'failed');
    expect(failed).toMatchObject({ attempts: 1, lastError: expect.stringMatching(/^20429: Too Many Requests \(still throttled \d+ s after the 429 first refused it: THROTTLE_MAX_MS\)$/) });
    const sends = providers.of('always throttled');
    expect(sends.length).toBeGreaterThanOrEqual(2);
    expect(sends.at(-1)!.at - sends[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(Date.parse(failed.failedAt!) - Date.parse(failed.throttledAt!)).toBeGreaterThanOrEqual(1000);
  });
});

describe("Meta's 131056 (pair rate limit)", () => {
  const fleet = useFleet('pacing-131056', {}, 1, 1);

  it('delays only the messages to that recipient, without spending the attempt', async () => {
    const { providers, messages } = fleet;
    const pairLimit = {
      status: 400,
      headers: { 'retry-after': '2' },
      body: { error: { message: '(Business Account, Consumer Account) pair rate limit hit', type: 'OAuthException', code: 131056, fbtrace_id: 'Ab' } },
    };
    providers.answer = (a, n) => (a.text === 'to alex 1' && n === 0 ? pairLimit : undefined);
    const first = await messages.schedule({ channel: 'whatsapp', recipient: '+5511999990001', message: 'to alex 1' });
    await messages.waitFor(first.id, (r) => r.throttledAt !== undefined);
    const refusedAt = providers.of('to alex 1')[0]!.at;

    const second = await messages.schedule({ channel: 'whatsapp', recipient: '5511999990001', message: 'to alex 2' });
    const other = await messages.schedule({ channel: 'whatsapp', recipient: '+5511999990002', message: 'to sam' });
    const sms = await messages.schedule({ channel: 'sms', recipient: '+5511999990001', message: 'sms to alex' });
    await messages.waitFor(other.id, (r) => r.status === 'delivered');
    await messages.waitFor(sms.id, (r) => r.status === 'delivered');
    expect(providers.of('to alex 2')).toHaveLength(0);
    expect((await messages.get(second.id)).status).toBe('scheduled');

    const delivered = await messages.waitFor(first.id, (r) => r.status === 'delivered');
    expect(delivered).toMatchObject({ attempts: 1, lastError: '131056: (Business Account, Consumer Account) pair rate limit hit' });
    await messages.waitFor(second.id, (r) => r.status === 'delivered');
    for (const text of ['to alex 1', 'to alex 2']) expect(providers.of(text).at(-1)!.at - refusedAt).toBeGreaterThanOrEqual(2000);
  });
});

describe('slots asked for in the same turn of the event loop', () => {
  const prefix = uniquePrefix('pacing-order');
  let messages: Messages;
  beforeAll(async () => {
    messages = await Messages.create(prefix, 1);
  });
  afterAll(async () => {
    await messages.close();
    await deletePrefix(prefix);
  });

  it('are given in sendAt order, whatever order the jobs asked in', async () => {
    const pacing = new DeliveryPacing({ pacer: messages.pacer(), store: messages.scheduler.store, rates: { sms: 5, whatsapp: 0 } });
    const now = Date.now();
    const records = [];
    for (let i = 0; i < 8; i++) records.push(await messages.schedule({ sendAt: now - 100 + i, message: `order ${i}` }));
    // the jobs reach the pacer in reverse sendAt order (the first one asking may leave at once: 0)
    const slots = await Promise.all([...records].reverse().map(async (r) => (await pacing.admit(r.id, now)) ?? 0));
    const inSendAtOrder = slots.reverse();
    expect(inSendAtOrder[0]).toBe(0);
    expect(inSendAtOrder).toEqual([...inSendAtOrder].sort((a, b) => a - b));
    expect(new Set(inSendAtOrder).size).toBe(records.length);
  });
});
