import closeWithGrace from 'close-with-grace';
import { ConfigError } from '@punctual/shared';
import { NoRedisFound, configuredRedisTarget, resolveRedis } from '@punctual/store';
import { buildApp } from './app.js';
import { loadConfig } from './config.js';

async function main() {
  const config = loadConfig();
  const { target, embedded } = await resolveRedis(configuredRedisTarget(config));
  const app = await buildApp({ config, redis: target });
  if (embedded) app.log.info({ redis: embedded.url }, 'REDIS_URL unset: using the embedded default');

  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'closing after an error');
    else app.log.info({ signal }, 'closing');
    await app.close();
    await embedded?.stop();
  });
  await app.listen({ port: config.port, host: config.host });
}

main().catch((err: unknown) => {
  const message = err instanceof ConfigError || err instanceof NoRedisFound
    ? err.message
    : `api failed to start: ${err instanceof Error ? err.message : String(err)}`;
  console.error(message);
  process.exit(1);
});
