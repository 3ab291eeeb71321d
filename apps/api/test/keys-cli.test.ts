import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { ApiKeyStore, Keyspace, hashApiKey } from '@punctual/store';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { runKeysCommand } from '../src/cli/keys.js';
import { bearer, buildTestApi } from './helpers.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../../', import.meta.url));
const prefix = uniquePrefix('keys-cli');
let redis: Redis;
let store: ApiKeyStore;

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

beforeAll(async () => {
  redis = new Redis(redisUrl());
  store = new ApiKeyStore(redis, new Keyspace({ prefix, partitions: 1 }));
  // the spawned programs run the build, as `pnpm keys` and `pnpm start:api` do
  await run(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-b'], { cwd: root, timeout: 180_000 });
}, 200_000);
afterAll(async () => {
  redis.disconnect();
  await deletePrefix(prefix);
});

describe('pnpm keys', () => {
  it('creates a key shown once, lists it without the key, revokes it by id', async () => {
    const created = capture();
    expect(await runKeysCommand(store, ['create', 'acme'], created.io)).toBe(0);
    const [key] = created.out;
    expect(key).toMatch(/^pk_[A-Za-z0-9_-]{32}$/);
    const entry = await store.find(hashApiKey(key!));
    expect(entry).toMatchObject({ tenant: 'acme', id: expect.stringMatching(/^key_/) });

    const listed = capture();
    expect(await runKeysCommand(store, ['list'], listed.io)).toBe(0);
    expect(listed.out.join('\n')).toContain(`${entry!.id}\tacme\t`);
    expect([...listed.out, ...listed.err].join('\n')).not.toContain(key);

    const app = await buildTestApi(prefix, {});
    try {
      expect((await app.inject({ url: '/scheduled', headers: bearer(key!) })).statusCode).toBe(200);
    } finally {
      await app.close();
    }

    const revoked = capture();
    expect(await runKeysCommand(store, ['revoke', entry!.id], revoked.io)).toBe(0);
    expect(await store.find(hashApiKey(key!))).toBeNull();
    expect(await runKeysCommand(store, ['revoke', entry!.id], capture().io)).toBe(1);
  });

  it('explains its usage on a missing or unknown command', async () => {
    for (const args of [[], ['create'], ['rotate', 'x']]) {
      const c = capture();
      expect(await runKeysCommand(store, args, c.io)).toBe(2);
      expect(c.err.join('\n')).toContain('Usage: pnpm keys');
    }
    await expect(runKeysCommand(store, ['create', 'bad tenant'], capture().io)).rejects.toThrow(/tenant must match/);
  });

  it('works as the built program, against REDIS_URL and QUEUE_PREFIX', async () => {
    const env = { ...process.env, REDIS_URL: redisUrl(), QUEUE_PREFIX: prefix };
    const { stdout, stderr } = await run(process.execPath, ['apps/api/dist/cli/keys.js', 'create', 'spawned'], { cwd: root, env });
    const key = stdout.trim();
    expect(stderr).toContain('tenant spawned');
    expect((await store.find(hashApiKey(key)))?.tenant).toBe('spawned');
    const listed = await run(process.execPath, ['apps/api/dist/cli/keys.js', 'list'], { cwd: root, env });
    expect(listed.stdout).toContain('\tspawned\t');
  });
});

describe('starting the API in production', () => {
  it('exits 1 with one clear line when no API key is configured anywhere', async () => {
    const emptyPrefix = uniquePrefix('keys-prod');
    const env = { ...process.env, REDIS_URL: redisUrl(), QUEUE_PREFIX: emptyPrefix, NODE_ENV: 'production', API_KEYS: '', API_KEYS_FILE: '' };
    const started = run(process.execPath, ['apps/api/dist/server.js'], { cwd: root, env, timeout: 30_000 });
    const failure = await started.then(
      () => null,
      (err: { code?: number; stderr?: string }) => err,
    );
    expect(failure?.code).toBe(1);
    const lines = failure!.stderr!.trim().split('\n');
    expect(lines[lines.length - 1]).toMatch(/^No API keys configured: set API_KEYS or API_KEYS_FILE/);
    await deletePrefix(emptyPrefix);
  });
});
