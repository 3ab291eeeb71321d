import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { discoverRedis, freePort, redisAnswers } from '../packages/store/src/index.js';

const dataDir = mkdtempSync(join(tmpdir(), 'punctual-redis-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

it('spawns redis-server with its AOF under the data dir when nothing answers, and stops it', async () => {
  const port = await freePort();
  expect(await redisAnswers(`redis://127.0.0.1:${port}`)).toBe(false);
  const embedded = await discoverRedis(dataDir, port);
  try {
    expect(embedded.url).toBe(`redis://127.0.0.1:${port}`);
    expect(await redisAnswers(embedded.url)).toBe(true);
    expect(existsSync(dataDir)).toBe(true);
    expect(readdirSync(dataDir).join(',')).toMatch(/appendonly/);
    // a second process finds the running one and does not spawn another
    const found = await discoverRedis(dataDir, port);
    await found.stop();
    expect(await redisAnswers(embedded.url)).toBe(true);
  } finally {
    await embedded.stop();
  }
  expect(await redisAnswers(embedded.url)).toBe(false);
});
