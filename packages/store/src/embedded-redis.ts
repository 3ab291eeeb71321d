import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { redisAnswers, type RedisTarget } from './redis.js';

/** No Redis to use: the message names the three ways to get one. */
export class NoRedisFound extends Error {
  override name = 'NoRedisFound';
  constructor() {
    super(
      'No Redis found: nothing answers at 127.0.0.1:6379 and redis-server is not on PATH. ' +
        'Install Redis with your package manager (e.g. apt-get install redis-server), ' +
        'or run `docker compose up`, or set REDIS_URL=redis://host:port.',
    );
  }
}

export interface EmbeddedRedis {
  url: string;
  port: number;
  /** Stops the server this process spawned (no-op for one found running). */
  stop(): Promise<void>;
}

/** A `redis-server` this process spawned. */
export interface SpawnedRedis extends EmbeddedRedis {
  process: ChildProcess;
}

export interface EmbeddedRedisOptions {
  port?: number;
  /** Where the AOF lives; omitted = nothing kept on disk. */
  dataDir?: string;
  /**
   * Redis checks blocked clients' timeouts `hz` times a second, and a BullMQ worker waiting for
   * the next delayed job wakes on such a timeout: hz 10 adds up to 100 ms of lateness, 500 ~2 ms.
   */
  hz?: number;
  /** AOF fsync policy when `dataDir` is set: `always` loses no acknowledged write in a crash. */
  appendfsync?: 'everysec' | 'always';
}

export function redisServerOnPath(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts `redis-server` from PATH on a port and waits until it answers. */
export async function startRedisServer(options: EmbeddedRedisOptions = {}): Promise<SpawnedRedis> {
  const port = options.port ?? (await freePort());
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--hz', String(options.hz ?? 500)];
  args.push('--maxmemory-policy', 'noeviction');
  if (options.dataDir) {
    mkdirSync(options.dataDir, { recursive: true });
    args.push('--dir', options.dataDir, '--appendonly', 'yes', '--appendfsync', options.appendfsync ?? 'everysec');
  } else {
    args.push('--appendonly', 'no');
  }
  const child: ChildProcess = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  while (!(await redisAnswers(url, 200))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not start on port ${port}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  };
  return { url, port, process: child, stop };
}

/**
 * The embedded default when REDIS_URL is unset: the Redis on
 * 127.0.0.1:6379 if it answers, else a `redis-server` from PATH on 6379 with its AOF under
 * `dataDir`, stopped on exit; else an error naming the three ways to get Redis.
 */
export async function discoverRedis(dataDir: string, port = 6379): Promise<EmbeddedRedis> {
  const url = `redis://127.0.0.1:${port}`;
  if (await redisAnswers(url)) return { url, port, stop: async () => {} };
  if (!redisServerOnPath()) throw new NoRedisFound();
  return startRedisServer({ port, dataDir });
}

/**
 * The Redis a process uses: the configured target, else the embedded default (`discoverRedis`),
 * which the caller stops on exit.
 */
export async function resolveRedis(configured: RedisTarget | undefined, dataDir = '.data/redis'): Promise<{ target: RedisTarget; embedded?: EmbeddedRedis }> {
  if (configured) return { target: configured };
  const embedded = await discoverRedis(dataDir);
  return { target: { url: embedded.url }, embedded };
}
