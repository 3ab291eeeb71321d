import type { LookupFunction } from 'node:net';
import { Agent, request, type Dispatcher } from 'undici';

export interface HttpAgentOptions {
  /** Deadline of one request, connect included. */
  timeoutMs: number;
  /** Resolves host names before connecting (the callback address guard). */
  lookup?: LookupFunction;
}

/** A keep-alive connection pool; whoever creates one closes it. */
export function createHttpAgent({ timeoutMs, lookup }: HttpAgentOptions): Agent {
  return new Agent({
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 60_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: { timeout: timeoutMs, ...(lookup ? { lookup } : {}) },
  });
}

export type IncomingHttpHeaders = Record<string, string | string[] | undefined>;

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The first MAX_ANSWER_BYTES of the body, as UTF-8. */
  body: string;
  /** The body went on past MAX_ANSWER_BYTES: the rest was not read. */
  truncated: boolean;
}

/** Plenty for any provider's JSON answer; a receiver's answer only matters by its status. */
export const MAX_ANSWER_BYTES = 64 * 1024;

/** No complete answer within the deadline: the request may or may not have been acted on. */
export class RequestTimeout extends Error {
  override name = 'RequestTimeout';
}

/** GETs; see `post`. */
export function get(
  dispatcher: Dispatcher,
  url: string,
  headers: Record<string, string>,
  timeoutMs: number,
  maxBytes = MAX_ANSWER_BYTES,
): Promise<HttpAnswer> {
  return exchange(dispatcher, url, { method: 'GET', headers }, timeoutMs, maxBytes);
}

/**
 * POSTs a body and reads the answer within `timeoutMs`, or throws. At most `maxBytes` of the
 * answer are read: the connection is dropped past that, so a huge or endless body costs nothing.
 */
export function post(
  dispatcher: Dispatcher,
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
  maxBytes = MAX_ANSWER_BYTES,
): Promise<HttpAnswer> {
  return exchange(dispatcher, url, { method: 'POST', headers, body }, timeoutMs, maxBytes);
}

async function exchange(
  dispatcher: Dispatcher,
  url: string,
  init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string },
  timeoutMs: number,
  maxBytes: number,
): Promise<HttpAnswer> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const response = await request(url, { ...init, dispatcher, signal });
    const { text, truncated } = await readCapped(response.body, maxBytes);
    return { status: response.statusCode, headers: response.headers, body: text, truncated };
  } catch (err) {
    if (signal.aborted || (err instanceof Error && /Timeout/.test(err.name + (err as { code?: string }).code))) {
      throw new RequestTimeout(`no answer within ${timeoutMs} ms`);
    }
    throw err;
  }
}

/** Reads a body up to `maxBytes`; leaving the loop early destroys the stream, which closes the connection. */
async function readCapped(body: AsyncIterable<Buffer>, maxBytes: number): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > maxBytes) return { text: Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8'), truncated: true };
  }
  return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
}

/** `CODE: message` of a network error, its cause's code when it has one. */
export function networkErrorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause as { code?: string; message?: string } | undefined;
  const code = cause?.code ?? (err as { code?: string }).code;
  const message = cause?.message && cause.message !== err.message ? `${err.message} (${cause.message})` : err.message;
  return code ? `${code}: ${message}` : message;
}

/** Retry-After (seconds or an HTTP date) in ms, if the answer carries one. */
export function retryAfterMs(headers: IncomingHttpHeaders, now = Date.now()): number | undefined {
  const value = headers['retry-after'];
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  const seconds = Number(text);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
