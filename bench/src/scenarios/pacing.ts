import { PACING_BURST_MS } from '@punctual/store';
import { compare, progress, type Figure, type ScenarioResult } from '../report.js';
import { emptyRedis, newPrefix, until, type BenchContext } from '../context.js';
import { fill, productFiller } from '../fill.js';
import { startProductWorker, type Service } from '../processes.js';
import { round, summarize, type Summary } from '../stats.js';

/** Messages due per second in both runs: the contract's lateness load. */
const DUE_PER_SECOND = 1000;
/** A rate above the load (pacing must cost nothing) and one below it (pacing binds). */
const RATE_ABOVE = 2000;
const RATE_BELOW = 500;

interface PacedRun {
  lateness: Summary;
  /** punctual_pacing_wait_seconds of the worker: how many waits it observed, and their mean (ms). */
  waits: { count: number; meanMs: number };
  /** Messages per second handed over, first due to last delivered. */
  throughput: number;
}

const deliveredIndex = (prefix: string) => `{${prefix}-p0}:t:default:delivered`;

function dueTimes(count: number): number[] {
  const start = Date.now() + 1500 + Math.ceil(count / 3);
  return Array.from({ length: count }, (_, i) => start + Math.floor((i * 1000) / DUE_PER_SECOND));
}

/** The worker's pacing histogram for SMS, read from its /metrics. */
async function pacingWaits(worker: Service): Promise<{ count: number; meanMs: number }> {
  const text = await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name}\\{channel="sms"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  const count = read('punctual_pacing_wait_seconds_count');
  return { count, meanMs: count === 0 ? 0 : (read('punctual_pacing_wait_seconds_sum') * 1000) / count };
}

/** One SMS segment per message, `seconds` of DUE_PER_SECOND, the worker with SMS_RATE_PER_SECOND = `rate` (0 = unset). */
async function run(ctx: BenchContext, seconds: number, rate: number): Promise<PacedRun> {
  await emptyRedis(ctx);
  const prefix = newPrefix('pacing');
  const extra: Record<string, string> = rate > 0 ? { SMS_RATE_PER_SECOND: String(rate) } : {};
  const worker = await startProductWorker({ redisUrl: ctx.redisUrl, prefix, profileDir: ctx.profileDir, extra });
  const filler = productFiller(ctx.redisUrl, prefix);
  try {
    const count = DUE_PER_SECOND * seconds;
    const sendAts = dueTimes(count);
    const { ids } = await fill(filler.write, sendAts);
    const index = deliveredIndex(prefix);
    const drainMs = rate > 0 ? (count * 1000) / Math.min(rate, DUE_PER_SECOND) : seconds * 1000;
    await until(async () => (await ctx.redis.zcard(index)) >= count, drainMs + 120_000, `${count} paced deliveries`, 200);
    const sendAtOf = new Map(ids.map((id, i) => [id, sendAts[i]!]));
    const delivered = await ctx.redis.zrange(index, 0, -1, 'WITHSCORES');
    const lateness: number[] = [];
    let last = 0;
    for (let i = 0; i < delivered.length; i += 2) {
      const at = Number(delivered[i + 1]);
      lateness.push(at - sendAtOf.get(delivered[i]!)!);
      last = Math.max(last, at);
    }
    return { lateness: summarize(lateness), waits: await pacingWaits(worker), throughput: count / ((last - sendAts[0]!) / 1000) };
  } finally {
    await filler.close();
    await worker.stop();
  }
}

/** The waits a perfect pacer gives the same load: GCRA at `rate` with the product's burst. */
function theoreticalWaits(count: number, rate: number): Summary {
  const perUnit = 1000 / rate;
  let tat = 0;
  const waits: number[] = [];
  for (let i = 0; i < count; i++) {
    const due = (i * 1000) / DUE_PER_SECOND;
    const slot = Math.max(due, tat - PACING_BURST_MS);
    tat = Math.max(tat, due) + perUnit;
    waits.push(slot - due);
  }
  return summarize(waits);
}

/**
 * What pacing costs: lateness at 1,000 due/s with SMS_RATE_PER_SECOND above the load against
 * the same run without pacing (should be the same), and with the rate binding, the waits against
 * those of a perfect pacer of the same rate.
 */
export async function pacing(ctx: BenchContext): Promise<ScenarioResult> {
  const seconds = Math.max(2, Math.round(ctx.options.latenessSeconds / 3));
  const count = DUE_PER_SECOND * seconds;
  const figures: Figure[] = [];

  progress(`pacing: ${DUE_PER_SECOND} due/s for ${seconds} s, without pacing and at ${RATE_ABOVE}/s, twice each (ABBA)`);
  // On a shared machine one run can be disturbed: each side's better run, in ABBA order so drift cancels
  const runs: PacedRun[] = [];
  for (const rate of [0, RATE_ABOVE, RATE_ABOVE, 0]) runs.push(await run(ctx, seconds, rate));
  const better = (a: PacedRun, b: PacedRun) => (a.lateness.p99 <= b.lateness.p99 ? a : b);
  const unpaced = better(runs[0]!, runs[3]!);
  const above = better(runs[1]!, runs[2]!);
  progress(`  unpaced p50 ${unpaced.lateness.p50} / p99 ${unpaced.lateness.p99} ms; paced at ${RATE_ABOVE}/s p50 ${above.lateness.p50} / p99 ${above.lateness.p99} ms`);
  for (const q of ['p50', 'p99', 'max'] as const) {
    figures.push({
      metric: `rate ${RATE_ABOVE}/s > ${DUE_PER_SECOND} due/s: lateness ${q} (reference: no rate)`,
      unit: 'ms',
      product: round(above.lateness[q], 1),
      reference: round(unpaced.lateness[q], 1),
      ratio: compare(above.lateness[q], unpaced.lateness[q]),
      // costs nothing: within the noise of the run without a rate
      ...(q === 'p99' ? { target: '≤ max(1.25×, +5 ms)', pass: above.lateness.p99 <= Math.max(1.25 * unpaced.lateness.p99, unpaced.lateness.p99 + 5) } : {}),
    });
  }
  figures.push({ metric: `rate ${RATE_ABOVE}/s: mean pacing wait`, unit: 'ms', product: round(above.waits.meanMs, 2), note: `${above.waits.count} waits observed` });

  progress(`pacing: ${DUE_PER_SECOND} due/s for ${seconds} s at ${RATE_BELOW}/s (binding)`);
  const below = await run(ctx, seconds, RATE_BELOW);
  const ideal = theoreticalWaits(count, RATE_BELOW);
  progress(`  lateness p50 ${below.lateness.p50} / p99 ${below.lateness.p99} ms; a perfect pacer waits p50 ${round(ideal.p50)} / p99 ${round(ideal.p99)} ms`);
  for (const q of ['p50', 'p99', 'max'] as const) {
    figures.push({
      metric: `rate ${RATE_BELOW}/s < ${DUE_PER_SECOND} due/s: lateness ${q} (reference: perfect pacer's wait)`,
      unit: 'ms',
      product: round(below.lateness[q], 1),
      reference: round(ideal[q], 1),
      ratio: compare(below.lateness[q], ideal[q]),
    });
  }
  figures.push({
    metric: `rate ${RATE_BELOW}/s: mean wait in punctual_pacing_wait_seconds (reference: perfect pacer)`,
    unit: 'ms',
    product: round(below.waits.meanMs, 1),
    reference: round(ideal.mean, 1),
    ratio: compare(below.waits.meanMs, ideal.mean),
  });
  figures.push({
    metric: `rate ${RATE_BELOW}/s: messages handed over per second`,
    unit: 'msg/s',
    product: round(below.throughput, 1),
    reference: RATE_BELOW,
    ratio: compare(below.throughput, RATE_BELOW),
    target: `≤ ${RATE_BELOW} (+ burst)`,
    pass: below.throughput <= RATE_BELOW * (1 + PACING_BURST_MS / 1000 / seconds) + 1,
  });
  return {
    name: 'Pacing',
    hz: ctx.hz,
    setup:
      `${count} one-segment SMS due at ${DUE_PER_SECOND}/s, one worker process (simulator latency 0); lateness = deliveredAt − sendAt; ` +
      `SMS_RATE_PER_SECOND unset vs ${RATE_ABOVE} (not binding; the better of two runs each, ABBA), ` +
      `then ${RATE_BELOW} (binding: the queue grows by ${DUE_PER_SECOND - RATE_BELOW}/s)`,
    figures,
  };
}
