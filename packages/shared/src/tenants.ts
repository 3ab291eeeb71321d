/** A tenant name: it becomes part of Redis key names, so no `:`, `{` or spaces. */
export const TENANT_PATTERN = '^[A-Za-z0-9_.-]{1,64}$';

/** The tenant of every request in open dev mode (no API keys configured). */
export const DEFAULT_TENANT = 'default';

/** An `Idempotency-Key` header value: 1–255 printable ASCII characters. */
export const IDEMPOTENCY_KEY_PATTERN = '^[\\x20-\\x7E]{1,255}$';
