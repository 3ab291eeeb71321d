import type { BatchCreated, BatchSummary, ListedStatus, MessagePage, MessageRecord } from '@punctual/shared';

const KEY_STORAGE = 'punctual.apiKey';

/** An answer of the API in its error shape, kept as the API words it. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly details: { path: string; message: string }[] = [],
  ) {
    super(message);
  }
}

/** The API on this page's origin, with the key the user gave (kept for this tab only). */
export class ApiClient {
  /** Called with the API's words when it answers 401: the key is missing or wrong. */
  onUnauthorized: (message: string) => void = () => {};

  get key(): string | null {
    return sessionStorage.getItem(KEY_STORAGE);
  }

  set key(value: string | null) {
    if (value) sessionStorage.setItem(KEY_STORAGE, value);
    else sessionStorage.removeItem(KEY_STORAGE);
  }

  list(status: ListedStatus, cursor?: string | null): Promise<MessagePage> {
    const query = new URLSearchParams({ limit: '50' });
    if (cursor) query.set('cursor', cursor);
    return this.request('GET', `/${status}?${query}`);
  }

  async schedule(body: Record<string, unknown>): Promise<MessageRecord> {
    return (await this.request<{ data: MessageRecord }>('POST', '/scheduled', body)).data;
  }

  scheduleBatch(messages: Record<string, unknown>[]): Promise<BatchCreated> {
    return this.request('POST', '/scheduled/batch', { messages });
  }

  batch(id: string): Promise<BatchSummary> {
    return this.request('GET', `/batches/${encodeURIComponent(id)}`);
  }

  async cancelBatch(id: string): Promise<number> {
    return (await this.request<{ canceled: number }>('DELETE', `/batches/${encodeURIComponent(id)}`)).canceled;
  }

  async reschedule(id: string, sendAt: number): Promise<MessageRecord> {
    return (await this.request<{ data: MessageRecord }>('PUT', `/scheduled/${encodeURIComponent(id)}`, { sendAt })).data;
  }

  async cancel(id: string): Promise<void> {
    await this.request('DELETE', `/scheduled/${encodeURIComponent(id)}`);
  }

  async retry(id: string): Promise<MessageRecord> {
    return (await this.request<{ data: MessageRecord }>('POST', `/failed/${encodeURIComponent(id)}/retry`)).data;
  }

  /** The feed's URL on this origin; browsers cannot set headers on a WebSocket, so the key rides in the query. */
  feedUrl(since: string | null): string {
    const url = new URL('/ws', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    if (since) url.searchParams.set('since', since);
    if (this.key) url.searchParams.set('access_token', this.key);
    return url.href;
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.key) headers.authorization = `Bearer ${this.key}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiError(0, 'The API cannot be reached; check that it is running.');
    }
    const payload = (await response.json().catch(() => null)) as
      | (T & { message?: string; details?: { path: string; message: string }[] })
      | null;
    if (response.ok && payload) return payload;
    const error = new ApiError(response.status, payload?.message ?? `${method} ${path} answered ${response.status}`, payload?.details ?? []);
    if (response.status === 401) this.onUnauthorized(error.message);
    throw error;
  }
}
