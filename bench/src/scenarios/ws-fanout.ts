import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { compare, progress, type Figure, type ScenarioResult } from '../report.js';
import { emptyRedis, newPrefix, until, type BenchContext } from '../context.js';
import { HttpClient } from '../http.js';
import { startProductApi, startReferenceWs, type Service } from '../processes.js';
import { round, summarize, type Summary } from '../stats.js';

/** Opens a WebSocket, or resolves null when the server refuses the upgrade (no /ws route). */
function connect(url: string): Promise<WebSocket | null> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.once('open', () => resolve(socket));
    socket.once('unexpected-response', (_req, res) => {
      res.resume();
      socket.terminate();
      if (res.statusCode === 404) resolve(null);
      else reject(new Error(`GET /ws answered ${res.statusCode}`));
    });
    socket.once('error', reject);
  });
}

/**
 * Opens `clients` sockets on one server, POSTs one message and measures, per client, the time
 * from the POST being sent to its messageScheduled frame arriving. A first event shows every
 * client is subscribed; the second one is measured. Null when the server has no /ws.
 */
async function fanOut(service: Service, clients: number, label: string): Promise<Summary | null> {
  const url = `ws://127.0.0.1:${service.port}/ws`;
  const sockets: WebSocket[] = [];
  const http = new HttpClient(service.port);
  try {
    const probe = await connect(url);
    if (!probe) return null;
    sockets.push(probe);
    progress(`WS fan-out (${label}): opening ${clients} clients`);
    while (sockets.length < clients) {
      const batch = await Promise.all(Array.from({ length: Math.min(50, clients - sockets.length) }, () => connect(url)));
      sockets.push(...(batch.filter(Boolean) as WebSocket[]));
    }
    // Frames may arrive before the POST's answer does: keep every arrival, pick the id after.
    // Only the time is taken on arrival (1,000 clients share this process): frames are read after.
    const arrivals: { frame: WebSocket.RawData; at: number }[] = [];
    for (const socket of sockets) socket.on('message', (frame) => arrivals.push({ frame, at: performance.now() }));
    const read = (raw: WebSocket.RawData) => JSON.parse(raw.toString()) as { event?: string; data?: { id?: string } };
    const publish = async () => {
      arrivals.length = 0;
      const sentAt = performance.now();
      const posted = await http.send('POST', '/scheduled', { recipient: '5511999999999', message: 'fan-out', sendAt: Date.now() + 3_600_000, channel: 'sms' });
      const target = (JSON.parse(posted.body) as { id: string }).id;
      await until(() => arrivals.length >= clients, 30_000, `${clients} clients to receive the event`).catch(() => {});
      return arrivals.flatMap(({ frame, at }) => {
        const { event, data } = read(frame);
        return event === 'messageScheduled' && data?.id === target ? [at - sentAt] : [];
      });
    };
    const warm = await publish();
    progress(`  ${warm.length}/${clients} clients got the warm-up event; measuring one more`);
    return summarize(await publish());
  } finally {
    http.close();
    for (const socket of sockets) socket.terminate();
  }
}

/** One event fanned out by one API process to many WebSocket clients, beside a bare relay. */
export async function wsFanout(ctx: BenchContext): Promise<ScenarioResult> {
  const clients = ctx.options.wsClients;
  const base: ScenarioResult = {
    name: 'WS fan-out',
    hz: ctx.hz,
    setup:
      `${clients} clients on one API process, one POST; latency = frame received − POST sent (clients in the bench process); ` +
      'reference: bare Fastify + @fastify/websocket, POST = HSET + XADD in one MULTI, one XREAD BLOCK loop sending each frame, serialized once, to every socket',
    figures: [],
  };
  await emptyRedis(ctx);
  const api = await startProductApi({ redisUrl: ctx.redisUrl, prefix: newPrefix('ws'), profileDir: ctx.profileDir });
  let product: Summary | null;
  try {
    product = await fanOut(api, clients, 'product');
  } finally {
    await api.stop();
  }
  if (!product) return { ...base, skipped: 'no /ws' };
  await emptyRedis(ctx);
  const bare = await startReferenceWs(ctx.redisUrl, newPrefix('ws-ref'));
  let reference: Summary | null;
  try {
    reference = await fanOut(bare, clients, 'reference');
  } finally {
    await bare.stop();
  }
  const figures: Figure[] = [
    { metric: 'clients that got the event', unit: 'count', product: product.count, reference: reference?.count ?? null, target: `${clients}`, pass: product.count === clients },
  ];
  for (const q of ['p50', 'p99', 'max'] as const) {
    figures.push({
      metric: `event latency ${q}`,
      unit: 'ms',
      product: round(product[q], 1),
      reference: reference ? round(reference[q], 1) : null,
      ratio: compare(product[q], reference?.[q]),
      ...(q === 'p99' ? { target: '≤ 100 ms', pass: product.p99 <= 100 } : {}),
    });
  }
  return { ...base, figures };
}
