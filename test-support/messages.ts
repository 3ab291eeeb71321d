/** Schedules messages the way the API does (record + delivery job), for tests without the API. */
import { Redis } from 'ioredis';
import type { MessageRecord } from '../packages/shared/src/index.js';
import { DeliveryQueues, Keyspace, MessageStore, type NewMessage } from '../packages/store/src/index.js';
import { redisUrl } from './redis.js';

export class TestMessages {
  readonly store: MessageStore;
  readonly deliveries: DeliveryQueues;
  private readonly redis: Redis;

  constructor(prefix: string, url = redisUrl()) {
    this.redis = new Redis(url, { maxRetriesPerRequest: null });
    const keyspace = new Keyspace({ prefix, partitions: 1 });
    this.store = new MessageStore(this.redis, { keyspace, eventsMaxLen: 10_000 });
    this.deliveries = new DeliveryQueues(keyspace, this.redis);
  }

  /** A message due now unless `sendAt` says otherwise, for tenant `default`. */
  async schedule(input: Partial<NewMessage> = {}): Promise<MessageRecord> {
    const now = Date.now();
    const message: NewMessage = { recipient: '5511999999999', channel: 'sms', sendAt: now, message: 'Hello', ...input };
    const id = this.store.newMessageId(now);
    await this.deliveries.enqueue(id, message.sendAt);
    return this.store.schedule('default', id, message, now);
  }

  async get(id: string): Promise<MessageRecord> {
    return (await this.store.get('default', id))!;
  }

  async close(): Promise<void> {
    await this.deliveries.close();
    this.redis.disconnect();
  }
}
