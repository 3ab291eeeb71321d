/**
 * Redis key layout. Every key of a message (its record, its index entries, its BullMQ job, the
 * events its transitions publish) carries its partition's hash tag, so one Lua script only ever
 * touches one Redis Cluster slot.
 */
export interface KeyspaceOptions {
  /** QUEUE_PREFIX: namespace of every key, so deployments and test runs share one Redis. */
  prefix: string;
  /** Number of partitions messages are spread over (1 on a single Redis). */
  partitions: number;
}

export class Keyspace {
  readonly prefix: string;
  readonly partitions: number;

  constructor({ prefix, partitions }: KeyspaceOptions) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(prefix)) throw new Error(`invalid key prefix "${prefix}"`);
    if (!Number.isInteger(partitions) || partitions < 1) throw new Error('partitions must be ≥ 1');
    this.prefix = prefix;
    this.partitions = partitions;
  }

  /** The partition of a message follows from its id alone (FNV-1a of the id). */
  partitionOf(id: string): number {
    if (this.partitions === 1) return 0;
    let hash = 0x811c9dc5;
    for (let i = 0; i < id.length; i++) {
      hash ^= id.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
    return hash % this.partitions;
  }

  /** Hash-tagged base of a partition's keys; also the BullMQ prefix of its queues. */
  tag(partition: number): string {
    return `{${this.prefix}-p${partition}}`;
  }

  allTags(): string[] {
    return Array.from({ length: this.partitions }, (_, p) => this.tag(p));
  }

  tagOf(id: string): string {
    return this.tag(this.partitionOf(id));
  }

  record(id: string): string {
    return `${this.tagOf(id)}:m:${id}`;
  }

  /**
   * A tenant's list of one status, optionally narrowed to a recipient, a receipt status or a
   * channel, the narrowest first (lua/prelude.ts builds the same names).
   */
  index(
    tag: string,
    tenant: string,
    status: string,
    filter?: { channel?: string; recipient?: string; receipt?: string },
  ): string {
    const base = `${tag}:t:${tenant}:${status}`;
    if (filter?.recipient) return `${base}:r:${recipientKey(filter.recipient)}`;
    if (filter?.receipt) return `${base}:rc:${filter.receipt}`;
    if (filter?.channel) return `${base}:c:${filter.channel}`;
    return base;
  }

  /**
   * A batch's part in a partition: counts of its messages by status plus `createdAt` and `total`
   * (lua/prelude.ts builds the same name); the transitions keep the counts.
   */
  batch(tag: string, tenant: string, batchId: string): string {
    return `${tag}:t:${tenant}:batch:${batchId}`;
  }

  /** A batch's scheduled messages in a partition, by `sendAt` (kept with the tenant's lists). */
  batchScheduled(tag: string, tenant: string, batchId: string): string {
    return `${this.batch(tag, tenant, batchId)}:scheduled`;
  }

  /** Scheduled messages of every tenant by `sendAt`: what the reconciler walks. */
  due(tag: string): string {
    return `${tag}:due`;
  }

  /** Messages claimed for sending, by claim time: how the reconciler finds orphans. */
  sending(tag: string): string {
    return `${tag}:sending`;
  }

  /** Name of a worker process's Redis connection: while it is listed (CLIENT LIST), the process lives. */
  workerConnection(workerId: string): string {
    return `${this.prefix}:worker:${workerId}`;
  }

  /** Fleet-wide counters (by outcome and channel) and the lateness histogram. */
  stats(tag: string): string {
    return `${tag}:stats`;
  }

  lateness(tag: string): string {
    return `${tag}:lateness`;
  }

  /** Final messages by the time their retention ends (RETENTION_DAYS after they became final). */
  expiring(tag: string): string {
    return `${tag}:expiring`;
  }

  /**
   * A partition's replica of a suppression list (the deployment's, or a tenant's): what the
   * message scripts check. `<channel>:<digits>` → sequence number, negative once lifted.
   */
  suppressionReplica(tag: string, tenant?: string): string {
    return tenant === undefined ? `${tag}:supp` : `${tag}:supp:t:${tenant}`;
  }

  /** Every tenant's scheduled messages to a recipient on a channel, by `sendAt` (lua/prelude.ts builds the same name). */
  recipientIndex(tag: string, channel: string, recipient: string): string {
    return `${tag}:rcpt:${channel}:${recipientKey(recipient)}`;
  }

  /** Worker processes by their last heartbeat (one set for the deployment, on partition 0). */
  workers(): string {
    return `${this.tag(0)}:workers`;
  }

  /** The partition's feed: every transition script appends its event here (the live feed). */
  events(tag: string): string {
    return `${tag}:feed:events`;
  }

  /** Hash tag of the keys that belong to no message partition (tenants, API keys, limits). */
  global(): string {
    return `{${this.prefix}}`;
  }

  /** API keys created with the key CLI: sha256(key) → JSON {tenant, id, createdAt}. */
  apiKeys(): string {
    return `${this.global()}:apikeys`;
  }

  /** The stored outcome of a POST with an `Idempotency-Key` (keyed by the key's sha256). */
  idempotency(tenant: string, keyHash: string): string {
    return `${this.global()}:idem:${tenant}:${keyHash}`;
  }

  /** The deployment's suppression list (canonical copy): `<channel>:<digits>` → {source, createdAt}. */
  deploymentSuppressions(): string {
    return `${this.global()}:supp`;
  }

  /** A tenant's suppression list (canonical copy): `<channel>:<digits>` by creation time. */
  tenantSuppressions(tenant: string): string {
    return `${this.global()}:supp:t:${tenant}`;
  }

  /** Sequence number of suppression changes. */
  suppressionSeq(): string {
    return `${this.global()}:supp:seq`;
  }

  /** Suppression changes not yet applied to every partition, by the time they were made. */
  suppressionJournal(): string {
    return `${this.global()}:supp:pending`;
  }

  /** Opt-outs recorded, `<channel>:<source>` → count (punctual_optouts_total). */
  optOutCounts(): string {
    return `${this.global()}:optouts`;
  }

  /** Prefix of the per-tenant request counters of the rate limiter. */
  rateLimit(): string {
    return `${this.global()}:ratelimit:`;
  }

  /** A channel's pacing, fleet-wide: its next free send time and its pause after a provider 429. */
  pacing(channel: string): string {
    return `${this.global()}:pace:${channel}`;
  }

  /** The send time pacing gave one message, kept until its job comes back for it. */
  pacingHold(id: string): string {
    return `${this.global()}:pace:hold:${id}`;
  }

  /** One recipient's pause on a channel (Meta 131056: too many messages to this user). */
  pacingRecipient(channel: string, recipient: string): string {
    return `${this.global()}:pace:${channel}:r:${recipientKey(recipient)}`;
  }
}

/** A recipient is indexed by its digits, so `+5511…` and `5511…` are the same person. */
export function recipientKey(recipient: string): string {
  return recipient.startsWith('+') ? recipient.slice(1) : recipient;
}
