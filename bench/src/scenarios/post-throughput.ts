import autocannon from 'autocannon';
import { compare, progress, type ScenarioResult } from '../report.js';
import { emptyRedis, newPrefix, type BenchContext } from '../context.js';
import { startProductApi, startReferenceApi, type Service } from '../processes.js';
import { median, round } from '../stats.js';

interface Round {
  perSecond: number;
  errors: number;
  p99: number;
}

async function hammer(service: Service, seconds: number, connections: number, body: string): Promise<Round> {
  const result = await autocannon({
    url: `http://127.0.0.1:${service.port}/scheduled`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    duration: seconds,
  });
  return {
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
  try {
    progress(`POST throughput: warm-up, then ${postRounds} rounds of ${postSeconds} s each, ${connections} connections`);
    await hammer(product, 1, connections, body);
    await hammer(reference, 1, connections, body);
    for (let r = 1; r <= postRounds; r++) {
      for (const [side, service] of [['product', product], ['reference', reference]] as const) {
        const round_ = await hammer(service, postSeconds, connections, body);
        rounds[side].push(round_);
        progress(`  round ${r}/${postRounds} ${side}: ${Math.round(round_.perSecond)} req/s, p99 ${round_.p99} ms, ${round_.errors} errors`);
      }
    }
  } finally {
    await product.stop();
    await reference.stop();
  }
  const p = median(rounds.product.map((r) => r.perSecond));
  const ref = median(rounds.reference.map((r) => r.perSecond));
  const errors = rounds.product.reduce((n, r) => n + r.errors, 0);
  const ratio = compare(p, ref);
  return {
    name: 'POST throughput',
    hz: ctx.hz,
    setup: `autocannon, ${connections} connections, ${postRounds} alternated rounds of ${postSeconds} s, median; API process only (no worker)`,
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
    ],
  };
}
