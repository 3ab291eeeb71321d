import { Type, type Static } from '@sinclair/typebox';
import { CommonEnv, ConfigError, DAY_MS, EnvBool, EnvInt, EnvNumber, TENANT_PATTERN, WEBHOOK_PATHS, commonConfig, parseEnv, parseTenantPairs, publicBaseUrl, type Channel, type CommonConfig } from '@punctual/shared';

const BaseUrl = (defaultValue: string) => Type.String({ default: defaultValue, pattern: '^https?://[^\\s]+$' });
const Secret = Type.Optional(Type.String({ minLength: 1 }));

const WorkerEnv = Type.Object({
  ...CommonEnv,
  WORKER_CONCURRENCY: EnvInt(50, 1, 10_000),
  WORKER_PORT: EnvInt(4001, 0, 65535),
  DELIVERY_ATTEMPTS: EnvInt(5, 1, 100),
  DELIVERY_BACKOFF_MS: EnvInt(1000, 1, 3_600_000),
  RECONCILE_INTERVAL_MS: EnvInt(5000, 100, 3_600_000),
  SIMULATED_LATENCY_MS: EnvInt(50, 0, 60_000),
  SIMULATED_FAILURE_RATE: EnvNumber(0, 0, 1),
  /** With NODE_ENV=production, channels without a provider refuse to start unless this is true. */
  SIMULATOR: EnvBool(false),
  PROVIDER_TIMEOUT_MS: EnvInt(10_000, 100, 120_000),
  SMS_RATE_PER_SECOND: EnvNumber(0, 0, 1_000_000),
  WHATSAPP_RATE_PER_SECOND: EnvNumber(0, 0, 1_000_000),
  THROTTLE_MAX_MS: EnvInt(600_000, 0, 7 * DAY_MS),
  TWILIO_ACCOUNT_SID: Type.Optional(Type.String({ pattern: '^AC[0-9a-fA-F]{32}$' })),
  TWILIO_AUTH_TOKEN: Secret,
  TWILIO_FROM: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  TWILIO_MESSAGING_SERVICE_SID: Type.Optional(Type.String({ pattern: '^MG[0-9a-fA-F]{32}$' })),
  TWILIO_WHATSAPP_FROM: Type.Optional(Type.String({ pattern: '^(whatsapp:)?\\+[1-9][0-9]{6,14}$' })),
  TWILIO_BASE_URL: BaseUrl('https://api.twilio.com'),
  WHATSAPP_TOKEN: Secret,
  WHATSAPP_PHONE_NUMBER_ID: Type.Optional(Type.String({ pattern: '^[0-9]{1,32}$' })),
  WHATSAPP_BASE_URL: BaseUrl('https://graph.facebook.com/v21.0'),
  CALLBACK_SECRET: Secret,
  /** `tenant:secret,…`; parsed below, so a malformed entry is reported without its secret. */
  CALLBACK_SECRETS: Type.Optional(Type.String()),
  CALLBACK_ALLOW_PRIVATE: EnvBool(false),
  CALLBACK_TIMEOUT_MS: EnvInt(5000, 100, 120_000),
  /** Unset: a fifth of WORKER_CONCURRENCY (at least 1). */
  CALLBACK_TENANT_CONCURRENCY: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
  PUBLIC_BASE_URL: Type.Optional(Type.String()),
  RECEIPT_POLL_AFTER_MS: EnvInt(600_000, 1000, 30 * DAY_MS),
});
type WorkerEnv = Static<typeof WorkerEnv>;

export interface TwilioConfig {
  accountSid: string;
  authToken: string;
  /** SMS sender: a Messaging Service (preferred when both are set) or a From number/sender id. */
  messagingServiceSid?: string;
  from?: string;
  /** WhatsApp sender, `whatsapp:+…`; unset = WhatsApp does not go through Twilio. */
  whatsappFrom?: string;
  baseUrl: string;
  /** StatusCallback of every send (PUBLIC_BASE_URL + the status webhook); unset = Twilio posts no receipts. */
  statusCallback?: string;
}

export interface WhatsAppCloudConfig {
  token: string;
  phoneNumberId: string;
  baseUrl: string;
}

export interface PacingConfig {
  /** SMS segments / WhatsApp messages handed to the provider per second, fleet-wide; 0 = unlimited. */
  rates: Record<Channel, number>;
  /** A message still refused for its rate this long after the first refusal fails. */
  throttleMaxMs: number;
}

export interface WorkerConfig extends CommonConfig {
  concurrency: number;
  port: number;
  deliveryAttempts: number;
  /** Base of the retry backoff: attempt n waits a random time up to base·2^(n-1) (capped at 5 min). */
  deliveryBackoffMs: number;
  reconcileIntervalMs: number;
  /** `allowInProduction`: SIMULATOR=true, the simulator may serve channels under NODE_ENV=production. */
  simulator: { latencyMs: number; failureRate: number; allowInProduction: boolean };
  /** Deadline of one provider request, connect to last byte. */
  providerTimeoutMs: number;
  pacing: PacingConfig;
  twilio?: TwilioConfig;
  whatsappCloud?: WhatsAppCloudConfig;
  callbacks: CallbackConfig;
  /** A Twilio message with no receipt (or only `sent`) this long after acceptance is looked up once. */
  receiptPollAfterMs: number;
}

export interface CallbackConfig {
  /** CALLBACK_SECRET: signs the callbacks of tenants without their own secret; unset = unsigned. */
  secret?: string;
  /** CALLBACK_SECRETS: tenant → the secret that signs that tenant's callbacks. */
  tenantSecrets: ReadonlyMap<string, string>;
  allowPrivate: boolean;
  /** Deadline of one callback request, connect to last byte. */
  timeoutMs: number;
  /** Callbacks of one tenant in flight at once in this process: the other tenants keep the rest of the slots. */
  tenantConcurrency: number;
}

export function loadConfig(env: Record<string, string | undefined> = process.env): WorkerConfig {
  const e: WorkerEnv = parseEnv(WorkerEnv, env);
  return {
    ...commonConfig(e),
    concurrency: e.WORKER_CONCURRENCY,
    port: e.WORKER_PORT,
    deliveryAttempts: e.DELIVERY_ATTEMPTS,
    deliveryBackoffMs: e.DELIVERY_BACKOFF_MS,
    reconcileIntervalMs: e.RECONCILE_INTERVAL_MS,
    simulator: { latencyMs: e.SIMULATED_LATENCY_MS, failureRate: e.SIMULATED_FAILURE_RATE, allowInProduction: e.SIMULATOR },
    providerTimeoutMs: e.PROVIDER_TIMEOUT_MS,
    pacing: { rates: { sms: e.SMS_RATE_PER_SECOND, whatsapp: e.WHATSAPP_RATE_PER_SECOND }, throttleMaxMs: e.THROTTLE_MAX_MS },
    twilio: twilioConfig(e),
    whatsappCloud: whatsAppCloudConfig(e),
    callbacks: {
      secret: e.CALLBACK_SECRET,
      tenantSecrets: tenantSecrets(e.CALLBACK_SECRETS),
      allowPrivate: e.CALLBACK_ALLOW_PRIVATE,
      timeoutMs: e.CALLBACK_TIMEOUT_MS,
      tenantConcurrency: tenantConcurrency(e),
    },
    receiptPollAfterMs: e.RECEIPT_POLL_AFTER_MS,
  };
}

/** CALLBACK_SECRETS: `tenant:secret` pairs as API_KEYS (see parseTenantPairs), one secret a tenant. */
function tenantSecrets(list: string | undefined): Map<string, string> {
  const secrets = new Map<string, string>();
  const format = `tenant:secret (tenant matching ${TENANT_PATTERN}, secret not empty, without spaces)`;
  for (const { tenant, secret, entry } of parseTenantPairs(list ?? '', 'CALLBACK_SECRETS', format)) {
    if (secrets.has(tenant)) throw incomplete(`CALLBACK_SECRETS names tenant ${tenant} twice (entry ${entry})`);
    secrets.set(tenant, secret);
  }
  return secrets;
}

function tenantConcurrency(e: WorkerEnv): number {
  const cap = e.CALLBACK_TENANT_CONCURRENCY ?? Math.max(1, Math.floor(e.WORKER_CONCURRENCY / 5));
  if (cap > e.WORKER_CONCURRENCY) {
    throw incomplete('CALLBACK_TENANT_CONCURRENCY must be at most WORKER_CONCURRENCY (it is one tenant\'s share of those slots)');
  }
  return cap;
}

/** All of a Twilio account or none of it: a half-configured provider would fail every message. */
function twilioConfig(e: WorkerEnv): TwilioConfig | undefined {
  const senders = ['TWILIO_FROM', 'TWILIO_MESSAGING_SERVICE_SID', 'TWILIO_WHATSAPP_FROM'] as const;
  const sender = senders.find((name) => e[name] !== undefined);
  if (!e.TWILIO_ACCOUNT_SID && !e.TWILIO_AUTH_TOKEN && !sender) return undefined;
  if (!e.TWILIO_ACCOUNT_SID) throw incomplete(`TWILIO_ACCOUNT_SID is required when ${e.TWILIO_AUTH_TOKEN ? 'TWILIO_AUTH_TOKEN' : sender} is set`);
  if (!e.TWILIO_AUTH_TOKEN) throw incomplete('TWILIO_AUTH_TOKEN is required when TWILIO_ACCOUNT_SID is set');
  if (!sender) throw incomplete('TWILIO_ACCOUNT_SID needs a sender: set TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID (SMS) and/or TWILIO_WHATSAPP_FROM');
  const config: TwilioConfig = { accountSid: e.TWILIO_ACCOUNT_SID, authToken: e.TWILIO_AUTH_TOKEN, baseUrl: trimSlash(e.TWILIO_BASE_URL) };
  if (e.TWILIO_MESSAGING_SERVICE_SID) config.messagingServiceSid = e.TWILIO_MESSAGING_SERVICE_SID;
  if (e.TWILIO_FROM) config.from = e.TWILIO_FROM;
  if (e.TWILIO_WHATSAPP_FROM) config.whatsappFrom = e.TWILIO_WHATSAPP_FROM.replace(/^(whatsapp:)?/, 'whatsapp:');
  const base = publicBaseUrl(e.PUBLIC_BASE_URL);
  if (base) config.statusCallback = `${base}${WEBHOOK_PATHS.twilioStatus}`;
  return config;
}

function whatsAppCloudConfig(e: WorkerEnv): WhatsAppCloudConfig | undefined {
  if (!e.WHATSAPP_TOKEN && !e.WHATSAPP_PHONE_NUMBER_ID) return undefined;
  if (!e.WHATSAPP_TOKEN) throw incomplete('WHATSAPP_TOKEN is required when WHATSAPP_PHONE_NUMBER_ID is set');
  if (!e.WHATSAPP_PHONE_NUMBER_ID) throw incomplete('WHATSAPP_PHONE_NUMBER_ID is required when WHATSAPP_TOKEN is set');
  return { token: e.WHATSAPP_TOKEN, phoneNumberId: e.WHATSAPP_PHONE_NUMBER_ID, baseUrl: trimSlash(e.WHATSAPP_BASE_URL) };
}

function incomplete(problem: string): ConfigError {
  return new ConfigError(`Invalid configuration: ${problem}`);
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
