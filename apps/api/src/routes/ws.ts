import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { FeedQuery } from '@punctual/shared';
import { parseFeedCursor } from '@punctual/store';
import { FeedClientLimitReached, InvalidField, OriginNotAllowed, UpgradeRequired } from '../errors.js';
import { FeedClientLimit } from '../feed/client-limit.js';

export interface FeedRouteOptions {
  /** Browser origins allowed to connect; empty = any. */
  allowedOrigins: string[];
  /** WS_MAX_CLIENTS_PER_TENANT: open connections a tenant may have on this instance. */
  maxClientsPerTenant: number;
}

/**
 * The live feed. Everything that can refuse a client (origin, query, auth) runs as a hook
 * before the upgrade, so a refusal is a plain HTTP answer in the usual error shape.
 */
const ws: FastifyPluginAsyncTypebox<FeedRouteOptions> = async (app, { allowedOrigins, maxClientsPerTenant }) => {
  const allowed = new Set(allowedOrigins);
  const partitions = app.store.keys.partitions;
  const limit = new FeedClientLimit(maxClientsPerTenant);
  const slots = new WeakMap<FastifyRequest, () => void>();

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
      if (!request.ws) return;
      const release = limit.reserve(request.tenant);
      if (!release) throw new FeedClientLimitReached(limit.max);
      slots.set(request, release);
      // an upgrade that fails after this point closes the connection: the slot comes back then
      request.raw.socket?.once('close', release);
    },
    handler: async () => {
      throw new UpgradeRequired();
    },
    wsHandler: (socket, request) => {
      releaseUpgradeObjects(socket, request);
      const release = slots.get(request);
      if (release) socket.once('close', release);
      app.feed.subscribe(socket, {
        tenant: request.tenant,
        keyHash: request.storeKeyHash,
        channel: request.query.channel,
        status: request.query.status,
        since: resumePoint(request.query.since),
      });
    },
  });
};

/**
 * A feed connection lives for hours; the upgrade's HTTP objects need not. @fastify/websocket
 * leaves them reachable from the socket for its whole life (its 'error' listener closes over the
 * request and reply, and the upgrade's stand-in response stays attached to the TCP socket with
 * Fastify's response listeners): about 6 KB a client, which is most of what a client costs. Both
 * are let go here; a socket error still ends the connection.
 */
function releaseUpgradeObjects(socket: WebSocket, request: FastifyRequest): void {
  const log = request.log;
  socket.removeAllListeners('error');
  socket.on('error', (err) => {
    log.debug({ err }, 'feed client socket error');
    socket.terminate();
  });
  const tcp = request.raw.socket as (Socket & { _httpMessage?: ServerResponse | null }) | null;
  tcp?._httpMessage?.detachSocket(tcp);
}

export default ws;
