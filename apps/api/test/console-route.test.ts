import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { TWO_TENANTS } from './helpers.js';

const prefix = uniquePrefix('console-route');
let dir: string;

async function buildWithConsole(root: string): Promise<FastifyInstance> {
  const config = loadConfig({ QUEUE_PREFIX: prefix, LOG_LEVEL: 'silent', API_KEYS: TWO_TENANTS });
  return buildApp({ config, redis: { url: redisUrl() }, logger: false, consoleDir: root });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'punctual-console-'));
  await mkdir(join(dir, 'assets'));
  await writeFile(join(dir, 'index.html'), '<!doctype html><title>Punctual console</title>');
  await writeFile(join(dir, 'assets', 'index-abc.js'), 'console.log(1)');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await deletePrefix(prefix);
});

describe('GET /console', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildWithConsole(dir);
  });
  afterAll(async () => {
    await app.close();
  });

  it('serves the page without an API key, under a CSP that allows only its own origin', async () => {
    const page = await app.inject({ method: 'GET', url: '/console/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('Punctual console');
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('upgrade-insecure-requests');
  });

  it('redirects /console to the page and serves its assets', async () => {
    const bare = await app.inject({ method: 'GET', url: '/console' });
    expect(bare.statusCode).toBe(301);
    expect(bare.headers.location).toBe('/console/');
    const asset = await app.inject({ method: 'GET', url: '/console/assets/index-abc.js' });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['cache-control']).toContain('immutable');
  });

  it('still needs a key for the API the page calls', async () => {
    const list = await app.inject({ method: 'GET', url: '/scheduled' });
    expect(list.statusCode).toBe(401);
  });

  it('answers a missing file with the usual 404 shape', async () => {
    const missing = await app.inject({ method: 'GET', url: '/console/nope.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ statusCode: 404, error: 'Not Found' });
  });
});

describe('GET /console before a build', () => {
  it('answers 503 saying how to build it', async () => {
    const app = await buildWithConsole(join(dir, 'not-built'));
    try {
      for (const url of ['/console', '/console/', '/console/assets/index.js']) {
        const res = await app.inject({ method: 'GET', url });
        expect(res.statusCode).toBe(503);
        expect(res.json()).toEqual({
          statusCode: 503,
          code: 'CONSOLE_NOT_BUILT',
          error: 'Service Unavailable',
          message: 'The console is not built: run `pnpm build`, then restart the API',
        });
      }
    } finally {
      await app.close();
    }
  });
});
