import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import type { DestinationStream, LoggerOptions } from 'pino';

/** Fields that may carry a phone number, a message body or a credential, wherever they are logged. */
const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'req.body',
  'body',
  'recipient',
  'message',
  'template',
  '*.recipient',
  'data.message',
  'record.message',
  '*.template',
];

/** Query parameters logged as sent; every other value (access_token, recipient…) is redacted. */
const LOGGED_QUERY_PARAMS = new Set(['limit', 'cursor', 'channel', 'status', 'receipt', 'since', 'from', 'to']);

export function loggerOptions(level: string, stream?: DestinationStream): LoggerOptions & { stream?: DestinationStream } {
  return {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: {
      req: (request: FastifyRequest) => ({
        method: request.method,
        url: loggableUrl(request.url),
        remoteAddress: request.ip,
      }),
      res: (reply: FastifyReply) => ({ statusCode: reply.statusCode }),
    },
    ...(stream ? { stream } : {}),
  };
}

/** The URL with the values of query parameters that may hold secrets or personal data redacted. */
export function loggableUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      return eq < 0 || LOGGED_QUERY_PARAMS.has(name) ? pair : `${name}=[redacted]`;
    });
  return `${url.slice(0, q)}?${query.join('&')}`;
}

/** Adds bindings to every later log line of this request (its own and Fastify's). */
export function bindLog(reply: FastifyReply, bindings: Record<string, string>): void {
  const child = reply.log.child(bindings);
  reply.log = child;
  reply.request.log = child;
}

/**
 * One line per request, when it completes: by then the tenant and message id are bound to the
 * reply's logger (an "incoming request" line would come before the API key is even checked).
 */
export class RequestLogController extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const fields = { req: request, res: reply, responseTime: Math.round(reply.elapsedTime) };
    if (error) reply.log.error({ ...fields, err: error }, 'request errored');
    else reply.log.info(fields, 'request completed');
  }
}
