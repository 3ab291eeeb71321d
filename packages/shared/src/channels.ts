/** Channels a message can be sent through; the `Channel` schema lists the same names. */
export const CHANNELS = ['sms', 'whatsapp'] as const;
