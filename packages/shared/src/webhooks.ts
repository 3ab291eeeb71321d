import { ConfigError } from './env.js';

/** The providers' webhooks on the API: the worker names the status one to Twilio on every send. */
export const WEBHOOK_PATHS = {
  twilioStatus: '/webhooks/twilio/status',
  twilioInbound: '/webhooks/twilio/inbound',
  whatsapp: '/webhooks/whatsapp',
} as const;

const PUBLIC_BASE_URL = /^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/;

/**
 * PUBLIC_BASE_URL (where providers reach the API: scheme, host, optional port and path prefix)
 * without its trailing slash. A bad one is named, never quoted: a URL stays out of logs.
 */
export function publicBaseUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!PUBLIC_BASE_URL.test(value)) {
    throw new ConfigError('Invalid configuration: PUBLIC_BASE_URL must be the http(s) URL providers reach this API at, without query or fragment (e.g. https://api.example.com)');
  }
  return value.replace(/\/+$/, '');
}
