/** Credentials and environments that point the real provider clients at fake servers. */
export const TWILIO_SID = `AC${'0123456789abcdef'.repeat(2)}`;
export const TWILIO_TOKEN = 'twilio-test-token';
export const TWILIO_FROM = '+15005550006';
export const TWILIO_SERVICE_SID = `MG${'fedcba9876543210'.repeat(2)}`;
export const TWILIO_WHATSAPP_FROM = '+14155238886';
export const TWILIO_AUTH = `Basic ${Buffer.from(`${TWILIO_SID}:${TWILIO_TOKEN}`).toString('base64')}`;
export const TWILIO_PATH = `/2010-04-01/Accounts/${TWILIO_SID}/Messages.json`;

export const WHATSAPP_TOKEN = 'EAAG-test-token';
export const WHATSAPP_PHONE_NUMBER_ID = '106540352242922';

export function twilioEnv(baseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return { TWILIO_ACCOUNT_SID: TWILIO_SID, TWILIO_AUTH_TOKEN: TWILIO_TOKEN, TWILIO_FROM, TWILIO_BASE_URL: baseUrl, ...extra };
}

export function whatsAppCloudEnv(baseUrl: string): Record<string, string> {
  return { WHATSAPP_TOKEN, WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_BASE_URL: baseUrl };
}

/** A Twilio Message resource as the create call answers it (the fields we read, and a few more). */
export function twilioMessage(sid: string) {
  return { sid, status: 'queued', account_sid: TWILIO_SID, num_segments: '1', error_code: null };
}

export function twilioError(status: number, code: number, message: string) {
  return { status, body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status } };
}
