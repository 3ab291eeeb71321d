import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { errorResponses } from '../error-body.js';

const metrics: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/metrics',
    {
      config: { public: true },
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics: this instance; fleet-wide message counters, lateness, queue depths, workers (left out, with punctual_redis_up 0, while Redis is down)',
        security: [],
        response: {
          200: { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: Type.String() } } },
          ...errorResponses(500, 503),
        },
      },
    },
    async (_request, reply) => {
      const text = await app.metrics.scrape();
      return reply.type(app.metrics.contentType).send(text);
    },
  );
};

export default metrics;
