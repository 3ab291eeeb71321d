/**
 * Live-feed connections per tenant on this API instance. A slot is taken before the upgrade, so
 * the refusal is a plain HTTP 429, and given back once, when the connection closes.
 */
export class FeedClientLimit {
  private readonly open = new Map<string, number>();

  constructor(readonly max: number) {}

  /** A release function for the slot taken, or null when the tenant has `max` already. */
  reserve(tenant: string): (() => void) | null {
    const count = this.open.get(tenant) ?? 0;
    if (count >= this.max) return null;
    this.open.set(tenant, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(tenant) ?? 1) - 1;
      if (left > 0) this.open.set(tenant, left);
      else this.open.delete(tenant);
    };
  }
}
