import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import websocket from '@fastify/websocket';
import { ERROR_CODES } from '@punctual/shared';
import type { ApiConfig } from './config.js';
import { InvalidField, RedisUnavailable } from './errors.js';
import { validationDetails, validatorCompiler } from './validation.js';
import type { ErrorObject } from 'ajv';
import swaggerPlugin from './plugins/external/swagger.js';
import redisPlugin from './plugins/app/redis.js';
import messagesPlugin from './plugins/app/messages.js';
import tenantPlugin from './plugins/app/tenant.js';
import metricsPlugin from './plugins/app/metrics.js';
import healthRoutes from './routes/health.js';
import scheduledRoutes from './routes/scheduled.js';
import historyRoutes from './routes/history.js';
import metricsRoutes from './routes/metrics.js';
import adminQueuesRoutes from './routes/admin-queues.js';

export const BODY_LIMIT = 64 * 1024;

export interface BuildOptions {
  config: ApiConfig;
  /** Where Redis is (the config's REDIS_URL or the embedded default found at start). */
  redisUrl: string;
  logger?: FastifyServerOptions['logger'];
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export async function buildApp({ config, redisUrl, logger }: BuildOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: logger ?? {
      level: config.logLevel,
      redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]'], censor: '[redacted]' },
    },
    bodyLimit: BODY_LIMIT,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // A long malformed id is still just an unknown message (404), not a router error.
    maxParamLength: 2048,
    frameworkErrors: (error, _request, reply: FastifyReply) => {
      const statusCode = error.statusCode ?? 400;
      reply.code(statusCode).send({ statusCode, code: 'BAD_REQUEST', error: STATUS_TEXT[statusCode] ?? 'Bad Request', message: error.message });
    },
  }).withTypeProvider();

  app.setValidatorCompiler(validatorCompiler());
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({
      statusCode: 404,
      code: 'ROUTE_NOT_FOUND',
      error: 'Not Found',
      message: `Route ${request.method} ${request.url.split('?')[0]} not found`,
    });
  });
  // Bodies are JSON only: anything else is a 415.
  app.removeContentTypeParser('text/plain');

  await app.register(swaggerPlugin);
  await app.register(websocket);
  await app.register(redisPlugin, { url: redisUrl });
  await app.register(messagesPlugin, {
    queuePrefix: config.queuePrefix,
    partitions: config.partitions,
    eventsMaxLen: config.eventsMaxLen,
    retentionMs: config.retentionMs,
  });
  await app.register(tenantPlugin);
  await app.register(metricsPlugin, { workerWindowMs: config.workerWindowMs });

  await app.register(healthRoutes, { readyRequireWorkerMs: config.readyRequireWorkerMs, workerWindowMs: config.workerWindowMs });
  await app.register(scheduledRoutes);
  await app.register(historyRoutes);
  await app.register(metricsRoutes);
  await app.register(adminQueuesRoutes, { adminApiKey: config.adminApiKey });
  return app;
}

function errorHandler(this: FastifyInstance, error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const send = (statusCode: number, code: string, message: string, details?: { path: string; message: string }[]) =>
    reply.code(statusCode).send({ statusCode, code, error: STATUS_TEXT[statusCode] ?? 'Error', message, ...(details ? { details } : {}) });

  if (error.validation) {
    const details = validationDetails(error.validation as ErrorObject[]);
    const where = error.validationContext ?? 'request';
    return send(400, 'VALIDATION_ERROR', `${where} is invalid: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, details);
  }
  if (error instanceof InvalidField) {
    return send(400, 'VALIDATION_ERROR', error.message, [{ path: error.path, message: error.message.slice(error.path.length + 1) }]);
  }
  if (error.code in ERROR_CODES && error.statusCode) return send(error.statusCode, error.code, error.message);
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return send(413, 'PAYLOAD_TOO_LARGE', `Body is larger than ${BODY_LIMIT} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return send(415, 'UNSUPPORTED_MEDIA_TYPE', 'Body must be application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return send(400, 'VALIDATION_ERROR', 'Body is empty but content-type is application/json');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return send(400, 'VALIDATION_ERROR', 'Body is not valid JSON');
  }
  if (error instanceof SyntaxError || error.statusCode === 400) {
    return send(400, 'VALIDATION_ERROR', 'Body is not valid JSON');
  }
  if (isRedisError(error, this)) {
    request.log.warn({ err: error.message }, 'redis unavailable');
    const unavailable = new RedisUnavailable();
    return send(503, unavailable.code, unavailable.message);
  }
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    return send(error.statusCode, 'BAD_REQUEST', error.message);
  }
  request.log.error({ err: error }, 'unexpected error');
  return send(500, 'INTERNAL_ERROR', 'Internal Server Error');
}

function isRedisError(error: Error, app: FastifyInstance): boolean {
  if (app.redis && app.redis.status !== 'ready') return true;
  return /Command timed out|Connection is closed|Stream isn't writeable|max retries per request|ECONNREFUSED|ECONNRESET|LOADING|MaxRetriesPerRequest/i.test(
    `${error.name} ${error.message}`,
  );
}
