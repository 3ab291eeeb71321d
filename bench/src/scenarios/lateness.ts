import { compare, progress, type Figure, type ScenarioResult } from '../report.js';
import { emptyRedis, newPrefix, type BenchContext } from '../context.js';
import { fill, productFiller, referenceFiller, type Filler } from '../fill.js';
import { startProductWorker, startReferenceWorker, twilioEnv, type Service } from '../processes.js';
import { round, summarize, type Summary } from '../stats.js';
import { leadMs } from './delivery-throughput.js';

interface LatenessRun {
  summary: Summary;
  early: number;
  /** The warm-up second's, not in `summary`. */
  warmUp: Summary;
}

/**
 * The first second's deliveries warm up each side (its first provider connections, cold code)
 * and are reported apart: with a few seconds measured, that one second would be the whole p99.
 */
const WARM_UP_SECONDS = 1;

/**
 * Writes the messages, waits until the fake provider got all of them and returns how late each
 * got there: receipt − sendAt, the same point for the product and the bare worker.
 */
async function measure(ctx: BenchContext, worker: Service, filler: Filler, rate: number, seconds: number): Promise<LatenessRun> {
  try {
    const count = rate * (WARM_UP_SECONDS + seconds);
    const start = Date.now() + leadMs(count);
    const sendAts = Array.from({ length: count }, (_, i) => start + Math.floor((i * 1000) / rate));
    const { ids } = await fill(filler.write, sendAts);
    await ctx.provider.waitFor(count, seconds * 1000 + 120_000);
    const sendAtOf = new Map(ids.map((id, i) => [id, sendAts[i]!]));
    const measured: number[] = [];
    const warmUp: number[] = [];
    for (const receipt of ctx.provider.receipts) {
      const sendAt = sendAtOf.get(receipt.id);
      if (sendAt === undefined) throw new Error('the provider got a message the bench did not write');
      (sendAt < start + WARM_UP_SECONDS * 1000 ? warmUp : measured).push(receipt.at - sendAt);
    }
    const early = [...warmUp, ...measured].filter((l) => l < 0).length;
    return { summary: summarize(measured), early, warmUp: summarize(warmUp) };
  } finally {
    await filler.close();
    await worker.stop();
  }
}

/** The product's worker sending through Twilio at the fake provider. */
async function productRun(ctx: BenchContext, rate: number, seconds: number): Promise<LatenessRun> {
  await emptyRedis(ctx);
  ctx.provider.reset();
  const prefix = newPrefix('lateness');
  const worker = await startProductWorker({ redisUrl: ctx.redisUrl, prefix, profileDir: ctx.profileDir, extra: twilioEnv(ctx.provider) });
  return measure(ctx, worker, productFiller(ctx.redisUrl, prefix, { textIsId: true }), rate, seconds);
}

/** A bare BullMQ worker (no due alarm) making the same Twilio call. */
async function referenceRun(ctx: BenchContext, rate: number, seconds: number): Promise<LatenessRun> {
  await emptyRedis(ctx);
  ctx.provider.reset();
  const prefix = newPrefix('lateness-ref');
  const worker = await startReferenceWorker(ctx.redisUrl, prefix, 'provider', ctx.provider);
  return measure(ctx, worker, referenceFiller(ctx.redisUrl, prefix, { textIsId: true }), rate, seconds);
}

/** The contract's goals at 1,000 due/s: beside bare BullMQ at hz 100, and absolute at hz 10. */
function target(hz: number, rate: number, reference: Summary): { limit: number; text: string } | undefined {
  if (rate < 1000) return undefined;
  if (hz === 100) {
    const limit = Math.max(25, 1.25 * reference.p99);
    return { limit, text: `≤ max(25, 1.25× ref) = ${round(limit, 1)} ms` };
  }
  if (hz === 10) return { limit: 20, text: '≤ 20 ms' };
  return undefined;
}

async function atHz(ctx: BenchContext, hz: number): Promise<ScenarioResult> {
  const seconds = ctx.options.latenessSeconds;
  await ctx.redis.config('SET', 'hz', String(hz));
  const figures: Figure[] = [];
  const notes: string[] = [];
  for (const rate of ctx.options.latenessRates) {
    progress(`lateness at hz ${hz}: ${rate} due per second for ${seconds} s`);
    const product = await productRun(ctx, rate, seconds);
    progress(`  product: p50 ${product.summary.p50} / p99 ${product.summary.p99} / max ${product.summary.max} ms, ${product.early} early (warm-up p99 ${product.warmUp.p99} ms)`);
    const reference = await referenceRun(ctx, rate, seconds);
    progress(`  bare BullMQ: p50 ${reference.summary.p50} / p99 ${reference.summary.p99} / max ${reference.summary.max} ms, ${reference.early} early (warm-up p99 ${reference.warmUp.p99} ms)`);
    const goal = target(hz, rate, reference.summary);
    for (const q of ['p50', 'p99', 'max'] as const) {
      figures.push({
        metric: `${rate}/s lateness ${q}`,
        unit: 'ms',
        product: round(product.summary[q], 1),
        reference: round(reference.summary[q], 1),
        ratio: compare(product.summary[q], reference.summary[q]),
        ...(q === 'p99' && goal ? { target: goal.text, pass: product.summary.p99 <= goal.limit } : {}),
      });
    }
    figures.push({ metric: `${rate}/s reached the provider before sendAt`, unit: 'count', product: product.early, reference: reference.early, target: '0', pass: product.early === 0 });
    notes.push(`${rate}/s warm-up second (not above): p99 ${product.warmUp.p99} ms product, ${reference.warmUp.p99} ms bare BullMQ; max ${product.warmUp.max} / ${reference.warmUp.max} ms`);
  }
  return {
    name: 'Lateness',
    hz,
    setup:
      `steady rate for ${seconds} s after a ${WARM_UP_SECONDS} s warm-up, on Redis hz ${hz}, one worker process each, both sending ` +
      'through Twilio to a local zero-latency fake; lateness = receipt at the fake − sendAt; reference: bare BullMQ worker (no due alarm), the same call',
    figures,
    notes,
  };
}

/** Messages falling due at a steady rate: how late each reaches its provider, at each `--lateness-hz`. */
export async function lateness(ctx: BenchContext): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  try {
    for (const hz of ctx.options.latenessHz) results.push(await atHz(ctx, hz));
  } finally {
    await ctx.redis.config('SET', 'hz', String(ctx.hz));
  }
  return results;
}
