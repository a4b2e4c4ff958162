// The host network setup of a policy, its files (golden) and the planner, without a kernel.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { networkSetup } from '../../../src/emit/network.js';
import { networkFiles, shQuote, systemdEscape } from '../../../src/emit/network-files.js';
import { type LiveNetwork, planNetwork, pristineHost, sysctlKeys } from '../../../src/emit/network-plan.js';
import { networkOutput, readNetworkTemplates } from '../../../src/cli/network.js';
import { compileExample, compileYaml } from '../../support/compile.js';
import { expectGolden } from '../../support/golden.js';

const homelab = compileYaml(readFileSync('policies/homelab-dmz.yaml', 'utf8')).model;
const templates = readNetworkTemplates();

describe('the network setup of the homelab example', () => {
  const setup = networkSetup(homelab);

  it('has the bridges with their addresses and enslaved host interfaces', () => {
    expect(setup.bridges).toEqual([
      { name: 'br-lan', zone: 'lan', addresses: ['192.168.1.1/24', 'fd00:1::1/64'], ports: ['eth1'] },
      { name: 'br-dmz', zone: 'dmz', addresses: ['10.0.10.1/24', 'fd00:10::1/64'], ports: [] },
    ]);
  });

  it('gives the routed Xen guest its gateway addresses, host routes and proxy ARP', () => {
    expect(setup.routedPorts).toEqual([
      {
        guest: 'mail', platform: 'xen', name: 'gw-mail', zone: 'dmz', by: 'hook',
        gateways: ['169.254.0.1/32', 'fe80::1/64'],
        routes: [{ dst: '203.0.113.20/32', family: 4 }, { dst: '2001:db8:10::20/128', family: 6 }],
        proxyArp: true,
      },
    ]);
  });

  it('proxies only the guest address that lies in an uplink subnet, on that uplink', () => {
    // 203.0.113.20 is in eth0's 203.0.113.0/24; 2001:db8:10::20 is in no host subnet (routed to the host).
    expect(setup.proxies).toEqual([{ address: '203.0.113.20', family: 4, dev: 'eth0', guest: 'mail' }]);
    expect(setup.sysctls.map((s) => `${s.key}=${s.value}`)).toEqual([
      'net.ipv4.ip_forward=1',
      'net.ipv6.conf.all.forwarding=1',
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0',
      'net.ipv4.conf.gw-mail.proxy_arp=1',
    ]);
  });

  it('renders the files as reviewed (golden)', () => {
    for (const f of networkFiles(setup, templates)) expectGolden(`tests/golden/network/homelab-dmz${f.path}`, f.text);
    expectGolden('tests/golden/network/homelab-dmz/plan.json', networkOutput(homelab, templates).planJson);
  });

  it('never lets networkd match the hypervisors\' own interface names', () => {
    for (const f of networkFiles(setup, templates).filter((x) => x.path.startsWith('/etc/systemd/network/'))) {
      const names = [...f.text.matchAll(/^Name=(.*)$/gm)].map((m) => m[1]!);
      expect(names.length).toBe(1);
      for (const n of names) expect(n).not.toMatch(/^(vif|vnet|veth)|\*/);
    }
  });

  it('writes the hooks executable, one case branch per routed port', () => {
    const hooks = networkFiles(setup, templates).filter((f) => f.path.startsWith('/etc/guestwall/hooks/'));
    expect(hooks.map((h) => [h.path, h.mode])).toEqual([
      ['/etc/guestwall/hooks/port-up', 0o755], ['/etc/guestwall/hooks/port-down', 0o755], ['/etc/guestwall/hooks/xen-vif', 0o755],
    ]);
    expect(hooks[0]!.text).toContain("  gw-mail)\n    # mail, zone dmz\n    gateways='169.254.0.1/32 fe80::1/64'");
    for (const h of hooks) {
      expect(h.text).not.toMatch(/^[^#\n]*\b(iptables|ifconfig)\b/m);
      expect(h.text).not.toContain("{{");
    }
  });
});

describe('every example policy', () => {
  it('renders its network files as reviewed (golden)', () => {
    const models = [
      ...['kvm-lan', 'lxc-isolated', 'routed-xen'].map((name) => ({ name, model: compileYaml(readFileSync(`policies/${name}.yaml`, 'utf8')).model })),
      ...compileExample('fleet-pair.yaml').map(({ name, result }) => ({ name, model: result.model! })),
    ];
    for (const { name, model } of models) {
      const out = networkOutput(model, templates);
      for (const f of out.files) expectGolden(`tests/golden/network/${name}${f.path}`, f.text);
      expectGolden(`tests/golden/network/${name}/plan.json`, out.planJson);
    }
  });
});

describe('routed interfaces by platform', () => {
  const policy = (platform: string, extra = '') => `
version: 1
host: { interfaces: { eth0: { zone: net, addresses: [198.51.100.2/24, 2001:db8:5::2/64] } } }
zones: { net: {}, dmz: { networks: [198.51.100.0/24, 2001:db8:5::/64, 10.9.0.0/24] } }
bridges: { br-dmz: { zone: dmz, addresses: [10.9.0.1/24] } }
guests:
  g1:
    platform: ${platform}
    zone: dmz
    ${extra}
    interfaces:
      - { mode: routed, name: r.g1, addresses: [198.51.100.7, 2001:db8:5::7, 10.9.0.7] }
policies: [{ from: all, to: all, action: drop }]
`;

  it('a Xen HVM guest gets its -emu tap too, preferred by metric as in vif-route', () => {
    const s = networkSetup(compileYaml(policy('xen', 'xen: { type: hvm }')).model);
    expect(s.routedPorts.map((p) => [p.name, p.routes.map((r) => r.metric)])).toEqual([['r.g1', [2, 2, 2]], ['r.g1-emu', [1, 1, 1]]]);
    // A dot in the name becomes '/' in sysctl keys.
    expect(s.sysctls.map((x) => x.key)).toContain('net.ipv4.conf.r/g1.proxy_arp');
    expect(s.sysctls.map((x) => x.key)).toContain('net.ipv4.conf.r/g1-emu.proxy_arp');
  });

  it('proxies each address on the segment whose subnet holds it, v4 and v6, with proxy_ndp there', () => {
    const s = networkSetup(compileYaml(policy('kvm')).model);
    expect(s.proxies.map((p) => `${p.dev} ${p.address}`)).toEqual(['eth0 198.51.100.7', 'eth0 2001:db8:5::7', 'br-dmz 10.9.0.7']);
    expect(s.sysctls.map((x) => `${x.key}=${x.value}`)).toContain('net.ipv6.conf.eth0.proxy_ndp=1');
  });

  it('LXC routed guests are left to LXC router mode: no networkd file, no proxy_arp, hooks say so', () => {
    const s = networkSetup(compileYaml(policy('lxc')).model);
    expect(s.routedPorts[0]!.by).toBe('lxc');
    expect(s.sysctls.some((x) => x.key.includes('proxy_arp'))).toBe(false);
    const files = networkFiles(s, templates);
    expect(files.some((f) => f.path.includes('r.g1'))).toBe(false);
    expect(files.find((f) => f.path.endsWith('/port-up'))!.text).toContain("  r.g1)\n    by=lxc\n");
  });
});

describe('the planner', () => {
  const setup = networkSetup(homelab);
  const keys = sysctlKeys(setup);

  /** A host as the planner's steps would leave it: what apply's second run reads. */
  function after(live: LiveNetwork, steps: string[][]): LiveNetwork {
    const next: LiveNetwork = structuredClone(live);
    for (const a of steps) {
      const args = a.filter((x) => x !== '-4' && x !== '-6' && x !== 'nodad');
      if (args[0] === '-q') next.sysctls[args[2]!.split('=')[0]!] = args[2]!.split('=')[1]!;
      else if (args[0] === 'link' && args[1] === 'add') next.links.push({ ifname: args[3]!, kind: 'bridge', up: false, stpState: 0, forwardDelay: 0 });
      else if (args[0] === 'link' && args[4] === 'up') next.links.find((l) => l.ifname === args[3])!.up = true;
      else if (args[0] === 'link' && args[4] === 'master') next.links.find((l) => l.ifname === args[3])!.master = args[5]!;
      else if (args[0] === 'address') next.addresses.push({ ifname: args[4]!, cidr: args[2]! });
      else if (args[0] === 'route') next.routes.push({ dst: args[2]!, dev: args[4]!, ...(args[5] === 'metric' ? { metric: Number(args[6]) } : {}) });
      else if (args[0] === 'neigh') next.proxies.push({ address: args[3]!, dev: args[5]! });
      else throw new Error(`unexpected step ${a.join(' ')}`);
    }
    return next;
  }

  const bare: LiveNetwork = {
    links: [{ ifname: 'lo', up: true }, { ifname: 'eth0', up: true }, { ifname: 'eth1', up: false }, { ifname: 'gw-mail', kind: 'veth', up: false }],
    addresses: [{ ifname: 'eth0', cidr: '203.0.113.10/24' }],
    routes: [{ dst: '203.0.113.0/24', dev: 'eth0' }],
    proxies: [],
    sysctls: Object.fromEntries(keys.map((k) => [k, '0'])),
  };

  it('creates what is missing, in order, as ip argument arrays', () => {
    const plan = planNetwork(setup, bare);
    expect(plan.steps.map((s) => [s.program, ...s.args].join(' '))).toEqual([
      'sysctl -q -w net.ipv4.ip_forward=1',
      'sysctl -q -w net.ipv6.conf.all.forwarding=1',
      'ip link add name br-lan type bridge stp_state 0 forward_delay 0',
      'ip address add 192.168.1.1/24 dev br-lan',
      'ip address add fd00:1::1/64 dev br-lan',
      'ip link set dev br-lan up',
      'ip link set dev eth1 master br-lan',
      'ip link set dev eth1 up',
      'ip link add name br-dmz type bridge stp_state 0 forward_delay 0',
      'ip address add 10.0.10.1/24 dev br-dmz',
      'ip address add fd00:10::1/64 dev br-dmz',
      'ip link set dev br-dmz up',
      'ip link set dev gw-mail up',
      'ip address add 169.254.0.1/32 dev gw-mail',
      'ip -6 address add fe80::1/64 dev gw-mail nodad',
      'ip -4 route add 203.0.113.20/32 dev gw-mail proto 158',
      'ip -6 route add 2001:db8:10::20/128 dev gw-mail proto 158',
      'ip -4 neigh add proxy 203.0.113.20 dev eth0',
      'sysctl -q -w net.ipv4.conf.gw-mail.proxy_arp=1',
    ]);
    expect(plan.notes).toEqual([]);
  });

  it('finds nothing to do on a host it already set up', () => {
    const first = planNetwork(setup, bare);
    const second = planNetwork(setup, after(bare, first.steps.map((s) => (s.program === 'sysctl' ? s.args : s.args))));
    expect(second.steps).toEqual([]);
  });

  it('skips guest ports that are not there yet, with a note, and touches nothing it does not name', () => {
    const live = { ...bare, links: bare.links.filter((l) => l.ifname !== 'gw-mail').concat({ ifname: 'vif3.0', up: false }) };
    const plan = planNetwork(setup, live);
    expect(plan.steps.some((s) => s.args.includes('gw-mail') || s.args.includes('vif3.0') || s.args.includes('lo'))).toBe(false);
    expect(plan.notes).toEqual(["gw-mail (mail) is not there yet; skipped: its hook (port-up) configures it when it appears"]);
    expect(plan.steps.some((s) => s.args.some((a) => a.includes('gw-mail')))).toBe(false);
  });

  it('never deletes: an existing non-bridge named like a bridge is left alone with a note', () => {
    const live = { ...bare, links: [...bare.links, { ifname: 'br-dmz', kind: 'veth', up: true }] };
    const plan = planNetwork(setup, live);
    expect(plan.steps.some((s) => s.args.includes('br-dmz'))).toBe(false);
    expect(plan.notes[0]).toMatch(/^br-dmz exists but is not a bridge \(veth\)/);
    expect(plan.steps.some((s) => ['del', 'delete', 'flush'].some((v) => s.args.includes(v)))).toBe(false);
  });

  it('turns STP off on an existing bridge, keeps the addresses it has, adds the rest', () => {
    const live: LiveNetwork = { ...bare, links: [...bare.links, { ifname: 'br-dmz', kind: 'bridge', up: true, stpState: 1, forwardDelay: 1500 }], addresses: [...bare.addresses, { ifname: 'br-dmz', cidr: '10.0.10.1/24' }, { ifname: 'br-dmz', cidr: '10.0.99.1/24' }] };
    const dmz = planNetwork(setup, live).steps.filter((s) => s.args.includes('br-dmz')).map((s) => s.args.join(' '));
    expect(dmz).toEqual(['link set dev br-dmz type bridge stp_state 0 forward_delay 0', 'address add fd00:10::1/64 dev br-dmz']);
  });

  it('the whole plan (plan.json) covers every interface the setup names', () => {
    const all = planNetwork(setup, pristineHost(setup));
    expect(all.notes).toEqual([]);
    expect(all.steps.filter((s) => s.args.includes('gw-mail')).length).toBe(5);
  });
});

describe('small helpers', () => {
  it('quotes for sh and escapes device unit names like systemd-escape', () => {
    expect(shQuote('gw-mail')).toBe('gw-mail');
    expect(shQuote("it's")).toBe("'it'\\''s'");
    expect(systemdEscape('br-lan')).toBe('br\\x2dlan');
    expect(systemdEscape('eth0')).toBe('eth0');
  });
});
