import { lookup as systemLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/** IPv6 global unicast: everything else (::/8 with its IPv4-compatible forms, fc00::/7…) is refused. */
const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');

/** A callback URL whose host is, or resolves to, an address callbacks may not reach. */
export class CallbackAddressRefused extends Error {
  override name = 'CallbackAddressRefused';
  constructor(host: string, address: string) {
    super(
      `callback refused: ${host === address ? address : `${host} resolves to ${address}`}, which is not a public address ` +
        '(private, loopback, link-local or reserved); set CALLBACK_ALLOW_PRIVATE=true to allow it',
    );
  }
}

/**
 * Whether callbacks may connect to an address: public unicast only. Refuses loopback, private,
 * link-local, unique-local, CGNAT, unspecified, multicast, broadcast and reserved ranges, in IPv4
 * and IPv6; an IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
 */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const ip = ipaddr.process(address);
  if (ip.range() !== 'unicast') return false;
  return ip.kind() === 'ipv4' || ip.match(GLOBAL_UNICAST_V6);
}

type Resolver = (hostname: string, options: LookupAllOptions, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

/**
 * A `lookup` for the connection pool of callbacks: resolves the host and fails when any of its
 * addresses is not public. The socket then connects to an address checked here, so a DNS answer
 * that changes between check and connect (rebinding) cannot slip through.
 */
export function guardedLookup(resolve: Resolver = systemLookup): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const refused = addresses.find((a) => !isPublicAddress(a.address));
      if (refused) return callback(new CallbackAddressRefused(hostname, refused.address), '', 0);
      if (addresses.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

/**
 * Refuses a URL whose host is an IP literal that is not public: sockets skip `lookup` for IP
 * literals, so they are checked here, before any connection.
 */
export function assertPublicUrl(url: string): void {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) !== 0 && !isPublicAddress(host)) throw new CallbackAddressRefused(host, host);
}

/** The refusal behind an error, however deep the HTTP client wrapped it. */
export function addressRefusalOf(err: unknown): CallbackAddressRefused | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof CallbackAddressRefused) return e;
  }
  return undefined;
}
