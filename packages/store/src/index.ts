export * from './keys.js';
export * from './cursor.js';
export * from './record.js';
export * from './message-store.js';
export * from './delivery-queues.js';
export * from './redis.js';
export * from './embedded-redis.js';
export * from './worker-heartbeats.js';
