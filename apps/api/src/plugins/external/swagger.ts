import { createRequire } from 'node:module';
import fp from 'fastify-plugin';
import { registerAsPublic } from '../app/auth.js';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';

const { version } = createRequire(import.meta.url)('../../../package.json') as { version: string };

/**
 * OpenAPI 3.1 of every tagged route, generated from the typebox schemas that also validate and
 * serialise them: /openapi.json, and Swagger UI at /docs.
 */
export default fp(
  async (app) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Punctual',
          version,
          description:
            'Schedule SMS and WhatsApp messages for delivery at a given time, follow them, change or cancel them. ' +
            'Errors always have the shape {statusCode, code, error, message, details?}.',
        },
        tags: [
          { name: 'scheduled', description: 'Schedule, list, change and cancel messages' },
          { name: 'history', description: 'Delivered, failed and canceled messages; retry of a failure' },
          { name: 'suppressions', description: "Opt-outs: this tenant's suppression list, and whether a recipient opted out" },
          { name: 'batches', description: 'Many messages in one request, counted and canceled together' },
          { name: 'operations', description: 'Health, readiness and metrics (no API key needed)' },
          { name: 'webhooks', description: "Providers' callbacks (Twilio, Meta): signed by the provider, no API key" },
        ],
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer <API key>' },
            apiKeyHeader: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'The API key in a header' },
          },
        },
        security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
      },
      // Routes of third-party UIs (docs, queue dashboard) carry no tags and stay out of the spec.
      hideUntagged: true,
    });
    await app.register(async (docs) => {
      registerAsPublic(docs);
      await docs.register(swaggerUi, { routePrefix: '/docs' });
      docs.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());
    });
  },
  { name: 'swagger' },
);
