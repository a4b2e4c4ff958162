// The guest-side snippets: what each platform's config must say so that every guest interface
// gets the stable host-side name, bridge or routed link the policy gives it.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { HOOK_PATHS } from '../../../src/emit/paths.js';
import { type GuestSnippet, guestSnippets } from '../../../src/emit/snippets.js';
import { ROUTED_GATEWAY_V4, ROUTED_GATEWAY_V6 } from '../../../src/model/host.js';
import { compileExample, compileYaml } from '../../support/compile.js';
import { expectGolden } from '../../support/golden.js';
import { snippetTemplates } from '../../support/templates.js';

const templates = snippetTemplates();

/** Every guest's snippet of an inline policy, by guest name. */
function snippets(yaml: string): Record<string, GuestSnippet> {
  const { model } = compileYaml(yaml);
  return Object.fromEntries(guestSnippets(model, templates).map((s) => [s.guest, s]));
}

/** The lines of a snippet that are not comments. */
const config = (s: GuestSnippet) => s.text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));

const policy = (guests: string) => `version: 1
host:
  interfaces:
    eth0: { zone: net, addresses: [203.0.113.10/24, 2001:db8:1::10/64] }
zones:
  net: {}
  dmz: { networks: [10.0.10.0/24, fd00:10::/64, 203.0.113.16/28, 2001:db8:10::/64] }
  lab: { networks: [10.9.0.0/16] }
bridges:
  br-dmz: { zone: dmz, addresses: [10.0.10.1/24, fd00:10::1/64] }
  br-lab: { zone: lab }
guests:
${guests}
policies:
  - { from: all, to: all, action: drop }
`;

describe('Xen: the xl.cfg vif line', () => {
  const s = snippets(policy(`
  pv:
    platform: xen
    xen: { type: pv }
    interfaces:
      - { mode: bridged, bridge: br-dmz, mac: "00:16:3e:00:00:01", addresses: [10.0.10.5] }
      - { mode: routed, zone: dmz, name: xen-pv-r, mac: "00:16:3e:00:00:02", addresses: [203.0.113.20, 2001:db8:10::20] }
  hvm:
    platform: xen
    zone: dmz
    xen: { type: hvm }
    interfaces:
      - { mode: routed, name: xen-hvm, addresses: [203.0.113.21] }
      - { mode: bridged, bridge: br-dmz, name: xen-hvm-b, addresses: [10.0.10.6] }`));

  it('names each vif with vifname; bridged vifs name their bridge, routed ones the guestwall hook and their addresses', () => {
    expect(s.pv!.file).toBe('xl.cfg');
    expect(config(s.pv!)).toEqual([
      `vif = [ 'mac=00:16:3e:00:00:01,bridge=br-dmz,vifname=gw-pv', 'mac=00:16:3e:00:00:02,vifname=xen-pv-r,script=${HOOK_PATHS.xenVif},ip=203.0.113.20 2001:db8:10::20' ]`,
    ]);
  });

  it('keeps type=ioemu for HVM guests and says their QEMU tap is <vifname>-emu', () => {
    expect(config(s.hvm!)).toEqual([
      `vif = [ 'type=ioemu,vifname=xen-hvm,script=${HOOK_PATHS.xenVif},ip=203.0.113.21', 'bridge=br-dmz,type=ioemu,vifname=xen-hvm-b' ]`,
    ]);
    expect(s.hvm!.text).toContain("QEMU's tap xen-hvm-emu");
    expect(s.hvm!.text).toContain("QEMU's tap xen-hvm-b-emu");
    expect(s.hvm!.text).toContain('Xen picks a random 00:16:3e');
    expect(s.pv!.text).not.toContain('-emu');
  });

  it('tells what a routed guest configures inside: /32 and /128, the link-local gateways', () => {
    const text = s.pv!.text;
    expect(text).toContain('#   ip address add 203.0.113.20/32 dev DEV');
    expect(text).toContain('#   ip address add 2001:db8:10::20/128 dev DEV');
    expect(text).toContain(`#   ip -6 route add default via ${ROUTED_GATEWAY_V6} dev DEV`);
    expect(text).toContain('on the interface with MAC 00:16:3e:00:00:02');
    // One default route per family: IPv4's goes through the bridged interface 0, which comes first.
    expect(text).not.toContain(`via ${ROUTED_GATEWAY_V4}`);
    expect(text).toContain('#   (the IPv4 default route goes through interface 0)');
    // IPv4 only: no IPv6 gateway to configure.
    expect(s.hvm!.text).toContain(`via ${ROUTED_GATEWAY_V4}`);
    expect(s.hvm!.text).not.toContain('ip -6 route');
    expect(s.hvm!.text).toContain('on the interface number 0');
  });
});

describe('KVM: libvirt <interface> elements', () => {
  const s = snippets(policy(`
  vm:
    platform: kvm
    interfaces:
      - { mode: bridged, bridge: br-dmz, mac: "52:54:00:00:00:01", addresses: [10.0.10.7] }
      - { mode: routed, zone: dmz, name: kvm-vm-r, mac: "52:54:00:00:00:02", addresses: [2001:db8:10::7] }
  odd:
    platform: kvm
    interfaces:
      - { mode: routed, zone: dmz, name: "kvm--odd", addresses: [203.0.113.22] }`));

  it('attaches bridged interfaces with type=bridge, their MAC, bridge, stable target dev and virtio', () => {
    expect(s.vm!.file).toBe('libvirt.xml');
    expect(s.vm!.text).toContain(`<interface type='bridge'>
  <mac address='52:54:00:00:00:01'/>
  <source bridge='br-dmz'/>
  <target dev='gw-vm'/>
  <model type='virtio'/>
</interface>`);
  });

  it('gives routed interfaces their own tap (type=ethernet) brought up and down by the guestwall hooks', () => {
    expect(s.vm!.text).toContain(`<interface type='ethernet'>
  <mac address='52:54:00:00:00:02'/>
  <target dev='kvm-vm-r'/>
  <model type='virtio'/>
  <script path='${HOOK_PATHS.portUp}'/>
  <downscript path='${HOOK_PATHS.portDown}'/>
</interface>`);
    expect(s.vm!.text).toContain('ip address add 2001:db8:10::7/128 dev DEV');
    expect(s.vm!.text).toContain(`ip -6 route add default via ${ROUTED_GATEWAY_V6} dev DEV`);
    expect(s.vm!.text).not.toContain(`via ${ROUTED_GATEWAY_V4}`);
  });

  it('keeps comments well-formed when a name holds "--"', () => {
    expect(s.odd!.text).toContain("<target dev='kvm-&#45;odd'/>");
    const comments = s.odd!.text.match(/<!--[\s\S]*?-->/g)!;
    for (const c of comments) expect(c.slice(4, -3)).not.toContain('--');
  });
});

describe('LXC: lxc.net.N lines', () => {
  const s = snippets(policy(`
  ct:
    platform: lxc
    interfaces:
      - { mode: bridged, bridge: br-dmz, mac: "02:00:0a:00:0a:0a", addresses: [10.0.10.10, fd00:10::10] }
      - { mode: routed, zone: dmz, name: lxc-ct-r, addresses: [203.0.113.23, 2001:db8:10::23] }
  labct:
    platform: lxc
    lxc: { unprivileged: true }
    interfaces:
      - { mode: bridged, bridge: br-lab, addresses: [10.9.1.2] }
      - { mode: routed, zone: dmz, addresses: [2001:db8:10::24] }`));

  it('attaches bridged interfaces with veth.pair, hwaddr, and the bridge\'s prefix and address as gateway', () => {
    expect(s.ct!.file).toBe('lxc.conf');
    expect(config(s.ct!).slice(0, 9)).toEqual([
      'lxc.net.0.type = veth',
      'lxc.net.0.link = br-dmz',
      'lxc.net.0.veth.pair = gw-ct',
      'lxc.net.0.hwaddr = 02:00:0a:00:0a:0a',
      'lxc.net.0.flags = up',
      'lxc.net.0.ipv4.address = 10.0.10.10/24',
      'lxc.net.0.ipv4.gateway = 10.0.10.1',
      'lxc.net.0.ipv6.address = fd00:10::10/64',
      'lxc.net.0.ipv6.gateway = fd00:10::1',
    ]);
  });

  it("routes routed interfaces in LXC's router mode, with /32 and /128 and the link-local gateways", () => {
    const r = snippets(policy(`
  rt:
    platform: lxc
    zone: dmz
    interfaces:
      - { mode: routed, name: lxc-rt, addresses: [203.0.113.23, 2001:db8:10::23] }`)).rt!;
    expect(config(r)).toEqual([
      'lxc.net.0.type = veth',
      'lxc.net.0.veth.mode = router',
      'lxc.net.0.veth.pair = lxc-rt',
      'lxc.net.0.flags = up',
      'lxc.net.0.ipv4.address = 203.0.113.23/32',
      `lxc.net.0.ipv4.gateway = ${ROUTED_GATEWAY_V4}`,
      'lxc.net.0.ipv6.address = 2001:db8:10::23/128',
      `lxc.net.0.ipv6.gateway = ${ROUTED_GATEWAY_V6}`,
    ]);
    expect(r.text).toContain('net.ipv6.conf.all.forwarding=1');
  });

  it('sets one default gateway per family, on the first interface that has one (a second stops the container)', () => {
    expect(config(s.ct!).slice(9)).toEqual([
      'lxc.net.1.type = veth',
      'lxc.net.1.veth.mode = router',
      'lxc.net.1.veth.pair = lxc-ct-r',
      'lxc.net.1.flags = up',
      'lxc.net.1.ipv4.address = 203.0.113.23/32',
      'lxc.net.1.ipv6.address = 2001:db8:10::23/128',
    ]);
  });

  it('without a bridge address takes the prefix of the zone network and sets no gateway; lines for absent families vanish', () => {
    expect(config(s.labct!)).toEqual([
      'lxc.net.0.type = veth',
      'lxc.net.0.link = br-lab',
      'lxc.net.0.veth.pair = gw-labct',
      'lxc.net.0.flags = up',
      'lxc.net.0.ipv4.address = 10.9.1.2/16',
      'lxc.net.1.type = veth',
      'lxc.net.1.veth.mode = router',
      'lxc.net.1.veth.pair = gw-labct-1',
      'lxc.net.1.flags = up',
      'lxc.net.1.ipv6.address = 2001:db8:10::24/128',
      `lxc.net.1.ipv6.gateway = ${ROUTED_GATEWAY_V6}`,
    ]);
  });

  it('says plainly that veth.pair needs a root-started container, and warns in the file when the policy says it is not', () => {
    expect(s.ct!.text).toContain('LXC ignores\n# veth.pair when a non-root user starts the container');
    expect(s.ct!.text).not.toContain('WARNING');
    expect(s.labct!.text).toContain("# WARNING: the policy says 'labct' is started by a non-root user");
    expect(s.labct!.text).toContain('(gw-labct, gw-labct-1)');
  });
});

const examples = readdirSync('policies').filter((f) => f.endsWith('.yaml')).sort();

/** Every guest's snippets; a fleet guest's as its own host compiles them. */
function exampleSnippets(file: string): GuestSnippet[] {
  return compileExample(file).flatMap(({ host, result: r }) => {
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    return guestSnippets(r.model!, templates).filter((s) => host === undefined || r.fleet!.homes[s.guest] === host);
  });
}

describe('example policies render to their reviewed snippets', () => {
  for (const file of examples) {
    it(file, () => {
      const all = exampleSnippets(file);
      expect(all.length).toBeGreaterThan(0);
      for (const s of all) expectGolden(`tests/golden/guests/${basename(file, '.yaml')}/${s.guest}/${s.file}`, s.text);
    });
  }
});

async function virtXmlValidate(): Promise<string | undefined> {
  try {
    await execa('virt-xml-validate', ['--version']);
    await execa('xmllint', ['--version']);
    return undefined;
  } catch {
    return 'virt-xml-validate or xmllint missing (Debian: libvirt-clients, libxml2-utils)';
  }
}
const skipValidate = await virtXmlValidate();

describe.skipIf(skipValidate !== undefined)(`libvirt snippets validate against libvirt's domain schema${skipValidate ? ` (skipped: ${skipValidate})` : ''}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'guestwall-xml-'));
  const validate = async (name: string, interfaces: string) => {
    const path = join(dir, `${name}.xml`);
    writeFileSync(path, `<domain type='kvm'>\n<name>${name}</name>\n<memory unit='MiB'>128</memory>\n<os><type>hvm</type></os>\n<devices>\n${interfaces}\n</devices>\n</domain>\n`);
    const r = await execa('virt-xml-validate', [path, 'domain'], { reject: false });
    return { ok: r.exitCode === 0, output: `${r.stdout}\n${r.stderr}` };
  };

  it('refuses an interface the schema does not allow (so the check can fail)', async () => {
    expect((await validate('bad', "<interface type='ethernet'><source bridge='br0'/></interface>")).ok).toBe(false);
  });

  const kvm: { name: string; text: string }[] = [
    ...examples.flatMap((f) => exampleSnippets(f).filter((s) => s.platform === 'kvm').map((s) => ({ name: `${basename(f, '.yaml')}-${s.guest}`, text: s.text }))),
    ...Object.values(snippets(policy(`
  vm:
    platform: kvm
    interfaces:
      - { mode: bridged, bridge: br-dmz, addresses: [10.0.10.7] }
      - { mode: routed, zone: dmz, name: kvm-vm-r, mac: "52:54:00:00:00:02", addresses: [203.0.113.30, 2001:db8:10::7] }
  odd:
    platform: kvm
    interfaces:
      - { mode: routed, zone: dmz, name: "kvm--odd", addresses: [203.0.113.22] }`))).map((s) => ({ name: `inline-${s.guest}`, text: s.text })),
  ];
  for (const { name, text } of kvm) {
    it(name, async () => {
      const r = await validate(name, text);
      expect(r.ok, r.output).toBe(true);
    });
  }

  it('cleans up', () => {
    rmSync(dir, { recursive: true, force: true });
    expect(kvm.length).toBeGreaterThanOrEqual(4);
  });
});
