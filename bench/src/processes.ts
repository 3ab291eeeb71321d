import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '@punctual/store';
import { FAKE_TWILIO, type FakeProvider } from './fake-provider.js';

export const ROOT = join(import.meta.dirname, '..', '..');

export interface Service {
  name: string;
  child: ChildProcess;
  /** The HTTP port it listens on (API port, or the worker's health port). */
  port: number;
  /** Resident set size in MB, from /proc/<pid>/status. */
  rssMb(): number;
  /** The last lines it printed: shown when it fails. */
  output(): string;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  script: string;
  env: Record<string, string>;
  /** `node` flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
  /** The child talks back over IPC (reference worker progress). */
  ipc?: boolean;
  portVariable: string;
}

/** Spawns a Node service on a free port and waits until its `/health` answers 200. */
export async function startService({ name, script, env, nodeArgs = [], ipc, portVariable }: SpawnOptions): Promise<Service> {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, join(ROOT, script)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env, [portVariable]: String(port) },
    stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? (['ipc'] as const) : [])],
  });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    if (lines.length > 40) lines.splice(0, lines.length - 40);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const service: Service = {
    name,
    child,
    port,
    rssMb: () => rssMb(child.pid!),
    output: () => lines.join('\n'),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${service.output()}`);
    if (await healthy(port)) return service;
    if (Date.now() > deadline) {
      await service.stop();
      throw new Error(`${name} did not answer /health within 30 s:\n${service.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function healthy(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** CPU time (user + system) a process used so far, in ms, from /proc/<pid>/stat. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 per second)
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]);
  return kb / 1024;
}

export interface ProductEnv {
  redisUrl: string;
  prefix: string;
  profileDir?: string;
  extra?: Record<string, string>;
}

function productNodeArgs(profileDir: string | undefined, name: string): string[] {
  return profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`] : [];
}

/** The product's real API process (`node apps/api/dist/server.js`). */
export function startProductApi({ redisUrl, prefix, profileDir, extra }: ProductEnv): Promise<Service> {
  return startService({
    name: 'product api',
    script: 'apps/api/dist/server.js',
    // open dev mode: one tenant, no rate limit, and room for the feed scenario's clients (all of that tenant)
    env: { REDIS_URL: redisUrl, QUEUE_PREFIX: prefix, RATE_LIMIT_MAX: '0', WS_MAX_CLIENTS_PER_TENANT: '100000', ...extra },
    nodeArgs: productNodeArgs(profileDir, 'api'),
    portVariable: 'PORT',
  });
}

/** The product's real worker process (`node apps/worker/dist/main.js`), simulator latency 0. */
export function startProductWorker({ redisUrl, prefix, profileDir, extra }: ProductEnv): Promise<Service> {
  return startService({
    name: 'product worker',
    script: 'apps/worker/dist/main.js',
    env: { REDIS_URL: redisUrl, QUEUE_PREFIX: prefix, SIMULATED_LATENCY_MS: '0', ...extra },
    nodeArgs: productNodeArgs(profileDir, 'worker'),
    portVariable: 'WORKER_PORT',
  });
}

/** Worker environment that sends SMS through Twilio, at the bench's fake provider. */
export function twilioEnv(provider: FakeProvider): Record<string, string> {
  return {
    TWILIO_BASE_URL: provider.baseUrl,
    TWILIO_ACCOUNT_SID: FAKE_TWILIO.accountSid,
    TWILIO_AUTH_TOKEN: FAKE_TWILIO.authToken,
    TWILIO_FROM: FAKE_TWILIO.from,
  };
}

export function startReferenceApi(redisUrl: string, prefix: string): Promise<Service> {
  return startService({
    name: 'reference api',
    script: 'bench/dist/reference/api.js',
    env: { REDIS_URL: redisUrl, QUEUE_PREFIX: prefix },
    portVariable: 'PORT',
  });
}

/** The bare `ws` relay of the product's feed stream (see reference/ws.ts). */
export function startReferenceWs(redisUrl: string, stream: string): Promise<Service> {
  return startService({
    name: 'reference ws relay',
    script: 'bench/dist/reference/ws.js',
    env: { REDIS_URL: redisUrl, STREAM: stream },
    portVariable: 'PORT',
  });
}

export type ReferenceWorkerMode = 'noop' | 'provider';

export interface WorkerProgress {
  completed: number;
  firstAt: number;
  lastAt: number;
}

/** The bare BullMQ worker (MODE noop or provider); it reports how many jobs it completed, and when, over IPC. */
export async function startReferenceWorker(
  redisUrl: string,
  prefix: string,
  mode: ReferenceWorkerMode,
  provider: FakeProvider,
): Promise<Service & { progress(): WorkerProgress }> {
  const service = await startService({
    name: `reference worker (${mode})`,
    script: 'bench/dist/reference/worker.js',
    env: { REDIS_URL: redisUrl, QUEUE_PREFIX: prefix, MODE: mode, PROVIDER_URL: provider.url, ...twilioEnv(provider) },
    ipc: true,
    portVariable: 'WORKER_PORT',
  });
  let latest: WorkerProgress = { completed: 0, firstAt: 0, lastAt: 0 };
  service.child.on('message', (message) => {
    latest = message as WorkerProgress;
  });
  return { ...service, progress: () => latest };
}
