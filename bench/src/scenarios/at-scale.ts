import type { Redis } from 'ioredis';
import { encodeCursor } from '@punctual/store';
import { compare, progress, type Figure, type ScenarioResult } from '../report.js';
import { commandCalls, commandsPerOp, emptyRedis, newPrefix, usedMemory, type BenchContext, type CommandsPerOp } from '../context.js';
import { fill, productFiller, referenceFiller, type Filler, type FillOptions } from '../fill.js';
import { breakdown, type Breakdown, type Component } from '../memory.js';
import { HttpClient } from '../http.js';
import { startProductApi, startProductWorker, startReferenceApi, type Service } from '../processes.js';
import { round, summarize, type Summary } from '../stats.js';

const DAY = 86_400_000;

interface Side {
  fillRate: number;
  memory: Breakdown;
  ops: Record<Op, Summary>;
  /** Redis commands per request of each kind (the product's worker runs meanwhile: its polling is in). */
  commands: Record<Op, CommandsPerOp>;
  errors: number;
  /** MB at half size and at full size (after the same reads), then after the measured operations. */
  rss?: { api: [number, number, number]; worker: [number, number, number] };
}

/** sendAts spread over the next 1–300 days: nothing falls due during the benchmark. */
function futureTimes(count: number): number[] {
  const now = Date.now();
  return Array.from({ length: count }, () => now + DAY + Math.floor(Math.random() * 299 * DAY));
}

function pick<T>(items: T[], count: number): T[] {
  const copy = items.slice();
  for (let i = 0; i < Math.min(count, copy.length); i++) {
    const j = i + Math.floor(Math.random() * (copy.length - i));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, count);
}

/** GET one, PUT (a new sendAt), DELETE and two pages, one request at a time. */
type Op = 'get' | 'put' | 'delete' | 'firstPage' | 'deepPage';

async function measureOps(redis: Redis, api: Service, ids: string[], samples: number, deepCursor: string) {
  const http = new HttpClient(api.port);
  let errors = 0;
  const timed = async (method: string, path: string, body?: unknown) => {
    const res = await http.send(method, path, body);
    if (res.status >= 300) errors++;
    return res.ms;
  };
  const chosen = pick(ids, samples * 3);
  const commands = {} as Record<Op, CommandsPerOp>;
  const run = async (op: Op | undefined, n: number, request: (i: number) => Promise<number>) => {
    const out: number[] = [];
    const before = await commandCalls(redis);
    for (let i = 0; i < n; i++) out.push(await request(i));
    if (op) commands[op] = commandsPerOp(before, await commandCalls(redis), n);
    return summarize(out);
  };
  try {
    await run(undefined, Math.min(100, samples), (i) => timed('GET', `/scheduled/${chosen[i]}`));
    const ops = {
      get: await run('get', samples, (i) => timed('GET', `/scheduled/${chosen[i]}`)),
      put: await run('put', samples, (i) =>
        timed('PUT', `/scheduled/${chosen[samples + i]}`, { sendAt: Date.now() + DAY + Math.floor(Math.random() * 200 * DAY) }),
      ),
      delete: await run('delete', samples, (i) => timed('DELETE', `/scheduled/${chosen[2 * samples + i]}`)),
      firstPage: await run('firstPage', Math.ceil(samples / 2), () => timed('GET', '/scheduled?limit=100')),
      deepPage: await run('deepPage', Math.ceil(samples / 2), () => timed('GET', `/scheduled?limit=100&cursor=${deepCursor}`)),
    };
    return { ops, errors, commands };
  } finally {
    http.close();
  }
}

/** Reads only (GETs and pages), so the processes' memory is sampled after real work. */
async function warmUp(api: Service, ids: string[], deepCursor: string) {
  const http = new HttpClient(api.port);
  try {
    for (const id of pick(ids, 200)) await http.send('GET', `/scheduled/${id}`);
    for (let i = 0; i < 25; i++) {
      await http.send('GET', '/scheduled?limit=100');
      await http.send('GET', `/scheduled?limit=100&cursor=${deepCursor}`);
    }
  } finally {
    http.close();
  }
}

async function cursorAt(redis: Redis, index: string, depth: number, encode: (score: number, id: string) => string) {
  const [id, score] = await redis.zrange(index, depth - 1, depth - 1, 'WITHSCORES');
  return encode(Number(score), id!);
}

/** How many sampled messages the memory breakdown averages over. */
const MEMORY_SAMPLES = 300;

function productComponents(prefix: string): Component[] {
  const tag = `{${prefix}-p0}`;
  const scheduled = `${tag}:t:default:scheduled`;
  return [
    { name: 'record (JSON string)', key: (id) => `${tag}:m:${id}`, sharedBy: 'own' },
    { name: 'tenant index (scheduled)', key: () => scheduled, sharedBy: 'members' },
    { name: 'channel index', key: (_id, f) => `${scheduled}:c:${f.channel}`, sharedBy: 'members' },
    { name: 'recipient index', key: (_id, f) => `${scheduled}:r:${f.recipient!.replace(/^\+/, '')}`, sharedBy: 'members' },
    { name: 'opt-out index (recipient, every tenant)', key: (_id, f) => `${tag}:rcpt:${f.channel}:${f.recipient!.replace(/^\+/, '')}`, sharedBy: 'members' },
    { name: 'due set', key: () => `${tag}:due`, sharedBy: 'members' },
    { name: 'BullMQ job hash', key: (id) => `${tag}:deliveries:${id}`, sharedBy: 'own' },
    { name: 'BullMQ delayed entry', key: () => `${tag}:deliveries:delayed`, sharedBy: 'members' },
    { name: 'feed event (window shared by all)', key: () => `${tag}:feed:events`, sharedBy: 'all' },
  ];
}

function referenceComponents(prefix: string): Component[] {
  const base = `{${prefix}}`;
  return [
    { name: 'record hash', key: (id) => `${base}:m:${id}`, sharedBy: 'own' },
    { name: 'tenant index (scheduled)', key: () => `${base}:scheduled`, sharedBy: 'members' },
    { name: 'BullMQ job hash', key: (id) => `${base}:deliveries:${id}`, sharedBy: 'own' },
    { name: 'BullMQ delayed entry', key: () => `${base}:deliveries:delayed`, sharedBy: 'members' },
  ];
}

async function fillIn(filler: Filler, count: number, label: string) {
  const started = Date.now();
  const result = await fill(filler.write, futureTimes(count), 256, (done) => progress(`  ${label}: ${done.toLocaleString('en-US')} written`));
  progress(`  ${label}: ${count.toLocaleString('en-US')} in ${((Date.now() - started) / 1000).toFixed(1)} s (${Math.round(result.perSecond)}/s)`);
  return result;
}

async function productSide(ctx: BenchContext, total: number, depth: number): Promise<Side> {
  const { samples } = ctx.options;
  await emptyRedis(ctx);
  const prefix = newPrefix('scale');
  const api = await startProductApi({ redisUrl: ctx.redisUrl, prefix, profileDir: ctx.profileDir });
  const worker = await startProductWorker({ redisUrl: ctx.redisUrl, prefix, profileDir: ctx.profileDir });
  const filler = productFiller(ctx.redisUrl, prefix, fillOptions(ctx));
  const index = `{${prefix}-p0}:t:default:scheduled`;
  const encode = (score: number, id: string) => encodeCursor({ score, id });
  try {
    const before = await usedMemory(ctx.redis);
    const half = Math.floor(total / 2);
    const first = await fillIn(filler, half, 'product fill (first half)');
    await warmUp(api, first.ids, await cursorAt(ctx.redis, index, Math.min(depth, half), encode));
    const rssHalf = { api: api.rssMb(), worker: worker.rssMb() };
    const second = await fillIn(filler, total - half, 'product fill (second half)');
    const after = await usedMemory(ctx.redis);
    const ids = [...first.ids, ...second.ids];
    const fieldsOf = async (id: string) => JSON.parse((await ctx.redis.get(`{${prefix}-p0}:m:${id}`))!) as Record<string, string>;
    const memory = await breakdown(ctx.redis, productComponents(prefix), fieldsOf, pick(ids, MEMORY_SAMPLES), total, after - before);
    const deepCursor = await cursorAt(ctx.redis, index, depth, encode);
    // the same work as at half size, so the two samples differ only by the number scheduled
    await warmUp(api, ids, deepCursor);
    const rssFull = { api: api.rssMb(), worker: worker.rssMb() };
    progress(`  product: GET/PUT/DELETE/pages at ${total.toLocaleString('en-US')} scheduled`);
    const { ops, errors, commands } = await measureOps(ctx.redis, api, ids, samples, deepCursor);
    return {
      commands,
      fillRate: (first.perSecond + second.perSecond) / 2,
      memory,
      ops,
      errors,
      rss: {
        api: [rssHalf.api, rssFull.api, api.rssMb()],
        worker: [rssHalf.worker, rssFull.worker, worker.rssMb()],
      },
    };
  } finally {
    await filler.close();
    await api.stop();
    await worker.stop();
  }
}

async function referenceSide(ctx: BenchContext, total: number, depth: number): Promise<Side> {
  await emptyRedis(ctx);
  const prefix = newPrefix('scale-ref');
  const api = await startReferenceApi(ctx.redisUrl, prefix);
  const filler = referenceFiller(ctx.redisUrl, prefix, fillOptions(ctx));
  try {
    const before = await usedMemory(ctx.redis);
    const { ids, perSecond } = await fillIn(filler, total, 'reference fill');
    const after = await usedMemory(ctx.redis);
    const memory = await breakdown(ctx.redis, referenceComponents(prefix), (id) => ctx.redis.hgetall(`{${prefix}}:m:${id}`), pick(ids, MEMORY_SAMPLES), total, after - before);
    progress(`  reference: GET/PUT/DELETE/pages at ${total.toLocaleString('en-US')} scheduled`);
    const cursor = await cursorAt(ctx.redis, `{${prefix}}:scheduled`, depth, (score, id) => Buffer.from(`${score}:${id}`).toString('base64url'));
    const { ops, errors, commands } = await measureOps(ctx.redis, api, ids, ctx.options.samples, cursor);
    return { fillRate: perSecond, memory, ops, errors, commands };
  } finally {
    await filler.close();
    await api.stop();
  }
}

const OPS = [
  ['get', 'GET /scheduled/:id', 5],
  ['put', 'PUT /scheduled/:id (new sendAt)', 5],
  ['delete', 'DELETE /scheduled/:id', 5],
  ['firstPage', 'first page (limit 100)', 20],
  ['deepPage', 'deep page (limit 100)', 20],
] as const;

/**
 * A large backlog of scheduled messages: single-message operations, first and deep pages, Redis
 * bytes per message, and the processes' memory at half and full size.
 */
export async function atScale(ctx: BenchContext): Promise<ScenarioResult[]> {
  const total = ctx.options.scheduled;
  const depth = Math.min(50_000, Math.floor(total / 2));
  progress(`at scale: ${total.toLocaleString('en-US')} scheduled messages`);
  const product = await productSide(ctx, total, depth);
  const reference = await referenceSide(ctx, total, depth);
  const figures: Figure[] = [];
  const commandNotes: string[] = [];
  for (const [key, label, limit] of OPS) {
    const name = key === 'deepPage' ? `${label} at depth ${depth.toLocaleString('en-US')}` : label;
    for (const q of ['p50', 'p99'] as const) {
      figures.push({
        metric: `${name} ${q}`,
        unit: 'ms',
        product: round(product.ops[key][q], 2),
        reference: round(reference.ops[key][q], 2),
        ratio: compare(product.ops[key][q], reference.ops[key][q]),
        ...(q === 'p99' ? { target: `≤ ${limit} ms`, pass: product.ops[key].p99 <= limit } : {}),
      });
    }
    const [ours, theirs] = [product.commands[key], reference.commands[key]];
    figures.push({ metric: `${name} Redis commands`, unit: 'count', product: round(ours.total, 1), reference: round(theirs.total, 1), ratio: compare(ours.total, theirs.total) });
    commandNotes.push(`Redis commands per ${label}: product ${ours.detail}; reference ${theirs.detail}`);
  }
  figures.push({ metric: 'requests not 2xx', unit: 'count', product: product.errors, reference: reference.errors, target: '0', pass: product.errors === 0 });
  figures.push({ metric: 'fill rate (store, 256 in flight)', unit: 'msg/s', product: round(product.fillRate, 0), reference: round(reference.fillRate, 0), ratio: compare(product.fillRate, reference.fillRate) });
  const { rss } = product;
  for (const service of ['api', 'worker'] as const) {
    const [atHalf, atFull, afterOps] = rss![service];
    // issue 8's goal: RSS at the full size, flat in the number of messages
    figures.push({
      metric: `${service} RSS at ${total.toLocaleString('en-US')} scheduled (${Math.floor(total / 2).toLocaleString('en-US')}: ${round(atHalf, 0)} MB)`,
      unit: 'MB',
      product: round(atFull, 0),
      target: '≤ 150 MB, flat',
      pass: atFull <= 150 && atFull - atHalf <= 20,
    });
    // V8 keeps the heap it grew to while serving; a leak would grow with the number of operations (--samples)
    figures.push({ metric: `${service} RSS after the measured operations`, unit: 'MB', product: round(afterOps, 0) });
  }
  const scale: ScenarioResult = {
    name: 'At scale',
    hz: ctx.hz,
    setup:
      `${total} scheduled (written through the store, as POST does), one request at a time over keep-alive, ` +
      `${ctx.options.samples} samples per operation; RSS from /proc/<pid>/status VmRSS at half and full size`,
    figures,
    notes: [
      ...(['api', 'worker'] as const).map(
        (p) => `${p} RSS: ${rss![p].map((mb) => round(mb, 0)).join(' / ')} MB at half size / full size / after the measured operations ("flat": full − half ≤ 20 MB)`,
      ),
      ...commandNotes,
    ],
  };
  return [scale, memoryResult(ctx, total, product.memory, reference.memory)];
}

/** Redis bytes per scheduled message, and where they go, beside the reference's. */
function memoryResult(ctx: BenchContext, total: number, product: Breakdown, reference: Breakdown): ScenarioResult {
  const ratio = compare(product.total, reference.total);
  const figures: Figure[] = [
    { metric: 'Redis bytes per scheduled message, feed window included', unit: 'B', product: round(product.total, 0), reference: round(reference.total, 0), ratio, target: '≤ 2048 B', pass: product.total <= 2048 },
  ];
  for (const part of product.parts) {
    const same = reference.parts.find((p) => p.name === part.name);
    figures.push({ metric: `  ${part.name}`, unit: 'B', product: round(part.bytes, 0), reference: same ? round(same.bytes, 0) : null, ratio: same ? compare(part.bytes, same.bytes) : null });
  }
  figures.push({ metric: '  rest (main dict, fixed keys, rounding)', unit: 'B', product: round(product.rest, 0), reference: round(reference.rest, 0) });
  const recipients = ctx.options.recipients;
  return {
    name: 'Redis memory',
    hz: ctx.hz,
    setup:
      `${total} scheduled on a default-config Redis (hash-max-listpack-value 64), ${recipients ? `${recipients} distinct recipients` : 'one recipient'}; ` +
      `total = used_memory delta ÷ messages; parts = MEMORY USAGE of each key (value, key, dict entry) of ${MEMORY_SAMPLES} sampled messages, a shared key divided among its members (the feed among all messages)`,
    figures,
    notes: [`encodings, product: ${product.encodings.join(', ')}; reference: ${reference.encodings.join(', ')}`],
  };
}

function fillOptions(ctx: BenchContext): FillOptions {
  return ctx.options.recipients ? { recipients: ctx.options.recipients } : {};
}
