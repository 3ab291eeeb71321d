import { createServer, type Server } from 'node:http';

export interface Receipt {
  /** The message text, which the bench's fills set to the message id. */
  id: string;
  /** When the request reached the provider (epoch ms). */
  at: number;
}

/** Twilio credentials the product's worker and the bare worker both send with. */
export const FAKE_TWILIO = {
  accountSid: `AC${'0'.repeat(32)}`,
  authToken: 'bench-token',
  from: '+15005550006',
};

const ANSWER = '{"sid":"SM00000000000000000000000000000000","status":"queued"}';

/**
 * A zero-latency Twilio Messages API on 127.0.0.1 (`POST /2010-04-01/Accounts/{sid}/Messages.json`,
 * form encoded, answered 201 with a sid) that notes when each message reached it. The product's
 * worker (TWILIO_BASE_URL pointed here) and the bare reference worker make the same call to it.
 */
export class FakeProvider {
  readonly receipts: Receipt[] = [];
  private server?: Server;
  private waiter?: { count: number; resolve: () => void };
  /** TWILIO_BASE_URL of the product's worker. */
  baseUrl = '';
  /** The Messages endpoint the bare worker posts to. */
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const at = Date.now();
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const id = new URLSearchParams(Buffer.concat(chunks).toString()).get('Body') ?? '';
        this.receipts.push({ id, at });
        res.writeHead(201, { 'content-type': 'application/json' }).end(ANSWER);
        if (this.waiter && this.receipts.length >= this.waiter.count) this.waiter.resolve();
      });
    });
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    this.url = `${this.baseUrl}/2010-04-01/Accounts/${FAKE_TWILIO.accountSid}/Messages.json`;
    return this;
  }

  reset(): void {
    this.receipts.length = 0;
  }

  /** Resolves once `count` messages arrived, or rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs: number): Promise<void> {
    if (this.receipts.length >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`provider got ${this.receipts.length}/${count} within ${timeoutMs} ms`)), timeoutMs);
      this.waiter = { count, resolve: () => (clearTimeout(timer), (this.waiter = undefined), resolve()) };
    });
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}
