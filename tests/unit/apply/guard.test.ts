import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSshConnection } from '../../../src/apply/guard.js';
import { lockoutReason } from '../../../src/apply/lockout.js';
import { compilePolicyText } from '../../../src/compile/pipeline.js';

const homelab = compilePolicyText('policies/homelab-dmz.yaml', readFileSync('policies/homelab-dmz.yaml', 'utf8')).compiled!.ruleset;

describe('the lockout guard', () => {
  it('reads SSH_CONNECTION, IPv4, IPv6 and v4-mapped', () => {
    expect(parseSshConnection('203.0.113.99 50022 203.0.113.10 22')).toEqual({ client: '203.0.113.99', clientPort: 50022, server: '203.0.113.10', serverPort: 22 });
    expect(parseSshConnection('2001:db8::99 50022 2001:db8:1::10 22')?.server).toBe('2001:db8:1::10');
    expect(parseSshConnection('::ffff:192.0.2.9 1 ::ffff:192.0.2.1 22')?.client).toBe('192.0.2.9');
    expect(parseSshConnection(undefined)).toBeUndefined();
    expect(parseSshConnection('garbage')).toBeUndefined();
  });

  it('refuses a policy that drops new SSH from where this session came, and says which rule does it', () => {
    const reason = lockoutReason(homelab, { client: '198.51.100.7', clientPort: 50022, server: '203.0.113.10', serverPort: 22 }, 'eth0');
    expect(reason).toContain('this policy would drop new SSH connections from 198.51.100.7 to 203.0.113.10 port 22 on eth0');
    expect(reason).toContain('policy 4: net -> host drop (policies/homelab-dmz.yaml:68, policies[3])');
  });

  it('lets a policy through when the session comes from a zone that may reach the host', () => {
    expect(lockoutReason(homelab, { client: '192.168.1.50', clientPort: 50022, server: '192.168.1.1', serverPort: 22 }, 'br-lan')).toBeUndefined();
    expect(lockoutReason(homelab, { client: 'fd00:1::50', clientPort: 50022, server: 'fd00:1::1', serverPort: 22 }, 'br-lan')).toBeUndefined();
  });

  it('knows reject from drop', () => {
    const reason = lockoutReason(homelab, { client: '10.0.10.10', clientPort: 50022, server: '10.0.10.1', serverPort: 22 }, 'br-dmz');
    expect(reason).toMatch(/^this policy would reject new SSH connections from 10\.0\.10\.10/);
  });
});
