import type { TestProject } from 'vitest/node';
import { redisAnswers, startRedisServer, type EmbeddedRedis } from '../packages/store/src/index.js';

declare module 'vitest' {
  interface ProvidedContext {
    redisUrl: string;
  }
}

/** Tests find Redis from REDIS_URL, else 127.0.0.1:6379, else a redis-server of their own. */
export default async function setup(project: TestProject) {
  let server: EmbeddedRedis | undefined;
  let url = process.env.REDIS_URL;
  if (!url) {
    url = 'redis://127.0.0.1:6379';
    if (!(await redisAnswers(url))) {
      server = await startRedisServer();
      url = server.url;
    }
  }
  project.provide('redisUrl', url);
  return async () => {
    await server?.stop();
  };
}
