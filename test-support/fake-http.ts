/** A stand-in for an external HTTP service (Twilio, the Cloud API, a callback receiver) on 127.0.0.1. */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path and query, as sent. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body, byte for byte (as UTF-8). */
  body: string;
}

export interface FakeAnswer {
  status: number;
  /** An object is sent as JSON; a string as it is. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Answer after this long (a slow provider). */
  delayMs?: number;
  /** Never answer (a provider that times out). */
  hang?: boolean;
}

/** Decides the answer to the n-th request (0-based). */
export type Responder = (request: RecordedRequest, n: number) => FakeAnswer;

export class FakeHttpServer {
  readonly requests: RecordedRequest[] = [];
  private responder: Responder;
  private readonly timers = new Set<NodeJS.Timeout>();
  private waiters: { ready: () => boolean; resolve: () => void }[] = [];

  private constructor(
    private readonly server: Server,
    responder: Responder,
  ) {
    this.responder = responder;
  }

  static async start(responder: Responder = () => ({ status: 200, body: {} })): Promise<FakeHttpServer> {
    const server = createServer();
    const fake = new FakeHttpServer(server, responder);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => fake.answer({ method: req.method!, path: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }, res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  respondWith(responder: Responder): void {
    this.responder = responder;
  }

  /** Resolves once `count` requests (those that `match`, if given) have arrived. */
  waitForRequests(count: number, match: (r: RecordedRequest) => boolean = () => true, timeoutMs = 20_000): Promise<RecordedRequest[]> {
    const matching = () => this.requests.filter(match);
    if (matching().length >= count) return Promise.resolve(matching().slice(0, count));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${matching().length}/${count} requests within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ ready: () => matching().length >= count, resolve: () => (clearTimeout(timer), resolve(matching().slice(0, count))) });
    });
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private answer(request: RecordedRequest, res: ServerResponse) {
    const n = this.requests.push(request) - 1;
    const answer = this.responder(request, n);
    this.waiters = this.waiters.filter((w) => (w.ready() ? (w.resolve(), false) : true));
    if (answer.hang) return;
    const send = () => {
      const body = answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
      const type = typeof answer.body === 'string' ? 'text/plain' : 'application/json';
      res.writeHead(answer.status, { 'content-type': type, ...answer.headers }).end(body);
    };
    if (!answer.delayMs) return send();
    const timer = setTimeout(() => (this.timers.delete(timer), send()), answer.delayMs);
    this.timers.add(timer);
  }
}
