import { pathToFileURL } from 'node:url';
import { ConfigError } from '@punctual/shared';
import { ApiKeyStore, Keyspace, configuredRedisTarget, connectRedis, createRedisConnection, resolveRedis } from '@punctual/store';
import { loadConfig } from '../config.js';

const USAGE = `Usage: pnpm keys <command>
  create <tenant>   creates an API key for a tenant and prints it (shown once, kept only as a hash)
  list              lists key ids, tenants and creation times (never the keys)
  revoke <key id>   revokes a key (API instances stop accepting it within seconds)`;

export interface CliOutput {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** Runs one command against a key store; returns the exit code. */
export async function runKeysCommand(store: ApiKeyStore, args: string[], io: CliOutput): Promise<number> {
  const [command, arg] = args;
  switch (command) {
    case 'create': {
      if (!arg) break;
      const { key, entry } = await store.create(arg);
      io.err(`Created ${entry.id} for tenant ${entry.tenant}. Store the key now: it is not shown again.`);
      io.out(key);
      return 0;
    }
    case 'list': {
      const entries = await store.list();
      if (entries.length === 0) io.err('No keys in the store (keys from API_KEYS or API_KEYS_FILE are not listed).');
      for (const e of entries) io.out(`${e.id}\t${e.tenant}\t${e.createdAt}`);
      return 0;
    }
    case 'revoke': {
      if (!arg) break;
      const entry = await store.revoke(arg);
      if (!entry) {
        io.err(`No key with id ${arg}`);
        return 1;
      }
      io.err(`Revoked ${entry.id} of tenant ${entry.tenant}.`);
      return 0;
    }
  }
  io.err(USAGE);
  return 2;
}

async function main(): Promise<number> {
  const config = loadConfig();
  // Same Redis as the API: REDIS_URL or REDIS_CLUSTER_NODES, else the embedded default (its AOF keeps what we write).
  const { target, embedded } = await resolveRedis(configuredRedisTarget(config));
  const redis = createRedisConnection(target, 'api');
  redis.on('error', () => {});
  try {
    await connectRedis(redis);
    const store = new ApiKeyStore(redis, new Keyspace({ prefix: config.queuePrefix, partitions: config.partitions }));
    return await runKeysCommand(store, process.argv.slice(2), {
      out: (line) => process.stdout.write(`${line}\n`),
      err: (line) => process.stderr.write(`${line}\n`),
    });
  } finally {
    await redis.quit().catch(() => redis.disconnect());
    await embedded?.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof ConfigError || err instanceof Error ? err.message : String(err));
      process.exit(1);
    },
  );
}
