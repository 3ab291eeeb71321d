import { Cluster, Redis } from 'ioredis';
import { startLocalRedisCluster } from '../packages/store/src/testing.js';

/** A three-master Redis Cluster of this test's own, on free ports. */
export interface TestRedisCluster {
  nodes: { host: string; port: number }[];
  /** `REDIS_CLUSTER_NODES` for the apps. */
  env: string;
  /** A client of the cluster (closed by `stop`). */
  client: Cluster;
  /** One plain connection per master, to look at each shard on its own (closed by `stop`). */
  masters: Redis[];
  /** Closes the connections, kills the nodes and removes their directory. */
  stop(): Promise<void>;
}

export async function startRedisCluster(): Promise<TestRedisCluster> {
  const local = await startLocalRedisCluster({ masters: 3 });
  const client = new Cluster(local.nodes);
  client.on('error', () => {});
  const masters = local.nodes.map(({ host, port }) => new Redis(port, host));
  const stop = async () => {
    client.disconnect();
    for (const master of masters) master.disconnect();
    await local.stop();
  };
  try {
    await new Promise((resolve, reject) => client.once('ready', resolve).once('error', reject));
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes: local.nodes, env: local.nodes.map((n) => `${n.host}:${n.port}`).join(','), client, masters, stop };
}
