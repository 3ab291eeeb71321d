import WebSocket from 'ws';
import { progress, type ScenarioResult } from '../report.js';
import { emptyRedis, newPrefix, until, type BenchContext } from '../context.js';
import { HttpClient } from '../http.js';
import { startProductApi } from '../processes.js';
import { round, summarize } from '../stats.js';

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

/** One event fanned out by one API process to many WebSocket clients. */
export async function wsFanout(ctx: BenchContext): Promise<ScenarioResult> {
  const clients = ctx.options.wsClients;
  const base: ScenarioResult = {
    name: 'WS fan-out',
    hz: ctx.hz,
    setup: `${clients} clients on one API process, one POST; latency = frame received − POST sent; no reference`,
    figures: [],
  };
  await emptyRedis(ctx);
  const api = await startProductApi({ redisUrl: ctx.redisUrl, prefix: newPrefix('ws'), profileDir: ctx.profileDir });
  const url = `ws://127.0.0.1:${api.port}/ws`;
  const sockets: WebSocket[] = [];
  const http = new HttpClient(api.port);
  try {
    const probe = await connect(url);
    if (!probe) return { ...base, skipped: 'no /ws' };
    sockets.push(probe);
    progress(`WS fan-out: opening ${clients} clients`);
    while (sockets.length < clients) {
      const batch = await Promise.all(Array.from({ length: Math.min(50, clients - sockets.length) }, () => connect(url)));
      sockets.push(...(batch.filter(Boolean) as WebSocket[]));
    }
    // frames may arrive before the POST's answer does: keep every arrival, pick the id after
    const arrivals: { id: string | undefined; at: number }[] = [];
    for (const socket of sockets) {
      socket.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as { event?: string; data?: { id?: string } };
        if (frame.event === 'messageScheduled') arrivals.push({ id: frame.data?.id, at: Date.now() });
      });
    }
    const publish = async () => {
      const sentAt = Date.now();
      const posted = await http.send('POST', '/scheduled', { recipient: '5511999999999', message: 'fan-out', sendAt: Date.now() + 3_600_000, channel: 'sms' });
      const target = (JSON.parse(posted.body) as { id: string }).id;
      const latencies = () => arrivals.filter((a) => a.id === target).map((a) => a.at - sentAt);
      await until(() => latencies().length >= clients, 30_000, `${clients} clients to receive the event`).catch(() => {});
      return latencies();
    };
    // a first event shows every client is subscribed; the second one is measured
    const warm = await publish();
    progress(`  ${warm.length}/${clients} clients got the warm-up event; measuring one more`);
    const s = summarize(await publish());
    return {
      ...base,
      figures: [
        { metric: 'clients that got the event', unit: 'count', product: s.count, target: `${clients}`, pass: s.count === clients },
        { metric: 'event latency p50', unit: 'ms', product: round(s.p50, 1) },
        { metric: 'event latency p99', unit: 'ms', product: round(s.p99, 1), target: '≤ 100 ms', pass: s.p99 <= 100 },
        { metric: 'event latency max', unit: 'ms', product: round(s.max, 1) },
      ],
    };
  } finally {
    http.close();
    for (const socket of sockets) socket.terminate();
    await api.stop();
  }
}
