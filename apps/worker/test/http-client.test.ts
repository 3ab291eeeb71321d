import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import { createHttpAgent, post } from '../src/http-client.js';

const HUGE = 256 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'x');

/**
 * Answers every request with `status` and a 256 MB body, written only as fast as the client
 * reads (backpressure), and counts the bytes the client took before it hung up.
 */
class HugeAnswers {
  readonly sent: number[] = [];
  private constructor(readonly server: Server) {}

  static async start(status: number): Promise<HugeAnswers> {
    const server = createServer();
    const huge = new HugeAnswers(server);
    server.on('request', (req, res) => {
      req.resume();
      let written = 0;
      const slot = huge.sent.push(0) - 1;
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(HUGE) });
      const pump = () => {
        while (written < HUGE && !res.destroyed) {
          written += CHUNK.length;
          huge.sent[slot] = written;
          if (!res.write(CHUNK)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return huge;
  }

  get url() {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  async close() {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('post reads at most 64 KB of an answer', () => {
  let agent: Agent;
  beforeAll(() => {
    agent = createHttpAgent({ timeoutMs: 20_000 });
  });
  afterAll(() => agent.close());

  it.each([200, 500])('a %i answer with a 256 MB body: the status, 64 KB of the body, and the rest never read', async (status) => {
    const receiver = await HugeAnswers.start(status);
    try {
      const answer = await post(agent, receiver.url, { 'content-type': 'application/json' }, '{}', 20_000);
      expect(answer.status).toBe(status);
      // whatever the socket buffers held, the bulk of the 256 MB was never sent
      expect(receiver.sent).toHaveLength(1);
      expect(receiver.sent[0]).toBeLessThan(32 * 1024 * 1024);
      expect(answer.body).toHaveLength(64 * 1024);
      expect(answer.truncated).toBe(true);
    } finally {
      await receiver.close();
    }
  });

  it('reads a small answer whole', async () => {
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"sid":"SM1"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const answer = await post(agent, `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, {}, 'x', 5000);
      expect(answer).toMatchObject({ status: 201, body: '{"sid":"SM1"}', truncated: false });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
