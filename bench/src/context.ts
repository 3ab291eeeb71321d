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
