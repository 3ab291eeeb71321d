import { createServer, type Server } from 'node:http';

export interface Receipt {
  id: string;
  sendAt: number;
  /** When the request reached the provider (epoch ms). */
  at: number;
}

/** A zero-latency provider on 127.0.0.1 that notes when each message reached it. */
export class FakeProvider {
  readonly receipts: Receipt[] = [];
  private server?: Server;
  private waiter?: { count: number; resolve: () => void };
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const at = Date.now();
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const { id, sendAt } = JSON.parse(Buffer.concat(chunks).toString()) as { id: string; sendAt: number };
        this.receipts.push({ id, sendAt, at });
        res.writeHead(201, { 'content-type': 'application/json' }).end(`{"sid":"FAKE${id}"}`);
        if (this.waiter && this.receipts.length >= this.waiter.count) this.waiter.resolve();
      });
    });
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}/messages`;
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
