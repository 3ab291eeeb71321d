import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

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
