import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  NoBody,
  NoQuery,
  recipientDigits,
  Suppression,
  SuppressionEnvelope,
  SuppressionListQuery,
  SuppressionPage,
  SuppressionParams,
  SuppressionRemoved,
} from '@punctual/shared';
import { decodeSuppressionCursor, type SuppressionListOptions } from '@punctual/store';
import { InvalidCursor, NotOnTenantList, NotSuppressed } from '../errors.js';
import { COMMON_ERRORS, errorResponses } from '../error-body.js';

const SuppressionCreated = Type.Object({
  success: Type.Literal(true),
  data: Suppression,
  canceled: Type.Integer({ minimum: 0, description: 'Scheduled messages of this tenant to the recipient on the channel that this request canceled' }),
});

/**
 * A tenant's own suppression list: recipients it will not message on a channel. Adding one cancels
 * the tenant's still-scheduled messages to it (`cancelReason: "opted_out"`) and refuses new ones
 * with 422 RECIPIENT_OPTED_OUT; other tenants never see the list. Recipients who opted out
 * themselves (STOP) are on the deployment's list, which a tenant sees only for a number it asks
 * about and cannot lift.
 */
const suppressions: FastifyPluginAsyncTypebox = async (app) => {
  app.put(
    '/suppressions/:channel/:recipient',
    {
      schema: {
        tags: ['suppressions'],
        summary: "Add a recipient to this tenant's suppression list for a channel; cancels its scheduled messages",
        params: SuppressionParams,
        querystring: NoQuery,
        body: NoBody,
        response: { 200: SuppressionCreated, 201: SuppressionCreated, ...errorResponses(400, ...COMMON_ERRORS) },
      },
    },
    async (request, reply) => {
      const { channel, recipient } = request.params;
      const result = await app.suppressions.optOut({ channel, recipient, tenant: request.tenant }, 'api', Date.now());
      request.log.info({ channel, created: result.created, canceled: result.canceled }, 'recipient suppressed');
      return reply.code(result.created ? 201 : 200).send({ success: true, data: result.suppression, canceled: result.canceled });
    },
  );

  app.get(
    '/suppressions/:channel/:recipient',
    {
      schema: {
        tags: ['suppressions'],
        summary: "Whether this tenant may message the recipient on the channel: its own list's entry, else the recipient's own opt-out",
        params: SuppressionParams,
        querystring: NoQuery,
        response: { 200: SuppressionEnvelope, ...errorResponses(400, 404, ...COMMON_ERRORS) },
      },
    },
    async (request) => {
      const { channel, recipient } = request.params;
      const suppression = await app.suppressions.get(request.tenant, channel, recipient);
      if (!suppression) throw new NotSuppressed(channel);
      return { success: true as const, data: suppression };
    },
  );

  app.get(
    '/suppressions',
    {
      schema: {
        tags: ['suppressions'],
        summary: "This tenant's suppression list, newest first",
        querystring: SuppressionListQuery,
        response: { 200: SuppressionPage, ...errorResponses(400, ...COMMON_ERRORS) },
      },
    },
    (request) => {
      const options: SuppressionListOptions = { limit: request.query.limit ?? 100 };
      if (request.query.cursor !== undefined) {
        const cursor = decodeSuppressionCursor(request.query.cursor);
        if (cursor === null) throw new InvalidCursor();
        options.cursor = cursor;
      }
      return app.suppressions.list(request.tenant, options);
    },
  );

  app.delete(
    '/suppressions/:channel/:recipient',
    {
      schema: {
        tags: ['suppressions'],
        summary: "Remove a recipient from this tenant's suppression list (messages it canceled stay canceled)",
        params: SuppressionParams,
        querystring: NoQuery,
        body: NoBody,
        response: { 200: SuppressionRemoved, ...errorResponses(400, 404, ...COMMON_ERRORS) },
      },
    },
    async (request) => {
      const { channel, recipient } = request.params;
      if (!(await app.suppressions.optIn({ channel, recipient, tenant: request.tenant }, Date.now()))) {
        const remaining = await app.suppressions.get(request.tenant, channel, recipient);
        const why = remaining ? ': the recipient opted out of it themselves, which only they can lift (START)' : '';
        throw new NotOnTenantList(channel, why);
      }
      request.log.info({ channel }, 'recipient no longer suppressed');
      return { success: true as const, channel, recipient: recipientDigits(recipient)! };
    },
  );
};

export default suppressions;
