import { createHash } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { IdempotencyStore, type IdempotencyClaim } from '@punctual/store';
import { IdempotencyInProgress, IdempotencyKeyReused } from '../../errors.js';
import { bindLog } from '../../logger.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route honours `Idempotency-Key`: the same key and body replay the first response. */
    idempotent?: boolean;
  }
  interface FastifyRequest {
    /**
     * On an idempotent route whose request claimed its `Idempotency-Key`: the id the message must
     * be created with (the same for every retry of the key); '' otherwise. See the plugin.
     */
    idempotentMessageId: string;
  }
}

/** A request holds its claim this long; past it a retry takes the key over (Redis answers within 1 s or fails). */
const PENDING_MS = 30_000;
const KEEP_MS = 24 * 60 * 60 * 1000;

interface Claim {
  key: string;
  bodyHash: string;
  claimed: Extract<IdempotencyClaim, { state: 'claimed' }>;
}

/**
 * `Idempotency-Key` on routes configured `idempotent`, per tenant. The first request with a key
 * claims it (after validation, so an invalid body claims nothing) together with a message id,
 * `request.idempotentMessageId`, kept with the key for 24 h. A 2xx response is kept and replayed
 * to the same key with the same body; a 4xx frees the key; after a 5xx (Redis may have run the
 * write before the reply was lost) or once a request outlives its claim (crashed, stuck), a retry
 * with the same body takes the claim over with the same message id. The route creates its
 * message with that id, and answers with the existing message when the store refuses it as
 * already created: one key never makes two messages. The same key with another body is a 422;
 * while the first request still holds its claim, a duplicate gets a 409.
 */
export default fp(
  async (app) => {
    const store = new IdempotencyStore(app.redis, app.store.keys, { pendingMs: PENDING_MS, keepMs: KEEP_MS });
    const claims = new WeakMap<FastifyRequest, Claim>();
    app.decorateRequest('idempotentMessageId', '');

    app.addHook('preHandler', async (request, reply) => {
      if (!request.routeOptions.config.idempotent) return;
      const key = request.headers['idempotency-key'];
      if (typeof key !== 'string') return;
      const bodyHash = createHash('sha256').update(canonicalJson(request.body)).digest('hex');
      const found = await store.begin(request.tenant, key, bodyHash, app.store.newMessageId());
      if (found.state === 'claimed') {
        claims.set(request, { key, bodyHash, claimed: found });
        request.idempotentMessageId = found.messageId;
        if (found.takenOver) request.log.info({ messageId: found.messageId }, 'idempotency key taken over from a failed or stale request');
        return;
      }
      if (found.bodyHash !== bodyHash) throw new IdempotencyKeyReused();
      if (found.state !== 'done') throw new IdempotencyInProgress();
      const created = (JSON.parse(found.body) as { id?: unknown }).id;
      if (typeof created === 'string') bindLog(reply, { messageId: created });
      request.log.info('idempotent replay');
      return reply
        .code(found.statusCode)
        .header('idempotent-replayed', 'true')
        .type('application/json; charset=utf-8')
        .send(found.body);
    });

    app.addHook('onSend', async (request, reply, payload) => {
      const claim = claims.get(request);
      if (!claim) return payload;
      claims.delete(request);
      const { key, bodyHash, claimed } = claim;
      try {
        if (reply.statusCode < 300 && typeof payload === 'string') {
          await store.complete(request.tenant, key, claimed, bodyHash, reply.statusCode, payload);
        } else if (reply.statusCode < 500) {
          await store.release(request.tenant, key, claimed);
        } else {
          await store.abandon(request.tenant, key, claimed, bodyHash);
        }
      } catch (err) {
        request.log.warn({ err }, 'idempotency outcome not stored; a retry takes the key over when its claim expires');
      }
      return payload;
    });
  },
  { name: 'idempotency', dependencies: ['redis', 'messages', 'auth'] },
);

/** JSON with object keys sorted, so the same body in another key order is the same body. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
