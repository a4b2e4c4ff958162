// Fleet policies (hosts:): the projection onto one host, --host on the commands, and the host
// network a guest that moves needs. The fleet checks' diagnostics are cases 80-86 in tests/cases.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { run } from '../../../src/cli/main.js';
import { compilePolicyText } from '../../../src/compile/pipeline.js';
import { networkSetup } from '../../../src/emit/network.js';
import { planNetwork, pristineHost } from '../../../src/emit/network-plan.js';
import { printRuleset } from '../../../src/nft/print.js';
import { guestHosts, hostPolicy } from '../../../src/policy/fleet.js';
import { loadPolicy } from '../../../src/policy/load.js';
import { memoryIo } from '../../support/io.js';
import { snippetTemplateFiles } from '../../support/templates.js';

const FILE = 'policies/fleet-pair.yaml';
const fleetText = readFileSync(FILE, 'utf8');
const fleet = loadPolicy(FILE, fleetText).policy!;
const lineOf = (needle: string) => fleetText.split('\n').findIndex((l) => l.includes(needle)) + 1;

describe('hostPolicy: a fleet seen from one host', () => {
  it('holds every guest that may run on the host, unchanged', () => {
    expect(Object.keys(hostPolicy(fleet, 'alpha').guests!)).toEqual(['www', 'dns']);
    expect(Object.keys(hostPolicy(fleet, 'beta').guests!)).toEqual(['www', 'dns', 'db']);
    expect(Object.keys(hostPolicy(fleet, 'gamma').guests!)).toEqual(['dns']);
    const { host: _h, may_run_on: _m, ...www } = fleet.guests!.www!;
    expect(hostPolicy(fleet, 'beta').guests!.www).toEqual(www);
  });

  it("takes the host's interfaces and bridges as host.interfaces and bridges", () => {
    const beta = hostPolicy(fleet, 'beta');
    expect(beta.host).toEqual({ name: 'beta', interfaces: fleet.hosts!.beta!.interfaces });
    expect(beta.bridges).toBe(fleet.hosts!.beta!.bridges);
    expect(beta.hosts).toBeUndefined();
  });

  it('reads may_run_on: all as every host, and always includes host:', () => {
    expect(guestHosts(fleet, fleet.guests!.dns!)).toEqual(['gamma', 'alpha', 'beta']);
    expect(guestHosts(fleet, fleet.guests!.www!)).toEqual(['alpha', 'beta']);
    expect(guestHosts(fleet, fleet.guests!.db!)).toEqual(['beta']);
  });

  it('turns a guest that never runs here into its addresses, keeping every rule at its index', () => {
    const alpha = hostPolicy(fleet, 'alpha');
    expect(alpha.rules!.length).toBe(fleet.rules!.length);
    expect(alpha.rules![2]).toMatchObject({ from: 'www', to: ['10.0.10.30', 'fd00:10::30'] });
    const gamma = hostPolicy(fleet, 'gamma');
    // rules[3] is "to: [www, dns]": www's first address takes its place, its second goes last.
    expect(gamma.rules![3]!.to).toEqual(['198.51.100.20', 'dns', '2001:db8:100:0:1::20']);
  });

  it('leaves out a forward to a guest elsewhere (as a hole: indexes stay)', () => {
    const p = loadPolicy('f.yaml', fleetText.replace('    to: dns\n', '    to: db\n')).policy!;
    expect(0 in hostPolicy(p, 'alpha').forwards!).toBe(false);
    expect(hostPolicy(p, 'alpha').forwards!.length).toBe(1);
    expect(hostPolicy(p, 'beta').forwards![0]!.to).toBe('db');
  });

  it('is pure: the fleet is not changed', () => {
    const before = JSON.stringify(fleet);
    hostPolicy(fleet, 'gamma');
    expect(JSON.stringify(fleet)).toBe(before);
  });
});

describe('compiling a fleet for one host', () => {
  it("puts a rule's origin at the fleet file's line, and a host's bridge at its own line", () => {
    const r = compilePolicyText(FILE, fleetText, undefined, 'beta');
    const nft = printRuleset(r.compiled!.ruleset);
    expect(nft).toContain(`comment "fleet-pair.yaml:${lineOf('description: The web guest reads the database')} rules[2]"`);
    const br = r.model!.bridges.find((b) => b.name === 'br-lan')!;
    expect(br.src.loc.line).toBe(lineOf('br-lan: { zone: lan, ports: [eth1], addresses: [10.0.10.3/24'));
  });

  it('places a per-host mistake in hosts.<name> and says which host', () => {
    const text = fleetText.replace('addresses: [10.0.10.4/24, fd00:10::4/64]', 'addresses: [10.0.99.4/24, fd00:10::4/64]');
    const d = compilePolicyText(FILE, text).diagnostics.filter((x) => x.severity === 'error');
    expect(d.map((x) => [x.line, x.kind])).toEqual([[lineOf('addresses: [10.0.10.4/24'), 'address-outside-zone']]);
  });

  it('differs per host only in what the host has: gamma has no web guest, alpha no database', () => {
    const nft = (h: string) => printRuleset(compilePolicyText(FILE, fleetText, undefined, h).compiled!.ruleset);
    expect(nft('gamma')).not.toContain('xen-www');
    expect(nft('alpha')).toContain('xen-www');
    expect(nft('alpha')).not.toContain('kvm-db');
    expect(nft('beta')).toContain('kvm-db');
  });
});

describe('--host on the command line', () => {
  const files = () => ({ [FILE]: fleetText, 'single.yaml': readFileSync('policies/homelab-dmz.yaml', 'utf8'), 'anon.yaml': readFileSync('policies/routed-xen.yaml', 'utf8'), ...snippetTemplateFiles() });

  it('compile on a fleet without --host is a usage error listing the hosts', async () => {
    const m = memoryIo(files());
    expect(await run(['compile', FILE, '--kernel-features', 'baseline'], m.io)).toBe(2);
    expect(m.stderr()).toContain('describes several hosts; say which with --host (one of alpha, beta, gamma); nothing compiled');
    expect(m.stdout()).toBe('');
  });

  it('an unknown --host names the hosts', async () => {
    const m = memoryIo(files());
    expect(await run(['compile', FILE, '--host', 'delta', '--kernel-features', 'baseline'], m.io)).toBe(2);
    expect(m.stderr()).toContain("has no host 'delta'; its hosts: alpha, beta, gamma");
  });

  it('compile --host prints that host\'s ruleset', async () => {
    const m = memoryIo(files());
    expect(await run(['compile', FILE, '--host', 'gamma', '--format', 'nft', '--kernel-features', 'baseline'], m.io)).toBe(0);
    expect(m.stdout()).toBe(readFileSync('tests/golden/fleet-pair.gamma.nft', 'utf8'));
  });

  it('check covers every host without --host, one host with it', async () => {
    const all = memoryIo(files());
    expect(await run(['check', FILE], all.io)).toBe(0);
    expect(all.stdout()).toContain('(on host alpha)');
    expect(all.stdout()).toContain('(on host gamma)');
    const one = memoryIo(files());
    expect(await run(['check', FILE, '--host', 'alpha'], one.io)).toBe(0);
    expect(one.stdout()).not.toContain('(on host gamma)');
  });

  it('a single-host policy takes --host when it names that host or no host, and refuses another name', async () => {
    const m = memoryIo(files());
    expect(await run(['compile', 'single.yaml', '--host', 'homelab', '--kernel-features', 'baseline'], m.io)).toBe(0);
    const other = memoryIo(files());
    expect(await run(['compile', 'single.yaml', '--host', 'alpha', '--kernel-features', 'baseline'], other.io)).toBe(2);
    expect(other.stderr()).toContain("single.yaml is the policy of host 'homelab', not 'alpha'");
    const anon = memoryIo(files());
    expect(await run(['compile', 'anon.yaml', '--host', 'anything', '--kernel-features', 'baseline'], anon.io)).toBe(0);
  });

  it("guest prints a fleet guest's snippet as its own host compiles it", async () => {
    const m = memoryIo(files());
    expect(await run(['guest', FILE, 'db'], m.io)).toBe(0);
    expect(m.stdout()).toBe(readFileSync('tests/golden/guests/fleet-pair/db/libvirt.xml', 'utf8'));
  });

  it('explain and matrix take --host', async () => {
    const m = memoryIo(files());
    expect(await run(['explain', FILE, '--host', 'beta', '--from', 'net', '--to', 'www', '--port', '443'], m.io)).toBe(0);
    const n = memoryIo(files());
    expect(await run(['matrix', FILE], n.io)).toBe(2);
    expect(n.stderr()).toContain('--host');
  });
});

describe('the host network of a guest that moves', () => {
  const setupOf = (h: string) => networkSetup(compilePolicyText(FILE, fleetText, undefined, h).model!);

  it('leaves its uplink proxy entries to its port (port-up adds, port-down removes), not to apply', () => {
    for (const h of ['alpha', 'beta']) {
      const s = setupOf(h);
      expect(s.proxies.filter((p) => p.guest === 'www')).toEqual([]);
      expect(s.routedPorts.find((p) => p.guest === 'www')!.uplinkProxies!.map((p) => `${p.dev} ${p.address}`)).toEqual(['eth0 198.51.100.20', 'eth0 2001:db8:100:0:1::20']);
      expect(s.sysctls.map((x) => x.key)).toContain('net.ipv6.conf.eth0.proxy_ndp');
    }
  });

  it('a guest that stays put keeps its entries with apply, as in a single-host policy', () => {
    const text = fleetText.replace('    may_run_on: [beta]\n', '');
    const s = networkSetup(compilePolicyText(FILE, text, undefined, 'alpha').model!);
    expect(s.proxies.filter((p) => p.guest === 'www').map((p) => p.address)).toEqual(['198.51.100.20', '2001:db8:100:0:1::20']);
    expect(s.routedPorts.find((p) => p.guest === 'www')!.uplinkProxies).toBeUndefined();
  });

  it('apply adds the entries of a moving guest whose port is here, as its port-up would', () => {
    const s = setupOf('alpha');
    const steps = planNetwork(s, pristineHost(s)).steps.map((x) => x.args.join(' '));
    expect(steps).toContain('-4 neigh add proxy 198.51.100.20 dev eth0');
    expect(steps).toContain('-6 neigh add proxy 2001:db8:100:0:1::20 dev eth0');
  });
});
