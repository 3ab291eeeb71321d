import { spawn } from 'node:child_process';
import { afterAll, expect, it } from 'vitest';
import { freePort } from '../packages/store/src/index.js';
import { ROOT } from '../test-support/processes.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../test-support/redis.js';
import { twilioEnv } from '../test-support/providers.js';

const prefix = uniquePrefix('worker-production');
const SECRET = 'whsec_never_printed_4242';

afterAll(() => deletePrefix(prefix));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built worker with `env` until it exits, or until its start log is complete (then it
 * is stopped with SIGTERM, as an orchestrator would).
 */
async function runWorker(env: Record<string, string>): Promise<Run> {
  const child = spawn(process.execPath, ['apps/worker/dist/main.js'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', REDIS_URL: redisUrl(), QUEUE_PREFIX: prefix, WORKER_PORT: String(await freePort()), LOG_LEVEL: 'info', CALLBACK_SECRET: SECRET, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: Run = { code: null, stdout: '', stderr: '' };
  let stopping = false;
  child.stderr!.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', (code) => ((run.code = code), resolve())));
  child.stdout!.on('data', (chunk: Buffer) => {
    run.stdout += chunk.toString();
    if (!stopping && run.stdout.includes('"worker started"')) stopping = child.kill('SIGTERM');
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
  return run;
}

it('NODE_ENV=production without any provider: refuses to start, in one line naming the channels and the fix', async () => {
  const run = await runWorker({ NODE_ENV: 'production' });
  expect(run.code).not.toBe(0);
  expect(run.code).not.toBeNull();
  expect(run.stdout).toBe('');
  const lines = run.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^Invalid configuration: NODE_ENV=production and no provider is configured for channel sms \(set TWILIO_ACCOUNT_SID.*\), channel whatsapp \(set WHATSAPP_TOKEN.*\); configure one or set SIMULATOR=true/);
  expect(run.stderr).not.toContain(SECRET);
});

it('NODE_ENV=production with SMS through Twilio only: names the WhatsApp channel alone', async () => {
  const run = await runWorker({ NODE_ENV: 'production', ...twilioEnv('http://127.0.0.1:9') });
  expect(run.code).not.toBe(0);
  expect(run.stderr.trim()).toMatch(/^Invalid configuration: NODE_ENV=production and no provider is configured for channel whatsapp \(set WHATSAPP_TOKEN[^\n]*SIMULATOR=true[^\n]*$/);
  expect(run.stderr).not.toContain('channel sms');
  expect(run.stderr).not.toContain('twilio-test-token');
});

it('NODE_ENV=production with SIMULATOR=true: starts, and its start log names each channel provider', async () => {
  const run = await runWorker({ NODE_ENV: 'production', SIMULATOR: 'true', ...twilioEnv('http://127.0.0.1:9') });
  const lines = run.stdout.trim().split('\n').map((line) => JSON.parse(line));
  expect(lines.filter((l) => l.msg === 'channel provider').map((l) => [l.channel, l.provider])).toEqual([
    ['sms', 'twilio (From +15005550006)'],
    ['whatsapp', expect.stringMatching(/^simulator/)],
  ]);
  expect(lines.find((l) => l.msg.startsWith('SIMULATOR=true'))).toMatchObject({ level: 40, channels: ['whatsapp'] });
  expect(lines.some((l) => l.msg === 'worker started')).toBe(true);
  expect(run.code, run.stdout + run.stderr).toBe(0);
  expect(run.stdout + run.stderr).not.toContain(SECRET);
}, 60_000);
