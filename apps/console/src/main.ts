import './style.css';
import type { ListedStatus, MessageRecord } from '@punctual/shared';
import { ApiClient, ApiError } from './api-client.js';
import { LiveFeed, type FeedState } from './live-feed.js';
import { MessagesView } from './messages-view.js';
import { ScheduleForm } from './schedule-form.js';
import { BatchView } from './batch-view.js';
import { formatLocal } from './time.js';

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const api = new ApiClient();
const keyPanel = byId<HTMLElement>('key-panel');
const main = byId<HTMLElement>('console-main');
const errors = byId<HTMLElement>('errors');
const announcer = byId<HTMLElement>('announcer');
const badge = byId<HTMLElement>('feed-state');
const loadMore = byId<HTMLButtonElement>('load-more');
const tabs = Array.from(document.querySelectorAll<HTMLButtonElement>('[role="tab"]'));

function announce(text: string): void {
  announcer.textContent = text;
}

/** Shows an error as the API words it: its message, then one line per detail. */
function showError(error: unknown): void {
  const heading = document.createElement('p');
  heading.textContent = error instanceof Error ? error.message : String(error);
  errors.replaceChildren(heading);
  if (error instanceof ApiError && error.details.length > 0) {
    const list = document.createElement('ul');
    for (const detail of error.details) {
      const item = document.createElement('li');
      item.textContent = `${detail.path}: ${detail.message}`;
      list.append(item);
    }
    errors.append(list);
  }
  errors.hidden = false;
}

function clearError(): void {
  errors.hidden = true;
  errors.replaceChildren();
}

/** Runs a call to the API; a refusal is shown and also rethrown so the caller's step stops. */
async function call<T>(request: () => Promise<T>): Promise<T> {
  try {
    const result = await request();
    clearError();
    return result;
  } catch (error) {
    if (!(error instanceof ApiError && error.statusCode === 401)) showError(error);
    throw error;
  }
}

const view: MessagesView = new MessagesView(
  byId('rows'),
  byId('empty'),
  loadMore,
  {
    cancel: async (record) => {
      await call(() => api.cancel(record.id));
      view.apply({ ...record, status: 'canceled', canceledAt: new Date().toISOString(), version: record.version + 1 });
    },
    reschedule: async (record, sendAt): Promise<void> => view.apply(await call(() => api.reschedule(record.id, sendAt))),
    retry: async (record): Promise<void> => view.apply(await call(() => api.retry(record.id))),
  },
  announce,
);

const batchView = new BatchView(
  byId('batch-panel'),
  {
    read: (id) => call(() => api.batch(id)),
    cancel: (id) => call(() => api.cancelBatch(id)),
  },
  announce,
);

function setFeedState(state: FeedState): void {
  badge.dataset.state = state;
  badge.textContent = state;
}

const feed = new LiveFeed((since) => api.feedUrl(since), {
  onEvent: (event) => {
    view.apply(event.data);
    batchView.apply(event.data);
  },
  onResync: () => {
    void reload();
    void batchView.refresh();
  },
  onState: setFeedState,
});

async function reload(): Promise<boolean> {
  try {
    view.replace(await call(() => api.list(view.tab)));
    return true;
  } catch {
    return false;
  }
}

api.onUnauthorized = (message) => {
  const keyError = byId<HTMLElement>('key-error');
  // a first visit just asks; a key that was tried gets the API's reason
  keyError.textContent = api.key ? message : '';
  keyError.hidden = !api.key;
  feed.stop();
  setFeedState('reconnecting');
  main.hidden = true;
  keyPanel.hidden = false;
  byId<HTMLInputElement>('api-key').focus();
};

byId<HTMLFormElement>('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = byId<HTMLInputElement>('api-key');
  api.key = input.value.trim();
  input.value = '';
  void start();
});

async function start(): Promise<void> {
  if (!(await reload())) return;
  keyPanel.hidden = true;
  main.hidden = false;
  feed.restart();
}

function selectTab(selected: HTMLButtonElement): void {
  for (const tab of tabs) {
    const active = tab === selected;
    tab.setAttribute('aria-selected', String(active));
    tab.tabIndex = active ? 0 : -1;
  }
  byId('list').setAttribute('aria-labelledby', selected.id);
  view.tab = selected.dataset.tab as ListedStatus;
  view.clear();
  void reload();
}

for (const tab of tabs) {
  tab.addEventListener('click', () => selectTab(tab));
  tab.addEventListener('keydown', (event) => {
    const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
    if (step === 0) return;
    const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length]!;
    next.focus();
    selectTab(next);
  });
}

loadMore.addEventListener('click', () => {
  void call(() => api.list(view.tab, view.nextCursor)).then(
    (page) => view.append(page),
    () => {},
  );
});

new ScheduleForm(byId('schedule-form'), async (request) => {
  try {
    if (request.kind === 'list') {
      batchView.show(await call(() => api.scheduleBatch(request.bodies)), request.recipients);
      return true;
    }
    const record: MessageRecord = await call(() => api.schedule(request.body));
    view.apply(record);
    announce(`Scheduled message to ${record.recipient} for ${formatLocal(record.sendAt)}`);
    return true;
  } catch {
    return false;
  }
});

window.setInterval(() => view.tick(Date.now()), 1000);
void start();
