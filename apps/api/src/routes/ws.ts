import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { FeedQuery } from '@punctual/shared';
import { parseFeedCursor } from '@punctual/store';
import { InvalidField, OriginNotAllowed, UpgradeRequired } from '../errors.js';

export interface FeedRouteOptions {
  /** Browser origins allowed to connect; empty = any. */
  allowedOrigins: string[];
}

/**
 * The live feed. Everything that can refuse a client (origin, query, auth) runs as a hook
 * before the upgrade, so a refusal is a plain HTTP answer in the usual error shape.
 */
const ws: FastifyPluginAsyncTypebox<FeedRouteOptions> = async (app, { allowedOrigins }) => {
  const allowed = new Set(allowedOrigins);
  const partitions = app.store.keys.partitions;

  // No Origin header is a non-browser client, which a browser's cross-site page cannot pose as.
  const checkOrigin = async (request: FastifyRequest) => {
    const origin = request.headers.origin;
    if (allowed.size > 0 && origin !== undefined && !allowed.has(origin.toLowerCase())) throw new OriginNotAllowed(origin);
  };

  const resumePoint = (since: string | undefined) => {
    if (since === undefined) return undefined;
    const cursor = parseFeedCursor(since, partitions);
    if (!cursor) throw new InvalidField('/since', `is not an event id of this feed (${partitions} partition${partitions > 1 ? 's' : ''})`);
    return cursor;
  };

  app.route({
    method: 'GET',
    url: '/ws',
    schema: {
      tags: ['feed'],
      summary: 'Live feed of message events (WebSocket)',
      description:
        'Frames: {"event","id","data"} for every change of a message; ?since=<id> replays what was missed, or sends {"event":"resync"} first when that is no longer retained.',
      querystring: FeedQuery,
    },
    onRequest: checkOrigin,
    preHandler: async (request) => {
      resumePoint(request.query.since);
    },
    handler: async () => {
      throw new UpgradeRequired();
    },
    wsHandler: (socket, request) => {
      app.feed.subscribe(socket, {
        tenant: request.tenant,
        channel: request.query.channel,
        status: request.query.status,
        since: resumePoint(request.query.since),
      });
    },
  });
};

export default ws;
