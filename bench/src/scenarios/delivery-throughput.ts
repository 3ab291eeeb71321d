import { compare, progress, type Figure, type ScenarioResult } from '../report.js';
import { commandCalls, commandsPerOp, emptyRedis, newPrefix, redisCpuMs, sleepUntil, until, type BenchContext, type CommandsPerOp } from '../context.js';
import { fill, productFiller, referenceFiller } from '../fill.js';
import { cpuMs, startProductWorker, startReferenceWorker, twilioEnv, type ReferenceWorkerMode, type Service } from '../processes.js';
import { round } from '../stats.js';

/** Time to write `count` messages before they fall due (assumes ≥ 3,000 writes/s). */
export const leadMs = (count: number) => 1500 + Math.ceil(count / 3);

export interface DeliveryRun {
  perSecond: number;
  /** CPU ms per 1,000 messages while they were delivered: the worker process's and Redis's. */
  workerCpu: number;
  redisCpu: number;
  /** Redis commands per delivery, from the due moment on. */
  commands: CommandsPerOp;
  /** ms between the last write and the due moment (negative: writes were still going on). */
  margin: number;
}

export function deliveredIndex(prefix: string): string {
  return `{${prefix}-p0}:t:default:delivered`;
}

/** Samples the worker's and Redis's CPU from the due moment until `done` resolves. */
async function cpuDuring(ctx: BenchContext, worker: Service, dueAt: number, count: number, done: () => Promise<void>) {
  await sleepUntil(dueAt);
  const [worker0, redis0, calls0] = [cpuMs(worker.child.pid!), await redisCpuMs(ctx.redis), await commandCalls(ctx.redis)];
  await done();
  const perThousand = 1000 / count;
  return {
    workerCpu: (cpuMs(worker.child.pid!) - worker0) * perThousand,
    redisCpu: ((await redisCpuMs(ctx.redis)) - redis0) * perThousand,
    commands: commandsPerOp(calls0, await commandCalls(ctx.redis), count),
  };
}

/** How the product's worker delivers: its in-process simulator, or Twilio at the fake provider. */
export type ProductVia = 'simulator' | 'provider';

async function productRun(ctx: BenchContext, count: number, via: ProductVia): Promise<DeliveryRun> {
  await emptyRedis(ctx);
  ctx.provider.reset();
  const prefix = newPrefix('delivery');
  const extra = via === 'provider' ? twilioEnv(ctx.provider) : {};
  const worker = await startProductWorker({ redisUrl: ctx.redisUrl, prefix, profileDir: ctx.profileDir, extra });
  const filler = productFiller(ctx.redisUrl, prefix, { textIsId: true });
  try {
    const dueAt = Date.now() + leadMs(count);
    await fill(filler.write, new Array<number>(count).fill(dueAt));
    const margin = dueAt - Date.now();
    const index = deliveredIndex(prefix);
    const cpu = await cpuDuring(ctx, worker, dueAt, count, () =>
      until(async () => (await ctx.redis.zcard(index)) >= count, 120_000 + count * 5, `${count} product deliveries`),
    );
    if (via === 'provider' && ctx.provider.receipts.length < count) throw new Error(`the provider got ${ctx.provider.receipts.length} of ${count} product messages`);
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
  const worker = await startReferenceWorker(ctx.redisUrl, prefix, mode, ctx.provider);
  const filler = referenceFiller(ctx.redisUrl, prefix, { textIsId: true });
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

function cpuFigures(label: string, product: DeliveryRun, reference: DeliveryRun): Figure[] {
  return [
    { metric: `worker CPU per 1,000 deliveries, ${label}`, unit: 'ms', product: round(product.workerCpu, 0), reference: round(reference.workerCpu, 0), ratio: compare(product.workerCpu, reference.workerCpu) },
    { metric: `Redis CPU per 1,000 deliveries, ${label}`, unit: 'ms', product: round(product.redisCpu, 0), reference: round(reference.redisCpu, 0), ratio: compare(product.redisCpu, reference.redisCpu) },
    { metric: `Redis commands per delivery, ${label}`, unit: 'count', product: round(product.commands.total, 1), reference: round(reference.commands.total, 1), ratio: compare(product.commands.total, reference.commands.total) },
  ];
}

/**
 * N messages due at the same moment: how fast one worker process gets through them. Twice: the
 * product with its simulator beside a bare worker that does nothing, and the product sending
 * through Twilio (at the fake provider) beside a bare worker making the same Twilio call.
 */
export async function deliveryThroughput(ctx: BenchContext): Promise<ScenarioResult> {
  const count = ctx.options.deliveries;
  progress(`delivery throughput: ${count.toLocaleString('en-US')} messages due at once`);
  const simulated = await productRun(ctx, count, 'simulator');
  progress(`  product worker, simulator (latency 0): ${Math.round(simulated.perSecond)} msg/s`);
  const noop = await referenceRun(ctx, count, 'noop');
  progress(`  bare BullMQ worker, no-op processor: ${Math.round(noop.perSecond)} msg/s`);
  const sent = await productRun(ctx, count, 'provider');
  progress(`  product worker, Twilio at the fake provider: ${Math.round(sent.perSecond)} msg/s`);
  const call = await referenceRun(ctx, count, 'provider');
  progress(`  bare BullMQ worker, the same Twilio call: ${Math.round(call.perSecond)} msg/s`);
  const fair = compare(simulated.perSecond, noop.perSecond);
  const same = compare(sent.perSecond, call.perSecond);
  const figures: Figure[] = [
    {
      metric: 'product (simulator) vs bare worker, no-op processor',
      unit: 'msg/s',
      product: round(simulated.perSecond, 0),
      reference: round(noop.perSecond, 0),
      ratio: fair,
      target: '≥ 0.7× ref',
      pass: fair !== null && fair >= 0.7,
    },
    {
      metric: 'product (Twilio) vs bare worker, same Twilio call',
      unit: 'msg/s',
      product: round(sent.perSecond, 0),
      reference: round(call.perSecond, 0),
      ratio: same,
      target: '≥ 1× ref',
      pass: same !== null && same >= 1,
    },
    ...cpuFigures('simulator vs no-op', simulated, noop),
    ...cpuFigures('Twilio vs same call', sent, call),
  ];
  const notes = [
    `Redis commands per delivery, product (simulator): ${simulated.commands.detail}`,
    `Redis commands per delivery, bare no-op: ${noop.commands.detail}`,
    `Redis commands per delivery, product (Twilio): ${sent.commands.detail}`,
    `Redis commands per delivery, bare + Twilio call: ${call.commands.detail}`,
  ];
  if ([simulated, noop, sent, call].some((r) => r.margin < 0)) notes.push('some writes were still going on when the messages fell due');
  return {
    name: 'Delivery throughput',
    hz: ctx.hz,
    setup:
      `${count} messages due at one moment, one worker process each (concurrency 50); product: SIMULATED_LATENCY_MS=0, or Twilio ` +
      'at a local zero-latency fake; bare worker: BullMQ, keep-nothing, no-op or the same Twilio call (undici) from the job data',
    figures,
    notes,
  };
}
