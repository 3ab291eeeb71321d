import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { WorkerHeartbeats } from '@punctual/store';

/** How often a worker tells the fleet it is alive (the API's /ready counts recent ones). */
export const HEARTBEAT_MS = 5000;

/** A name for this worker process, unique in the fleet. */
export function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/** Announces this worker now and every HEARTBEAT_MS; the returned stop removes it again. */
export async function startHeartbeat(heartbeats: WorkerHeartbeats, workerId: string, log: Logger) {
  const beat = () => heartbeats.beat(workerId).catch((err) => log.warn({ err: err.message }, 'heartbeat not recorded'));
  await beat();
  const timer = setInterval(beat, HEARTBEAT_MS);
  return async () => {
    clearInterval(timer);
    await heartbeats.remove(workerId).catch(() => {});
  };
}
