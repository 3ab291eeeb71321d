import closeWithGrace from 'close-with-grace';
import { pino } from 'pino';
import { CHANNELS, ConfigError } from '@punctual/shared';
import { NoRedisFound, configuredRedisTarget, describeRedisTarget, resolveRedis } from '@punctual/store';
import { loadConfig } from './config.js';
import { assertProvidersConfigured, simulatedChannels } from './channels/registry.js';
import { SAFE_SERIALIZERS } from './log-redaction.js';
import { lockDurationFor, startDeliveryWorker } from './worker.js';
import { startHealthServer } from './health-server.js';

async function main() {
  const config = loadConfig();
  assertProvidersConfigured(config);
  const log = pino({ level: config.logLevel, base: { service: 'worker' }, serializers: SAFE_SERIALIZERS });
  const { target: redis, embedded } = await resolveRedis(configuredRedisTarget(config));
  const worker = await startDeliveryWorker({ config, redis, log });
  const health = await startHealthServer(worker.redis, config.port, worker.metrics);
  for (const channel of CHANNELS) log.info({ channel, provider: worker.channels.get(channel)?.name }, 'channel provider');
  const simulated = simulatedChannels(config);
  if (config.nodeEnv === 'production' && simulated.length > 0) log.warn({ channels: simulated }, 'SIMULATOR=true: these channels are simulated, nothing is really sent');
  const { secret, tenantSecrets } = config.callbacks;
  if (tenantSecrets.size > 0) log.info({ tenants: [...tenantSecrets.keys()] }, 'callbacks of these tenants are signed with their own secret (CALLBACK_SECRETS)');
  if (!secret) {
    log.warn(tenantSecrets.size > 0
      ? 'CALLBACK_SECRET is unset: callbacks of tenants not in CALLBACK_SECRETS are sent without an X-Signature header'
      : 'CALLBACK_SECRET is unset: callbacks are sent without an X-Signature header');
  }
  if (config.callbacks.allowPrivate) log.warn('CALLBACK_ALLOW_PRIVATE=true: callbacks may reach private and loopback addresses');
  log.info(
    {
      redis: describeRedisTarget(redis),
      partitions: config.partitions,
      concurrency: config.concurrency,
      port: config.port,
      providerTimeoutMs: config.providerTimeoutMs,
      lockMs: lockDurationFor(config.providerTimeoutMs),
      callbackTimeoutMs: config.callbacks.timeoutMs,
      callbackTenantConcurrency: config.callbacks.tenantConcurrency,
    },
    'worker started',
  );

  closeWithGrace({ delay: 15_000 }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'closing after an error');
    else log.info({ signal }, 'closing: finishing in-flight deliveries');
    await new Promise((resolve) => health.close(resolve));
    await worker.close();
    await embedded?.stop();
  });
}

main().catch((err: unknown) => {
  const message = err instanceof ConfigError || err instanceof NoRedisFound
    ? err.message
    : `worker failed to start: ${err instanceof Error ? err.message : String(err)}`;
  console.error(message);
  process.exit(1);
});
