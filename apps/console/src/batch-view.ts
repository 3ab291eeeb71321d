import type { BatchCreated, BatchSummary, MessageRecord } from '@punctual/shared';

const STATUSES = ['scheduled', 'sending', 'delivered', 'failed', 'canceled'] as const;

export interface BatchActions {
  read: (id: string) => Promise<BatchSummary>;
  cancel: (id: string) => Promise<number>;
}

/**
 * The batch scheduled last: what became of each pasted line, its counts by status (read again
 * whenever the feed tells of one of its messages), and the cancel of what is still scheduled.
 */
export class BatchView {
  private batchId: string | null = null;
  private reading = false;
  private stale = false;
  private readonly counts = new Map<string, HTMLElement>();
  private readonly summary: HTMLElement;
  private readonly refusals: HTMLUListElement;
  private readonly cancelButton: HTMLButtonElement;

  constructor(
    private readonly panel: HTMLElement,
    private readonly actions: BatchActions,
    private readonly announce: (text: string) => void,
  ) {
    this.summary = panel.querySelector('#batch-summary')!;
    this.refusals = panel.querySelector('#batch-refusals')!;
    this.cancelButton = panel.querySelector('#cancel-batch')!;
    for (const element of panel.querySelectorAll<HTMLElement>('[data-status]')) this.counts.set(element.dataset.status!, element);
    this.cancelButton.addEventListener('click', () => void this.cancel());
  }

  /** A batch just scheduled from `lines` (the recipients, in the order sent). */
  show(created: BatchCreated, lines: string[]): void {
    this.batchId = created.batchId;
    this.summary.textContent = `Batch ${created.batchId}: ${created.accepted} scheduled, ${created.rejected} refused`;
    const items = created.results.flatMap((result) => {
      if (!('error' in result)) return [];
      const item = document.createElement('li');
      const reason = result.error.details?.map((d) => `${d.path} ${d.message}`).join('; ') ?? result.error.message;
      item.textContent = `Line ${result.index + 1} (${lines[result.index] ?? ''}): ${reason}`;
      return [item];
    });
    this.refusals.replaceChildren(...items);
    this.refusals.hidden = items.length === 0;
    this.cancelButton.disabled = false;
    this.panel.hidden = false;
    this.announce(this.summary.textContent);
    void this.refresh();
  }

  /** A record from the feed: one of this batch's messages changed, so its counts did. */
  apply(record: MessageRecord): void {
    if (this.batchId !== null && record.batchId === this.batchId) void this.refresh();
  }

  /** Reads the counts again; events that arrive meanwhile cause one more read, not one each. */
  async refresh(): Promise<void> {
    if (this.batchId === null) return;
    if (this.reading) {
      this.stale = true;
      return;
    }
    this.reading = true;
    try {
      do {
        this.stale = false;
        const id: string = this.batchId;
        const summary = await this.actions.read(id);
        if (id === this.batchId) this.render(summary);
      } while (this.stale);
    } catch {
      // the API's refusal is shown by the caller; the next event reads again
    } finally {
      this.reading = false;
    }
  }

  private render(summary: BatchSummary): void {
    for (const status of STATUSES) this.counts.get(status)!.textContent = String(summary.counts[status]);
    this.counts.get('total')!.textContent = String(summary.total);
    this.cancelButton.disabled = summary.counts.scheduled === 0;
  }

  private async cancel(): Promise<void> {
    if (this.batchId === null) return;
    this.cancelButton.disabled = true;
    try {
      const canceled = await this.actions.cancel(this.batchId);
      this.announce(`Canceled ${canceled} scheduled message${canceled === 1 ? '' : 's'} of the batch`);
    } catch {
      this.cancelButton.disabled = false;
    }
    await this.refresh();
  }
}
