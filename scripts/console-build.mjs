// The console's static files (apps/console/dist): rebuilt when missing or older than its sources.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newestMtime(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newestMtime(join(path, name))));
}

export function consoleBuildIsStale(root) {
  const app = join(root, 'apps/console');
  const built = join(app, 'dist/index.html');
  if (!existsSync(built)) return true;
  const sources = ['index.html', 'vite.config.ts', 'src'].map((name) => join(app, name)).filter(existsSync);
  return Math.max(...sources.map(newestMtime)) > statSync(built).mtimeMs;
}

/** Runs `vite build` in apps/console; returns whether it succeeded. */
export function buildConsole(root) {
  const app = join(root, 'apps/console');
  const vite = join(app, 'node_modules/vite/bin/vite.js');
  return spawnSync(process.execPath, [vite, 'build', '--logLevel', 'warn'], { cwd: app, stdio: 'inherit' }).status === 0;
}
