/** The product's real processes, for tests that kill them. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../packages/store/src/index.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** `tsc -b`: the spawned processes run the built apps/\*\/dist. */
export function buildProduct(): void {
  execFileSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '-b'], { cwd: ROOT, stdio: 'inherit' });
}

/** A spawned API or worker process. */
export interface WorkerProcess {
  child: ChildProcess;
  port: number;
  /** SIGKILL, as a crash would; resolves once the process is gone. */
  crash(): Promise<void>;
  /** SIGTERM (graceful), SIGKILL after 15 s; resolves once the process is gone. */
  stop(): Promise<void>;
}

async function exit(child: ChildProcess, signal: NodeJS.Signals, killAfterMs?: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  await exited;
  clearTimeout(timer);
}

/** Spawns `node apps/worker/dist/main.js` and resolves once its /health answers 200. */
export function spawnWorker(env: Record<string, string>): Promise<WorkerProcess> {
  return spawnApp('worker', 'apps/worker/dist/main.js', 'WORKER_PORT', env);
}

/** Spawns `node apps/api/dist/server.js` on 127.0.0.1 (open mode, no rate limit unless `env` says). */
export function spawnApi(env: Record<string, string>): Promise<WorkerProcess> {
  return spawnApp('api', 'apps/api/dist/server.js', 'PORT', { HOST: '127.0.0.1', RATE_LIMIT_MAX: '0', ...env });
}

async function spawnApp(name: string, script: string, portVariable: string, env: Record<string, string>): Promise<WorkerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [script], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...env, [portVariable]: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const app: WorkerProcess = {
    child,
    port,
    crash: () => exit(child, 'SIGKILL'),
    stop: () => exit(child, 'SIGTERM', 15_000),
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}: ${stderr}`);
    const up = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
    if (up) return app;
    if (Date.now() > deadline) {
      await app.crash();
      throw new Error(`${name} did not answer /health within 30 s: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
