/**
 * `pnpm bench`: the product's real API and worker processes measured beside a minimal
 * Fastify + BullMQ reference, against a redis-server of the benchmark's own. Progress goes to
 * stderr, the table to stdout, every figure to bench/results/latest.json.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { startRedisServer } from '@punctual/store';
import { parseOptions, type BenchOptions } from './options.js';
import { FakeProvider } from './fake-provider.js';
import { machine, progress, table, writeResults, type ScenarioResult } from './report.js';
import { ROOT } from './processes.js';
import { byOwner, profilesIn, topFrames } from './profile.js';
import type { BenchContext } from './context.js';
import { postThroughput } from './scenarios/post-throughput.js';
import { deliveryThroughput } from './scenarios/delivery-throughput.js';
import { lateness } from './scenarios/lateness.js';
import { atScale } from './scenarios/at-scale.js';
import { wsFanout } from './scenarios/ws-fanout.js';
import { clusterThroughput } from './scenarios/cluster.js';
import { pacing } from './scenarios/pacing.js';
import { batchScenario } from './scenarios/batch.js';
import { receiptsThroughput } from './scenarios/receipts.js';

/** A scenario runs its product side and its reference in the same run; it may report several results. */
type Scenario = (ctx: BenchContext) => Promise<ScenarioResult | ScenarioResult[]>;

/**
 * Every scenario, in running order, by its --only key. A new one (a batch against 1,000 single
 * POSTs, receipts per second against a minimal Fastify webhook handler, pacing lateness…) is a
 * module in scenarios/ with its own reference, its sizes in options.ts, and one line here.
 */
const SCENARIOS: [string, Scenario][] = [
  ['post', postThroughput],
  ['delivery', deliveryThroughput],
  ['lateness', lateness],
  ['scale', atScale],
  ['ws', wsFanout],
  ['pacing', pacing],
  ['receipts', receiptsThroughput],
  ['cluster', clusterThroughput],
  ['batch', batchScenario],
];

function sizes(o: BenchOptions) {
  return {
    postSeconds: o.postSeconds,
    postRounds: o.postRounds,
    connections: o.connections,
    deliveries: o.deliveries,
    latenessSeconds: o.latenessSeconds,
    latenessRates: o.latenessRates,
    latenessHz: o.latenessHz,
    scheduled: o.scheduled,
    recipients: o.recipients,
    samples: o.samples,
    wsClients: o.wsClients,
    batchItems: o.batchItems,
    batchRounds: o.batchRounds,
  };
}

async function main() {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  // Redis's defaults (hz 10 unless --hz, hash-max-listpack-value 64), not the embedded server's tuning
  const server = await startRedisServer({ hz: options.hz });
  const redis = new Redis(server.url);
  const provider = await new FakeProvider().start();
  const profileDir = options.profile ? join(ROOT, 'bench/results/profiles', startedAt.toISOString().replace(/[:.]/g, '-')) : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const redisVersion = /^redis_version:(.+)$/m.exec(await redis.info('server'))?.[1]?.trim() ?? 'unknown';
  const ctx: BenchContext = { options, redisUrl: server.url, redis, hz: options.hz, provider, profileDir };
  progress(`pnpm bench --${options.mode}: redis-server ${redisVersion} on ${server.url}, hz ${options.hz}, no persistence`);

  const results: ScenarioResult[] = [];
  let failed = false;
  try {
    for (const [key, run] of SCENARIOS) {
      if (options.only && !options.only.includes(key)) continue;
      if (key === 'cluster' && !options.cluster) continue;
      try {
        results.push(...[await run(ctx)].flat());
      } catch (err) {
        failed = true;
        const message = err instanceof Error ? err.message : String(err);
        progress(`${key} failed: ${message}`);
        results.push({ name: key, hz: options.hz, setup: '', figures: [], skipped: `error: ${message.split('\n')[0]}` });
      }
    }
  } finally {
    await provider.stop();
    redis.disconnect();
    await server.stop();
  }

  const document = {
    command: `pnpm bench ${process.argv.slice(2).join(' ')}`.trim(),
    mode: options.mode,
    startedAt: startedAt.toISOString(),
    durationSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    machine: machine(redisVersion),
    redis: { hz: options.hz, persistence: 'none (appendonly no, no RDB)', maxmemoryPolicy: 'noeviction', hashMaxListpackValue: 64 },
    sizes: sizes(options),
    scenarios: results,
  };
  writeResults(resolve(ROOT, options.out), document);
  console.log(table(results));
  for (const s of results) for (const note of [s.setup, ...(s.notes ?? [])].filter(Boolean)) console.log(`- ${s.name}: ${note}`);
  console.log(`\nmachine: ${JSON.stringify(document.machine)}; took ${document.durationSeconds} s; written to ${options.out}`);
  if (profileDir) {
    for (const file of profilesIn(profileDir)) console.log(`\n${file}\nby owner:\n${byOwner(file).join('\n')}\ntop functions:\n${topFrames(file).join('\n')}`);
  }
  process.exitCode = failed ? 1 : 0;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
