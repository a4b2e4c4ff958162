import { describe, expect, it } from 'vitest';
import { overlaps, parseHostAddress, parseNetwork } from '../../../src/policy/addr.js';

describe('addresses', () => {
  it('parses host addresses of both families into canonical text', () => {
    const v4 = parseHostAddress('10.0.0.5');
    expect(v4.ok && v4.value).toMatchObject({ family: 4, addr: '10.0.0.5', len: 32 });
    const v6 = parseHostAddress('fd00:0::1/64');
    expect(v6.ok && v6.value).toMatchObject({ family: 6, addr: 'fd00::1', len: 64 });
    expect(v6.ok && v6.value.network).toMatchObject({ addr: 'fd00::', len: 64 });
  });

  it('refuses what is not an address', () => {
    for (const bad of ['300.0.0.1', '10.0.0.1/33', 'fd00::1/129', 'eth0', '10.0.0.1/24/1', '']) {
      expect(parseHostAddress(bad).ok, bad).toBe(false);
    }
  });

  it('refuses networks with host bits and says what to write', () => {
    const r = parseNetwork('10.0.0.1/24');
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toContain("write '10.0.0.0/24'");
  });

  it('detects overlap within one family only', () => {
    const [a, b, c, d] = ['10.0.0.0/16', '10.0.5.0/24', '10.1.0.0/16', 'fd00::/8'].map((t) => {
      const r = parseNetwork(t);
      if (!r.ok) throw new Error(r.reason);
      return r.value;
    });
    expect(overlaps(a!, b!)).toBe(true);
    expect(overlaps(a!, c!)).toBe(false);
    expect(overlaps(a!, d!)).toBe(false);
  });
});
