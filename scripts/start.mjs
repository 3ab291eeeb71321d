#!/usr/bin/env node
// `pnpm start`: builds if needed (the console too), finds or starts Redis (the embedded default when neither REDIS_URL
// nor REDIS_CLUSTER_NODES is set), then runs the API and one worker as two processes and forwards signals to both.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { buildConsole, consoleBuildIsStale } from './console-build.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);

const build = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b'], { stdio: 'inherit' });
if (build.status !== 0) {
  console.error('build failed: fix the errors above, then run pnpm start again');
  process.exit(1);
}
if (consoleBuildIsStale(root) && !buildConsole(root)) {
  console.error('console build failed: fix the errors above, then run pnpm start again');
  process.exit(1);
}

const { discoverRedis } = await import('../packages/store/dist/index.js');
let embedded;
if (!process.env.REDIS_URL && !process.env.REDIS_CLUSTER_NODES) {
  try {
    embedded = await discoverRedis(join(root, '.data/redis'));
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
  console.error(`REDIS_URL unset: using ${embedded.url}`);
}
const env = embedded ? { ...process.env, REDIS_URL: embedded.url } : process.env;

const children = [
  ['api', 'apps/api/dist/server.js'],
  ['worker', 'apps/worker/dist/main.js'],
].map(([name, file]) => {
  const child = spawn(process.execPath, [file], { env, stdio: 'inherit' });
  child.name = name;
  return child;
});

let stopping = false;
let exitCode = 0;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => stop(signal === 'SIGHUP' ? 'SIGTERM' : signal));

await Promise.all(
  children.map(
    (child) =>
      new Promise((resolve) =>
        child.once('exit', (code, signal) => {
          if (!stopping) {
            console.error(`${child.name} exited (${signal ?? code}); stopping the other process`);
            exitCode = 1;
            stop('SIGTERM');
          }
          resolve();
        }),
      ),
  ),
);
await embedded?.stop();
process.exit(exitCode);
