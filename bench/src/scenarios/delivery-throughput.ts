import { compare, progress, type Figure, type ScenarioResult } from '../report.js';
import { emptyRedis, newPrefix, redisCpuMs, sleepUntil, until, type BenchContext } from '../context.js';
import { fill, productFiller, referenceFiller } from '../fill.js';
import { cpuMs, startProductWorker, startReferenceWorker, type ReferenceWorkerMode, type Service } from '../processes.js';
import { round } from '../stats.js';

/** Time to write `count` messages before they fall due (assumes ≥ 3,000 writes/s). */
export const leadMs = (count: number) => 1500 + Math.ceil(count / 3);

export interface DeliveryRun {
  perSecond: number;
  /** CPU ms per 1,000 messages while they were delivered: the worker process's and Redis's. */
  workerCpu: number;
  redisCpu: number;
  /** ms between the last write and the due moment (negative: writes were still going on). */
  margin: number;
}

export function deliveredIndex(prefix: string): string {
  return `{${prefix}-p0}:t:default:delivered`;
}

/** Samples the worker's and Redis's CPU from the due moment until `done` resolves. */
async function cpuDuring(ctx: BenchContext, worker: Service, dueAt: number, count: number, done: () => Promise<void>) {
  await sleepUntil(dueAt);
  const [worker0, redis0] = [cpuMs(worker.child.pid!), await redisCpuMs(ctx.redis)];
  await done();
  const perThousand = 1000 / count;
  return {
    workerCpu: (cpuMs(worker.child.pid!) - worker0) * perThousand,
    redisCpu: ((await redisCpuMs(ctx.redis)) - redis0) * perThousand,
  };
}

async function productRun(ctx: BenchContext, count: number): Promise<DeliveryRun> {
  await emptyRedis(ctx);
  const prefix = newPrefix('delivery');
  const worker = await startProductWorker({ redisUrl: ctx.redisUrl, prefix, profileDir: ctx.profileDir });
  const filler = productFiller(ctx.redisUrl, prefix);
  try {
    const dueAt = Date.now() + leadMs(count);
    await fill(filler.write, new Array<number>(count).fill(dueAt));
    const margin = dueAt - Date.now();
    const index = deliveredIndex(prefix);
    const cpu = await cpuDuring(ctx, worker, dueAt, count, () =>
      until(async () => (await ctx.redis.zcard(index)) >= count, 120_000 + count * 5, `${count} product deliveries`),
    );
    const last = Number((await ctx.redis.zrange(index, -1, -1, 'WITHSCORES'))[1]);
    return { perSecond: count / Math.max(0.001, (last - dueAt) / 1000), margin, ...cpu };
  } finally {
    await filler.close();
    await worker.stop();
  }
}

async function referenceRun(ctx: BenchContext, count: number, mode: ReferenceWorkerMode): Promise<DeliveryRun> {
  await emptyRedis(ctx);
  ctx.provider.reset();
  const prefix = newPrefix(`delivery-ref-${mode}`);
  const worker = await startReferenceWorker(ctx.redisUrl, prefix, mode, ctx.provider.url);
  const filler = referenceFiller(ctx.redisUrl, prefix);
  try {
    const dueAt = Date.now() + leadMs(count);
    await fill(filler.write, new Array<number>(count).fill(dueAt));
    const margin = dueAt - Date.now();
    const cpu = await cpuDuring(ctx, worker, dueAt, count, () =>
      until(() => worker.progress().completed >= count, 120_000 + count * 5, `${count} reference (${mode}) deliveries`),
    );
    return { perSecond: count / Math.max(0.001, (worker.progress().lastAt - dueAt) / 1000), margin, ...cpu };
  } finally {
    await filler.close();
    await worker.stop();
  }
}

/** N messages due at the same moment: how fast one worker process gets through them. */
export async function deliveryThroughput(ctx: BenchContext): Promise<ScenarioResult> {
  const count = ctx.options.deliveries;
  progress(`delivery throughput: ${count.toLocaleString('en-US')} messages due at once`);
  const product = await productRun(ctx, count);
  progress(`  product worker (simulator, latency 0): ${Math.round(product.perSecond)} msg/s`);
  const noop = await referenceRun(ctx, count, 'noop');
  progress(`  bare BullMQ worker, no-op processor: ${Math.round(noop.perSecond)} msg/s`);
  const http = await referenceRun(ctx, count, 'http');
  progress(`  bare BullMQ worker, HTTP call to a local fake provider: ${Math.round(http.perSecond)} msg/s`);
  const ratio = compare(product.perSecond, noop.perSecond);
  const figures: Figure[] = [
    {
      metric: 'vs bare worker, no-op processor (fair)',
      unit: 'msg/s',
      product: round(product.perSecond, 0),
      reference: round(noop.perSecond, 0),
      ratio,
      target: '≥ 0.7× ref',
      pass: ratio !== null && ratio >= 0.7,
    },
    {
      metric: 'vs bare worker + HTTP to fake provider',
      unit: 'msg/s',
      product: round(product.perSecond, 0),
      reference: round(http.perSecond, 0),
      ratio: compare(product.perSecond, http.perSecond),
      note: 'the product calls its in-process simulator, not HTTP: context only',
    },
  ];
  for (const [label, run] of [['product', product], ['no-op reference', noop], ['HTTP reference', http]] as const) {
    figures.push({ metric: `CPU per 1,000 deliveries, ${label}`, unit: 'ms', product: round(run.workerCpu, 0), reference: round(run.redisCpu, 0), note: 'product column: worker process; reference column: Redis' });
  }
  const notes = [product, noop, http].some((r) => r.margin < 0) ? ['some writes were still going on when the messages fell due'] : [];
  return {
    name: 'Delivery throughput',
    hz: ctx.hz,
    setup: `${count} messages due at one moment, one worker process each (concurrency 50); product: SIMULATED_LATENCY_MS=0`,
    figures,
    notes,
  };
}
