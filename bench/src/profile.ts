import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const PACKAGE = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\//;
const OURS = /\/(apps|packages)\/([^/]+)\//;

/** Self time in µs of every sample, keyed by `key(frame)`; idle is kept apart. */
function selfTimes(file: string, key: (frame: ProfileNode['callFrame']) => string) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const frame = byNode.get(id)!.callFrame;
    const delta = profile.timeDeltas[i] ?? 0;
    if (frame.functionName === '(idle)') {
      idle += delta;
      return;
    }
    const k = key(frame);
    self.set(k, (self.get(k) ?? 0) + delta);
    busy += delta;
  });
  return { self, busy, idle };
}

function share(self: Map<string, number>, busy: number, count: number): string[] {
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([key, us]) => `${((100 * us) / busy).toFixed(1).padStart(5)}%  ${key}`);
}

/** The functions that took the most self time in a `node --cpu-prof` profile. */
export function topFrames(file: string, count = 15): string[] {
  const { self, busy } = selfTimes(file, (frame) => {
    const where = frame.url ? `${frame.url.replace(/^.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, '').replace(/^file:\/\/.*?\/(apps|packages)\//, '$1/')}:${frame.lineNumber + 1}` : '';
    return `${frame.functionName || '(anonymous)'} ${where}`.trim();
  });
  return share(self, busy, count);
}

/**
 * Busy time by whose code ran it: our apps and packages, each library, node's own modules,
 * native work (socket writes, GC); idle (waiting on Redis or the clients) apart.
 */
export function byOwner(file: string, count = 12): string[] {
  const { self, busy, idle } = selfTimes(file, (frame) => {
    if (frame.functionName === '(garbage collector)') return 'GC';
    const pkg = PACKAGE.exec(frame.url);
    if (pkg) return pkg[1]!;
    const ours = OURS.exec(frame.url);
    if (ours) return `ours: ${ours[1]}/${ours[2]}`;
    if (frame.url.startsWith('node:')) return `node:${frame.url.slice(5).split('/')[0]}`;
    return frame.url ? frame.url : `native ${frame.functionName || '(anonymous)'}`;
  });
  const idleShare = (100 * idle) / Math.max(1, busy + idle);
  return [`busy ${(busy / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms (${idleShare.toFixed(0)}% of the profile)`, ...share(self, busy, count)];
}

export function profilesIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f));
}
