import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { compare, progress, type Figure, type ScenarioResult } from '../report.js';
import { emptyRedis, newPrefix, until, type BenchContext } from '../context.js';
import { HttpClient } from '../http.js';
import { cpuMs, startProductApi, startReferenceWs, type Service } from '../processes.js';
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

interface FanOut {
  latency: Summary;
  /** CPU ms the process serving the sockets used per measured event (for the product, the POST too). */
  cpuPerEvent: number;
  /** MB of the process serving the sockets, with every client connected, after the events. */
  rssMb: number;
}

/** Events measured after the warm-up one; their latencies are pooled. */
const MEASURED_EVENTS = 10;

/**
 * Opens `clients` sockets on the WebSocket server at `wsPort`, POSTs messages to the product API
 * at `apiPort` and measures, per client, the time from the POST being sent to its
 * messageScheduled frame arriving. A first event shows every client is subscribed; the next ones
 * are measured. Null when the server has no /ws.
 */
async function fanOut(wsPort: number, api: Service, server: Service, clients: number, label: string): Promise<FanOut | null> {
  const url = `ws://127.0.0.1:${wsPort}/ws`;
  const sockets: WebSocket[] = [];
  const http = new HttpClient(api.port);
  try {
    const probe = await connect(url);
    if (!probe) return null;
    sockets.push(probe);
    progress(`WS fan-out (${label}): opening ${clients.toLocaleString('en-US')} clients`);
    while (sockets.length < clients) {
      const batch = await Promise.all(Array.from({ length: Math.min(50, clients - sockets.length) }, () => connect(url)));
      sockets.push(...(batch.filter(Boolean) as WebSocket[]));
    }
    // Frames may arrive before the POST's answer does: keep every arrival, pick the id after.
    // Only the time is taken on arrival (every client shares this process): frames are read after.
    const arrivals: { frame: WebSocket.RawData; at: number }[] = [];
    for (const socket of sockets) socket.on('message', (frame) => arrivals.push({ frame, at: performance.now() }));
    const read = (raw: WebSocket.RawData) => JSON.parse(raw.toString()) as { event?: string; data?: { id?: string } };
    const publish = async () => {
      arrivals.length = 0;
      const sentAt = performance.now();
      const posted = await http.send('POST', '/scheduled', { recipient: '5511999999999', message: 'fan-out', sendAt: Date.now() + 3_600_000, channel: 'sms' });
      if (posted.status !== 201) throw new Error(`POST /scheduled answered ${posted.status}`);
      const target = (JSON.parse(posted.body) as { id: string }).id;
      await until(() => arrivals.length >= clients, 60_000, `${clients} clients to receive the event`).catch(() => {});
      return arrivals.flatMap(({ frame, at }) => {
        const { event, data } = read(frame);
        return event === 'messageScheduled' && data?.id === target ? [at - sentAt] : [];
      });
    };
    const warm = await publish();
    progress(`  ${warm.length}/${clients} clients got the warm-up event; measuring ${MEASURED_EVENTS} more`);
    const latencies: number[] = [];
    let complete = true;
    const cpu0 = cpuMs(server.child.pid!);
    for (let i = 0; i < MEASURED_EVENTS; i++) {
      const event = await publish();
      complete &&= event.length === clients;
      latencies.push(...event);
    }
    const cpuPerEvent = (cpuMs(server.child.pid!) - cpu0) / MEASURED_EVENTS;
    const latency = summarize(latencies);
    // a client that missed an event counts as one that never got it
    return { latency: { ...latency, count: complete ? clients : Math.floor(latencies.length / MEASURED_EVENTS) }, cpuPerEvent, rssMb: server.rssMb() };
  } finally {
    http.close();
    for (const socket of sockets) socket.terminate();
  }
}

/**
 * One event fanned out to `--ws-clients` WebSocket clients: by the product's API process, and by
 * a plain `ws` relay reading the same feed stream (each event POSTed to the product API both times).
 */
export async function wsFanout(ctx: BenchContext): Promise<ScenarioResult> {
  const clients = ctx.options.wsClients;
  const base: ScenarioResult = {
    name: 'WS fan-out',
    hz: ctx.hz,
    setup:
      `${clients} clients, events POSTed to the product API; latency = frame received − POST sent (every client in the bench process, ` +
      'so at 10,000 the bench reading the frames weighs on both sides alike), ' +
      `${MEASURED_EVENTS} events after a warm-up one; reference: a plain \`ws\` relay (XREAD BLOCK on the product's feed stream, ` +
      'each frame encoded once and sent to every socket), the product API only taking the POST',
    figures: [],
  };
  await emptyRedis(ctx);
  const prefix = newPrefix('ws');
  const api = await startProductApi({ redisUrl: ctx.redisUrl, prefix, profileDir: ctx.profileDir });
  let product: FanOut | null;
  let reference: FanOut | null = null;
  let idleRss: number;
  try {
    idleRss = api.rssMb();
    product = await fanOut(api.port, api, api, clients, 'product');
    if (product) {
      const relay = await startReferenceWs(ctx.redisUrl, `{${prefix}-p0}:feed:events`);
      try {
        reference = await fanOut(relay.port, api, relay, clients, 'bare ws relay');
      } finally {
        await relay.stop();
      }
    }
  } finally {
    await api.stop();
  }
  if (!product) return { ...base, skipped: 'no /ws' };
  const figures: Figure[] = [
    { metric: 'clients that got every event', unit: 'count', product: product.latency.count, reference: reference?.latency.count ?? null, target: `${clients}`, pass: product.latency.count === clients },
  ];
  for (const q of ['p50', 'p99', 'max'] as const) {
    figures.push({
      metric: `POST → frame ${q}`,
      unit: 'ms',
      product: round(product.latency[q], 1),
      reference: reference ? round(reference.latency[q], 1) : null,
      ratio: compare(product.latency[q], reference?.latency[q]),
      // issue 19: within 1.2× a plain ws relay reading the same stream (any client count)
      ...(q === 'p99' && reference ? { target: '≤ 1.2× ref', pass: product.latency.p99 <= 1.2 * reference.latency.p99 } : {}),
    });
  }
  figures.push({
    metric: 'CPU per event of the process holding the sockets',
    unit: 'ms',
    product: round(product.cpuPerEvent, 1),
    reference: reference ? round(reference.cpuPerEvent, 1) : null,
    ratio: compare(product.cpuPerEvent, reference?.cpuPerEvent),
    note: 'product: the API process, its POST included; reference: the relay; /proc ticks of 10 ms',
  });
  figures.push({
    metric: `RSS with ${clients.toLocaleString('en-US')} clients (product: API process; reference: relay)`,
    unit: 'MB',
    product: round(product.rssMb, 0),
    reference: reference ? round(reference.rssMb, 0) : null,
    ratio: compare(product.rssMb, reference?.rssMb),
    note: `product API ${round(idleRss, 0)} MB before any client`,
    // issue 19: 10,000 clients on one API within 300 MB
    ...(clients <= 10_000 ? { target: '≤ 300 MB', pass: product.rssMb <= 300 } : {}),
  });
  return { ...base, figures };
}
