/**
 * The minimal WebSocket fan-out reference: a plain `ws` server relaying the product's own feed
 * stream (STREAM, written by the product's POST) with no product code. One XREAD BLOCK loop reads
 * the stream; each entry becomes the contract's frame {"event","id","data"}, encoded once and
 * sent as the same text frame to every open socket.
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { Redis } from 'ioredis';

const reader = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
const stream = process.env.STREAM!;
const sockets = new Set<WebSocket>();

const server = createServer((req, res) => {
  res.writeHead(req.url === '/health' ? 200 : 404, { 'content-type': 'application/json' }).end('{"status":"ok"}');
});
const wss = new WebSocketServer({ server, path: '/ws' });
wss.on('connection', (socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
});

function field(flat: string[], name: string): string | undefined {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) return flat[i + 1];
  return undefined;
}

let running = true;
async function relay(from: string) {
  let last = from;
  while (running) {
    const reply = (await reader.xread('COUNT', 1000, 'BLOCK', 1000, 'STREAMS', stream, last).catch(() => null)) as [string, [string, string[]][]][] | null;
    for (const [, entries] of reply ?? []) {
      for (const [entryId, flat] of entries) {
        last = entryId;
        // the stored record's JSON as the stream carries it: no per-event reshaping, which would only add to the reference
        const frame = Buffer.from(`{"event":${JSON.stringify(field(flat, 'event'))},"id":"${entryId}","data":${field(flat, 'data')}}`);
        for (const socket of sockets) socket.send(frame, { binary: false });
      }
    }
  }
}
// from the stream's newest entry on, as the product's relay starts, known before /health answers
const [newest] = await reader.xrevrange(stream, '+', '-', 'COUNT', 1);
const relaying = relay(newest?.[0] ?? '0-0');

server.listen(Number(process.env.PORT), '127.0.0.1');
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, async () => {
    running = false;
    reader.disconnect();
    await relaying.catch(() => {});
    for (const socket of sockets) socket.terminate();
    wss.close();
    server.close();
    process.exit(0);
  });
}
