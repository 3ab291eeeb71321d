export * from './channels.js';
export * from './message.js';
export * from './errors.js';
export * from './queues.js';
export * from './events.js';
export * from './env.js';
export * from './send-at.js';
export * from './tenants.js';
