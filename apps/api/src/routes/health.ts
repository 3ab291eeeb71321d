import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { WorkerHeartbeats } from '@punctual/store';

const Health = Type.Object({ status: Type.String(), redis: Type.String() }, { examples: [{ status: 'ok', redis: 'connected' }] });
const QueueCounts = Type.Object({
  delayed: Type.Integer(),
  waiting: Type.Integer(),
  active: Type.Integer(),
  failed: Type.Integer(),
});
const Ready = Type.Object(
  {
    status: Type.String({ description: 'ready, not_ready (no live worker) or error (Redis unreachable)' }),
    redis: Type.String(),
    queues: Type.Optional(QueueCounts),
    workers: Type.Optional(Type.Integer({ description: 'Worker processes whose heartbeat was seen within the readiness window' })),
    reason: Type.Optional(Type.String()),
  },
  { examples: [{ status: 'ready', redis: 'connected', queues: { delayed: 120, waiting: 0, active: 2, failed: 0 }, workers: 2 }] },
);

export interface HealthRoutesOptions {
  /** READY_REQUIRE_WORKER_MS: /ready is 503 when no worker was seen for this long; 0 = not required. */
  readyRequireWorkerMs: number;
  workerWindowMs: number;
}

const health: FastifyPluginAsyncTypebox<HealthRoutesOptions> = async (app, { readyRequireWorkerMs, workerWindowMs }) => {
  // every connection the API writes through answers
  const redisUp = () => Promise.all([app.redis.ping(), app.scheduler.ping()]).then(() => true, () => false);
  const heartbeats = new WorkerHeartbeats(app.redis, app.store.keys);

  app.get(
    '/health',
    { config: { public: true }, schema: { tags: ['operations'], summary: 'Liveness and Redis connectivity', security: [], response: { 200: Health, 503: Health } } },
    async (_request, reply) =>
      (await redisUp())
        ? { status: 'ok', redis: 'connected' }
        : reply.code(503).send({ status: 'error', redis: 'disconnected' }),
  );

  app.get(
    '/ready',
    {
      config: { public: true },
      schema: {
        tags: ['operations'],
        summary: 'Readiness: Redis, queue depths, live workers',
        description: `503 when Redis is unreachable, or when no worker heartbeat was seen within READY_REQUIRE_WORKER_MS (${readyRequireWorkerMs} ms here; 0 = workers not required).`,
        security: [],
        response: { 200: Ready, 503: Ready },
      },
    },
    async (_request, reply) => {
      let queues: { delayed: number; waiting: number; active: number; failed: number };
      let workers: number;
      try {
        [queues, workers] = await Promise.all([app.deliveries.counts(), heartbeats.countSince(Date.now() - workerWindowMs)]);
      } catch {
        return reply.code(503).send({ status: 'error', redis: 'disconnected' });
      }
      if (readyRequireWorkerMs > 0 && workers === 0) {
        return reply.code(503).send({
          status: 'not_ready',
          redis: 'connected',
          queues,
          workers,
          reason: `no worker seen in the last ${readyRequireWorkerMs} ms`,
        });
      }
      return { status: 'ready', redis: 'connected', queues, workers };
    },
  );
};

export default health;
