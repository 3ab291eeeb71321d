import type { ListedStatus, MessagePage, MessageRecord, Receipt } from '@punctual/shared';
import { countdown, epochToLocalInput, formatLocal, formatUtc, localInputToEpoch } from './time.js';

export interface RowActions {
  cancel: (record: MessageRecord) => Promise<void>;
  reschedule: (record: MessageRecord, sendAt: number) => Promise<void>;
  retry: (record: MessageRecord) => Promise<void>;
}

interface Row {
  record: MessageRecord;
  element: HTMLTableRowElement;
  editing: boolean;
}

/**
 * The table of one list (scheduled, delivered, failed, canceled): rows keyed by message id,
 * updated in place as events arrive so focus and open editors survive a change.
 */
export class MessagesView {
  tab: ListedStatus = 'scheduled';
  nextCursor: string | null = null;
  private readonly rows = new Map<string, Row>();

  constructor(
    private readonly body: HTMLTableSectionElement,
    private readonly empty: HTMLElement,
    private readonly loadMore: HTMLButtonElement,
    private readonly actions: RowActions,
    private readonly announce: (text: string) => void,
  ) {}

  /** A fresh first page of the list; a row the feed already moved on keeps its newer version. */
  replace(page: MessagePage): void {
    const kept = new Map([...this.rows].filter(([, row]) => row.editing));
    for (const [id, row] of this.rows) if (!kept.has(id)) row.element.remove();
    this.rows.clear();
    for (const [id, row] of kept) this.rows.set(id, row);
    this.append(page, kept);
  }

  append(page: MessagePage, kept: Map<string, Row> = new Map()): void {
    for (const record of page.messages) {
      const existing = this.rows.get(record.id);
      if (!existing || existing.record.version <= record.version) this.upsert(record, false);
    }
    this.nextCursor = page.nextCursor;
    for (const [id, row] of kept) if (!page.messages.some((m) => m.id === id) && !this.belongs(row.record)) this.remove(id);
    this.refreshFooter();
  }

  clear(): void {
    for (const row of this.rows.values()) row.element.remove();
    this.rows.clear();
    this.nextCursor = null;
    this.refreshFooter();
  }

  /** A record as an event or an answer of the API has it now. */
  apply(record: MessageRecord): void {
    const existing = this.rows.get(record.id);
    if (existing) {
      if (existing.record.version > record.version) return;
      if (existing.record.status !== record.status) this.announce(`Message to ${record.recipient} is now ${record.status}`);
      else if (record.receipt && existing.record.receipt?.status !== record.receipt.status) {
        this.announce(`Message to ${record.recipient}: the provider reports ${record.receipt.status}`);
      }
      this.upsert(record, true);
      return;
    }
    if (!this.belongs(record) || this.beyondLoadedPage(record)) return;
    this.upsert(record, true);
    this.refreshFooter();
  }

  /** Moves every countdown on by the clock. */
  tick(now: number): void {
    for (const row of this.rows.values()) {
      const cell = row.element.querySelector<HTMLElement>('.countdown');
      if (cell) cell.textContent = row.record.status === 'scheduled' ? countdown(row.record.sendAt, now) : '—';
    }
  }

  private belongs(record: MessageRecord): boolean {
    return record.status === this.tab || (this.tab === 'scheduled' && record.status === 'sending');
  }

  /** A scheduled message later than the loaded rows arrives with "Load more", in its place. */
  private beyondLoadedPage(record: MessageRecord): boolean {
    if (this.nextCursor === null || this.tab !== 'scheduled') return false;
    const last = this.body.lastElementChild as HTMLTableRowElement | null;
    return last !== null && this.sortKey(record) > this.sortKey(this.recordOf(last));
  }

  /** Scheduled: soonest first; the history lists: latest first. */
  private sortKey(record: MessageRecord): number {
    if (this.tab === 'scheduled') return record.sendAt;
    const at = record.deliveredAt ?? record.failedAt ?? record.canceledAt ?? record.updatedAt;
    return -Date.parse(at);
  }

  private upsert(record: MessageRecord, live: boolean): void {
    let row = this.rows.get(record.id);
    const statusChanged = !row || row.record.status !== record.status;
    const moved = !row || this.sortKey(row.record) !== this.sortKey(record);
    if (!row) {
      const element = document.createElement('tr');
      element.dataset.id = record.id;
      element.append(...Array.from({ length: 7 }, () => document.createElement('td')));
      element.cells[5]!.className = 'countdown';
      row = { record, element, editing: false };
      this.rows.set(record.id, row);
    }
    row.record = record;
    this.fillCells(row, statusChanged);
    if (moved) this.place(row);
    if (live) {
      row.element.classList.remove('flash');
      void row.element.offsetWidth;
      row.element.classList.add('flash');
    }
  }

  private fillCells(row: Row, statusChanged: boolean): void {
    const { record, element } = row;
    const [sendAt, recipient, channel, content, status] = Array.from(element.cells);
    sendAt!.replaceChildren(timeElement(record.sendAt), document.createElement('br'), span('hint', formatUtc(record.sendAt)));
    recipient!.textContent = record.recipient;
    channel!.textContent = record.channel === 'sms' ? 'SMS' : 'WhatsApp';
    if (record.segments !== undefined) channel!.append(document.createElement('br'), span('hint segments', smsParts(record)));
    content!.textContent = record.message ?? (record.template ? `template ${record.template.name} (${record.template.language})` : '');
    content!.className = 'content';
    status!.replaceChildren(span(`status status-${record.status}`, record.status));
    if (record.cancelReason === 'opted_out') status!.append(span('hint opted-out', 'opted out'));
    if (record.receipt) status!.append(receiptElement(record.receipt));
    if (record.lastError) status!.append(span('hint error-text', record.lastError));
    element.dataset.status = record.status;
    this.tick(Date.now());
    if (statusChanged) {
      row.editing = false;
      this.fillActions(row);
    }
  }

  private fillActions(row: Row): void {
    const cell = row.element.cells[6]!;
    const { record } = row;
    const who = `message to ${record.recipient}`;
    if (row.editing) return cell.replaceChildren(this.rescheduleEditor(row));
    const buttons: HTMLButtonElement[] = [];
    if (record.status === 'scheduled') {
      buttons.push(
        button('Reschedule', `Reschedule ${who}`, () => {
          row.editing = true;
          this.fillActions(row);
          cell.querySelector('input')?.focus();
        }),
        button('Cancel', `Cancel ${who}`, (b) => this.run(b, () => this.actions.cancel(row.record)), 'danger'),
      );
    }
    if (record.status === 'failed') buttons.push(button('Retry', `Retry ${who}`, (b) => this.run(b, () => this.actions.retry(row.record))));
    const group = document.createElement('div');
    group.className = 'row-actions';
    group.append(...buttons);
    cell.replaceChildren(group);
  }

  private rescheduleEditor(row: Row): HTMLFormElement {
    const form = document.createElement('form');
    form.className = 'row-actions';
    const inputId = `reschedule-${row.record.id}`;
    const label = document.createElement('label');
    label.htmlFor = inputId;
    label.textContent = 'New send time';
    const input = document.createElement('input');
    input.id = inputId;
    input.type = 'datetime-local';
    input.step = '1';
    input.required = true;
    input.value = epochToLocalInput(row.record.sendAt);
    const save = button('Save', `Save the send time of message to ${row.record.recipient}`, () => {});
    save.type = 'submit';
    const back = button('Back', 'Keep the send time', () => close());
    const close = () => {
      row.editing = false;
      this.fillActions(row);
      row.element.querySelector<HTMLButtonElement>('button')?.focus();
    };
    form.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') close();
    });
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const sendAt = localInputToEpoch(input.value);
      if (Number.isNaN(sendAt)) return input.reportValidity();
      void this.run(save, async () => {
        await this.actions.reschedule(row.record, sendAt);
        close();
      });
    });
    form.append(label, input, save, back);
    return form;
  }

  /** Runs an action with its button disabled meanwhile. */
  private async run(trigger: HTMLButtonElement, action: () => Promise<void>): Promise<void> {
    trigger.disabled = true;
    try {
      await action();
    } catch {
      // the actions show their own errors; a failed one just leaves the row as it was
    } finally {
      trigger.disabled = false;
    }
  }

  private place(row: Row): void {
    const key = this.sortKey(row.record);
    const after = Array.from(this.body.rows).find((element) => element !== row.element && this.sortKey(this.recordOf(element)) > key);
    if (after) {
      if (row.element.nextElementSibling !== after) this.body.insertBefore(row.element, after);
    } else if (this.body.lastElementChild !== row.element) {
      this.body.append(row.element);
    }
  }

  private recordOf(element: HTMLTableRowElement): MessageRecord {
    return this.rows.get(element.dataset.id!)!.record;
  }

  private remove(id: string): void {
    this.rows.get(id)?.element.remove();
    this.rows.delete(id);
  }

  private refreshFooter(): void {
    this.empty.hidden = this.rows.size > 0;
    this.loadMore.hidden = this.nextCursor === null;
  }
}

/** What the provider reported after accepting the message, with its error code when it failed. */
function receiptElement(receipt: Receipt): HTMLSpanElement {
  const element = span(`receipt receipt-${receipt.status}`, `receipt: ${receipt.status}${receipt.errorCode ? ` (${receipt.errorCode})` : ''}`);
  element.title = `Provider receipt at ${formatLocal(Date.parse(receipt.at))}`;
  return element;
}

function timeElement(epoch: number): HTMLTimeElement {
  const time = document.createElement('time');
  time.dateTime = new Date(epoch).toISOString();
  time.textContent = formatLocal(epoch);
  return time;
}

function span(className: string, text: string): HTMLSpanElement {
  const element = document.createElement('span');
  element.className = className;
  element.textContent = text;
  return element;
}

function button(text: string, label: string, onClick: (button: HTMLButtonElement) => void, className = ''): HTMLButtonElement {
  const element = document.createElement('button');
  element.type = 'button';
  element.textContent = text;
  element.setAttribute('aria-label', label);
  if (className) element.className = className;
  element.addEventListener('click', () => onClick(element));
  return element;
}

/** How an SMS goes out: its encoding and the parts it is billed and paced in. */
function smsParts(record: MessageRecord): string {
  return `${record.encoding} · ${record.segments} ${record.segments === 1 ? 'segment' : 'segments'}`;
}
