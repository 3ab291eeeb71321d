import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Keyspace, PACING_BURST_MS, Pacer } from '../src/index.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test-support/redis.js';

/** Every call names its `now`: the pacing arithmetic is checked exactly, with no clock involved. */
const prefix = uniquePrefix('pacer');
let redis: Redis;
let pacer: Pacer;
let ids = 0;
const T = 1_800_000_000_000;

beforeAll(() => {
  redis = new Redis(redisUrl());
  pacer = new Pacer(redis, new Keyspace({ prefix, partitions: 3 }));
});
afterAll(async () => {
  redis.disconnect();
  await deletePrefix(prefix);
});

const newId = () => `01J${String(++ids).padStart(23, '0')}`;

/** Each test starts from idle channels. */
async function reset() {
  await redis.del(`{${prefix}}:pace:sms`, `{${prefix}}:pace:whatsapp`);
}

describe('Pacer', () => {
  it('hands out slots at the rate, in units, after a burst of PACING_BURST_MS', async () => {
    await reset();
    const rate = 10; // 100 ms per segment
    const pace = (units: number, now = T) => pacer.pace({ id: newId(), channel: 'sms', units, ratePerSecond: rate }, now);
    expect(await pace(3)).toEqual({ go: true, at: T, fresh: true });
    // 3 segments reserved: the next leaves 300 ms later, less the burst
    expect(await pace(1)).toEqual({ go: false, at: T + 300 - PACING_BURST_MS, fresh: true });
    expect(await pace(2)).toEqual({ go: false, at: T + 400 - PACING_BURST_MS, fresh: true });
    expect(await pace(1)).toEqual({ go: false, at: T + 600 - PACING_BURST_MS, fresh: true });
    // long after, the channel is idle again: no wait
    expect(await pace(1, T + 10_000)).toEqual({ go: true, at: T + 10_000, fresh: true });
  });

  it('never lets more than rate × window + burst + one message through any window', async () => {
    await reset();
    const rate = 50;
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const sent: { at: number; units: number }[] = [];
    let now = T;
    for (let i = 0; i < 400; i++) {
      now += Math.floor(random() * 40); // arrivals faster than the rate, in clumps
      const units = 1 + Math.floor(random() * 4);
      const decision = await pacer.pace({ id: newId(), channel: 'sms', units, ratePerSecond: rate }, now);
      sent.push({ at: decision.at, units });
    }
    sent.sort((a, b) => a.at - b.at);
    for (let i = 0; i < sent.length; i++) {
      let units = 0;
      for (let j = i; j < sent.length; j++) {
        units += sent[j]!.units;
        const window = sent[j]!.at - sent[i]!.at;
        expect(units).toBeLessThanOrEqual((rate * (window + PACING_BURST_MS)) / 1000 + 4 + 1e-6);
      }
    }
  });

  it('keeps a slot for the job that comes back for it, and spends it once', async () => {
    await reset();
    const id = newId();
    const request = { id, channel: 'sms' as const, units: 2, ratePerSecond: 1 };
    expect((await pacer.pace({ ...request, id: newId(), units: 1 }, T)).go).toBe(true);
    const first = await pacer.pace(request, T);
    expect(first).toEqual({ go: false, at: T + 1000 - PACING_BURST_MS, fresh: true });
    // back early (the reconciler, or its worker died before re-delaying it): the same slot
    expect(await pacer.pace(request, T + 500)).toEqual({ go: false, at: first.at, fresh: false });
    // back at its time: goes, without reserving again
    expect(await pacer.pace(request, first.at)).toEqual({ go: true, at: first.at, fresh: false });
    const next = await pacer.pace({ ...request, id: newId() }, first.at);
    expect(next.at).toBe(T + 3000 - PACING_BURST_MS);
    // the hold is spent: another attempt of the same message reserves anew
    expect((await pacer.pace(request, first.at)).fresh).toBe(true);
    expect(await pacer.held([id, newId()])).toEqual([true, false]);
  });

  it('holds a channel paused by a 429, slots already given included, and leaves the other channel alone', async () => {
    await reset();
    const held = newId();
    await pacer.pace({ id: newId(), channel: 'sms', units: 1, ratePerSecond: 5 }, T);
    const slot = await pacer.pace({ id: held, channel: 'sms', units: 1, ratePerSecond: 5 }, T);
    expect(slot.go).toBe(false);
    await pacer.pauseChannel('sms', T + 5000);
    await pacer.pauseChannel('sms', T + 2000); // a shorter pause never cuts a longer one
    expect(await pacer.throttles(['sms', 'whatsapp'])).toEqual(
      new Map([
        ['sms', { until: T + 5000, recipientsUntil: 0 }],
        ['whatsapp', { until: 0, recipientsUntil: 0 }],
      ]),
    );
    expect(await pacer.pace({ id: newId(), channel: 'sms', units: 1, ratePerSecond: 5 }, T + 10)).toMatchObject({ go: false, at: T + 5000 });
    // its slot came during the pause: it takes a new one after it
    const again = await pacer.pace({ id: held, channel: 'sms', units: 1, ratePerSecond: 5 }, slot.at);
    expect(again).toMatchObject({ go: false, fresh: true });
    expect(again.at).toBeGreaterThanOrEqual(T + 5000);
    expect(await pacer.pace({ id: newId(), channel: 'whatsapp', units: 1, ratePerSecond: 5 }, T + 10)).toEqual({ go: true, at: T + 10, fresh: true });
    // without a rate, the pause alone holds the channel
    const unpaced = newId();
    expect(await pacer.pace({ id: unpaced, channel: 'sms', units: 1, ratePerSecond: 0 }, T + 10)).toEqual({ go: false, at: T + 5000, fresh: true });
    expect(await pacer.pace({ id: unpaced, channel: 'sms', units: 1, ratePerSecond: 0 }, T + 5000)).toEqual({ go: true, at: T + 5000, fresh: true });
  });

  it("holds one recipient's messages without taking slots of the channel", async () => {
    await reset();
    const now = Date.now(); // the recipient's pause is a key with a TTL, so it runs on the real clock
    await pacer.pauseRecipient('whatsapp', '+5511999999999', now + 6000, now);
    expect((await pacer.throttles(['whatsapp'])).get('whatsapp')).toEqual({ until: 0, recipientsUntil: now + 6000 });
    const request = (recipient: string) => ({ id: newId(), channel: 'whatsapp' as const, units: 1, ratePerSecond: 1, recipient });
    expect(await pacer.pace(request('5511999999999'), now)).toEqual({ go: false, at: now + 6000, fresh: true });
    expect(await pacer.pace(request('5511888888888'), now)).toEqual({ go: true, at: now, fresh: true });
    // the paused recipient took no slot: the next message of the channel waits one second, not two
    expect(await pacer.pace(request('5511777777777'), now)).toEqual({ go: false, at: now + 1000 - PACING_BURST_MS, fresh: true });
  });
});
