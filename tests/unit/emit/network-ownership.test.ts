// guestwall owns exactly what it created on the host network: the planner records what it adds,
// removes what it owns and the policy no longer has (routes by their protocol, the rest by the
// record), never anything else, and plans the way back to a snapshot for rollback.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type NetworkSetup, networkSetup } from '../../../src/emit/network.js';
import { type LiveNetwork, NOTHING_OWNED, ROUTE_PROTOCOL, planNetwork, planRestore, sysctlKeys } from '../../../src/emit/network-plan.js';
import { compileYaml } from '../../support/compile.js';

const setup = networkSetup(compileYaml(readFileSync('policies/homelab-dmz.yaml', 'utf8')).model);
/** The same host after the routed guest `mail` left the policy. */
const withoutMail: NetworkSetup = { ...setup, routedPorts: [], proxies: [], sysctls: setup.sysctls.filter((s) => !s.key.includes('gw-mail')) };
const line = (s: { program: string; args: string[] }) => [s.program, ...s.args].join(' ');

const bare: LiveNetwork = {
  links: [{ ifname: 'lo', up: true }, { ifname: 'eth0', up: true }, { ifname: 'eth1', up: false }, { ifname: 'gw-mail', kind: 'veth', up: true }],
  addresses: [{ ifname: 'eth0', cidr: '203.0.113.10/24' }],
  routes: [{ dst: '203.0.113.0/24', dev: 'eth0' }],
  proxies: [],
  sysctls: Object.fromEntries(sysctlKeys(setup).map((k) => [k, '0'])),
};

/** The homelab host once guestwall set it up, plus someone else's route and proxy entry next to guestwall's. */
const configured: LiveNetwork = {
  links: [...bare.links.map((l) => (l.ifname === 'eth1' ? { ...l, master: 'br-lan', up: true } : l)), { ifname: 'br-lan', kind: 'bridge', up: true, stpState: 0, forwardDelay: 0 }, { ifname: 'br-dmz', kind: 'bridge', up: true, stpState: 0, forwardDelay: 0 }],
  addresses: [...bare.addresses, ...setup.bridges.flatMap((b) => b.addresses.map((cidr) => ({ ifname: b.name, cidr }))), { ifname: 'gw-mail', cidr: '169.254.0.1/32' }, { ifname: 'gw-mail', cidr: 'fe80::1/64' }],
  routes: [
    ...bare.routes,
    { dst: '203.0.113.20/32', dev: 'gw-mail', owned: true },
    { dst: '2001:db8:10::20/128', dev: 'gw-mail', metric: 1024, owned: true },
    { dst: '203.0.113.20/32', dev: 'gw-mail', metric: 50 }, // someone else's, on the same port
  ],
  proxies: [{ address: '203.0.113.20', dev: 'eth0' }, { address: '203.0.113.99', dev: 'eth0' }], // .99 is someone else's
  sysctls: Object.fromEntries(setup.sysctls.map((s) => [s.key, s.value])),
};

describe('what guestwall owns on the host network', () => {
  it('records what a plan adds: bridge and gateway addresses, proxy entries, sysctls with the value before', () => {
    const plan = planNetwork(setup, bare);
    expect(plan.owned.proxies).toEqual([{ address: '203.0.113.20', dev: 'eth0' }]);
    expect(plan.owned.addresses).toContainEqual({ ifname: 'br-lan', cidr: '192.168.1.1/24' });
    expect(plan.owned.addresses).toContainEqual({ ifname: 'gw-mail', cidr: '169.254.0.1/32' });
    expect(plan.owned.sysctls).toContainEqual({ key: 'net.ipv4.ip_forward', value: '1', before: '0' });
    // Routes carry the protocol instead of a record.
    expect(plan.steps.filter((s) => s.args.includes('route')).map(line)).toEqual([
      `ip -4 route add 203.0.113.20/32 dev gw-mail proto ${ROUTE_PROTOCOL}`,
      `ip -6 route add 2001:db8:10::20/128 dev gw-mail proto ${ROUTE_PROTOCOL}`,
    ]);
  });

  it('does not adopt what was there before it: an address or proxy entry already live is not recorded', () => {
    const live = { ...bare, proxies: [{ address: '203.0.113.20', dev: 'eth0' }], addresses: [...bare.addresses, { ifname: 'gw-mail', cidr: '169.254.0.1/32' }] };
    const plan = planNetwork(setup, live);
    expect(plan.owned.proxies).toEqual([]);
    expect(plan.owned.addresses).not.toContainEqual({ ifname: 'gw-mail', cidr: '169.254.0.1/32' });
  });

  it('removes a guest that left the policy: its routes, proxy entry, gateway addresses and proxy_arp; nothing of anyone else', () => {
    const owned = planNetwork(setup, bare).owned;
    const plan = planNetwork(withoutMail, configured, owned);
    expect(plan.steps.map(line)).toEqual([
      `ip -4 route del 203.0.113.20/32 dev gw-mail proto ${ROUTE_PROTOCOL}`,
      `ip -6 route del 2001:db8:10::20/128 dev gw-mail metric 1024 proto ${ROUTE_PROTOCOL}`,
      'ip address del 169.254.0.1/32 dev gw-mail',
      'ip -6 address del fe80::1/64 dev gw-mail',
      'ip -4 neigh del proxy 203.0.113.20 dev eth0',
      'sysctl -q -w net.ipv4.conf.gw-mail.proxy_arp=0',
    ]);
    expect(plan.steps.every((s) => s.remove)).toBe(true);
    expect(plan.steps.map(line).join('\n')).not.toMatch(/203\.0\.113\.99|metric 50/);
    expect(plan.owned.proxies).toEqual([]);
    expect(plan.owned.sysctls.map((s) => s.key)).not.toContain('net.ipv4.conf.gw-mail.proxy_arp');
    // Applied, the host then has nothing more to do.
    expect(plan.owned.addresses.some((a) => a.ifname === 'gw-mail')).toBe(false);
  });

  it('removes nothing without a record, except routes carrying its protocol', () => {
    const plan = planNetwork(withoutMail, configured, NOTHING_OWNED);
    expect(plan.steps.map(line)).toEqual([
      `ip -4 route del 203.0.113.20/32 dev gw-mail proto ${ROUTE_PROTOCOL}`,
      `ip -6 route del 2001:db8:10::20/128 dev gw-mail metric 1024 proto ${ROUTE_PROTOCOL}`,
    ]);
  });

  it('leaves a sysctl someone changed since guestwall set it, with a note', () => {
    const owned = planNetwork(setup, bare).owned;
    const live = { ...configured, sysctls: { ...configured.sysctls, 'net.ipv4.conf.gw-mail.proxy_arp': '0' } };
    const plan = planNetwork(withoutMail, live, owned);
    expect(plan.steps.some((s) => s.program === 'sysctl')).toBe(false);
    const again = { ...live, sysctls: { ...live.sysctls, 'net.ipv4.conf.gw-mail.proxy_arp': '2' } };
    expect(planNetwork(withoutMail, again, owned).notes).toContain('net.ipv4.conf.gw-mail.proxy_arp is 2 now, not the 1 guestwall set; left as it is');
  });

  it('a second run after the removal finds nothing to do', () => {
    const owned = planNetwork(setup, bare).owned;
    const removed = planNetwork(withoutMail, configured, owned);
    const live: LiveNetwork = {
      ...configured,
      routes: configured.routes.filter((r) => !r.owned),
      addresses: configured.addresses.filter((a) => a.ifname !== 'gw-mail'),
      proxies: configured.proxies.filter((p) => p.address !== '203.0.113.20'),
      sysctls: { ...configured.sysctls, 'net.ipv4.conf.gw-mail.proxy_arp': '0' },
    };
    expect(planNetwork(withoutMail, live, removed.owned).steps).toEqual([]);
  });
});

describe('the way back to a snapshot (rollback)', () => {
  it('takes away what was added since and puts back what was removed, with the sysctls as they were', () => {
    const owned = planNetwork(setup, bare).owned;
    // Before the last apply guestwall owned nothing here; now it owns the homelab setup.
    const back = planRestore({ routes: [], owned: NOTHING_OWNED }, configured, owned);
    const lines = back.steps.map(line);
    expect(lines).toContain(`ip -4 route del 203.0.113.20/32 dev gw-mail proto ${ROUTE_PROTOCOL}`);
    expect(lines).toContain('ip -4 neigh del proxy 203.0.113.20 dev eth0');
    expect(lines).toContain('ip address del 192.168.1.1/24 dev br-lan');
    expect(lines).toContain('sysctl -q -w net.ipv4.ip_forward=0');
    expect(lines.join('\n')).not.toMatch(/203\.0\.113\.99|metric 50|203\.0\.113\.10/);
    expect(back.owned).toEqual(NOTHING_OWNED);

    // The other way: the snapshot had mail, the last apply removed it.
    const snapshot = { routes: configured.routes.filter((r) => r.owned).map(({ owned: _, ...r }) => r), owned };
    const removed = planNetwork(withoutMail, configured, owned);
    const after: LiveNetwork = { ...configured, routes: configured.routes.filter((r) => !r.owned), proxies: [{ address: '203.0.113.99', dev: 'eth0' }], addresses: configured.addresses.filter((a) => a.ifname !== 'gw-mail'), sysctls: { ...configured.sysctls, 'net.ipv4.conf.gw-mail.proxy_arp': '0' } };
    const forth = planRestore(snapshot, after, removed.owned).steps.map(line);
    expect(forth).toEqual([
      `ip -4 route add 203.0.113.20/32 dev gw-mail proto ${ROUTE_PROTOCOL}`,
      `ip -6 route add 2001:db8:10::20/128 dev gw-mail metric 1024 proto ${ROUTE_PROTOCOL}`,
      'ip address add 169.254.0.1/32 dev gw-mail',
      'ip -6 address add fe80::1/64 dev gw-mail nodad',
      'ip -4 neigh add proxy 203.0.113.20 dev eth0',
      'sysctl -q -w net.ipv4.conf.gw-mail.proxy_arp=1',
    ]);
  });
});
