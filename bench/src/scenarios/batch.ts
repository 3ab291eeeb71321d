import { compare, progress, type ScenarioResult } from '../report.js';
import { emptyRedis, newPrefix, type BenchContext } from '../context.js';
import { HttpClient } from '../http.js';
import { startProductApi, startService, type Service } from '../processes.js';
import { median, round } from '../stats.js';

/** Single POSTs in flight at once in the concurrent loop: a careful integrator, not a flood. */
const CONCURRENCY = 16;

interface Round {
  productBatch: number;
  referenceBatch: number;
  sequential: number;
  concurrent: number;
  errors: number;
}

function startReferenceBatchApi(redisUrl: string, prefix: string): Promise<Service> {
  return startService({ name: 'reference batch api', script: 'bench/dist/reference/batch-api.js', env: { REDIS_URL: redisUrl, QUEUE_PREFIX: prefix }, portVariable: 'PORT' });
}

function messages(count: number, round: number) {
  const sendAt = Date.now() + 86_400_000;
  return Array.from({ length: count }, (_, i) => ({
    recipient: `1555${String(round).padStart(3, '0')}${String(i).padStart(4, '0')}`,
    message: 'Your appointment is tomorrow at 10:00.',
    sendAt,
    channel: 'sms',
  }));
}

/** Milliseconds from the first byte sent to the last byte of the answer; counts answers that are not 2xx. */
async function timed(run: () => Promise<number>): Promise<{ ms: number; errors: number }> {
  const started = process.hrtime.bigint();
  const errors = await run();
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, errors };
}

async function batch(http: HttpClient, items: unknown[]) {
  return timed(async () => {
    const res = await http.send('POST', '/scheduled/batch', { messages: items });
    const body = JSON.parse(res.body) as { accepted?: number };
    return res.status === 200 && body.accepted === items.length ? 0 : 1;
  });
}

async function singles(http: HttpClient, items: unknown[], concurrency: number) {
  return timed(async () => {
    let next = 0;
    let errors = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < items.length) {
          const res = await http.send('POST', '/scheduled', items[next++]);
          if (res.status !== 201) errors++;
        }
      }),
    );
    return errors;
  });
}

/**
 * A batch of N items against N single POSTs (one at a time, and CONCURRENCY at a time) on the
 * product's API, and the same batch on a bare Fastify handler doing addBulk plus one pipelined
 * write. Alternated rounds, medians.
 */
export async function batchScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const { batchItems, batchRounds } = ctx.options;
  await emptyRedis(ctx);
  const product = await startProductApi({ redisUrl: ctx.redisUrl, prefix: newPrefix('batch'), profileDir: ctx.profileDir });
  const reference = await startReferenceBatchApi(ctx.redisUrl, newPrefix('batch-ref'));
  const productHttp = new HttpClient(product.port);
  const referenceHttp = new HttpClient(reference.port);
  const rounds: Round[] = [];
  try {
    progress(`batch: warm-up, then ${batchRounds} rounds of a ${batchItems}-item batch vs ${batchItems} single POSTs (1 and ${CONCURRENCY} at a time)`);
    await batch(productHttp, messages(batchItems, 900));
    await batch(referenceHttp, messages(batchItems, 901));
    await singles(productHttp, messages(100, 902), CONCURRENCY);
    for (let r = 0; r < batchRounds; r++) {
      const productBatch = await batch(productHttp, messages(batchItems, r * 4));
      const referenceBatch = await batch(referenceHttp, messages(batchItems, r * 4 + 1));
      const sequential = await singles(productHttp, messages(batchItems, r * 4 + 2), 1);
      const concurrent = await singles(productHttp, messages(batchItems, r * 4 + 3), CONCURRENCY);
      const round_ = {
        productBatch: productBatch.ms,
        referenceBatch: referenceBatch.ms,
        sequential: sequential.ms,
        concurrent: concurrent.ms,
        errors: productBatch.errors + referenceBatch.errors + sequential.errors + concurrent.errors,
      };
      rounds.push(round_);
      progress(
        `  round ${r + 1}/${batchRounds}: batch ${Math.round(round_.productBatch)} ms (reference ${Math.round(round_.referenceBatch)} ms), ` +
          `singles ${Math.round(round_.sequential)} ms one at a time, ${Math.round(round_.concurrent)} ms ${CONCURRENCY} at a time, ${round_.errors} errors`,
      );
    }
  } finally {
    productHttp.close();
    referenceHttp.close();
    await product.stop();
    await reference.stop();
  }
  const of = (field: keyof Round) => median(rounds.map((r) => r[field]));
  const productBatch = of('productBatch');
  const referenceBatch = of('referenceBatch');
  const sequentialRatio = round(of('sequential') / productBatch, 1);
  const errors = rounds.reduce((n, r) => n + r.errors, 0);
  return {
    name: `${batchItems}-item batch`,
    hz: ctx.hz,
    setup:
      `${batchRounds} rounds, median; one client over keep-alive connections; API process only (no worker); reference: bare Fastify, addBulk + one pipeline; ` +
      'the ratio rows divide the product\'s single POSTs by each side\'s batch',
    figures: [
      { metric: `POST /scheduled/batch, ${batchItems} items`, unit: 'ms', product: round(productBatch, 1), reference: round(referenceBatch, 1), ratio: compare(productBatch, referenceBatch) },
      { metric: `${batchItems} single POSTs, one at a time`, unit: 'ms', product: round(of('sequential'), 0) },
      { metric: `${batchItems} single POSTs, ${CONCURRENCY} at a time`, unit: 'ms', product: round(of('concurrent'), 0) },
      // the product's singles against each side's batch: how much a batch saves an integrator's loop
      {
        metric: 'singles one at a time ÷ batch',
        unit: '×',
        product: sequentialRatio,
        reference: round(of('sequential') / referenceBatch, 1),
        target: '≥ 5×',
        pass: sequentialRatio >= 5,
      },
      {
        metric: `singles ${CONCURRENCY} at a time ÷ batch`,
        unit: '×',
        product: round(of('concurrent') / productBatch, 1),
        reference: round(of('concurrent') / referenceBatch, 1),
      },
      { metric: 'errors + unexpected answers', unit: 'count', product: errors, target: '0', pass: errors === 0 },
    ],
  };
}
