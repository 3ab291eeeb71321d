/** Schedules messages through the real Scheduler (record + job in one MULTI), for tests without the API. */
import { Redis } from 'ioredis';
import type { MessageRecord } from '../packages/shared/src/index.js';
import { Keyspace, Scheduler, type NewMessage } from '../packages/store/src/index.js';
import { redisUrl } from './redis.js';

export class TestMessages {
  private constructor(
    readonly scheduler: Scheduler,
    private readonly redis: Redis,
  ) {}

  static async create(prefix: string, url = redisUrl()): Promise<TestMessages> {
    const redis = new Redis(url, { maxRetriesPerRequest: null });
    const scheduler = await Scheduler.create(redis, { keyspace: new Keyspace({ prefix, partitions: 1 }), eventsMaxLen: 10_000 });
    return new TestMessages(scheduler, redis);
  }

  get store() {
    return this.scheduler.store;
  }

  get deliveries() {
    return this.scheduler.deliveries;
  }

  /** A message due now unless `sendAt` says otherwise, for tenant `default` unless `tenant` says otherwise. */
  async schedule(input: Partial<NewMessage> = {}, tenant = 'default'): Promise<MessageRecord> {
    const now = Date.now();
    const message: NewMessage = { recipient: '5511999999999', channel: 'sms', sendAt: now, message: 'Hello', ...input };
    const result = await this.scheduler.schedule(tenant, message, now);
    if (!result.ok) throw new Error(`not scheduled: ${result.reason}`);
    return result.record;
  }

  async get(id: string): Promise<MessageRecord> {
    return (await this.store.get('default', id))!;
  }

  async close(): Promise<void> {
    await this.scheduler.close();
    this.redis.disconnect();
  }
}
