import { compare, progress, type Figure, type ScenarioResult } from '../report.js';
import { emptyRedis, newPrefix, until, type BenchContext } from '../context.js';
import { fill, productFiller, referenceFiller } from '../fill.js';
import { startProductWorker, startReferenceWorker } from '../processes.js';
import { round, summarize, type Summary } from '../stats.js';
import { deliveredIndex, leadMs } from './delivery-throughput.js';

interface LatenessRun {
  summary: Summary;
  early: number;
}

function sendTimes(rate: number, seconds: number, count: number): number[] {
  const start = Date.now() + leadMs(count);
  return Array.from({ length: rate * seconds }, (_, i) => start + Math.floor((i * 1000) / rate));
}

/** The product: lateness = deliveredAt (recorded once the simulator accepted) − sendAt. */
async function productRun(ctx: BenchContext, rate: number, seconds: number): Promise<LatenessRun> {
  await emptyRedis(ctx);
  const prefix = newPrefix('lateness');
  const worker = await startProductWorker({ redisUrl: ctx.redisUrl, prefix, profileDir: ctx.profileDir });
  const filler = productFiller(ctx.redisUrl, prefix);
  try {
    const count = rate * seconds;
    const sendAts = sendTimes(rate, seconds, count);
    const { ids } = await fill(filler.write, sendAts);
    const index = deliveredIndex(prefix);
    await until(async () => (await ctx.redis.zcard(index)) >= count, seconds * 1000 + 120_000, `${count} product deliveries`, 200);
    const sendAtOf = new Map(ids.map((id, i) => [id, sendAts[i]!]));
    const delivered = await ctx.redis.zrange(index, 0, -1, 'WITHSCORES');
    const lateness: number[] = [];
    for (let i = 0; i < delivered.length; i += 2) lateness.push(Number(delivered[i + 1]) - sendAtOf.get(delivered[i]!)!);
    return { summary: summarize(lateness), early: lateness.filter((l) => l < 0).length };
  } finally {
    await filler.close();
    await worker.stop();
  }
}

/** The reference: lateness = when the fake provider received the call − sendAt. */
async function referenceRun(ctx: BenchContext, rate: number, seconds: number): Promise<LatenessRun> {
  await emptyRedis(ctx);
  ctx.provider.reset();
  const prefix = newPrefix('lateness-ref');
  const worker = await startReferenceWorker(ctx.redisUrl, prefix, 'http', ctx.provider.url);
  const filler = referenceFiller(ctx.redisUrl, prefix);
  try {
    const count = rate * seconds;
    await fill(filler.write, sendTimes(rate, seconds, count));
    await ctx.provider.waitFor(count, seconds * 1000 + 120_000);
    const lateness = ctx.provider.receipts.map((r) => r.at - r.sendAt);
    return { summary: summarize(lateness), early: lateness.filter((l) => l < 0).length };
  } finally {
    await filler.close();
    await worker.stop();
  }
}

/** Messages falling due at a steady rate: how late each reaches its provider. */
export async function lateness(ctx: BenchContext): Promise<ScenarioResult> {
  const seconds = ctx.options.latenessSeconds;
  const figures: Figure[] = [];
  for (const rate of ctx.options.latenessRates) {
    progress(`lateness: ${rate} due per second for ${seconds} s`);
    const product = await productRun(ctx, rate, seconds);
    progress(`  product: p50 ${product.summary.p50} / p99 ${product.summary.p99} / max ${product.summary.max} ms, ${product.early} early`);
    const reference = await referenceRun(ctx, rate, seconds);
    progress(`  bare BullMQ: p50 ${reference.summary.p50} / p99 ${reference.summary.p99} / max ${reference.summary.max} ms, ${reference.early} early`);
    const atTarget = rate >= 1000;
    for (const q of ['p50', 'p99', 'max'] as const) {
      const limit = { p50: 5, p99: 25, max: undefined }[q];
      figures.push({
        metric: `${rate}/s lateness ${q}`,
        unit: 'ms',
        product: round(product.summary[q], 1),
        reference: round(reference.summary[q], 1),
        ratio: compare(product.summary[q], reference.summary[q]),
        ...(atTarget && limit !== undefined ? { target: `≤ ${limit} ms`, pass: product.summary[q] <= limit } : {}),
      });
    }
    figures.push({
      metric: `${rate}/s delivered before sendAt`,
      unit: 'count',
      product: product.early,
      reference: reference.early,
      target: '0',
      pass: product.early === 0,
    });
  }
  return {
    name: 'Lateness',
    hz: ctx.hz,
    setup:
      `steady rate for ${seconds} s, one worker process each; product: deliveredAt − sendAt (simulator latency 0); ` +
      'reference: bare BullMQ worker (no due alarm), receipt at a local fake provider − sendAt',
    figures,
  };
}
