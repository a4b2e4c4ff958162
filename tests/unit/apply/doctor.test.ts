// guestwall doctor against a scripted host: each finding a user relies on, found from what the
// host's programs and files say, with its fix; nothing on the host changes.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type HostFinding, type KernelFeature, compilerFeatures, doctor, kernelFeatures } from '../../../src/apply/doctor.js';
import { doctorCommand } from '../../../src/cli/doctor.js';
import { compilePolicyText } from '../../../src/compile/pipeline.js';
import type { HostModel } from '../../../src/model/host.js';
import { type Answer, fakeSystem } from '../../support/fake-system.js';
import { memoryIo } from '../../support/io.js';

const POLICY = 'policies/homelab-dmz.yaml';
const policyText = readFileSync(POLICY, 'utf8');
const model: HostModel = compilePolicyText(POLICY, policyText).model!;

const DEBIAN_UNIT = `[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f /etc/nftables.conf
ExecReload=/usr/sbin/nft -f /etc/nftables.conf
ExecStop=/usr/sbin/nft flush ruleset
`;
const DEBIAN_CONF = `#!/usr/sbin/nft -f

flush ruleset

table inet filter {
	chain input {
		type filter hook input priority filter;
	}
}
`;

const ownTable = [
  { table: { family: 'inet', name: 'guestwall', handle: 1 } },
  { chain: { family: 'inet', table: 'guestwall', name: 'forward', handle: 1, type: 'filter', hook: 'forward', prio: 0, policy: 'drop' } },
];
/** What iptables-nft lists for Docker: FORWARD drops, and jumps to DOCKER-USER first. */
const dockerTables = [
  { table: { family: 'ip', name: 'filter', handle: 2 } },
  { chain: { family: 'ip', table: 'filter', name: 'FORWARD', handle: 1, type: 'filter', hook: 'forward', prio: 0, policy: 'drop' } },
  { chain: { family: 'ip', table: 'filter', name: 'DOCKER-USER', handle: 2 } },
  { rule: { family: 'ip', table: 'filter', chain: 'FORWARD', handle: 3, expr: [{ counter: { packets: 0, bytes: 0 } }, { jump: { target: 'DOCKER-USER' } }] } },
];

const PROBE_ERRORS: Record<KernelFeature, string> = {
  'bridge-conntrack': 'Protocol error',
  'bridge-meta': 'Operation not supported',
  'bridge-reject': 'No such file or directory',
  'inet-nat': 'No such file or directory',
};
/** Which feature a probe document needs, from what it contains. */
function probedFeature(doc: string): KernelFeature {
  if (doc.includes('"ct"')) return 'bridge-conntrack';
  if (doc.includes('ibrname')) return 'bridge-meta';
  if (doc.includes('"reject"')) return 'bridge-reject';
  return 'inet-nat';
}

interface Host {
  root?: boolean;
  netns?: string;
  nft?: boolean;
  ruleset?: object[];
  missing?: KernelFeature[];
  /** Paths under /proc/sys and their values; absent paths do not exist. */
  sysctls?: Record<string, string>;
  links?: object[];
  nftablesService?: string;
  files?: Record<string, string>;
}

/** A host where everything is in order for homelab-dmz.yaml; each test changes one thing. */
const HEALTHY = {
  sysctls: { 'net/ipv4/ip_forward': '1', 'net/ipv6/conf/all/forwarding': '1', 'net/ipv4/conf/all/rp_filter': '0', 'net/ipv4/conf/eth0/rp_filter': '0' },
  links: [
    { ifname: 'lo' },
    { ifname: 'eth0' },
    { ifname: 'eth1', master: 'br-lan' },
    { ifname: 'br-lan', linkinfo: { info_kind: 'bridge' } },
    { ifname: 'br-dmz', linkinfo: { info_kind: 'bridge' } },
    { ifname: 'gw-asterisk', master: 'br-dmz', linkinfo: { info_kind: 'veth' } },
    { ifname: 'gw-mail', linkinfo: { info_kind: 'vif' } },
  ],
};

function scriptedHost(h: Host = {}) {
  const sysctls: Record<string, string> = h.sysctls ?? HEALTHY.sysctls;
  const answer = (cmd: string, args: string[]): Answer | undefined => {
    const line = [cmd, ...args].join(' ');
    if (cmd === 'nft' && h.nft === false) return undefined;
    if (line === 'nft --version') return 'nftables v1.0.6 (Lester Gooch #5)\n';
    if (line === 'nft -j list ruleset') return JSON.stringify({ nftables: [{ metainfo: { version: '1.0.6' } }, ...(h.ruleset ?? ownTable)] });
    if (cmd === 'nft' && args.slice(0, 2).join(' ') === '-c -j' && args.length === 3) {
      const f = probedFeature(args[2]!);
      return h.missing?.includes(f) ? { code: 1, stderr: `internal:0:0-0: Error: Could not process rule: ${PROBE_ERRORS[f]}\n\n` } : '';
    }
    // With --netns, a command reads /proc/sys in the namespace; without, guestwall reads the files.
    if (cmd === 'grep' && h.netns !== undefined) {
      const found = args.filter((a) => a.startsWith('/proc/sys/') && a.slice(10) in sysctls);
      return { code: found.length === args.length - 3 ? 0 : 2, stdout: found.map((p) => `${p}:${sysctls[p.slice(10)]}\n`).join('') };
    }
    if (line === 'systemctl is-enabled nftables.service') return h.nftablesService === undefined ? { code: 4, stderr: 'Failed to get unit file state for nftables.service: No such file or directory\n' } : `${h.nftablesService}\n`;
    if (line === 'ip -j -d link show') return JSON.stringify(h.links ?? HEALTHY.links);
    if (line === 'true') return '';
    return undefined;
  };
  const procSys = h.netns === undefined ? Object.fromEntries(Object.entries(sysctls).map(([p, v]) => [`/proc/sys/${p}`, `${v}\n`])) : {};
  return fakeSystem({ answer, files: { ...procSys, ...h.files }, root: h.root ?? true, ...(h.netns !== undefined ? { netns: h.netns } : {}) });
}

const byId = (fs: HostFinding[], id: string) => fs.filter((f) => f.id === id);
const statuses = (fs: HostFinding[]) => fs.map((f) => `${f.status} ${f.id}`);

describe('a host in order', () => {
  it('has nothing to warn about, and doctor changed nothing on it', async () => {
    const host = scriptedHost();
    const findings = await doctor(host.sys, model);
    expect(findings.filter((f) => f.status === 'warn' || f.status === 'fail')).toEqual([]);
    expect(statuses(findings)).toContain('ok nft');
    expect(statuses(findings)).toContain('ok other-table-drop');
    // Only reads and nft -c (each probe's document on its command line), and no files left.
    expect(host.calls.filter((c) => c.startsWith('nft ') && !/^nft (--version|-j list ruleset|-c -j \{"nftables":.*\})$/.test(c))).toEqual([]);
    expect([...host.files.keys()].filter((f) => !f.startsWith('/proc/sys/'))).toEqual([]);
  });
});

describe('other tables that drop what guestwall accepts', () => {
  it("finds Docker's forward drop policy and says to accept the bridges in DOCKER-USER", async () => {
    const host = scriptedHost({ ruleset: [...ownTable, ...dockerTables] });
    const found = byId(await doctor(host.sys, model), 'other-table-drop');
    expect(found).toHaveLength(1);
    expect(found[0]!.status).toBe('warn');
    expect(found[0]!.message).toContain('table ip filter, chain FORWARD (hook forward, priority 0) has policy drop');
    expect(found[0]!.fix).toBe("accept guestwall's interfaces in DOCKER-USER, which Docker keeps across restarts: iptables -I DOCKER-USER -i br-lan -j ACCEPT; iptables -I DOCKER-USER -o br-lan -j ACCEPT, and the same for br-dmz, gw-mail");
  });

  it("ignores guestwall's own drop policy, and reports conditional drops elsewhere as information", async () => {
    const other = [
      { table: { family: 'inet', name: 'filter', handle: 3 } },
      { chain: { family: 'inet', table: 'filter', name: 'forward', handle: 1, type: 'filter', hook: 'forward', prio: 0, policy: 'accept' } },
      { rule: { family: 'inet', table: 'filter', chain: 'forward', handle: 2, expr: [{ match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'wg0' } }, { drop: null }] } },
    ];
    const found = byId(await doctor(scriptedHost({ ruleset: [...ownTable, ...other] }).sys, model), 'other-table-drop');
    expect(statuses(found)).toEqual(['info other-table-drop']);
    expect(found[0]!.message).toContain('table inet filter, chain forward (hook forward, priority 0) has 1 rule that drop or reject');
    expect(found[0]!.fix).toContain(`nft 'insert rule inet filter forward iifname { "br-lan", "br-dmz", "gw-mail" } accept'`);
  });

  it('treats a last rule that drops everything like a drop policy', async () => {
    const other = [
      { table: { family: 'inet', name: 'fw', handle: 3 } },
      { chain: { family: 'inet', table: 'fw', name: 'in', handle: 1, type: 'filter', hook: 'input', prio: 0, policy: 'accept' } },
      { rule: { family: 'inet', table: 'fw', chain: 'in', handle: 2, expr: [{ counter: { packets: 1, bytes: 60 } }, { reject: null }] } },
    ];
    const found = byId(await doctor(scriptedHost({ ruleset: [...ownTable, ...other] }).sys, model), 'other-table-drop');
    expect(statuses(found)).toEqual(['warn other-table-drop']);
    expect(found[0]!.message).toContain('traffic to the host that guestwall accepts is still dropped there');
  });
});

describe("Debian's nftables.service", () => {
  it("warns when it is enabled with a 'flush ruleset' config that wipes guestwall's tables on reload", async () => {
    const host = scriptedHost({ nftablesService: 'enabled', files: { '/lib/systemd/system/nftables.service': DEBIAN_UNIT, '/etc/nftables.conf': DEBIAN_CONF } });
    const [f] = byId(await doctor(host.sys, model), 'nftables-service');
    expect(f).toEqual({
      id: 'nftables-service',
      status: 'warn',
      message: "nftables.service is enabled and /etc/nftables.conf runs 'flush ruleset': every reload wipes every table, guestwall's too",
      fix: "remove 'flush ruleset' from /etc/nftables.conf (delete only the tables it defines), or: systemctl disable nftables.service",
    });
  });

  it('is fine when disabled and not flushing; not installed says so', async () => {
    const disabled = scriptedHost({ nftablesService: 'disabled', files: { '/lib/systemd/system/nftables.service': DEBIAN_UNIT, '/etc/nftables.conf': 'table inet x {}\n' } });
    expect(statuses(byId(await doctor(disabled.sys, model), 'nftables-service'))).toEqual(['ok nftables-service']);
    const [absent] = byId(await doctor(scriptedHost().sys, model), 'nftables-service');
    expect(absent!.message).toBe('nftables.service is not installed');
  });

  it('is information only when doctor looks at another network namespace', async () => {
    const host = scriptedHost({ netns: 'lab', nftablesService: 'enabled', files: { '/lib/systemd/system/nftables.service': DEBIAN_UNIT, '/etc/nftables.conf': DEBIAN_CONF } });
    const [f] = byId(await doctor(host.sys, model), 'nftables-service');
    expect(f!.status).toBe('info');
    expect(f!.message).toContain("this concerns the host's own namespace, not lab");
  });
});

describe('sysctls', () => {
  it('fails when IPv4 forwarding is off and the policy routes for guests', async () => {
    const host = scriptedHost({ sysctls: { ...HEALTHY.sysctls, 'net/ipv4/ip_forward': '0' } });
    const [f] = byId(await doctor(host.sys, model), 'ip-forward');
    expect(f).toEqual({
      id: 'ip-forward',
      status: 'fail',
      message: 'IPv4 forwarding is off (net.ipv4.ip_forward=0): the host does not route for its guests and bridges',
      fix: 'sysctl -w net.ipv4.ip_forward=1 and put net.ipv4.ip_forward=1 in /etc/sysctl.d/60-guestwall.conf so it survives a reboot',
    });
  });

  it('only informs about forwarding without a policy', async () => {
    const host = scriptedHost({ sysctls: { ...HEALTHY.sysctls, 'net/ipv4/ip_forward': '0' } });
    expect(statuses(byId(await doctor(host.sys), 'ip-forward'))).toEqual(['info ip-forward']);
  });

  it('reads the sysctls through a command, so that --netns reads the namespace, and prefixes fixes with ip netns exec', async () => {
    const host = scriptedHost({ netns: 'lab', sysctls: { ...HEALTHY.sysctls, 'net/ipv6/conf/all/forwarding': '0' } });
    const [f] = byId(await doctor(host.sys, model), 'ipv6-forward');
    expect(f!.fix).toMatch(/^ip netns exec lab sysctl -w net\.ipv6\.conf\.all\.forwarding=1 /);
    expect(host.calls.some((c) => c.startsWith('grep -s -H . /proc/sys/net/bridge/bridge-nf-call-iptables'))).toBe(true);
  });

  it('warns about strict rp_filter on the policy interfaces when guests are routed', async () => {
    const host = scriptedHost({ sysctls: { ...HEALTHY.sysctls, 'net/ipv4/conf/gw-mail/rp_filter': '1' } });
    const [f] = byId(await doctor(host.sys, model), 'rp-filter');
    expect(f!.status).toBe('warn');
    expect(f!.message).toMatch(/^rp_filter is strict \(1\) on gw-mail: /);
    expect(f!.fix).toMatch(/^sysctl -w net\.ipv4\.conf\.gw-mail\.rp_filter=2 /);
  });

  it('counts a strict conf/all for every interface, also those that do not exist yet', async () => {
    const host = scriptedHost({ sysctls: { ...HEALTHY.sysctls, 'net/ipv4/conf/all/rp_filter': '1' }, links: [] });
    const [f] = byId(await doctor(host.sys, model), 'rp-filter');
    expect(f!.status).toBe('warn');
    expect(f!.message).toMatch(/^rp_filter is strict \(1\) on every interface \(net\.ipv4\.conf\.all\.rp_filter=1\): /);
    expect(f!.fix).toMatch(/^sysctl -w net\.ipv4\.conf\.all\.rp_filter=2 \(loose\)/);
  });

  it('explains br_netfilter: bridged traffic then also passes the inet hooks', async () => {
    const host = scriptedHost({ sysctls: { ...HEALTHY.sysctls, 'net/bridge/bridge-nf-call-iptables': '1', 'net/bridge/bridge-nf-call-ip6tables': '0' } });
    const [f] = byId(await doctor(host.sys, model), 'br-netfilter');
    // Information, never a suggestion to turn it off: guestwall leaves these sysctls alone (README, sysctl file).
    expect(f!.status).toBe('info');
    expect(f!.message).toContain('net.bridge.bridge-nf-call-iptables=1: bridged guest traffic also passes the inet forward hook with the bridge as both input and output interface');
    expect(f!.message).toContain("the guest sees the client's own address (not masqueraded); guestwall's filtering holds either way");
    expect(f!.fix).toBeUndefined();
  });
});

describe("the policy's interfaces", () => {
  it('warns about a missing host interface or bridge, and lists absent guest interfaces as information', async () => {
    const host = scriptedHost({ links: HEALTHY.links.filter((l) => l.ifname !== 'eth0' && l.ifname !== 'br-dmz') });
    const findings = await doctor(host.sys, model);
    const missing = byId(findings, 'interface-missing');
    expect(missing.map((f) => f.message)).toEqual([
      `host interface eth0 (zone net, ${POLICY}:12) does not exist: rules for it match nothing`,
      `bridge br-dmz (zone dmz, ${POLICY}:31) does not exist`,
    ]);
    expect(statuses(missing)).toEqual(['warn interface-missing', 'warn interface-missing']);
    expect(byId(findings, 'guest-interfaces').map((f) => `${f.status} ${f.message}`)).toEqual([
      'ok guest interfaces present: gw-asterisk, gw-mail',
      'info guest interfaces not present: gw-mumble (mumble), gw-teamspeak (teamspeak), gw-minecraft (minecraft), gw-desktop (desktop); fine while those guests are down',
    ]);
  });

  it('warns when a guest interface sits in another bridge than the policy says', async () => {
    const links = HEALTHY.links.map((l) => (l.ifname === 'gw-asterisk' ? { ...l, master: 'br-lan' } : l));
    const [f] = byId(await doctor(scriptedHost({ links }).sys, model), 'guest-interface-bridge');
    expect(f!.message).toBe("guest asterisk's interface gw-asterisk should be a port of br-dmz but is in br-lan");
  });
});

describe('kernel features', () => {
  it('probes each with nft -c and says what is weaker without it', async () => {
    const host = scriptedHost({ missing: ['bridge-conntrack', 'bridge-meta'] });
    const findings = await doctor(host.sys, model);
    expect(statuses(findings.filter((f) => f.id.startsWith('kernel-')))).toEqual([
      'warn kernel-bridge-conntrack',
      'warn kernel-bridge-meta',
      'ok kernel-bridge-reject',
      'ok kernel-inet-nat',
    ]);
    expect(byId(findings, 'kernel-bridge-conntrack')[0]!.message).toContain('guest-to-guest filtering on a bridge is stateless');
    expect(host.calls.filter((c) => c.startsWith('nft -c -j {'))).toHaveLength(4);
  });

  it('fails without NAT when the policy forwards ports or masquerades', async () => {
    expect(statuses(byId(await doctor(scriptedHost({ missing: ['inet-nat'] }).sys, model), 'kernel-inet-nat'))).toEqual(['fail kernel-inet-nat']);
  });

  it('kernelFeatures gives yes or no per feature, and unknown when nft cannot ask', async () => {
    expect(await kernelFeatures(scriptedHost({ missing: ['bridge-reject'] }).sys)).toEqual({
      'bridge-conntrack': { available: true },
      'bridge-meta': { available: true },
      'bridge-reject': { available: false, detail: 'Error: Could not process rule: No such file or directory' },
      'inet-nat': { available: true },
    });
    const none = await kernelFeatures(scriptedHost({ nft: false }).sys);
    expect(none['inet-nat']).toEqual({ available: undefined, detail: 'nft: not found' });
  });
});

describe('the kernel features a ruleset is compiled for (--kernel-features auto)', () => {
  it('are what nft -c says the kernel behind the System (and its namespace) can load', async () => {
    const r = await compilerFeatures(scriptedHost({ missing: ['bridge-conntrack', 'bridge-reject'], netns: 'lab' }).sys);
    expect(r).toEqual({ features: { bridgeConntrack: false, bridgeMeta: true, bridgeReject: false }, how: 'probed with nft -c in network namespace lab' });
  });

  it('fall back to the baseline, saying why, when the kernel cannot be asked', async () => {
    const notRoot = await compilerFeatures(scriptedHost({ root: false }).sys);
    expect(notRoot.features).toEqual({ bridgeConntrack: false, bridgeMeta: false, bridgeReject: false });
    expect(notRoot.how).toMatch(/^not root/);
    const noNft = await compilerFeatures(scriptedHost({ nft: false }).sys);
    expect(noNft.features).toEqual({ bridgeConntrack: false, bridgeMeta: false, bridgeReject: false });
    expect(noNft.how).toContain('could not tell bridge-conntrack, bridge-meta, bridge-reject, so taken as missing');
  });
});

describe('when doctor cannot check everything', () => {
  it('reports a missing nft as a failed finding, not an exception, and skips what needs it', async () => {
    const host = scriptedHost({ nft: false });
    const findings = await doctor(host.sys, model);
    expect(byId(findings, 'nft')).toEqual([
      { id: 'nft', status: 'fail', message: 'nft is not installed or cannot run (nft: not found); guestwall loads its rules with it', fix: 'install nftables (Debian: apt-get install nftables)' },
    ]);
    expect(findings.some((f) => f.id.startsWith('kernel-') || f.id === 'other-table-drop')).toBe(false);
    expect(statuses(findings)).toContain('ok ip-forward');
  });

  it('without root, still reads what it can and says which checks needed root', async () => {
    const host = scriptedHost({ root: false });
    const findings = await doctor(host.sys, model);
    expect(byId(findings, 'kernel-features')[0]!.message).toMatch(/not checked: nft needs root/);
    expect(byId(findings, 'other-tables')[0]!.message).toMatch(/not checked: nft needs root/);
    expect(host.calls.filter((c) => c.startsWith('nft ') && c !== 'nft --version')).toEqual([]);
    expect(statuses(findings)).toContain('ok interfaces');
  });

  it('fails in one line when the network namespace cannot be entered', async () => {
    const host = fakeSystem({ netns: 'gone', run: { true: { code: 1, stderr: 'Cannot open network namespace "gone": No such file or directory\n' } } });
    expect(await doctor(host.sys)).toEqual([
      expect.objectContaining({ id: 'netns', status: 'fail', message: 'cannot enter network namespace gone: Cannot open network namespace "gone": No such file or directory' }),
    ]);
  });
});

describe('guestwall doctor on the command line', () => {
  it('prints one line per finding with its fix under it, and exits 1 when a check fails', async () => {
    const m = memoryIo({ 'h.yaml': policyText });
    const host = scriptedHost({ sysctls: { ...HEALTHY.sysctls, 'net/ipv4/ip_forward': '0' } });
    expect(await doctorCommand(m.io, 'h.yaml', {}, host.sys)).toBe(1);
    const lines = m.out;
    expect(lines).toContain('ok    nft 1.0.6');
    const fail = lines.indexOf('FAIL  IPv4 forwarding is off (net.ipv4.ip_forward=0): the host does not route for its guests and bridges');
    expect(fail).toBeGreaterThan(-1);
    expect(lines[fail + 1]).toMatch(/^ {6}fix: sysctl -w net\.ipv4\.ip_forward=1 /);
  });

  it('exits 0 with warnings only, and prints the findings as JSON with --json', async () => {
    const m = memoryIo();
    const host = scriptedHost({ ruleset: [...ownTable, ...dockerTables] });
    expect(await doctorCommand(m.io, undefined, { json: true }, host.sys)).toBe(0);
    const findings = JSON.parse(m.stdout()) as HostFinding[];
    expect(findings.find((f) => f.id === 'other-table-drop')).toMatchObject({ status: 'warn' });
  });

  it('refuses a policy with errors, and --netns without root', async () => {
    const m = memoryIo({ 'bad.yaml': 'version: 1\nzones: {}\nbridges:\n  br0: { zone: nope }\n' });
    expect(await doctorCommand(m.io, 'bad.yaml', {}, scriptedHost().sys)).toBe(1);
    expect(m.stderr()).toContain('bad.yaml has errors');
    const n = memoryIo();
    expect(await doctorCommand(n.io, undefined, { netns: 'lab' }, scriptedHost({ root: false, netns: 'lab' }).sys)).toBe(2);
    expect(n.stderr()).toContain('doctor --netns needs root');
  });
});
