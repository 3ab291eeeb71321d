import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import websocket from '@fastify/websocket';
import type { DestinationStream } from 'pino';
import { ERROR_CODES } from '@punctual/shared';
import type { RedisTarget } from '@punctual/store';
import type { ApiConfig } from './config.js';
import { InvalidField, RedisUnavailable } from './errors.js';
import { validationDetails, validatorCompiler } from './validation.js';
import type { ErrorObject } from 'ajv';
import swaggerPlugin from './plugins/external/swagger.js';
import redisPlugin from './plugins/app/redis.js';
import messagesPlugin from './plugins/app/messages.js';
import feedPlugin from './plugins/app/feed.js';
import { CLOSE_GOING_AWAY } from './feed/subscriber.js';
import { registerJsonParser } from './json-body.js';
import { RequestLogController, loggerOptions } from './logger.js';
import corsPlugin from './plugins/external/cors.js';
import helmetPlugin from './plugins/external/helmet.js';
import rateLimitPlugin from './plugins/external/rate-limit.js';
import authPlugin from './plugins/app/auth.js';
import requestLogPlugin from './plugins/app/request-log.js';
import idempotencyPlugin from './plugins/app/idempotency.js';
import healthRoutes from './routes/health.js';
import scheduledRoutes from './routes/scheduled.js';
import historyRoutes from './routes/history.js';
import wsRoutes from './routes/ws.js';
import metricsPlugin from './plugins/app/metrics.js';
import metricsRoutes from './routes/metrics.js';
import adminQueuesRoutes from './routes/admin-queues.js';
import consoleRoutes from './routes/console.js';
import webhookRoutes from './routes/webhooks.js';

export const BODY_LIMIT = 64 * 1024;
/** Feed clients only ever send control frames. */
const WS_MAX_INCOMING_BYTES = 4 * 1024;
/** How long a closing feed client has to answer before its socket is cut at shutdown. */
const WS_CLOSE_GRACE_MS = 2000;

export interface BuildOptions {
  config: ApiConfig;
  /** Where Redis is (REDIS_URL, REDIS_CLUSTER_NODES, or the embedded default found at start). */
  redis: RedisTarget;
  /** false: no log at all; a stream: the JSON log lines go there instead of stdout. */
  logger?: false | DestinationStream;
  /** Where the console's built files are (default apps/console/dist). */
  consoleDir?: string;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export async function buildApp({ config, redis, logger, consoleDir }: BuildOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: logger === false ? false : loggerOptions(config.logLevel, logger),
    bodyLimit: BODY_LIMIT,
    // a long malformed id still reaches its route, and its 404 says "message not found"
    routerOptions: { maxParamLength: 2048 },
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    frameworkErrors: (error, _request, reply: FastifyReply) => {
      const statusCode = error.statusCode ?? 400;
      reply.code(statusCode).send({ statusCode, code: 'BAD_REQUEST', error: STATUS_TEXT[statusCode] ?? 'Bad Request', message: error.message });
    },
    logController: new RequestLogController(),
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
  registerJsonParser(app);

  await app.register(corsPlugin, { origins: config.corsOrigins });
  await app.register(helmetPlugin);
  await app.register(swaggerPlugin);

  await app.register(websocket, { options: { maxPayload: WS_MAX_INCOMING_BYTES }, preClose: closeWebSockets });
  await app.register(redisPlugin, { target: redis });
  await app.register(messagesPlugin, {
    queuePrefix: config.queuePrefix,
    partitions: config.partitions,
    eventsMaxLen: config.eventsMaxLen,
    retentionMs: config.retentionMs,
    maxScheduledPerTenant: config.maxScheduledPerTenant,
  });
  await app.register(feedPlugin, {
    redisTarget: redis,
    pingIntervalMs: config.wsPingIntervalMs,
    maxBufferedBytes: config.wsMaxBufferedBytes,
  });
  await app.register(authPlugin, { apiKeys: config.apiKeys, nodeEnv: config.nodeEnv });
  await app.register(requestLogPlugin);
  // Open dev mode has no limit; the limiter's hooks attach to the routes registered after it.
  if (app.authRequired && config.rateLimit.max > 0) {
    await app.register(rateLimitPlugin, config.rateLimit);
  }
  await app.register(idempotencyPlugin);
  await app.register(metricsPlugin, { workerWindowMs: config.workerWindowMs });

  await app.register(healthRoutes, { readyRequireWorkerMs: config.readyRequireWorkerMs, workerWindowMs: config.workerWindowMs });
  await app.register(scheduledRoutes, { maxScheduledPerTenant: config.maxScheduledPerTenant });
  await app.register(historyRoutes, { maxScheduledPerTenant: config.maxScheduledPerTenant });
  await app.register(metricsRoutes);
  await app.register(webhookRoutes, config.webhooks);
  await app.register(adminQueuesRoutes, { adminApiKey: config.adminApiKey });
  await app.register(wsRoutes, { allowedOrigins: config.wsAllowedOrigins });
  await app.register(consoleRoutes, { root: consoleDir });
  return app;
}

/** Shutdown tells every WebSocket client the server is going away (1001), then stops waiting for slow ones. */
function closeWebSockets(this: FastifyInstance, done: () => void) {
  const server = this.websocketServer;
  for (const client of server.clients) client.close(CLOSE_GOING_AWAY, 'server shutting down');
  const cutOff = setTimeout(() => {
    for (const client of server.clients) client.terminate();
  }, WS_CLOSE_GRACE_MS);
  server.close(() => clearTimeout(cutOff));
  done();
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
      return send(413, 'PAYLOAD_TOO_LARGE', `Body is larger than ${request.routeOptions.bodyLimit ?? BODY_LIMIT} bytes`);
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
