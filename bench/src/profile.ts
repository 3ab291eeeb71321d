import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const PACKAGE = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\//;
const OURS = /\/(apps|packages)\/([^/]+)\//;

/** Busy time in µs of every sample, keyed by `key(node, parentOf)`; idle is kept apart. */
function busyTimes(file: string, key: (node: ProfileNode, nodes: Map<number, ProfileNode>, parentOf: Map<number, number>) => string) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const times = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const node = nodes.get(id)!;
    const delta = profile.timeDeltas[i] ?? 0;
    if (node.callFrame.functionName === '(idle)') {
      idle += delta;
      return;
    }
    const k = key(node, nodes, parentOf);
    times.set(k, (times.get(k) ?? 0) + delta);
    busy += delta;
  });
  return { times, busy, idle };
}

function share(times: Map<string, number>, busy: number, count: number): string[] {
  return [...times.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([key, us]) => `${((100 * us) / busy).toFixed(1).padStart(5)}%  ${key}`);
}

/** The functions that took the most self time in a `node --cpu-prof` profile. */
export function topFrames(file: string, count = 15): string[] {
  const { times, busy } = busyTimes(file, ({ callFrame: frame }) => {
    const where = frame.url ? `${frame.url.replace(/^.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, '').replace(/^file:\/\/.*?\/(apps|packages)\//, '$1/')}:${frame.lineNumber + 1}` : '';
    return `${frame.functionName || '(anonymous)'} ${where}`.trim();
  });
  return share(times, busy, count);
}

function owner(url: string): string | undefined {
  const pkg = PACKAGE.exec(url);
  if (pkg) return pkg[1]!;
  const ours = OURS.exec(url);
  return ours ? `ours: ${ours[1]}/${ours[2]}` : undefined;
}

/**
 * Busy time by whose code asked for it: each sample goes to the nearest of our packages or of
 * the libraries up its stack, so node's socket writes count for ioredis or fastify, whichever
 * made them; GC and what no library called stay apart, idle (waiting on Redis, or on clients)
 * is given as a share of the whole.
 */
export function byOwner(file: string, count = 12): string[] {
  const cache = new Map<number, string>();
  const { times, busy, idle } = busyTimes(file, (node, nodes, parentOf) => {
    const known = cache.get(node.id);
    if (known) return known;
    let found: string | undefined;
    for (let at: number | undefined = node.id; at !== undefined && !found; at = parentOf.get(at)) found = owner(nodes.get(at)!.callFrame.url);
    const { functionName, url } = node.callFrame;
    const name = found ?? (functionName === '(garbage collector)' ? 'GC' : url.startsWith('node:') ? 'node, no library above' : `native ${functionName || '(anonymous)'}`);
    cache.set(node.id, name);
    return name;
  });
  const idleShare = (100 * idle) / Math.max(1, busy + idle);
  return [`busy ${(busy / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms (${idleShare.toFixed(0)}% of the profile)`, ...share(times, busy, count)];
}

export function profilesIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f));
}
