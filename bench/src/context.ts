import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { BenchOptions } from './options.js';
import type { FakeProvider } from './fake-provider.js';

/** What every scenario gets: the options, the run's own Redis, the fake provider. */
export interface BenchContext {
  options: BenchOptions;
  redisUrl: string;
  /** An admin connection to the run's Redis (INFO, FLUSHALL, reading results). */
  redis: Redis;
  hz: number;
  provider: FakeProvider;
  /** Set with --profile: where the product's processes write their CPU profiles. */
  profileDir?: string;
}

export function newPrefix(name: string): string {
  return `bench-${name}-${randomBytes(3).toString('hex')}`;
}

/** Each scenario starts from an empty Redis: the benchmark's redis-server is its own. */
export async function emptyRedis(ctx: BenchContext): Promise<void> {
  await ctx.redis.flushall();
}

export async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
}

/** CPU time Redis used so far (user + system), in ms. */
export async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const read = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1]);
  return (read('used_cpu_user') + read('used_cpu_sys')) * 1000;
}

export const sleepUntil = (at: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));

/** Resolves when `check` returns true, polling every `everyMs`; rejects after `timeoutMs`. */
export async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Calls per command so far (INFO commandstats: commands run inside scripts and MULTI included). */
export async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const match of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1]!, Number(match[2]));
  return calls;
}

export interface CommandsPerOp {
  /** Every command Redis ran, per operation. */
  total: number;
  /** Per operation, most first, e.g. "evalsha 2, zadd 4.0". */
  detail: string;
}

/** The commands `ops` operations cost, from snapshots before and after (INFO itself left out). */
export function commandsPerOp(before: Map<string, number>, after: Map<string, number>, ops: number): CommandsPerOp {
  const delta = [...after.entries()]
    .filter(([name]) => name !== 'info')
    .map(([name, calls]) => [name, (calls - (before.get(name) ?? 0)) / ops] as const)
    .filter(([, perOp]) => perOp >= 0.005)
    .sort((a, b) => b[1] - a[1]);
  return {
    total: delta.reduce((sum, [, perOp]) => sum + perOp, 0),
    detail: delta.map(([name, perOp]) => `${name} ${Number(perOp.toFixed(2))}`).join(', '),
  };
}

/** Sums per-round command deltas: the rounds of two sides alternate on one server. */
export function addCalls(into: Map<string, number>, before: Map<string, number>, after: Map<string, number>): void {
  for (const [name, calls] of after) into.set(name, (into.get(name) ?? 0) + calls - (before.get(name) ?? 0));
}
