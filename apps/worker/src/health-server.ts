import { createServer, type Server } from 'node:http';
import type { RedisClient } from '@punctual/store';

/** The worker's own HTTP port (WORKER_PORT): `/health` for orchestrators' health checks. */
export async function startHealthServer(redis: RedisClient, port: number, host = '0.0.0.0'): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/health') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"statusCode":404,"code":"ROUTE_NOT_FOUND","error":"Not Found","message":"Not Found"}');
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
