import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { freePort } from '../packages/store/src/index.js';

/** A three-master Redis Cluster of this test's own, on free ports. */
export interface TestRedisCluster {
  nodes: { host: string; port: number }[];
  /** `REDIS_CLUSTER_NODES` for the apps. */
  env: string;
  /** A client of the cluster (the test closes it with `stop`). */
  client: Cluster;
  /** One plain connection per master, to look at each shard on its own. */
  masters: Redis[];
  stop(): Promise<void>;
}

const MASTERS = 3;

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Starts three `redis-server --cluster-enabled yes` on free ports, joins them with
 * `redis-cli --cluster create` (no replicas), and waits until every node says cluster_state:ok.
 */
export async function startRedisCluster(): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'punctual-cluster-'));
  const children: ChildProcess[] = [];
  const masters: Redis[] = [];
  let client: Cluster | undefined;
  const stop = async () => {
    client?.disconnect();
    for (const master of masters) master.disconnect();
    await Promise.all(
      children.map((child) => {
        if (child.exitCode !== null || child.signalCode !== null) return undefined;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        return exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ports: number[] = [];
    for (let i = 0; i < MASTERS; i++) ports.push(await freePort());
    for (const port of ports) {
      const child = spawn(
        'redis-server',
        ['--port', String(port), '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`),
          '--dir', dir, '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--daemonize', 'no', '--hz', '100'],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      );
      children.push(child);
      const master = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => 50 });
      master.on('error', () => {});
      masters.push(master);
    }
    await waitUntil(async () => (await Promise.all(masters.map((m) => m.ping().catch(() => null)))).every((r) => r === 'PONG'), 'redis-server nodes did not start');
    const created = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8' },
    );
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    const clusterOk = async () =>
      (await Promise.all(masters.map((m) => m.cluster('INFO').catch(() => '')))).every((info) => /cluster_state:ok/.test(String(info)));
    await waitUntil(clusterOk, 'cluster_state did not become ok');
    const nodes = ports.map((port) => ({ host: '127.0.0.1', port }));
    client = new Cluster(nodes);
    client.on('error', () => {});
    await new Promise((resolve, reject) => client!.once('ready', resolve).once('error', reject));
    return { nodes, env: nodes.map((n) => `${n.host}:${n.port}`).join(','), client, masters, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
