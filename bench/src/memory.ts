import type { Redis } from 'ioredis';

/** One part of what a scheduled message costs in Redis. */
export interface Component {
  name: string;
  /** The key that holds this part for a message (its record's fields at hand). */
  key(id: string, fields: Record<string, string>): string;
  /**
   * Messages that key is shared by: 1 for a key of its own (record, job hash); the set's size for
   * an index; the number scheduled for the feed stream, whose window they share.
   */
  sharedBy: 'own' | 'members' | 'all';
}

export interface Breakdown {
  /** Bytes per message, by component, averaged over the sampled messages. */
  parts: { name: string; bytes: number }[];
  /** used_memory delta ÷ messages, less the parts: main-dict buckets, fixed keys, allocator rounding. */
  rest: number;
  total: number;
  /** OBJECT ENCODING of each own key of the first sampled message, e.g. "record hash: listpack". */
  encodings: string[];
}

async function usage(redis: Redis, key: string): Promise<number> {
  return Number((await redis.memory('USAGE', key, 'SAMPLES', '0')) ?? 0);
}

async function members(redis: Redis, key: string): Promise<number> {
  const type = await redis.type(key);
  if (type === 'zset') return redis.zcard(key);
  if (type === 'stream') return redis.xlen(key);
  if (type === 'hash') return redis.hlen(key);
  return 1;
}

/**
 * Where the bytes of `count` scheduled messages go: MEMORY USAGE (key, value and dict entry) of
 * each component's key for `sampleIds`, a shared key divided among the messages it holds; what
 * the components do not explain of the used_memory delta is reported as `rest`.
 */
export async function breakdown(
  redis: Redis,
  components: Component[],
  fieldsOf: (id: string) => Promise<Record<string, string>>,
  sampleIds: string[],
  count: number,
  usedMemoryDelta: number,
): Promise<Breakdown> {
  const sums = new Map(components.map((c) => [c.name, 0]));
  const shared = new Map<string, number>();
  const encodings: string[] = [];
  for (const [i, id] of sampleIds.entries()) {
    const fields = await fieldsOf(id);
    for (const c of components) {
      const key = c.key(id, fields);
      let bytes = shared.get(key);
      if (bytes === undefined) {
        const total = await usage(redis, key);
        const by = c.sharedBy === 'own' ? 1 : c.sharedBy === 'all' ? count : Math.max(1, await members(redis, key));
        bytes = total / by;
        if (c.sharedBy !== 'own') shared.set(key, bytes);
      }
      sums.set(c.name, sums.get(c.name)! + bytes);
      if (i === 0 && c.sharedBy === 'own') encodings.push(`${c.name}: ${await redis.object('ENCODING', key)}`);
    }
  }
  const parts = components.map((c) => ({ name: c.name, bytes: sums.get(c.name)! / sampleIds.length }));
  const total = usedMemoryDelta / count;
  return { parts, rest: total - parts.reduce((sum, p) => sum + p.bytes, 0), total, encodings };
}
