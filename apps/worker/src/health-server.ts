import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { RedisClient } from '@punctual/store';

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
    redis.ping().then(
      () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok","redis":"connected"}'),
      () => res.writeHead(503, { 'content-type': 'application/json' }).end('{"status":"error","redis":"disconnected"}'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
