import type { Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import websocket from '@fastify/websocket';
import type { DestinationStream } from 'pino';
import type { RedisTarget } from '@punctual/store';
import type { ApiConfig } from './config.js';
import { MessageNotFound, RedisUnavailable } from './errors.js';
import { STATUS_TEXT, errorBody, refusalBody } from './error-body.js';
import { validatorCompiler } from './validation.js';
import swaggerPlugin from './plugins/external/swagger.js';
import redisPlugin from './plugins/app/redis.js';
import messagesPlugin from './plugins/app/messages.js';
import feedPlugin from './plugins/app/feed.js';
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
import suppressionRoutes from './routes/suppressions.js';
import batchRoutes from './routes/batches.js';
import wsRoutes from './routes/ws.js';
import metricsPlugin from './plugins/app/metrics.js';
import metricsRoutes from './routes/metrics.js';
import adminQueuesRoutes from './routes/admin-queues.js';
import consoleRoutes from './routes/console.js';
import webhookRoutes from './routes/webhooks.js';

export const BODY_LIMIT = 64 * 1024;
/** Feed clients only ever send control frames. */
const WS_MAX_INCOMING_BYTES = 4 * 1024;

export interface BuildOptions {
  config: ApiConfig;
  /** Where Redis is (REDIS_URL, REDIS_CLUSTER_NODES, or the embedded default found at start). */
  redis: RedisTarget;
  /** false: no log at all; a stream: the JSON log lines go there instead of stdout. */
  logger?: false | DestinationStream;
  /** Where the console's built files are (default apps/console/dist). */
  consoleDir?: string;
}

export async function buildApp({ config, redis, logger, consoleDir }: BuildOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: logger === false ? false : loggerOptions(config.logLevel, logger),
    bodyLimit: BODY_LIMIT,
    // a long malformed id still reaches its route, and its 404 says "message not found"
    routerOptions: { maxParamLength: 2048 },
    trustProxy: config.trustProxy,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    frameworkErrors: (error, request, reply: FastifyReply) => {
      // an id beyond maxParamLength names no message: the 404 of any malformed id, not a 414
      if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
        const notFound = new MessageNotFound((request.url.split('?')[0]!.split('/')[2] ?? '').slice(0, 64));
        return reply.code(404).send(errorBody(404, notFound.code, notFound.message));
      }
      const statusCode = error.statusCode ?? 400;
      reply.code(statusCode).send(errorBody(statusCode, 'BAD_REQUEST', error.message));
    },
    logController: new RequestLogController(),
    clientErrorHandler,
  }).withTypeProvider();

  app.setValidatorCompiler(validatorCompiler());
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(errorBody(404, 'ROUTE_NOT_FOUND', `Route ${request.method} ${request.url.split('?')[0]} not found`));
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
  await app.register(authPlugin, {
    apiKeys: config.apiKeys,
    nodeEnv: config.nodeEnv,
    keysRequired: config.apiKeysRequired,
    failedKeyLimit: config.failedKeyLimit,
  });
  await app.register(requestLogPlugin);
  // The limiter's hooks attach to the routes registered after it; it lets open dev mode through.
  if (config.rateLimit.max > 0) {
    await app.register(rateLimitPlugin, config.rateLimit);
  }
  await app.register(idempotencyPlugin);
  await app.register(metricsPlugin, { workerWindowMs: config.workerWindowMs });

  await app.register(healthRoutes, { readyRequireWorkerMs: config.readyRequireWorkerMs, workerWindowMs: config.workerWindowMs });
  await app.register(scheduledRoutes);
  await app.register(historyRoutes);
  await app.register(suppressionRoutes);
  await app.register(batchRoutes);
  await app.register(metricsRoutes);
  await app.register(webhookRoutes, config.webhooks);
  await app.register(adminQueuesRoutes, { adminApiKey: config.adminApiKey });
  await app.register(wsRoutes, { allowedOrigins: config.wsAllowedOrigins, maxClientsPerTenant: config.wsMaxClientsPerTenant });
  await app.register(consoleRoutes, { root: consoleDir });
  return app;
}

/**
 * A request Node's HTTP parser refuses before Fastify sees it (a request line and headers over
 * 16 KB, such as a very long id; a malformed request; one too slow to arrive) is answered in
 * the contract's error shape too, and its connection closed.
 */
function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Socket) {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [statusCode, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'HEADERS_TOO_LARGE', 'The request line and headers are larger than 16 KB']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'REQUEST_TIMEOUT', 'The request did not arrive in time']
        : [400, 'BAD_REQUEST', 'Malformed HTTP request'];
  const body = JSON.stringify(errorBody(statusCode, code, message));
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${statusCode} ${STATUS_TEXT[statusCode]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(err);
}

/** Shutdown: the feed tells its clients the server is going away, and no socket is accepted any more. */
async function closeWebSockets(this: FastifyInstance) {
  await this.feed.close();
  this.websocketServer.close();
}

function errorHandler(this: FastifyInstance, error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const send = (statusCode: number, code: string, message: string) => reply.code(statusCode).send(errorBody(statusCode, code, message));
  // a body that is not JSON at all has one problem, at its root; the parser's own text (which
  // quotes the body) is not repeated
  const notJson = (message: string, detail: string) => reply.code(400).send(errorBody(400, 'VALIDATION_ERROR', message, [{ path: '/', message: detail }]));

  const refusal = refusalBody(error);
  if (refusal) return reply.code(refusal.statusCode).send(refusal);
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return send(413, 'PAYLOAD_TOO_LARGE', `Body is larger than ${request.routeOptions.bodyLimit ?? BODY_LIMIT} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return send(415, 'UNSUPPORTED_MEDIA_TYPE', 'Body must be application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return notJson('Body is empty but content-type is application/json', 'is empty');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return notJson('Body is not valid JSON', 'is not valid JSON');
  }
  if (error instanceof SyntaxError) return notJson('Body is not valid JSON', 'is not valid JSON');
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

/**
 * Redis refusing a command for its own state (out of memory under noeviction, a replica or a
 * cluster slot not writable now, a script running too long): nothing was written, retry later.
 */
const REDIS_REFUSALS = /^(OOM|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY|LOADING) /;

function isRedisError(error: Error, app: FastifyInstance): boolean {
  if (app.redis && app.redis.status !== 'ready') return true;
  if (REDIS_REFUSALS.test(error.message)) return true;
  return /Command timed out|Connection is closed|Stream isn't writeable|max retries per request|ECONNREFUSED|ECONNRESET|LOADING|MaxRetriesPerRequest/i.test(
    `${error.name} ${error.message}`,
  );
}
