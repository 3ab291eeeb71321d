import type { Channel, Template } from '@punctual/shared';
import { epochToLocalInput, formatUtc, localInputToEpoch, timeZone } from './time.js';

/** The schedule form: reads itself into a POST /scheduled body, in the API's own field names. */
export class ScheduleForm {
  private readonly sendAt: HTMLInputElement;
  private readonly utcHint: HTMLElement;

  constructor(
    readonly form: HTMLFormElement,
    onSubmit: (body: Record<string, unknown>) => Promise<boolean>,
  ) {
    this.sendAt = this.field<HTMLInputElement>('sendAt');
    this.utcHint = form.querySelector('#send-at-utc')!;
    this.sendAt.value = epochToLocalInput(Date.now() + 5 * 60_000);
    this.sendAt.addEventListener('input', () => this.showUtc());
    form.querySelector('#send-now')!.addEventListener('click', () => {
      this.sendAt.value = epochToLocalInput(Date.now());
      this.showUtc();
    });
    this.field<HTMLSelectElement>('channel').addEventListener('change', () => this.showContentFields());
    for (const radio of form.querySelectorAll('input[name="contentKind"]')) radio.addEventListener('change', () => this.showContentFields());
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const submit = form.querySelector<HTMLButtonElement>('button[type="submit"]')!;
      submit.disabled = true;
      void onSubmit(this.body())
        .then((scheduled) => {
          if (scheduled) this.field<HTMLTextAreaElement>('message').value = '';
        })
        .finally(() => {
          submit.disabled = false;
        });
    });
    this.showUtc();
    this.showContentFields();
  }

  private body(): Record<string, unknown> {
    const channel = this.field<HTMLSelectElement>('channel').value as Channel;
    const sendAt = localInputToEpoch(this.sendAt.value);
    // an unreadable time goes to the API as typed, so its answer says what is wrong
    const body: Record<string, unknown> = {
      recipient: this.field<HTMLInputElement>('recipient').value.trim(),
      channel,
      sendAt: Number.isNaN(sendAt) ? this.sendAt.value : sendAt,
    };
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

  private showUtc(): void {
    const epoch = localInputToEpoch(this.sendAt.value);
    this.utcHint.textContent = Number.isNaN(epoch) ? `Time zone ${timeZone}` : `${formatUtc(epoch)} · your time zone is ${timeZone}`;
  }

  private field<T extends HTMLElement>(name: string): T {
    return this.form.elements.namedItem(name) as T;
  }
}
