import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildApp } from '../apps/api/src/app.js';
import { loadConfig as loadApiConfig } from '../apps/api/src/config.js';
import { loadConfig as loadWorkerConfig } from '../apps/worker/src/config.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../test-support/redis.js';

const read = (file: string) => readFileSync(fileURLToPath(new URL(`../${file}`, import.meta.url)), 'utf8');

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml'));
  const { redis, api, worker } = compose.services;

  it('runs Redis with AOF, noeviction, a volume and a health check', () => {
    const command = redis.command.join(' ');
    expect(command).toContain('--appendonly yes');
    expect(command).toContain('--appendfsync everysec');
    expect(command).toContain('--maxmemory-policy noeviction');
    expect(redis.volumes[0]).toMatch(/:\/data$/);
    expect(redis.healthcheck.test).toContain('ping');
  });

  it('starts the API and two workers once Redis is healthy, each with a health check', () => {
    for (const service of [api, worker]) {
      expect(service.depends_on.redis.condition).toBe('service_healthy');
      expect(service.environment.REDIS_URL).toBe('redis://redis:6379');
      expect(service.healthcheck.test.join(' ')).toContain('/health');
      expect(service.env_file).toEqual([{ path: '.env', required: false }]);
    }
    expect(api.ports[0]).toMatch(/:4000$/);
    expect(worker.deploy.replicas).toBe(2);
    expect([api.build.target, worker.build.target]).toEqual(['api', 'worker']);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  it('installs from the lockfile and runs as a non-root user', () => {
    expect(dockerfile).toContain('pnpm install --frozen-lockfile');
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^FROM runtime AS api$/m);
    expect(dockerfile).toMatch(/^FROM runtime AS worker$/m);
  });
});

/**
 * What each container gets on a fresh clone with no .env: the image's ENV lines, then the
 * service's `environment`, `${NAME:-default}` taken at its default.
 */
function containerEnv(service: 'api' | 'worker'): Record<string, string> {
  const env: Record<string, string> = {};
  let stage = '';
  for (const line of read('Dockerfile').split('\n')) {
    const from = /^FROM \S+ AS (\S+)$/.exec(line);
    if (from) stage = from[1]!;
    const set = /^ENV (\w+)=(\S+)$/.exec(line);
    if (set && (stage === 'runtime' || stage === service)) env[set[1]!] = set[2]!;
  }
  const environment = parse(read('docker-compose.yml')).services[service].environment as Record<string, string>;
  for (const [name, value] of Object.entries(environment)) env[name] = String(value).replace(/^\$\{\w+:-(.*)\}$/, '$1');
  return env;
}

describe('a first `docker compose up` (no .env)', () => {
  it('starts the API in production, never open: 401 until a key exists, and a log line saying how to add one', async () => {
    const env = containerEnv('api');
    expect(env).toMatchObject({ NODE_ENV: 'production', API_KEYS_REQUIRED: 'true' });
    const prefix = uniquePrefix('compose-api');
    const logs: string[] = [];
    const stream = new Writable({ write: (chunk, _e, done) => (logs.push(String(chunk)), done()) });
    const { REDIS_URL: _inCompose, ...rest } = env;
    const app = await buildApp({ config: loadApiConfig({ ...rest, QUEUE_PREFIX: prefix }), redis: { url: redisUrl() }, logger: stream });
    try {
      expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
      expect((await app.inject({ url: '/scheduled' })).statusCode).toBe(401);
      expect(logs.join('')).toContain('docker compose exec api node apps/api/dist/cli/keys.js create <tenant>');
    } finally {
      await app.close();
      await deletePrefix(prefix);
    }
  });

  it('configures the workers (simulator allowed for channels with no provider)', () => {
    const env = containerEnv('worker');
    expect(env).toMatchObject({ NODE_ENV: 'production', SIMULATOR: 'true' });
    expect(() => loadWorkerConfig(env)).not.toThrow();
  });

  it('is documented: the key command in README, every compose default in .env.example', () => {
    expect(read('README.md')).toContain('docker compose exec api node apps/api/dist/cli/keys.js create');
    const example = read('.env.example');
    for (const name of ['API_KEYS_REQUIRED', 'SIMULATOR', 'FAILED_KEY_LIMIT', 'TRUST_PROXY', 'WS_MAX_CLIENTS_PER_TENANT']) {
      expect(example).toMatch(new RegExp(`^# ${name}=`, 'm'));
    }
  });
});
