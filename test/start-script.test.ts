import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { freePort } from '../packages/store/src/index.js';
import { FeedWatcher, deletePrefix, redisUrl, uniquePrefix } from '../test-support/redis.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const prefix = uniquePrefix('e2e-start');
afterAll(() => deletePrefix(prefix));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

it('pnpm start runs the API and a worker as two processes and stops both on SIGTERM', async () => {
  const port = await freePort();
  const feed = await FeedWatcher.start(prefix);
  const start = spawn(process.execPath, ['scripts/start.mjs'], {
    cwd: root,
    env: { ...process.env, REDIS_URL: redisUrl(), QUEUE_PREFIX: prefix, PORT: String(port), WORKER_PORT: String(await freePort()), SIMULATED_LATENCY_MS: '0', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listening = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Server listening') && output.includes('worker started')) resolve();
    };
    start.stdout.on('data', onData);
    start.stderr.on('data', onData);
    start.once('exit', (code) => reject(new Error(`start exited early (${code}): ${output}`)));
  });
  try {
    await listening;
    const children = execFileSync('pgrep', ['-P', String(start.pid)]).toString().trim().split('\n').map(Number);
    expect(children).toHaveLength(2);

    const res = await fetch(`http://127.0.0.1:${port}/scheduled`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ recipient: '5511999999999', message: 'Hi', sendAt: Date.now(), channel: 'sms' }),
    });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    await feed.waitFor('messageDelivered', id);

    const exited = new Promise<number | null>((resolve) => start.once('exit', (code) => resolve(code)));
    start.kill('SIGTERM');
    expect(await exited).toBe(0);
    for (const pid of children) expect(alive(pid)).toBe(false);
  } finally {
    if (start.exitCode === null) start.kill('SIGKILL');
    await feed.close();
  }
}, 90_000);
