import { fileURLToPath } from 'node:url';
// @ts-expect-error plain ES module shared with scripts/start.mjs
import { buildConsole, consoleBuildIsStale } from '../scripts/console-build.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Browser tests load the built console from the API: build it once, when missing or stale. */
export default function setup() {
  if (consoleBuildIsStale(root) && !buildConsole(root)) throw new Error('apps/console build failed');
}
