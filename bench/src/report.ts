import { cpus, totalmem, release, platform } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { round } from './stats.js';

/** One figure: the product's, the reference's when there is one, and its target. */
export interface Figure {
  metric: string;
  unit: string;
  product: number | null;
  reference?: number | null;
  /** product ÷ reference */
  ratio?: number | null;
  target?: string;
  pass?: boolean;
  note?: string;
}

export interface ScenarioResult {
  name: string;
  /** Redis `hz` the scenario ran against. */
  hz: number;
  setup: string;
  figures: Figure[];
  skipped?: string;
  notes?: string[];
}

const started = Date.now();

/** Progress goes to stderr so the table on stdout stays clean. */
export function progress(message: string): void {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${seconds}s] ${message}\n`);
}

export function machine(redisVersion: string) {
  const cpu = cpus();
  return {
    cpus: cpu.length,
    model: cpu[0]?.model ?? 'unknown',
    memGiB: round(totalmem() / 2 ** 30, 1),
    os: `${platform()} ${release()}`,
    node: process.version,
    redis: redisVersion,
  };
}

/** product ÷ reference, or null when either is missing. */
export function compare(product: number | null, reference: number | null | undefined): number | null {
  if (product === null || reference === null || reference === undefined || reference === 0) return null;
  return round(product / reference, 2);
}

function cell(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return String(round(value, value < 10 ? 2 : 1));
}

export function table(results: ScenarioResult[]): string {
  const rows: string[][] = [['scenario (hz)', 'metric', 'product', 'reference', 'ratio', 'target', 'result']];
  for (const s of results) {
    const name = `${s.name} (hz ${s.hz})`;
    if (s.skipped) {
      rows.push([name, '–', '–', '–', '–', '–', `skipped: ${s.skipped}`]);
      continue;
    }
    for (const f of s.figures) {
      rows.push([
        name,
        `${f.metric} [${f.unit}]`,
        cell(f.product),
        cell(f.reference),
        f.ratio === null || f.ratio === undefined ? '–' : `${f.ratio}×`,
        f.target ?? '',
        f.pass === undefined ? '' : f.pass ? 'pass' : 'MISS',
      ]);
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => `| ${r.map((v, c) => v.padEnd(widths[c]!)).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

export function writeResults(path: string, document: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(document, null, 2)}\n`);
}
