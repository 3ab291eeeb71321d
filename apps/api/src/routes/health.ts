import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';

const Health = Type.Object({ status: Type.String(), redis: Type.String() });
const QueueCounts = Type.Object({
  delayed: Type.Integer(),
  waiting: Type.Integer(),
  active: Type.Integer(),
  failed: Type.Integer(),
});
const Ready = Type.Object({
  status: Type.String(),
  redis: Type.String(),
  queues: Type.Optional(QueueCounts),
  workers: Type.Optional(Type.Integer({ description: 'Worker connections BullMQ sees on the delivery queues' })),
});

const health: FastifyPluginAsyncTypebox = async (app) => {
  const redisUp = () => app.redis.ping().then(() => true, () => false);

  app.get(
    '/health',
    { schema: { tags: ['operations'], summary: 'Liveness and Redis connectivity', response: { 200: Health, 503: Health } } },
    async (_request, reply) =>
      (await redisUp())
        ? { status: 'ok', redis: 'connected' }
        : reply.code(503).send({ status: 'error', redis: 'disconnected' }),
  );

  app.get(
    '/ready',
    { schema: { tags: ['operations'], summary: 'Readiness: Redis, queue depths, workers', response: { 200: Ready, 503: Ready } } },
    async (_request, reply) => {
      try {
        const queues = app.deliveries.all();
        const [counts, workers] = await Promise.all([
          Promise.all(queues.map((q) => q.getJobCounts('delayed', 'waiting', 'active', 'failed'))),
          Promise.all(queues.map((q) => q.getWorkersCount())),
        ]);
        const total = { delayed: 0, waiting: 0, active: 0, failed: 0 };
        for (const c of counts) for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += c[k] ?? 0;
        return { status: 'ready', redis: 'connected', queues: total, workers: Math.max(0, ...workers) };
      } catch {
        return reply.code(503).send({ status: 'error', redis: 'disconnected' });
      }
    },
  );
};

export default health;
