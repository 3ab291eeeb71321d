import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { buildTestApp, startTestWorker } from '../../../test-support/apps.js';
import { deletePrefix, uniquePrefix } from '../../../test-support/redis.js';
import { postTwilio, twilioStatusParams, webhookEnv } from '../../../test-support/webhooks.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
/** No daylight saving since 2019: a local time converts to UTC the same way all year. */
const TIME_ZONE = 'America/Sao_Paulo';
/** A calendar day this many days ahead (messages may be scheduled at most a year ahead). */
const dayAhead = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);
const DAY = dayAhead(30);
const SCREENSHOT = fileURLToPath(new URL('../../../docs/console.png', import.meta.url));

type Worker = Awaited<ReturnType<typeof startTestWorker>>;

let browser: Browser;

beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});
afterAll(async () => {
  await browser?.close();
});

/** A real API listening on a free port and a worker delivering with a short simulated latency. */
async function startProduct(name: string, env: Record<string, string> = {}) {
  const prefix = uniquePrefix(name);
  const app: FastifyInstance = await buildTestApp(prefix, env);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const worker: Worker = await startTestWorker(prefix, { SIMULATED_LATENCY_MS: '150' });
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return {
    app,
    origin,
    async close() {
      await worker.close();
      await app.close();
      await deletePrefix(prefix);
    },
  };
}

async function openConsole(context: BrowserContext, origin: string): Promise<Page> {
  const page = await context.newPage();
  // a locator that never matches fails with its own message, before the test's timeout
  page.setDefaultTimeout(15_000);
  await page.goto(`${origin}/console`);
  return page;
}

const row = (page: Page, text: string) => page.locator('#rows tr', { hasText: text });

/** Waits until the row holding `text` shows this status (Playwright's auto-waiting locator). */
async function waitForStatus(page: Page, text: string, status: string): Promise<void> {
  await row(page, text).locator('.status').getByText(status, { exact: true }).waitFor();
}

async function waitForLive(page: Page): Promise<void> {
  await page.locator('#feed-state[data-state="live"]').waitFor();
}

async function schedule(page: Page, fields: { recipient: string; message: string; sendAt?: string }): Promise<void> {
  await page.getByLabel('Recipient (E.164)').fill(fields.recipient);
  await page.getByLabel('Message', { exact: true }).fill(fields.message);
  if (fields.sendAt) await page.getByLabel('Send at (your time)').fill(fields.sendAt);
  else await page.getByRole('button', { name: 'Now' }).click();
  await page.getByRole('button', { name: 'Schedule', exact: true }).click();
}

describe('the console in open dev mode', () => {
  let product: Awaited<ReturnType<typeof startProduct>>;
  let context: BrowserContext;
  let first: Page;
  let second: Page;

  beforeAll(async () => {
    product = await startProduct('console-open');
    context = await browser.newContext({ timezoneId: TIME_ZONE, viewport: { width: 1360, height: 860 }, reducedMotion: 'reduce' });
    first = await openConsole(context, product.origin);
    second = await openConsole(context, product.origin);
    await Promise.all([waitForLive(first), waitForLive(second)]);
  });
  afterAll(async () => {
    await context?.close();
    await product?.close();
  });

  it('schedules a message that both open pages see delivered without a reload', async () => {
    await schedule(first, { recipient: '5511988887777', message: 'console: due now' });
    for (const page of [first, second]) await row(page, 'console: due now').waitFor();
    for (const page of [first, second]) await waitForStatus(page, 'console: due now', 'delivered');
    await first.getByRole('tab', { name: 'Delivered' }).click();
    await waitForStatus(first, 'console: due now', 'delivered');
    await first.getByRole('tab', { name: 'Scheduled' }).click();
  });

  it('reads the send time in the browser time zone and shows it in UTC', async () => {
    await first.getByLabel('Send at (your time)').fill(`${DAY}T09:30:00`);
    expect(await first.locator('#send-at-utc').textContent()).toContain(`${DAY} 12:30:00 UTC`);
    await schedule(first, { recipient: '5511988887777', message: 'console: to cancel', sendAt: `${DAY}T09:30:00` });
    for (const page of [first, second]) await row(page, 'console: to cancel').getByText(`${DAY} 12:30:00 UTC`).waitFor();
  });

  it('cancels a message: both pages see it canceled, and it is listed under Canceled', async () => {
    await waitForStatus(second, 'console: to cancel', 'scheduled');
    await row(first, 'console: to cancel').getByRole('button', { name: 'Cancel message to 5511988887777' }).click();
    for (const page of [first, second]) await waitForStatus(page, 'console: to cancel', 'canceled');
    await second.getByRole('tab', { name: 'Canceled' }).click();
    await waitForStatus(second, 'console: to cancel', 'canceled');
    await second.getByRole('tab', { name: 'Scheduled' }).click();
    await row(second, 'console: to cancel').waitFor({ state: 'detached' });
  });

  it('shows a message canceled because its recipient opted out as such', async () => {
    await schedule(first, { recipient: '5511944443333', message: 'console: opted out', sendAt: `${DAY}T11:00:00` });
    await waitForStatus(second, 'console: opted out', 'scheduled');
    const suppressed = await fetch(`${product.origin}/suppressions/sms/5511944443333`, { method: 'PUT' });
    expect(suppressed.status).toBe(201);
    for (const page of [first, second]) {
      await waitForStatus(page, 'console: opted out', 'canceled');
      await row(page, 'console: opted out').getByText('opted out', { exact: true }).waitFor();
    }
    expect(await row(first, 'console: to cancel').getByText('opted out', { exact: true }).count()).toBe(0);
  });

  it('reschedules a message with a new local time', async () => {
    await schedule(first, { recipient: '5511977776666', message: 'console: to move', sendAt: `${DAY}T08:00:00` });
    const moving = row(first, 'console: to move');
    await moving.getByRole('button', { name: 'Reschedule message to 5511977776666' }).click();
    await moving.getByLabel('New send time', { exact: true }).fill(`${DAY}T10:15:00`);
    await moving.getByRole('button', { name: /^Save/ }).click();
    for (const page of [first, second]) await row(page, 'console: to move').getByText(`${DAY} 13:15:00 UTC`).waitFor();
  });

  it('reconnects after losing the feed and replays what happened meanwhile', async () => {
    for (const client of product.app.websocketServer.clients) client.terminate();
    await first.locator('#feed-state[data-state="reconnecting"]').waitFor();
    const missed = await fetch(`${product.origin}/scheduled`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ recipient: '5511955554444', message: 'console: while away', channel: 'sms', sendAt: Date.now() + 3_600_000 }),
    });
    expect(missed.status).toBe(201);
    for (const page of [first, second]) {
      await waitForLive(page);
      await waitForStatus(page, 'console: while away', 'scheduled');
    }
  });

  it('shows the encoding and segments of SMS messages', async () => {
    const text = `console: segments ${'x'.repeat(150)} 😀`;
    await schedule(first, { recipient: '5511933332222', message: text, sendAt: `${DAY}T11:00:00` });
    for (const page of [first, second]) await row(page, 'console: segments').locator('.segments').getByText('UCS-2 · 3 segments', { exact: true }).waitFor();
  });

  it('shows what the API says about bad input, with its details', async () => {
    await schedule(first, { recipient: '12', message: 'console: bad recipient', sendAt: `${DAY}T10:00:00` });
    const errors = first.getByRole('alert');
    await errors.getByText('/recipient', { exact: false }).first().waitFor();
    expect(await errors.locator('p').textContent()).toMatch(/recipient/);
    expect(await row(first, 'console: bad recipient').count()).toBe(0);
  });

  it('schedules a batch from a pasted list, shows its counts live, and cancels it', async () => {
    const panel = first.locator('#batch-panel');
    const count = (status: string, value: string) => panel.locator(`[data-status="${status}"]`).getByText(value, { exact: true }).waitFor();
    await first.getByLabel('A list (batch)').check();
    await first.getByLabel('Recipients (one per line)').fill('5511911110001\n12\n\n5511911110002\n');
    await first.getByLabel('Message', { exact: true }).fill('console: batch due now');
    await first.getByRole('button', { name: 'Now' }).click();
    await first.getByRole('button', { name: 'Schedule', exact: true }).click();
    await panel.getByText('2 scheduled, 1 refused', { exact: false }).waitFor();
    await panel.getByText('Line 2 (12): /recipient', { exact: false }).waitFor();
    await count('total', '2');
    await count('delivered', '2');
    for (const recipient of ['5511911110001', '5511911110002']) await waitForStatus(second, recipient, 'delivered');

    await first.getByLabel('Recipients (one per line)').fill('5511911110003\n5511911110004');
    await first.getByLabel('Message', { exact: true }).fill('console: batch for later');
    await first.getByLabel('Send at (your time)').fill(`${DAY}T11:00:00`);
    await first.getByRole('button', { name: 'Schedule', exact: true }).click();
    await panel.getByText('2 scheduled, 0 refused', { exact: false }).waitFor();
    await count('scheduled', '2');
    await panel.getByRole('button', { name: 'Cancel batch' }).click();
    await count('canceled', '2');
    await count('scheduled', '0');
    expect(await panel.getByRole('button', { name: 'Cancel batch' }).isDisabled()).toBe(true);
    for (const page of [first, second]) {
      for (const recipient of ['5511911110003', '5511911110004']) await waitForStatus(page, recipient, 'canceled');
    }
    await first.getByLabel('One recipient').check();
  });

  it("reads the send time in a recipient's time zone picked from the list", async () => {
    await first.getByLabel("Recipient's time zone").selectOption('Asia/Tokyo');
    await first.getByLabel("Send at (the recipient's time)").fill(`${DAY}T09:30:00`);
    expect(await first.locator('#send-at-utc').textContent()).toContain('Asia/Tokyo');
    await first.getByLabel('Recipient (E.164)').fill('5511922221111');
    await first.getByLabel('Message', { exact: true }).fill('console: in Tokyo');
    await first.getByRole('button', { name: 'Schedule', exact: true }).click();
    await row(first, 'console: in Tokyo').getByText(`${DAY} 00:30:00 UTC`).waitFor();
    await first.getByLabel("Recipient's time zone").selectOption('');
    await first.getByLabel('Send at (your time)').waitFor();
  });

  it('keeps a screenshot of the console when UPDATE_SCREENSHOT=1', async () => {
    if (process.env.UPDATE_SCREENSHOT !== '1') return;
    await first.locator('#errors').evaluate((element) => {
      element.hidden = true;
    });
    for (const [i, text] of ['Your table is ready at 8 pm', 'Reminder: dentist tomorrow 9:00', 'Your order has shipped'].entries()) {
      await schedule(first, { recipient: `55119${i}1234567`, message: text, sendAt: `${dayAhead(i + 1)}T1${i}:30:00` });
      await row(first, text).waitFor();
    }
    await mkdir(fileURLToPath(new URL('.', `file://${SCREENSHOT}`)), { recursive: true });
    await first.screenshot({ path: SCREENSHOT, fullPage: true });
  });
});

describe('the console when the server has API keys', () => {
  const KEY = 'console-test-key-5a1e07';
  let product: Awaited<ReturnType<typeof startProduct>>;
  let context: BrowserContext;

  beforeAll(async () => {
    product = await startProduct('console-keys', { API_KEYS: `tenant-console:${KEY}` });
    context = await browser.newContext({ timezoneId: TIME_ZONE });
  });
  afterAll(async () => {
    await context?.close();
    await product?.close();
  });

  it('asks for a key, refuses a wrong one in the API words, and works once given the right one', async () => {
    const page = await openConsole(context, product.origin);
    const keyInput = page.getByLabel('API key', { exact: true });
    await keyInput.waitFor();
    expect(await page.locator('#console-main').isHidden()).toBe(true);

    await keyInput.fill('not-the-key');
    await page.getByRole('button', { name: 'Use key' }).click();
    await page.getByRole('alert').getByText('A valid API key is required', { exact: false }).waitFor();

    await keyInput.fill(KEY);
    await page.getByRole('button', { name: 'Use key' }).click();
    await waitForLive(page);
    await schedule(page, { recipient: '5511966665555', message: 'console: with a key' });
    await waitForStatus(page, 'console: with a key', 'delivered');
  });
});

describe('the console and delivery receipts', () => {
  let product: Awaited<ReturnType<typeof startProduct>>;
  let context: BrowserContext;

  beforeAll(async () => {
    product = await startProduct('console-receipts', webhookEnv());
    context = await browser.newContext({ timezoneId: TIME_ZONE });
  });
  afterAll(async () => {
    await context?.close();
    await product?.close();
  });

  it('shows each receipt the provider reports, live, with its error code', async () => {
    const page = await openConsole(context, product.origin);
    await waitForLive(page);
    await schedule(page, { recipient: '5511944443333', message: 'console: receipts' });
    await waitForStatus(page, 'console: receipts', 'delivered');
    const delivered = (await product.app.inject({ url: '/delivered' })).json().messages;
    const sid = delivered.find((m: { message?: string }) => m.message === 'console: receipts').providerMessageId;

    expect((await postTwilio(product.app, '/webhooks/twilio/status', twilioStatusParams(sid, 'delivered'))).statusCode).toBe(200);
    await row(page, 'console: receipts').getByText('receipt: delivered', { exact: true }).waitFor();
    expect((await postTwilio(product.app, '/webhooks/twilio/status', twilioStatusParams(sid, 'undelivered', { ErrorCode: '30003' }))).statusCode).toBe(200);
    await row(page, 'console: receipts').getByText('receipt: undelivered (30003)', { exact: true }).waitFor();
    await waitForStatus(page, 'console: receipts', 'delivered');
  });
});
