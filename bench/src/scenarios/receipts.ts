import { createHmac, randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { Keyspace, Scheduler, receiptKeys } from '@punctual/store';
import { compare, progress, type ScenarioResult } from '../report.js';
import { emptyRedis, newPrefix, redisCpuMs, type BenchContext } from '../context.js';
import { cpuMs, startProductApi, startService, type Service } from '../processes.js';
import { median, round } from '../stats.js';

const TOKEN = 'bench-twilio-auth-token';
const PUBLIC_BASE_URL = 'https://punctual.bench.example';
const PATH = '/webhooks/twilio/status';
const WEBHOOKS = { TWILIO_AUTH_TOKEN: TOKEN, PUBLIC_BASE_URL };
/** Receipts per message, in the order Twilio sends them for an SMS. */
const STATUSES = ['sent', 'delivered'] as const;

interface Signed {
  body: string;
  signature: string;
}

/** A status callback as Twilio posts it: its parameters form-encoded and signed. */
function statusCallback(sid: string, status: string): Signed {
  const params: Record<string, string> = {
    AccountSid: `AC${'0'.repeat(32)}`,
    ApiVersion: '2010-04-01',
    From: '+15005550006',
    MessageSid: sid,
    MessageStatus: status,
    SmsSid: sid,
    SmsStatus: status,
    To: '+5511999999999',
  };
  let data = PUBLIC_BASE_URL + PATH;
  for (const name of Object.keys(params).sort()) data += name + params[name];
  return { body: new URLSearchParams(params).toString(), signature: createHmac('sha1', TOKEN).update(data, 'utf8').digest('base64') };
}

/** `count` messages delivered through the real scheduler, each with its own Twilio SID. */
async function deliveredMessages(redisUrl: string, prefix: string, count: number): Promise<string[]> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const scheduler = await Scheduler.create(redis, { keyspace: new Keyspace({ prefix, partitions: 1 }), eventsMaxLen: 100_000 });
  const sids: string[] = [];
  try {
    for (let i = 0; i < count; i += 200) {
      await Promise.all(
        Array.from({ length: Math.min(200, count - i) }, async () => {
          const now = Date.now();
          const result = await scheduler.schedule('default', { recipient: '5511999999999', channel: 'sms', sendAt: now, message: 'Your code is 1234' }, now);
          if (!result.ok) throw new Error(`seeding: ${result.reason}`);
          await scheduler.claim(result.record.id, now);
          const sid = `SM${randomBytes(16).toString('hex')}`;
          await scheduler.deliver(result.record.id, Date.now(), sid, 0);
          sids.push(sid);
        }),
      );
    }
  } finally {
    await scheduler.close();
    redis.disconnect();
  }
  return sids;
}

interface Round {
  perSecond: number;
  errors: number;
  p99: number;
  /** CPU time per receipt (µs) of the API process and of Redis. */
  apiCpuUs: number;
  redisCpuUs: number;
}

/** Sends every callback once over `connections` connections; the rate is callbacks over the time they took. */
async function burst(service: Service, callbacks: Signed[], connections: number, redis: Redis): Promise<Round> {
  let next = 0;
  const [api0, redis0] = [cpuMs(service.child.pid!), await redisCpuMs(redis)];
  const result = await autocannon({
    url: `http://127.0.0.1:${service.port}${PATH}`,
    connections,
    amount: callbacks.length,
    // autocannon notices the last answer at its next sample: the default 1 s would round the time up
    sampleInt: 20,
    requests: [
      {
        method: 'POST',
        setupRequest: (request) => {
          const callback = callbacks[next++ % callbacks.length]!;
          return {
            ...request,
            body: callback.body,
            headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': callback.signature },
          };
        },
      },
    ],
  });
  const perReceipt = 1000 / result.requests.total;
  return {
    perSecond: result.requests.total / result.duration,
    errors: result.errors + result.timeouts + result.non2xx,
    p99: result.latency.p99,
    apiCpuUs: (cpuMs(service.child.pid!) - api0) * perReceipt,
    redisCpuUs: ((await redisCpuMs(redis)) - redis0) * perReceipt,
  };
}

/**
 * Receipts per second into one product API (signed Twilio status callbacks for messages that
 * exist, two per message, fresh messages each round) beside a bare Fastify handler doing the same
 * signature check and one Redis write. Product and reference alternate; median of the rounds.
 */
export async function receiptsThroughput(ctx: BenchContext): Promise<ScenarioResult> {
  const { connections, postRounds: rounds } = ctx.options;
  const messagesPerRound = ctx.options.mode === 'full' ? 25_000 : 4_000;
  await emptyRedis(ctx);
  const prefix = newPrefix('receipts');
  progress(`receipts: delivering ${rounds} × ${messagesPerRound} messages to report on`);
  const sids = await deliveredMessages(ctx.redisUrl, prefix, rounds * messagesPerRound);
  const product = await startProductApi({ redisUrl: ctx.redisUrl, prefix, profileDir: ctx.profileDir, extra: WEBHOOKS });
  const reference = await startService({
    name: 'reference receipts',
    script: 'bench/dist/reference/receipts.js',
    env: { REDIS_URL: ctx.redisUrl, QUEUE_PREFIX: newPrefix('receipts-ref'), ...WEBHOOKS },
    portVariable: 'PORT',
  });
  const results: { product: Round[]; reference: Round[] } = { product: [], reference: [] };
  try {
    const warmUp = Array.from({ length: 500 }, (_, i) => statusCallback(`SM${i.toString(16).padStart(32, '0')}`, 'sent'));
    await burst(product, warmUp, connections, ctx.redis);
    await burst(reference, warmUp, connections, ctx.redis);
    progress(`receipts: ${rounds} alternated rounds of ${messagesPerRound * STATUSES.length} status callbacks, ${connections} connections`);
    for (let r = 0; r < rounds; r++) {
      const callbacks = sids.slice(r * messagesPerRound, (r + 1) * messagesPerRound).flatMap((sid) => STATUSES.map((status) => statusCallback(sid, status)));
      for (const [side, service] of [['product', product], ['reference', reference]] as const) {
        const round_ = await burst(service, callbacks, connections, ctx.redis);
        results[side].push(round_);
        progress(
          `  round ${r + 1}/${rounds} ${side}: ${Math.round(round_.perSecond)} receipts/s, p99 ${round_.p99} ms, ${round_.errors} errors, CPU per receipt: API ${Math.round(round_.apiCpuUs)} µs, Redis ${Math.round(round_.redisCpuUs)} µs`,
        );
      }
    }
  } finally {
    await product.stop();
    await reference.stop();
  }
  const counts = await ctx.redis.hgetall(receiptKeys(`{${prefix}-p0}`).counts);
  const recorded = Object.values(counts).reduce((sum, n) => sum + Number(n), 0);
  const expected = sids.length * STATUSES.length;
  const p = median(results.product.map((r) => r.perSecond));
  const ref = median(results.reference.map((r) => r.perSecond));
  const errors = results.product.reduce((n, r) => n + r.errors, 0);
  return {
    name: 'receipts',
    hz: ctx.hz,
    setup: `autocannon, ${connections} connections, ${rounds} alternated rounds of ${messagesPerRound * STATUSES.length} signed Twilio status callbacks (sent + delivered of fresh delivered messages), median; API process only`,
    figures: [
      { metric: 'receipts into one API', unit: 'receipts/s', product: round(p, 0), reference: round(ref, 0), ratio: compare(p, ref) },
      { metric: 'errors + non-2xx', unit: 'count', product: errors, reference: results.reference.reduce((n, r) => n + r.errors, 0), target: '0', pass: errors === 0 },
      {
        metric: 'latency p99 (median round)',
        unit: 'ms',
        product: median(results.product.map((r) => r.p99)),
        reference: median(results.reference.map((r) => r.p99)),
        ratio: compare(median(results.product.map((r) => r.p99)), median(results.reference.map((r) => r.p99))),
      },
      { metric: 'API CPU per receipt (median round)', unit: 'µs', product: round(median(results.product.map((r) => r.apiCpuUs)), 0), reference: round(median(results.reference.map((r) => r.apiCpuUs)), 0) },
      { metric: 'Redis CPU per receipt (median round)', unit: 'µs', product: round(median(results.product.map((r) => r.redisCpuUs)), 0), reference: round(median(results.reference.map((r) => r.redisCpuUs)), 0) },
      // callbacks arrive concurrently: a message's sent may land after its delivered and change nothing
      { metric: 'receipts that changed a record', unit: 'count', product: recorded, target: `${sids.length}–${expected}`, pass: recorded >= sids.length && recorded <= expected },
    ],
  };
}
