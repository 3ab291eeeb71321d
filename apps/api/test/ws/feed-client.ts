import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import type { MessageRecord } from '@punctual/shared';

export interface Frame {
  event: string;
  id?: string;
  data?: MessageRecord;
}

const WAIT_LIMIT_MS = 20_000;

/** A live feed client that records every frame, so a test waits for the frame it expects. */
export class FeedClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: (() => void)[] = [];

  constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)));
      this.notify();
    });
    this.closed = new Promise((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
    socket.on('close', () => this.notify());
    socket.on('error', () => {});
  }

  static async connect(url: string, options?: WebSocket.ClientOptions): Promise<FeedClient> {
    const client = new FeedClient(new WebSocket(url, options));
    await new Promise<void>((resolve, reject) => {
      client.socket.once('open', () => resolve());
      client.socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      client.socket.once('error', reject);
    });
    return client;
  }

  /** Through `app.injectWS`, listening from the first frame. */
  static async inject(app: FastifyInstance, path: string): Promise<FeedClient> {
    let client: FeedClient | undefined;
    await app.ready();
    await app.injectWS(path, {}, { onInit: (socket) => (client = new FeedClient(socket)) });
    return client!;
  }

  /** Resolves with the first frame (already received or coming) that matches. */
  waitFor(match: (frame: Frame) => boolean, what = 'a matching frame'): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        remove();
        reject(new Error(`no ${what} within ${WAIT_LIMIT_MS} ms; got ${this.frames.map((f) => f.event).join(',')}`));
      }, WAIT_LIMIT_MS);
      const check = () => {
        const frame = this.frames.find(match);
        if (frame) {
          clearTimeout(timer);
          remove();
          resolve(frame);
        } else if (this.socket.readyState === WebSocket.CLOSED) {
          clearTimeout(timer);
          remove();
          reject(new Error(`socket closed before ${what}`));
        }
      };
      const remove = () => (this.waiters = this.waiters.filter((w) => w !== check));
      this.waiters.push(check);
      check();
    });
  }

  waitForEvent(event: string, messageId: string): Promise<Frame> {
    return this.waitFor((f) => f.event === event && f.data?.id === messageId, `${event} of ${messageId}`);
  }

  /** Events received for one message, in arrival order. */
  eventsOf(messageId: string): string[] {
    return this.frames.filter((f) => f.data?.id === messageId).map((f) => f.event);
  }

  async close(): Promise<void> {
    if (this.socket.readyState !== WebSocket.CLOSED) {
      this.socket.close();
      await this.closed;
    }
  }

  private notify() {
    for (const waiter of [...this.waiters]) waiter();
  }
}

/** ws:// address of an app listening on 127.0.0.1. */
export async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** Status and JSON body of an upgrade the server refused. */
export function refusedUpgrade(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.on('open', () => {
      socket.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    socket.on('error', () => {});
    socket.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk));
      res.on('end', () => {
        socket.terminate();
        resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null });
      });
    });
  });
}

let phone = 5511900000000;

/** A body for POST /scheduled, due in an hour unless told otherwise. */
export function newMessage(over: Record<string, unknown> = {}) {
  return { recipient: String(phone++), message: 'hello', channel: 'sms', sendAt: Date.now() + 3_600_000, ...over };
}

export async function schedule(app: FastifyInstance, over: Record<string, unknown> = {}): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/scheduled', payload: newMessage(over) });
  if (res.statusCode !== 201) throw new Error(`POST /scheduled answered ${res.statusCode}: ${res.body}`);
  return res.json().id;
}
