import type { LookupAddress } from 'node:dns';
import { describe, expect, it } from 'vitest';
import { CallbackAddressRefused, assertPublicUrl, guardedLookup, isPublicAddress } from '../src/callbacks/address-guard.js';

/** Nothing here connects anywhere: addresses are only classified, and DNS answers are made up. */
describe('callback address guard', () => {
  it.each([
    '127.0.0.1', '127.255.255.254', '0.0.0.0', '10.0.0.1', '10.255.255.255', '172.16.0.1', '172.31.255.255',
    '192.168.0.1', '192.168.255.255', '169.254.169.254', '169.254.0.1', '100.64.0.1', '224.0.0.1', '255.255.255.255',
    '192.0.2.10', '::1', '::', 'fc00::1', 'fdff:ffff::1', 'fe80::1', 'febf::1', 'fe80::1%eth0', '::ffff:127.0.0.1',
    '::ffff:10.1.2.3', '::ffff:169.254.169.254', '::ffff:7f00:1', '::127.0.0.1', 'ff02::1', '2001:db8::1', 'not-an-ip',
  ])('refuses %s', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each(['8.8.8.8', '1.1.1.1', '93.184.216.34', '172.32.0.1', '172.15.255.255', '11.0.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])(
    'allows %s',
    (address) => {
      expect(isPublicAddress(address)).toBe(true);
    },
  );

  it('refuses URLs whose host is a non-public IP literal, however it is written', () => {
    for (const url of ['http://127.0.0.1:8080/cb', 'http://[::1]/cb', 'https://[::ffff:127.0.0.1]/', 'http://2130706433/', 'http://0x7f.1/', 'http://10.0.0.1/', 'http://[fe80::1]/']) {
      expect(() => assertPublicUrl(url), url).toThrow(CallbackAddressRefused);
    }
    for (const url of ['https://8.8.8.8/cb', 'https://hooks.example.com/cb', 'http://[2606:4700:4700::1111]/']) {
      expect(() => assertPublicUrl(url), url).not.toThrow();
    }
  });

  const answering = (addresses: LookupAddress[]) => guardedLookup((_host, _options, callback) => callback(null, addresses));
  const lookupOf = (lookup: ReturnType<typeof guardedLookup>, all: boolean) =>
    new Promise<{ err: Error | null; address: unknown; family?: number }>((resolve) =>
      lookup('hooks.example.com', { all }, (err, address, family) => resolve({ err, address, family })),
    );

  it('resolves to the checked public address the socket then connects to', async () => {
    const lookup = answering([{ address: '93.184.216.34', family: 4 }, { address: '2606:2800:220:1::1', family: 6 }]);
    expect(await lookupOf(lookup, false)).toEqual({ err: null, address: '93.184.216.34', family: 4 });
    expect((await lookupOf(lookup, true)).address).toEqual([{ address: '93.184.216.34', family: 4 }, { address: '2606:2800:220:1::1', family: 6 }]);
  });

  it('refuses a host when any address it resolves to is not public (DNS rebinding, split answers)', async () => {
    for (const address of ['127.0.0.1', '10.0.0.7', '169.254.169.254', '::1', 'fd00::1', '::ffff:192.168.1.1']) {
      const lookup = answering([{ address: '93.184.216.34', family: 4 }, { address, family: address.includes(':') ? 6 : 4 }]);
      const { err } = await lookupOf(lookup, true);
      expect(err, address).toBeInstanceOf(CallbackAddressRefused);
      expect(err!.message).toContain(`hooks.example.com resolves to ${address}`);
    }
  });

  it('refuses localhost through the system resolver', async () => {
    const { err } = await new Promise<{ err: Error | null }>((resolve) => guardedLookup()('localhost', {}, (err) => resolve({ err })));
    expect(err).toBeInstanceOf(CallbackAddressRefused);
  });
});
