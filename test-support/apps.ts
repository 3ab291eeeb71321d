/** Builds the real API and worker of a test, on the test's own key prefix. */
import { pino } from 'pino';
import { buildApp } from '../apps/api/src/app.js';
import { loadConfig as loadApiConfig } from '../apps/api/src/config.js';
import { loadConfig as loadWorkerConfig } from '../apps/worker/src/config.js';
import { startDeliveryWorker } from '../apps/worker/src/worker.js';
import type { ChannelRegistry } from '../apps/worker/src/channels/registry.js';
import { redisUrl } from './redis.js';

export async function buildTestApp(prefix: string, env: Record<string, string> = {}, url = redisUrl()) {
  const config = loadApiConfig({ QUEUE_PREFIX: prefix, LOG_LEVEL: 'silent', ...env });
  return buildApp({ config, redisUrl: url, logger: false });
}

export async function startTestWorker(
  prefix: string,
  env: Record<string, string> = {},
  options: { channels?: ChannelRegistry; url?: string } = {},
) {
  const config = loadWorkerConfig({
    QUEUE_PREFIX: prefix,
    SIMULATED_LATENCY_MS: '0',
    RECONCILE_INTERVAL_MS: '60000',
    ...env,
  });
  return startDeliveryWorker({ config, redisUrl: options.url ?? redisUrl(), log: pino({ level: 'silent' }), channels: options.channels });
}
