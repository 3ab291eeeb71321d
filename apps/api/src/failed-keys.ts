import { isIPv6 } from 'node:net';

export interface FailedKeyLimits {
  /** Unknown keys an address may present per window before it is refused. */
  max: number;
  windowMs: number;
  /** Addresses remembered at most: past it the oldest window is forgotten. */
  maxAddresses: number;
}

/** 20 a minute: plenty for a client whose key was just rotated, useless for guessing one. */
export const FAILED_KEY_LIMITS: FailedKeyLimits = { max: 20, windowMs: 60_000, maxAddresses: 10_000 };

/**
 * Unknown API keys presented from each address, counted in this process in fixed windows: an
 * address over the limit is refused before its key is looked up at all, so guessing keys costs
 * neither Redis nor the key store a lookup. Memory is bounded: at most `maxAddresses` windows,
 * the oldest dropped first (insertion order is window order). IPv6 addresses count by their /64,
 * which one client usually holds whole.
 */
export class FailedKeyLimiter {
  private readonly windows = new Map<string, { failures: number; endsAt: number }>();

  constructor(private readonly limits: FailedKeyLimits = FAILED_KEY_LIMITS) {}

  /** Seconds before this address may present a key again; 0 when it may now. */
  retryAfter(address: string, now = Date.now()): number {
    const window = this.windows.get(addressKey(address));
    if (!window || window.endsAt <= now || window.failures < this.limits.max) return 0;
    return Math.ceil((window.endsAt - now) / 1000);
  }

  failed(address: string, now = Date.now()): void {
    const key = addressKey(address);
    let window = this.windows.get(key);
    if (!window || window.endsAt <= now) {
      this.windows.delete(key);
      if (this.windows.size >= this.limits.maxAddresses) this.windows.delete(this.windows.keys().next().value!);
      window = { failures: 0, endsAt: now + this.limits.windowMs };
      this.windows.set(key, window);
    }
    window.failures++;
  }

  get size(): number {
    return this.windows.size;
  }
}

/** The address as counted: IPv4 as is (also when IPv4-mapped), IPv6 by its first 64 bits. */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const front = head ? head.split(':') : [];
  const back = address.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
