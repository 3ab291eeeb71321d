import { Cluster } from 'ioredis';
import { Keyspace } from '@punctual/store';
import { startLocalRedisCluster, type LocalRedisCluster } from '@punctual/store/testing';
import { progress, type Figure, type ScenarioResult } from '../report.js';
import { newPrefix, sleepUntil, until, type BenchContext } from '../context.js';
import { fill, storeFiller } from '../fill.js';
import { cpuMs, startProductWorker, type Service } from '../processes.js';
import { round } from '../stats.js';
import { leadMs } from './delivery-throughput.js';

const PARTITION_COUNTS = [1, 6];
/** Worker processes per run: one, then two (each consumes every partition). */
const WORKER_COUNTS = [1, 2];
async function deliveredSoFar(client: Cluster, keyspace: Keyspace): Promise<{ count: number; lastAt: number }> {
  const indexes = keyspace.allTags().map((tag) => keyspace.index(tag, 'default', 'delivered'));
  const [counts, lasts] = await Promise.all([
    Promise.all(indexes.map((key) => client.zcard(key))),
    Promise.all(indexes.map((key) => client.zrange(key, -1, -1, 'WITHSCORES'))),
  ]);
  return { count: counts.reduce((a, b) => a + b, 0), lastAt: Math.max(0, ...lasts.map((l) => Number(l[1] ?? 0))) };
}

interface Run {
  partitions: number;
  workers: number;
}

async function run(ctx: BenchContext, cluster: LocalRedisCluster, client: Cluster, { partitions, workers: workerCount }: Run, count: number) {
  const prefix = newPrefix(`cluster-p${partitions}`);
  const keyspace = new Keyspace({ prefix, partitions });
  const workers: Service[] = [];
  const filler = storeFiller(client, keyspace);
  try {
    for (let i = 0; i < workerCount; i++) {
      workers.push(
        await startProductWorker({
          // REDIS_URL empty = unset: the worker takes the cluster
          redisUrl: '',
          prefix,
          profileDir: ctx.profileDir,
          extra: { REDIS_CLUSTER_NODES: cluster.nodes.map((n) => `${n.host}:${n.port}`).join(','), QUEUE_PARTITIONS: String(partitions) },
        }),
      );
    }
    const dueAt = Date.now() + leadMs(count) * 2;
    await fill(filler.write, new Array<number>(count).fill(dueAt));
    await sleepUntil(dueAt);
    const workerCpu = () => workers.reduce((sum, w) => sum + cpuMs(w.child.pid!), 0);
    const cpu0 = workerCpu();
    await until(async () => (await deliveredSoFar(client, keyspace)).count >= count, 120_000 + count * 5, `${count} deliveries on ${partitions} partition(s)`);
    const { lastAt } = await deliveredSoFar(client, keyspace);
    return { perSecond: count / Math.max(0.001, (lastAt - dueAt) / 1000), workerCpu: ((workerCpu() - cpu0) * 1000) / count };
  } finally {
    await filler.close();
    await Promise.all(workers.map((w) => w.stop()));
  }
}

/**
 * `pnpm bench --cluster`: N messages due at one moment on a local three-master Redis Cluster,
 * delivered by one and by two worker processes, with QUEUE_PARTITIONS 1 (every key on one shard)
 * and 6 (spread over the three).
 */
export async function clusterThroughput(ctx: BenchContext): Promise<ScenarioResult> {
  const count = ctx.options.deliveries;
  const cluster = await startLocalRedisCluster({ masters: 3, hz: ctx.hz });
  const client = new Cluster(cluster.nodes, { enableAutoPipelining: true });
  client.on('error', () => {});
  const figures: Figure[] = [];
  try {
    await new Promise((resolve, reject) => client.once('ready', resolve).once('error', reject));
    progress(`cluster delivery throughput: ${count.toLocaleString('en-US')} messages due at once, 3 masters`);
    for (const workers of WORKER_COUNTS) {
      for (const partitions of PARTITION_COUNTS) {
        const result = await run(ctx, cluster, client, { partitions, workers }, count);
        const label = `QUEUE_PARTITIONS=${partitions}, ${workers} worker process${workers > 1 ? 'es' : ''}`;
        progress(`  ${label}: ${Math.round(result.perSecond)} msg/s`);
        figures.push(
          { metric: `delivery, ${label}`, unit: 'msg/s', product: round(result.perSecond, 0) },
          { metric: `worker CPU per 1,000 deliveries, ${label}`, unit: 'ms', product: round(result.workerCpu, 0) },
        );
      }
    }
  } finally {
    client.disconnect();
    await cluster.stop();
  }
  return {
    name: 'Delivery throughput on a Redis Cluster',
    hz: ctx.hz,
    setup: `${count} messages due at one moment, local 3-master cluster (no replicas), 1 or 2 worker processes (concurrency 50 per partition each); SIMULATED_LATENCY_MS=0`,
    figures,
  };
}
