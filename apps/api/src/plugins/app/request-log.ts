import fp from 'fastify-plugin';
import { bindLog } from '../../logger.js';

/**
 * The tenant and message id on every later log line of a request, bound as soon as its API key
 * has been checked (the line logged when it completes included: see RequestLogController).
 */
export default fp(
  async (app) => {
    app.addHook('onRequest', async (request, reply) => {
      const bindings: Record<string, string> = {};
      if (request.tenant) bindings.tenant = request.tenant;
      const id = (request.params as { id?: unknown } | undefined)?.id;
      if (typeof id === 'string') bindings.messageId = id.slice(0, 64);
      if (Object.keys(bindings).length > 0) bindLog(reply, bindings);
    });
  },
  { name: 'request-log', dependencies: ['auth'] },
);
