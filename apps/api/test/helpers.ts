import { Writable } from 'node:stream';
import type { Redis } from 'ioredis';
import { buildTestApp } from '../../../test-support/apps.js';
import { keysOfPrefix, redisUrl } from '../../../test-support/redis.js';

export const KEY_A = 'test-key-of-tenant-a-7f3c9a';
export const KEY_B = 'test-key-of-tenant-b-1d8e42';
/** Two tenants, as an operator would configure them. */
export const TWO_TENANTS = `tenant-a:${KEY_A},tenant-b:${KEY_B}`;

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** `buildTestApp`, with its log lines (debug and up) collected into `logs` when given; `url`: another Redis. */
export async function buildTestApi(prefix: string, env: Record<string, string> = {}, logs?: string[], url = redisUrl()) {
  if (!logs) return buildTestApp(prefix, env, url);
  const stream = new Writable({
    write(chunk, _encoding, done) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return buildTestApp(prefix, { LOG_LEVEL: 'debug', ...env }, url, stream);
}

export function newMessage(over: Record<string, unknown> = {}) {
  return { recipient: '5511999999999', message: 'hello', channel: 'sms', sendAt: Date.now() + 3_600_000, ...over };
}

/** Every key of a prefix with its serialized value: equal before and after = nothing changed. */
export async function fingerprint(redis: Redis, prefix: string): Promise<Map<string, string>> {
  const keys = (await keysOfPrefix(redis, prefix)).sort();
  const values = await Promise.all(keys.map((k) => redis.dumpBuffer(k)));
  return new Map(keys.map((k, i) => [k, values[i]?.toString('hex') ?? '']));
}
