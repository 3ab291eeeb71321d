import { createHash } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { IdempotencyStore } from '@punctual/store';
import { IdempotencyInProgress, IdempotencyKeyReused } from '../../errors.js';
import { bindLog } from '../../logger.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route honours `Idempotency-Key`: the same key and body replay the first response. */
    idempotent?: boolean;
  }
}

/** A claim outlives any request (Redis answers within 1 s or fails); a crashed one frees the key after it. */
const PENDING_MS = 30_000;
const KEEP_MS = 24 * 60 * 60 * 1000;

interface Claim {
  key: string;
  bodyHash: string;
  token: string;
}

/**
 * `Idempotency-Key` on routes configured `idempotent`, per tenant: the first request with a key
 * claims it (after validation, so an invalid body claims nothing); its 2xx response is kept 24 h
 * and replayed to the same key with the same body, any other outcome frees the key. The same key
 * with another body is a 422; while the first request still runs, a duplicate gets a 409.
 */
export default fp(
  async (app) => {
    const store = new IdempotencyStore(app.redis, app.store.keys, { pendingMs: PENDING_MS, keepMs: KEEP_MS });
    const claims = new WeakMap<FastifyRequest, Claim>();

    app.addHook('preHandler', async (request, reply) => {
      if (!request.routeOptions.config.idempotent) return;
      const key = request.headers['idempotency-key'];
      if (typeof key !== 'string') return;
      const bodyHash = createHash('sha256').update(canonicalJson(request.body)).digest('hex');
      const found = await store.begin(request.tenant, key, bodyHash);
      if (found.state === 'claimed') {
        claims.set(request, { key, bodyHash, token: found.token });
        return;
      }
      if (found.bodyHash !== bodyHash) throw new IdempotencyKeyReused();
      if (found.state === 'pending') throw new IdempotencyInProgress();
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
      try {
        if (reply.statusCode < 300 && typeof payload === 'string') {
          await store.complete(request.tenant, claim.key, claim.bodyHash, claim.token, reply.statusCode, payload);
        } else {
          await store.abandon(request.tenant, claim.key, claim.bodyHash, claim.token);
        }
      } catch (err) {
        request.log.warn({ err }, 'idempotency outcome not stored; the key frees itself when its claim expires');
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
