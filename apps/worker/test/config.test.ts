import { describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import { ConfigError } from '@punctual/shared';
import { loadConfig } from '../src/config.js';
import { assertProvidersConfigured, createChannelRegistry } from '../src/channels/registry.js';
import { lockDurationFor } from '../src/worker.js';
import { TWILIO_SERVICE_SID, TWILIO_SID, twilioEnv, whatsAppCloudEnv } from '../../../test-support/providers.js';

const configError = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a configuration error');
};

/** The registry only keeps the dispatcher for later requests: none is made here. */
const names = (env: Record<string, string>) => {
  const registry = createChannelRegistry(loadConfig(env), {} as Agent);
  return { sms: registry.get('sms')!.name, whatsapp: registry.get('whatsapp')!.name };
};

describe('worker configuration', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ providerTimeoutMs: 10_000, deliveryAttempts: 5, deliveryBackoffMs: 1000, callbacks: { allowPrivate: false }, twilio: undefined, whatsappCloud: undefined });
    expect(loadConfig({ DELIVERY_BACKOFF_MS: '50' }).deliveryBackoffMs).toBe(50);
    expect(configError({ DELIVERY_BACKOFF_MS: '0' })).toMatch(/DELIVERY_BACKOFF_MS/);
    expect(config.callbacks.secret).toBeUndefined();
    expect(loadConfig(twilioEnv('https://api.twilio.com/')).twilio!.baseUrl).toBe('https://api.twilio.com');
    expect(loadConfig({ ...twilioEnv('x'), TWILIO_BASE_URL: '' }).twilio!.baseUrl).toBe('https://api.twilio.com');
    expect(loadConfig(whatsAppCloudEnv('')).whatsappCloud!.baseUrl).toBe('https://graph.facebook.com/v21.0');
    expect(loadConfig({ CALLBACK_ALLOW_PRIVATE: 'true', CALLBACK_SECRET: 's3cret' }).callbacks).toEqual({
      allowPrivate: true,
      secret: 's3cret',
      tenantSecrets: new Map(),
      timeoutMs: 5000,
      tenantConcurrency: 10,
    });
    expect(config.simulator.allowInProduction).toBe(false);
  });

  it('takes a Redis Cluster from REDIS_CLUSTER_NODES, never together with REDIS_URL', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'redis-a:7000,10.0.0.2:7001' }).redisClusterNodes).toEqual([
      { host: 'redis-a', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
    ]);
    expect(loadConfig({}).redisClusterNodes).toBeUndefined();
    expect(configError({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' })).toBe(
      'Invalid configuration: set REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (a Redis Cluster), not both',
    );
    expect(configError({ REDIS_CLUSTER_NODES: '127.0.0.1' })).toMatch(/^Invalid configuration: REDIS_CLUSTER_NODES /);
    expect(configError({ REDIS_CLUSTER_NODES: '127.0.0.1:70000' })).toMatch(/port must be 1-65535/);
  });

  it('refuses a partial Twilio or WhatsApp configuration with one clear line', () => {
    expect(configError({ TWILIO_ACCOUNT_SID: TWILIO_SID, TWILIO_FROM: '+15005550006' })).toBe(
      'Invalid configuration: TWILIO_AUTH_TOKEN is required when TWILIO_ACCOUNT_SID is set',
    );
    expect(configError({ TWILIO_AUTH_TOKEN: 't' })).toBe('Invalid configuration: TWILIO_ACCOUNT_SID is required when TWILIO_AUTH_TOKEN is set');
    expect(configError({ TWILIO_FROM: '+15005550006' })).toBe('Invalid configuration: TWILIO_ACCOUNT_SID is required when TWILIO_FROM is set');
    expect(configError({ TWILIO_ACCOUNT_SID: TWILIO_SID, TWILIO_AUTH_TOKEN: 't' })).toMatch(/needs a sender: set TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID/);
    expect(configError({ ...twilioEnv(''), TWILIO_ACCOUNT_SID: 'AC123' })).toMatch(/^Invalid configuration: TWILIO_ACCOUNT_SID /);
    // the pattern as written (its case matters), the value not at all
    expect(configError({ ...twilioEnv(''), TWILIO_ACCOUNT_SID: 'AC123' })).toBe("Invalid configuration: TWILIO_ACCOUNT_SID expected string to match '^AC[0-9a-fA-F]{32}$'");
    expect(configError({ WHATSAPP_TOKEN: 't' })).toBe('Invalid configuration: WHATSAPP_PHONE_NUMBER_ID is required when WHATSAPP_TOKEN is set');
    expect(configError({ WHATSAPP_PHONE_NUMBER_ID: '123' })).toBe('Invalid configuration: WHATSAPP_TOKEN is required when WHATSAPP_PHONE_NUMBER_ID is set');
    expect(configError({ CALLBACK_ALLOW_PRIVATE: 'maybe' })).toMatch(/^Invalid configuration: CALLBACK_ALLOW_PRIVATE /);
    expect(configError({ PROVIDER_TIMEOUT_MS: '10' })).toMatch(/^Invalid configuration: PROVIDER_TIMEOUT_MS /);
  });

  it('picks each channel provider from the configuration', () => {
    expect(names({})).toEqual({ sms: expect.stringMatching(/^simulator/), whatsapp: expect.stringMatching(/^simulator/) });
    expect(names(twilioEnv('https://api.twilio.com'))).toEqual({ sms: 'twilio (From +15005550006)', whatsapp: expect.stringMatching(/^simulator/) });
    expect(names(twilioEnv('https://api.twilio.com', { TWILIO_MESSAGING_SERVICE_SID: TWILIO_SERVICE_SID, TWILIO_WHATSAPP_FROM: '+14155238886' }))).toEqual({
      sms: `twilio (MessagingServiceSid ${TWILIO_SERVICE_SID})`,
      whatsapp: 'twilio (whatsapp:+14155238886)',
    });
    expect(names({ ...twilioEnv('https://api.twilio.com', { TWILIO_WHATSAPP_FROM: 'whatsapp:+14155238886' }), ...whatsAppCloudEnv('') })).toEqual({
      sms: 'twilio (From +15005550006)',
      whatsapp: 'whatsapp cloud api (phone number id 106540352242922)',
    });
  });

  it('keeps the job lock longer than one provider request', () => {
    expect(lockDurationFor(10_000)).toBe(12_000);
    expect(lockDurationFor(1000)).toBe(6000);
    for (const timeout of [100, 5000, 10_000, 120_000]) expect(lockDurationFor(timeout)).toBeGreaterThan(timeout);
  });

  it('reads CALLBACK_SECRETS as tenant:secret pairs, and never prints a secret in its errors', () => {
    const { callbacks } = loadConfig({ CALLBACK_SECRET: 'fallback', CALLBACK_SECRETS: ' acme:whsec_a:with-colon , globex.eu:whsec_b,' });
    expect(callbacks.secret).toBe('fallback');
    expect([...callbacks.tenantSecrets]).toEqual([
      ['acme', 'whsec_a:with-colon'],
      ['globex.eu', 'whsec_b'],
    ]);
    const bad = [
      ['acme:s3cr3t-one,globex', 'Invalid configuration: CALLBACK_SECRETS entry 2 must be tenant:secret'],
      ['acme:s3cr3t-one,:s3cr3t-two', 'entry 2 must be tenant:secret'],
      ['acme:s3cr3t-one,bad{tenant}:s3cr3t-two', 'entry 2 must be tenant:secret'],
      ['acme:s3cr3t one', 'entry 1 must be tenant:secret'],
      ['acme:s3cr3t-one,acme:s3cr3t-two', 'Invalid configuration: CALLBACK_SECRETS names tenant acme twice (entry 2)'],
    ];
    for (const [value, message] of bad) {
      const error = configError({ CALLBACK_SECRETS: value! });
      expect(error).toContain(message);
      expect(error).not.toMatch(/s3cr3t/);
    }
  });

  it('gives one tenant a fifth of the callback slots unless told otherwise, never more than all of them', () => {
    expect(loadConfig({ WORKER_CONCURRENCY: '4' }).callbacks.tenantConcurrency).toBe(1);
    expect(loadConfig({ WORKER_CONCURRENCY: '100', CALLBACK_TENANT_CONCURRENCY: '30', CALLBACK_TIMEOUT_MS: '2500' }).callbacks).toMatchObject({
      tenantConcurrency: 30,
      timeoutMs: 2500,
    });
    expect(configError({ WORKER_CONCURRENCY: '10', CALLBACK_TENANT_CONCURRENCY: '11' })).toMatch(/^Invalid configuration: CALLBACK_TENANT_CONCURRENCY must be at most WORKER_CONCURRENCY/);
    expect(configError({ CALLBACK_TIMEOUT_MS: '10' })).toMatch(/^Invalid configuration: CALLBACK_TIMEOUT_MS /);
  });

  it('refuses to simulate a channel under NODE_ENV=production unless SIMULATOR=true', () => {
    const refusal = (env: Record<string, string>) => {
      const config = loadConfig({ NODE_ENV: 'production', ...env });
      expect(() => createChannelRegistry(config, {} as Agent)).toThrow(ConfigError);
      try {
        assertProvidersConfigured(config);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error('expected a configuration error');
    };
    const both = refusal({});
    expect(both).toMatch(/^Invalid configuration: NODE_ENV=production and no provider is configured for channel sms \(set TWILIO_ACCOUNT_SID, .*\), channel whatsapp \(set WHATSAPP_TOKEN .*\); configure one or set SIMULATOR=true/);
    expect(both).not.toContain('\n');
    const whatsappOnly = refusal(twilioEnv('https://api.twilio.com'));
    expect(whatsappOnly).toMatch(/no provider is configured for channel whatsapp \(/);
    expect(whatsappOnly).not.toMatch(/channel sms/);
    expect(whatsappOnly).not.toContain('twilio-test-token');
    expect(refusal(whatsAppCloudEnv(''))).toMatch(/no provider is configured for channel sms \(set TWILIO_ACCOUNT_SID/);

    expect(names({ NODE_ENV: 'production', SIMULATOR: 'true' })).toEqual({ sms: expect.stringMatching(/^simulator/), whatsapp: expect.stringMatching(/^simulator/) });
    expect(names({ NODE_ENV: 'production', ...twilioEnv('https://api.twilio.com'), ...whatsAppCloudEnv('') })).toEqual({
      sms: 'twilio (From +15005550006)',
      whatsapp: 'whatsapp cloud api (phone number id 106540352242922)',
    });
    expect(names({ NODE_ENV: 'development' }).sms).toMatch(/^simulator/);
    expect(configError({ SIMULATOR: 'yes please' })).toMatch(/^Invalid configuration: SIMULATOR /);
  });
});
