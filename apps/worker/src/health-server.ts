import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { RedisClient } from '@punctual/store';

/** A PING that takes longer than this counts as Redis down. */
const PING_TIMEOUT_MS = 1000;

const NOT_FOUND = '{"statusCode":404,"code":"ROUTE_NOT_FOUND","error":"Not Found","message":"Not Found"}';

/**
 * The worker's own HTTP port (WORKER_PORT): `/health` for orchestrators' health checks and
 * `/metrics` (Prometheus text) for this process.
 */
export async function startHealthServer(redis: RedisClient, port: number, metrics: Registry, host = '0.0.0.0'): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      metrics.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        () => res.writeHead(500, { 'content-type': 'application/json' }).end('{"statusCode":500,"code":"INTERNAL_ERROR","error":"Internal Server Error","message":"Internal Server Error"}'),
      );
      return;
    }
    if (req.method !== 'GET' || req.url !== '/health') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(NOT_FOUND);
      return;
    }
    void redisAnswers(redis).then((up) =>
      up
        ? res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok","redis":"connected"}')
        : res.writeHead(503, { 'content-type': 'application/json' }).end('{"status":"error","redis":"disconnected"}'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

/**
 * Whether Redis answers a PING now. The worker's connections queue commands while Redis is away
 * (they wait for it, as BullMQ needs), so a PING sent then would wait until Redis is back: a
 * connection that is not ready is down, and a PING without an answer within a second too.
 */
function redisAnswers(redis: RedisClient): Promise<boolean> {
  if (redis.status !== 'ready') return Promise.resolve(false);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, PING_TIMEOUT_MS, false)));
  return Promise.race([redis.ping().then(() => true, () => false), timeout]).finally(() => clearTimeout(timer));
}
