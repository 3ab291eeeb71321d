/**
 * How one tenant's slow or dead callback receiver is kept from holding up the others' callbacks,
 * in each worker process (open-source BullMQ has no per-group limits):
 * - TenantSlots caps one tenant's callbacks in flight (CALLBACK_TENANT_CONCURRENCY); a job over
 *   the cap goes back to the delayed set without spending an attempt, so the other tenants always
 *   keep most of the slots;
 * - SlowReceivers remembers a receiver that just timed out: its next callbacks fail at once (an
 *   attempt, retried with the usual backoff) instead of each holding a slot until the timeout,
 *   and one probe at a time finds out when it answers again.
 */

export class TenantSlots {
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly perTenant: number) {}

  /** Takes one of the tenant's slots; false when it has `perTenant` callbacks in flight already. */
  tryTake(tenant: string): boolean {
    const taken = this.inFlight.get(tenant) ?? 0;
    if (taken >= this.perTenant) return false;
    this.inFlight.set(tenant, taken + 1);
    return true;
  }

  release(tenant: string): void {
    const taken = (this.inFlight.get(tenant) ?? 1) - 1;
    if (taken <= 0) this.inFlight.delete(tenant);
    else this.inFlight.set(tenant, taken);
  }
}

interface ReceiverState {
  /** No request before this time (ms). */
  coolUntil: number;
  /** A request is finding out whether the receiver answers again. */
  probing: boolean;
}

/** Receivers are remembered per tenant: another tenant using the same host is judged on its own. */
export function receiverKey(tenant: string, url: string): string {
  let origin: string;
  try {
    origin = new URL(url).origin;
  } catch {
    origin = url;
  }
  return `${tenant} ${origin}`;
}

export class SlowReceivers {
  private readonly states = new Map<string, ReceiverState>();

  constructor(
    private readonly coolDownMs: number,
    /** Receivers remembered at most; the oldest are forgotten first. */
    private readonly capacity = 10_000,
  ) {}

  /** Whether a request may go to the receiver now: none while it cools down, then one probe at a time. */
  admit(key: string, now: number): boolean {
    const state = this.states.get(key);
    if (!state) return true;
    if (now < state.coolUntil || state.probing) return false;
    state.probing = true;
    return true;
  }

  /** The receiver let a request run into the timeout. */
  timedOut(key: string, now: number): void {
    this.states.delete(key);
    this.states.set(key, { coolUntil: now + this.coolDownMs, probing: false });
    if (this.states.size > this.capacity) this.states.delete(this.states.keys().next().value!);
  }

  /** The request ended some other way (an answer, a refused connection): the receiver does not hold slots. */
  settled(key: string): void {
    this.states.delete(key);
  }
}
