import type { Channel, Template } from '@punctual/shared';
import { epochToLocalInput, epochToZonedInput, formatUtc, localInputToEpoch, timeZone, timeZones } from './time.js';

/** What the form asks for: one message, or the same message to each recipient of a pasted list (a batch). */
export type ScheduleRequest = { kind: 'one'; body: Record<string, unknown> } | { kind: 'list'; bodies: Record<string, unknown>[]; recipients: string[] };

/** The schedule form: reads itself into POST /scheduled bodies, in the API's own field names. */
export class ScheduleForm {
  private readonly sendAt: HTMLInputElement;
  private readonly zone: HTMLSelectElement;
  private readonly utcHint: HTMLElement;

  constructor(
    readonly form: HTMLFormElement,
    onSubmit: (request: ScheduleRequest) => Promise<boolean>,
  ) {
    this.sendAt = this.field<HTMLInputElement>('sendAt');
    this.zone = this.field<HTMLSelectElement>('timeZone');
    this.utcHint = form.querySelector('#send-at-utc')!;
    this.zone.append(new Option(`Your time zone (${timeZone})`, ''), ...timeZones().map((zone) => new Option(zone, zone)));
    this.sendAt.value = epochToLocalInput(Date.now() + 5 * 60_000);
    this.sendAt.addEventListener('input', () => this.showUtc());
    this.zone.addEventListener('change', () => this.showUtc());
    form.querySelector('#send-now')!.addEventListener('click', () => {
      this.sendAt.value = this.zone.value ? epochToZonedInput(Date.now(), this.zone.value) : epochToLocalInput(Date.now());
      this.showUtc();
    });
    this.field<HTMLSelectElement>('channel').addEventListener('change', () => this.showContentFields());
    for (const radio of form.querySelectorAll('input[name="contentKind"]')) radio.addEventListener('change', () => this.showContentFields());
    for (const radio of form.querySelectorAll('input[name="audience"]')) radio.addEventListener('change', () => this.showAudienceFields());
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const submit = form.querySelector<HTMLButtonElement>('button[type="submit"]')!;
      submit.disabled = true;
      void onSubmit(this.request())
        .then((scheduled) => {
          if (scheduled) this.field<HTMLTextAreaElement>('message').value = '';
        })
        .finally(() => {
          submit.disabled = false;
        });
    });
    this.showUtc();
    this.showContentFields();
    this.showAudienceFields();
  }

  private request(): ScheduleRequest {
    if (!this.toList()) return { kind: 'one', body: this.body(this.field<HTMLInputElement>('recipient').value.trim()) };
    const recipients = this.field<HTMLTextAreaElement>('recipients')
      .value.split('\n')
      .map((line) => line.trim())
      .filter(Boolean);
    return { kind: 'list', recipients, bodies: recipients.map((recipient) => this.body(recipient)) };
  }

  private body(recipient: string): Record<string, unknown> {
    const channel = this.field<HTMLSelectElement>('channel').value as Channel;
    const sendAt = localInputToEpoch(this.sendAt.value);
    // an unreadable time goes to the API as typed, so its answer says what is wrong
    const body: Record<string, unknown> = {
      recipient,
      channel,
      sendAt: Number.isNaN(sendAt) ? this.sendAt.value : sendAt,
    };
    // in the recipient's zone, the time goes as a local time for the API to read there
    if (this.zone.value) {
      body.sendAt = this.sendAt.value;
      body.timeZone = this.zone.value;
    }
    if (this.usesTemplate()) {
      const variables = this.field<HTMLTextAreaElement>('templateVariables')
        .value.split('\n')
        .map((line) => line.trim())
        .filter(Boolean);
      const template: Template = {
        name: this.field<HTMLInputElement>('templateName').value.trim(),
        language: this.field<HTMLInputElement>('templateLanguage').value.trim(),
        ...(variables.length > 0 ? { variables } : {}),
      };
      body.template = template;
    } else {
      body.message = this.field<HTMLTextAreaElement>('message').value;
    }
    return body;
  }

  private usesTemplate(): boolean {
    const kind = this.form.querySelector<HTMLInputElement>('input[name="contentKind"]:checked')?.value;
    return this.field<HTMLSelectElement>('channel').value === 'whatsapp' && kind === 'template';
  }

  private showContentFields(): void {
    this.form.querySelector<HTMLElement>('#content-kind')!.hidden = this.field<HTMLSelectElement>('channel').value !== 'whatsapp';
    const kind = this.usesTemplate() ? 'template' : 'text';
    for (const element of this.form.querySelectorAll<HTMLElement>('[data-content]')) element.hidden = element.dataset.content !== kind;
  }

  private toList(): boolean {
    return this.form.querySelector<HTMLInputElement>('input[name="audience"]:checked')?.value === 'list';
  }

  private showAudienceFields(): void {
    const audience = this.toList() ? 'list' : 'one';
    for (const element of this.form.querySelectorAll<HTMLElement>('[data-audience]')) element.hidden = element.dataset.audience !== audience;
  }

  private showUtc(): void {
    this.form.querySelector('label[for="send-at"]')!.textContent = this.zone.value ? "Send at (the recipient's time)" : 'Send at (your time)';
    if (this.zone.value) {
      this.utcHint.textContent = `Local time in ${this.zone.value}, the recipient's`;
      return;
    }
    const epoch = localInputToEpoch(this.sendAt.value);
    this.utcHint.textContent = Number.isNaN(epoch) ? `Time zone ${timeZone}` : `${formatUtc(epoch)} · your time zone is ${timeZone}`;
  }

  private field<T extends HTMLElement>(name: string): T {
    return this.form.elements.namedItem(name) as T;
  }
}
