import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { secretCheck } from '../api-keys.js';
import { registerAsPublic } from '../plugins/app/auth.js';
import { errorBody } from '../error-body.js';

const BASE_PATH = '/admin/queues';

export interface AdminQueuesOptions {
  /** ADMIN_API_KEY; unset = no dashboard at all (404). */
  adminApiKey?: string;
}

/**
 * The bull-board dashboard of every delivery queue, read-only (the records, not the jobs, are the
 * truth: change messages through the API). Only for requests carrying ADMIN_API_KEY, as a bearer
 * token, an x-api-key header, or the password of HTTP Basic auth (what a browser can send).
 */
const adminQueues: FastifyPluginAsync<AdminQueuesOptions> = async (app, { adminApiKey }) => {
  if (!adminApiKey) return;
  // no tenant key: the hook below checks ADMIN_API_KEY instead
  registerAsPublic(app);
  const isAdminKey = secretCheck(adminApiKey);

  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BASE_PATH);
  createBullBoard({
    queues: app.deliveries.all().map((queue) => new BullMQAdapter(queue, { readOnlyMode: true })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Punctual queues' } },
  });

  app.addHook('onRequest', async (request, reply) => {
    if (isAdminKey(presentedKey(request))) return;
    return reply
      .code(401)
      .header('www-authenticate', 'Basic realm="Punctual queues", charset="UTF-8"')
      .send(errorBody(401, 'UNAUTHORIZED', 'The queue dashboard needs ADMIN_API_KEY'));
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: BASE_PATH });
};

function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers['x-api-key'];
  if (typeof header === 'string') return header;
  const [scheme, value] = (request.headers.authorization ?? '').split(' ', 2);
  if (!value) return undefined;
  if (scheme!.toLowerCase() === 'bearer') return value;
  if (scheme!.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    return decoded.slice(decoded.indexOf(':') + 1);
  }
  return undefined;
}

export default adminQueues;
