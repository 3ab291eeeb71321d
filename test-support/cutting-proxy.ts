import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a Redis (127.0.0.1 only) that can cut a connection at a chosen command:
 * once armed, the next command whose bytes contain a marker is either forwarded to Redis, which
 * runs it, and the client's connection cut before the reply comes back (the client cannot tell
 * whether its write happened: the fault an API must not turn into a second message), or dropped
 * with the connection (the write never happened).
 */
export class CuttingProxy {
  private armed: { marker: Buffer; redisRuns: boolean; done: () => void } | null = null;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(redisUrl: string): Promise<CuttingProxy> {
    const target = new URL(redisUrl);
    let proxy!: CuttingProxy;
    const server = createServer((client) => proxy.relay(client, Number(target.port), target.hostname));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    proxy = new CuttingProxy(server, `redis://127.0.0.1:${port}`);
    return proxy;
  }

  /** Resolves once a command containing `marker` has been answered by Redis and its client cut off. */
  cutAfter(marker: string): Promise<void> {
    return new Promise((resolve) => (this.armed = { marker: Buffer.from(marker), redisRuns: true, done: resolve }));
  }

  /** Resolves once the connection that sent a command containing `marker` was cut, the command unsent. */
  cutBefore(marker: string): Promise<void> {
    return new Promise((resolve) => (this.armed = { marker: Buffer.from(marker), redisRuns: false, done: resolve }));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private relay(client: Socket, port: number, host: string): void {
    const upstream = connect(port, host);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {});
    }
    let cut: (() => void) | null = null;
    client.on('data', (chunk: Buffer) => {
      const armed = this.armed;
      if (armed && chunk.includes(armed.marker)) {
        this.armed = null;
        if (!armed.redisRuns) {
          client.destroy();
          armed.done();
          return;
        }
        cut = armed.done;
        client.destroy();
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (cut) {
        // Redis has run the command: its reply is what gets lost
        upstream.destroy();
        cut();
        return;
      }
      client.write(chunk);
    });
    client.on('close', () => {
      if (!cut) upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
  }
}
