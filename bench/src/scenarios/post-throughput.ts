import autocannon from 'autocannon';
import { compare, progress, type ScenarioResult } from '../report.js';
import { addCalls, commandCalls, commandsPerOp, emptyRedis, newPrefix, redisCpuMs, type BenchContext } from '../context.js';
import { cpuMs, startProductApi, startReferenceApi, type Service } from '../processes.js';
import { median, round } from '../stats.js';

interface Round {
  requests: number;
  perSecond: number;
  errors: number;
  p99: number;
  /** CPU µs per request: the API process's and Redis's (steadier than req/s on a shared machine). */
  apiCpu: number;
  redisCpu: number;
}

async function hammer(ctx: BenchContext, service: Service, seconds: number, connections: number, body: string): Promise<Round> {
  const [api0, redis0] = [cpuMs(service.child.pid!), await redisCpuMs(ctx.redis)];
  const result = await autocannon({
    url: `http://127.0.0.1:${service.port}/scheduled`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    duration: seconds,
  });
  const requests = Math.max(1, result.requests.total);
  return {
    apiCpu: ((cpuMs(service.child.pid!) - api0) * 1000) / requests,
    redisCpu: (((await redisCpuMs(ctx.redis)) - redis0) * 1000) / requests,
    requests: result.requests.total,
    perSecond: result.requests.total / seconds,
    errors: result.errors + result.timeouts + result.non2xx,
    p99: result.latency.p99,
  };
}

/** POST /scheduled with autocannon: product and reference alternated, median of the rounds. */
export async function postThroughput(ctx: BenchContext): Promise<ScenarioResult> {
  const { postSeconds, postRounds, connections } = ctx.options;
  await emptyRedis(ctx);
  const body = JSON.stringify({ recipient: '5511999999999', message: 'Your appointment is tomorrow at 10:00.', sendAt: Date.now() + 3_600_000, channel: 'sms' });
  const product = await startProductApi({ redisUrl: ctx.redisUrl, prefix: newPrefix('post'), profileDir: ctx.profileDir });
  const reference = await startReferenceApi(ctx.redisUrl, newPrefix('post-ref'));
  const rounds: { product: Round[]; reference: Round[] } = { product: [], reference: [] };
  const calls = { product: new Map<string, number>(), reference: new Map<string, number>() };
  const requests = { product: 0, reference: 0 };
  try {
    progress(`POST throughput: warm-up, then ${postRounds} rounds of ${postSeconds} s each, ${connections} connections`);
    await hammer(ctx, product, 1, connections, body);
    await hammer(ctx, reference, 1, connections, body);
    for (let r = 1; r <= postRounds; r++) {
      for (const [side, service] of [['product', product], ['reference', reference]] as const) {
        const before = await commandCalls(ctx.redis);
        const round_ = await hammer(ctx, service, postSeconds, connections, body);
        addCalls(calls[side], before, await commandCalls(ctx.redis));
        requests[side] += round_.requests;
        rounds[side].push(round_);
        progress(
          `  round ${r}/${postRounds} ${side}: ${Math.round(round_.perSecond)} req/s, p99 ${round_.p99} ms, ${round_.errors} errors, ` +
            `CPU per POST: API ${Math.round(round_.apiCpu)} µs, Redis ${Math.round(round_.redisCpu)} µs`,
        );
      }
    }
  } finally {
    await product.stop();
    await reference.stop();
  }
  const p = median(rounds.product.map((r) => r.perSecond));
  const ref = median(rounds.reference.map((r) => r.perSecond));
  const spread = (side: Round[]) => `${Math.round(Math.min(...side.map((r) => r.perSecond)))}–${Math.round(Math.max(...side.map((r) => r.perSecond)))}`;
  const errors = rounds.product.reduce((n, r) => n + r.errors, 0);
  const ratio = compare(p, ref);
  const commands = { product: commandsPerOp(new Map(), calls.product, requests.product), reference: commandsPerOp(new Map(), calls.reference, requests.reference) };
  return {
    name: 'POST throughput',
    hz: ctx.hz,
    setup:
      `autocannon, ${connections} connections, ${postRounds} alternated rounds of ${postSeconds} s, median; API process only (no worker), product at LOG_LEVEL=warn; ` +
      'reference: Fastify + the product\'s body schema, no logger, delayed queue.add then one MULTI (HSET record, ZADD index)',
    figures: [
      { metric: 'POST /scheduled', unit: 'req/s', product: round(p, 0), reference: round(ref, 0), ratio, target: '≥ 0.8× ref', pass: ratio !== null && ratio >= 0.8 },
      { metric: 'errors + non-2xx', unit: 'count', product: errors, reference: rounds.reference.reduce((n, r) => n + r.errors, 0), target: '0', pass: errors === 0 },
      {
        metric: 'latency p99 (median round)',
        unit: 'ms',
        product: median(rounds.product.map((r) => r.p99)),
        reference: median(rounds.reference.map((r) => r.p99)),
        ratio: compare(median(rounds.product.map((r) => r.p99)), median(rounds.reference.map((r) => r.p99))),
      },
      ...(['apiCpu', 'redisCpu'] as const).map((key) => {
        const [ours, theirs] = [median(rounds.product.map((r) => r[key])), median(rounds.reference.map((r) => r[key]))];
        const who = key === 'apiCpu' ? 'API process' : 'Redis';
        return { metric: `${who} CPU per POST (median round)`, unit: 'µs', product: round(ours, 0), reference: round(theirs, 0), ratio: compare(ours, theirs) };
      }),
      {
        metric: 'Redis commands per POST (inside scripts and MULTI too)',
        unit: 'count',
        product: round(commands.product.total, 1),
        reference: round(commands.reference.total, 1),
        ratio: compare(commands.product.total, commands.reference.total),
      },
    ],
    notes: [
      `req/s per round: product ${spread(rounds.product)}, reference ${spread(rounds.reference)}`,
      `Redis commands per POST, product: ${commands.product.detail}`,
      `Redis commands per POST, reference: ${commands.reference.detail}`,
    ],
  };
}
