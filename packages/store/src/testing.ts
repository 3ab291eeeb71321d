import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { ClusterNodeAddress } from '@punctual/shared';
import { freePort, type SpawnedRedis } from './embedded-redis.js';

/**
 * Test and benchmark helpers, not part of the product: `@punctual/store/testing`.
 */

/** Kills a spawned redis-server with SIGKILL, as a crash would, and waits until it is gone. */
export async function crashRedis(server: SpawnedRedis): Promise<void> {
  const child = server.process;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

/** A Redis Cluster of `redis-server` processes this process spawned (tests, `pnpm bench --cluster`). */
export interface LocalRedisCluster {
  nodes: ClusterNodeAddress[];
  /** Kills every node and removes their directory. */
  stop(): Promise<void>;
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Starts `masters` cluster-enabled `redis-server`s on free ports of 127.0.0.1 (no persistence),
 * joins them with `redis-cli --cluster create` (no replicas), and resolves once every node
 * reports cluster_state:ok.
 */
export async function startLocalRedisCluster({ masters = 3, hz = 100 }: { masters?: number; hz?: number } = {}): Promise<LocalRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'punctual-cluster-'));
  const children: ChildProcess[] = [];
  const probes: Redis[] = [];
  const stop = async () => {
    for (const probe of probes) probe.disconnect();
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
    for (let i = 0; i < masters; i++) ports.push(await freePort());
    for (const port of ports) {
      const args = ['--port', String(port), '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`)];
      args.push('--dir', dir, '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--daemonize', 'no', '--hz', String(hz));
      children.push(spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'inherit'] }));
      const probe = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => 50 });
      probe.on('error', () => {});
      probes.push(probe);
    }
    const answers = async () => (await Promise.all(probes.map((p) => p.ping().catch(() => null)))).every((r) => r === 'PONG');
    await waitUntil(answers, 'the cluster nodes did not start');
    const create = ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'];
    const created = spawnSync('redis-cli', create, { encoding: 'utf8' });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    const ok = async () => (await Promise.all(probes.map((p) => p.cluster('INFO').catch(() => '')))).every((info) => /cluster_state:ok/.test(String(info)));
    await waitUntil(ok, 'cluster_state did not become ok');
    for (const probe of probes) probe.disconnect();
    probes.length = 0;
    return { nodes: ports.map((port) => ({ host: '127.0.0.1', port })), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
