// KVM guests for real: a libvirt daemon started by the test inside a throwaway network namespace
// (tests/support/vm/libvirt.ts) defines and boots two QEMU domains (TCG) whose <interface>
// elements are guestwall's own snippets, inserted verbatim from `guestwall compile --out`:
// 'web' bridged on br-lan, 'mail' routed on its own tap with guestwall's port-up/port-down hooks
// run by libvirt. The host namespace gets guestwall's ruleset and network setup from
// `guestwall apply --netns`; a WAN namespace stands for the internet. Real packets then go to
// and from the VMs (the guest's probe agent on its serial port, tests/support/vm/agent.ts).
//
// It needs root (network namespaces, libvirtd); as root, a missing package is a failure that
// names it (.ci/run installs them), so CI never skips it silently.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicyText } from '../../src/compile/pipeline.js';
import { type GuestModel, type HostModel, ROUTED_GATEWAY_V4, ROUTED_GATEWAY_V6 } from '../../src/model/host.js';
import { kernelTestUnavailable } from '../support/kernel.js';
import { Agent, ipBatch, topologyId } from '../support/topology.js';
import { GuestAgent } from '../support/vm/agent.js';
import { type GuestImage, guestImage, imageUnavailable } from '../support/vm/image.js';
import { type Libvirt, domainXml, libvirtUnavailable, startLibvirt, stopAllLibvirts } from '../support/vm/libvirt.js';

const POLICY = 'tests/e2e/kvm-libvirt.yaml';
const BIN = 'bin/guestwall.js';
const notRoot = process.getuid?.() !== 0 ? 'needs root for network namespaces and a libvirt daemon' : undefined;

// The internet as the host sees it: its router on eth0's subnet and a client behind it.
const WAN = { router4: '203.0.113.1', router6: '2001:db8:1::1', client4: '198.51.100.7', client6: '2001:db8:ffff::7' };
const PUBLIC4 = '203.0.113.10';
const WAN_PORT = 9000;
/** Ports the guests listen on: the forward's target and the mail rule's port, and one nothing opens. */
const LISTEN: Record<string, number[]> = { web: [80, 22], mail: [25, 22] };
const BOOT_MS = 240_000;

/** "addr:port" for any port, as the guest reports a connection's ends. */
const at = (addr: string) => new RegExp(`^${addr.replace(/\./g, '\\.')}:\\d+$`);

function model(): HostModel {
  const r = compilePolicyText(POLICY, readFileSync(POLICY, 'utf8'));
  if (!r.model) throw new Error(`${POLICY} does not compile`);
  return r.model;
}

/** The guest init's kernel arguments: its addresses and gateways as guestwall's snippet describes them. */
function guestCmdline(m: HostModel, g: GuestModel): string {
  const i = g.interfaces[0]!;
  const args = [`gw.name=${g.name}`, `gw.listen=${LISTEN[g.name]!.join(',')}`];
  for (const family of [4, 6] as const) {
    const mine = i.addresses.filter((a) => a.family === family);
    if (mine.length === 0) continue;
    const key = family === 4 ? 'gw.ip' : 'gw.ip6';
    const gwKey = family === 4 ? 'gw.gw' : 'gw.gw6';
    if (i.mode === 'routed') {
      args.push(`${key}=${mine.map((a) => `${a.addr}/${family === 4 ? 32 : 128}`).join(',')}`, `${gwKey}=${family === 4 ? ROUTED_GATEWAY_V4 : ROUTED_GATEWAY_V6}`);
    } else {
      const own = m.bridges.find((b) => b.name === i.bridge)!.addresses.find((a) => a.family === family)!;
      args.push(`${key}=${mine.map((a) => `${a.addr}/${own.len}`).join(',')}`, `${gwKey}=${own.addr}`);
    }
  }
  return args.join(' ');
}

describe.skipIf(notRoot !== undefined)(`KVM guests under a real libvirt, from guestwall's snippets${notRoot ? ` (skipped: ${notRoot})` : ''}`, () => {
  const m = notRoot ? undefined : model();
  const id = topologyId();
  const host = `gw-k-${id}-h`;
  const wan = `gw-k-${id}-wan`;
  let tmp = '';
  let out = '';
  let lv: Libvirt | undefined;
  let image: GuestImage;
  const agents = new Map<string, GuestAgent>();
  let wanAgent: Agent | undefined;
  let nextId = 1;
  const listenIds = { 4: 0, 6: 0 };

  const inHost = async (cmd: string[]) => (await execa('ip', ['netns', 'exec', host, ...cmd])).stdout;
  const guest = (name: string) => {
    const a = agents.get(name);
    if (a === undefined) throw new Error(`guest ${name} is not running`);
    return a;
  };
  const addrOf = (name: string, family: 4 | 6) => m!.guests.find((g) => g.name === name)!.interfaces[0]!.addresses.find((a) => a.family === family)!.addr;

  async function bootGuests(): Promise<void> {
    for (const a of agents.values()) a.close();
    agents.clear();
    const t0 = Date.now();
    await Promise.all(m!.guests.map((g) => lv!.virsh(['start', g.name])));
    const booted = await Promise.all(m!.guests.map((g) => GuestAgent.connect(g.name, join(tmp, `${g.name}.sock`), BOOT_MS)));
    console.log(`kvm-libvirt: ${booted.length} guests started and READY in ${((Date.now() - t0) / 1000).toFixed(1)} s (TCG, in parallel)`);
    for (const a of booted) agents.set(a.name, a);
    // One ping out of each guest first, so that the neighbour entries on both sides exist: under
    // TCG on a loaded machine a guest can miss the host's three ARP/ND tries for the first packet.
    await Promise.all(booted.map((a) => a.run(`ping -c 1 -W 5 ${WAN.client4}; ping -c 1 -W 5 ${WAN.client6}; true`)));
  }

  /**
   * A TCP connection from the internet client: 'connected', an error, or 'timeout' (dropped).
   * A connection is held open until `hold` settles (the guest's report of it), then reset.
   */
  async function fromWan(family: 4 | 6, dst: string, port: number, hold?: Promise<unknown>, ms = 4_000): Promise<string> {
    const a = wanAgent!;
    const rid = nextId++;
    a.request({ op: 'send', id: rid, proto: 'tcp', family, src: family === 4 ? WAN.client4 : WAN.client6, dst, port });
    const e = await a.waitFor(rid, ['connected', 'error'], ms);
    if (e?.ev === 'connected') await hold;
    a.request({ op: 'close', id: rid });
    return e === undefined ? 'timeout' : e.ev === 'connected' ? 'connected' : `error ${e.error}`;
  }

  /** A TCP connection from a guest (busybox nc): true when it connected. */
  async function fromGuest(name: string, dst: string, port: number): Promise<boolean> {
    const r = await guest(name).run(`echo probe | timeout 6 nc -w 4 ${dst} ${port}`);
    return r.code === 0;
  }

  /** Peers the internet client's listener has accepted so far. */
  const wanPeers = (family: 4 | 6) => wanAgent!.eventsOf(listenIds[family]).filter((e) => e.ev === 'got').map((e) => e.peer![0]);
  /** The same, once there are at least `n` (the listener may report a connection after the guest's nc has returned). */
  async function wanPeersAtLeast(family: 4 | 6, n: number, ms = 5_000): Promise<string[]> {
    const until = Date.now() + ms;
    while (wanPeers(family).length < n && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    return wanPeers(family);
  }

  beforeAll(async () => {
    const missing = kernelTestUnavailable() ?? libvirtUnavailable() ?? (await imageUnavailable());
    if (missing !== undefined) throw new Error(`cannot run the libvirt test: ${missing} (.ci/run installs what it needs)`);
    tmp = await mkdtemp(join(tmpdir(), 'gw-kvm-'));
    out = join(tmp, 'out');
    const imageBuilt = guestImage();
    const c = await execa('node', [BIN, 'compile', POLICY, '--out', out], { reject: false });
    if (c.exitCode !== 0) throw new Error(`guestwall compile --out failed:\n${c.stderr}`);

    const quiet = ['net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0'];
    await ipBatch([host, wan].flatMap((ns) => [`netns add ${ns}`, `netns exec ${ns} sysctl -qw ${quiet.join(' ')}`]));
    // The host's uplink as the admin has it before guestwall: eth0, its addresses, default routes.
    await ipBatch([
      'link set lo up', `link add eth0 type veth peer name up0 netns ${wan}`,
      `address add ${PUBLIC4}/24 dev eth0`, 'address add 2001:db8:1::10/64 dev eth0 nodad', 'link set eth0 up',
      `route add default via ${WAN.router4} dev eth0`, `route add ::/0 via ${WAN.router6} dev eth0`,
    ], host);
    await ipBatch([
      'link set lo up', `address add ${WAN.client4}/32 dev lo`, `address add ${WAN.client6}/128 dev lo`,
      `address add ${WAN.router4}/24 dev up0`, `address add ${WAN.router6}/64 dev up0 nodad`, 'link set up0 up',
      // The ISP routes the routed guest's prefix to the host; the LAN's private range is routed
      // there too, so a packet straight to a LAN guest meets the policy rather than a routing hole.
      'route add 2001:db8:20::/64 via 2001:db8:1::10 dev up0', `route add 192.168.60.0/24 via ${PUBLIC4} dev up0`,
    ], wan);

    const a = await execa('node', [BIN, 'apply', POLICY, '--netns', host], { reject: false });
    if (a.exitCode !== 0) throw new Error(`guestwall apply --netns ${host} failed (${a.exitCode}):\n${a.stderr}`);

    const t0 = Date.now();
    lv = await startLibvirt(host, join(out, 'network/etc/guestwall/hooks'));
    image = await imageBuilt;
    console.log(`kvm-libvirt: libvirtd up and the guest image (${image.from}) ready ${((Date.now() - t0) / 1000).toFixed(1)} s later`);
    for (const g of m!.guests) {
      const xml = domainXml({
        name: g.name, image, cmdline: guestCmdline(m!, g),
        interfaces: readFileSync(join(out, 'guests', g.name, 'libvirt.xml'), 'utf8'),
        consoleLog: join(tmp, `${g.name}.console`), agentSocket: join(tmp, `${g.name}.sock`),
      });
      await writeFile(join(tmp, `${g.name}.xml`), xml);
      await lv.virsh(['define', join(tmp, `${g.name}.xml`)]);
    }
    wanAgent = await Agent.start(wan, (await execa('python3', ['-c', 'import sys; print(sys.executable)'])).stdout.trim());
    for (const family of [4, 6] as const) {
      listenIds[family] = nextId++;
      wanAgent.request({ op: 'listen', id: listenIds[family], proto: 'tcp', family, port: WAN_PORT });
      if ((await wanAgent.waitFor(listenIds[family], ['ready', 'error'], 5_000))?.ev !== 'ready') throw new Error('the WAN listener did not start');
    }
    await bootGuests();
  }, 600_000);

  afterAll(async () => {
    for (const a of agents.values()) a.close();
    await wanAgent?.stop();
    await stopAllLibvirts();
    await execa('ip', ['-force', '-batch', '-'], { input: `netns delete ${host}\nnetns delete ${wan}\n`, reject: false });
    if (tmp !== '') await rm(tmp, { recursive: true, force: true });
  }, 60_000);

  it('libvirt made the taps guestwall named, in the test namespace, and ran port-up for the routed one', async () => {
    const web = JSON.parse(await inHost(['ip', '-j', 'link', 'show', 'gw-web'])) as { master?: string }[];
    expect(web[0]?.master).toBe('br-lan');
    const mail = JSON.parse(await inHost(['ip', '-j', 'link', 'show', 'gw-mail'])) as { master?: string }[];
    expect(mail[0]?.master).toBeUndefined();
    // Nothing appeared in the machine's own namespace.
    for (const tap of ['gw-web', 'gw-mail']) expect((await execa('ip', ['link', 'show', tap], { reject: false })).exitCode).not.toBe(0);
    // port-up: the gateway address on the tap and a host route per guest address.
    expect(await inHost(['ip', '-4', 'address', 'show', 'dev', 'gw-mail'])).toContain(`${ROUTED_GATEWAY_V4}/32`);
    expect(await inHost(['ip', 'route', 'show', `${addrOf('mail', 4)}/32`])).toContain('dev gw-mail');
    expect(await inHost(['ip', '-6', 'route', 'show', `${addrOf('mail', 6)}/128`])).toContain('dev gw-mail');
    expect(await lv!.commandsRun()).toContain('/etc/guestwall/hooks/port-up gw-mail');
  });

  it('what the policy allows arrives: the port forward, the routed guest\'s mail port, guests to the internet', async () => {
    const web = guest('web');
    let got = web.acceptedSince(web.mark(), 10_000);
    expect(await fromWan(4, PUBLIC4, 8080, got)).toBe('connected');
    expect(await got).toEqual([{ port: 80, local: `${addrOf('web', 4)}:80`, peer: expect.stringMatching(at(WAN.client4)) }]);

    const mail = guest('mail');
    for (const family of [4, 6] as const) {
      got = mail.acceptedSince(mail.mark(), 10_000);
      expect(await fromWan(family, addrOf('mail', family), 25, got), `net -> mail:25 over IPv${family}`).toBe('connected');
      expect((await got)[0]?.peer).toMatch(at(family === 4 ? WAN.client4 : WAN.client6));
    }

    // lan -> net is masqueraded behind the host's address; the routed guest keeps its own.
    expect(await fromGuest('web', WAN.client4, WAN_PORT)).toBe(true);
    expect(await fromGuest('mail', WAN.client4, WAN_PORT)).toBe(true);
    expect(await fromGuest('mail', WAN.client6, WAN_PORT)).toBe(true);
    expect(await wanPeersAtLeast(4, 2)).toEqual([PUBLIC4, addrOf('mail', 4)]);
    expect(await wanPeersAtLeast(6, 1)).toEqual([addrOf('mail', 6)]);
    // lan -> all: the bridged guest reaches the routed one.
    const mark = mail.mark();
    expect(await fromGuest('web', addrOf('mail', 4), 25)).toBe(true);
    expect((await mail.acceptedSince(mark, 5_000))[0]?.peer).toMatch(at(addrOf('web', 4)));
  }, 120_000);

  it('what the policy forbids does not arrive', async () => {
    const web = guest('web');
    const mail = guest('mail');
    const [webMark, mailMark] = [web.mark(), mail.mark()];
    // net -> mail only on smtp; net -> lan dropped (no forward for port 80 itself).
    expect(await fromWan(4, addrOf('mail', 4), 22), 'net -> mail:22 over IPv4').toBe('timeout');
    expect(await fromWan(6, addrOf('mail', 6), 22), 'net -> mail:22 over IPv6').toBe('timeout');
    expect(await fromWan(4, addrOf('web', 4), 80), 'net -> web:80 without the forward').toBe('timeout');
    // dmz -> lan: reject.
    expect(await fromGuest('mail', addrOf('web', 4), 80)).toBe(false);
    expect(web.accepted().slice(webMark)).toEqual([]);
    expect(mail.accepted().slice(mailMark)).toEqual([]);
  }, 120_000);

  it('hairpin: guests reach the forward through the public address', async () => {
    const web = guest('web');
    const mark = web.mark();
    expect(await fromGuest('mail', PUBLIC4, 8080)).toBe(true);
    const got = (await web.acceptedSince(mark, 5_000))[0];
    expect(got?.local).toBe(`${addrOf('web', 4)}:80`);
    expect(got?.peer).toMatch(at(addrOf('mail', 4)));
  }, 120_000);

  // The forward's own target through the public address: masqueraded behind the bridge's
  // address, so that the replies come back through the host. Only without br_netfilter: with it,
  // the kernel bridges the DNATed frame straight back towards the port it came in on
  // (br_nf_pre_routing_finish_bridge), and a bridge never sends a frame out of its ingress port.
  it('hairpin from the forward\'s own target, with br_netfilter off', async () => {
    const web = guest('web');
    await inHost(['sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=0']);
    try {
      const mark = web.mark();
      expect(await fromGuest('web', PUBLIC4, 8080)).toBe(true);
      const got = (await web.acceptedSince(mark, 5_000))[0];
      expect(got?.local).toBe(`${addrOf('web', 4)}:80`);
      expect(got?.peer).toMatch(at('192.168.60.1'));
    } finally {
      await inHost(['sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=1']);
    }
  }, 120_000);

  it('a guest that changes its MAC or its address inside the VM is dropped', async () => {
    const count = () => wanPeers(4).length;
    let before = count();
    // Bridged: a foreign MAC.
    const web = guest('web');
    const webMac = m!.guests.find((g) => g.name === 'web')!.interfaces[0]!.mac!;
    expect((await web.run('ip link set eth0 address 52:54:00:66:66:66')).code).toBe(0);
    expect(await fromGuest('web', WAN.client4, WAN_PORT)).toBe(false);
    expect((await web.run(`ip link set eth0 address ${webMac}`)).code).toBe(0);
    expect(await fromGuest('web', WAN.client4, WAN_PORT)).toBe(true);
    expect(await wanPeersAtLeast(4, before + 1)).toHaveLength(before + 1);
    // Bridged: a foreign source address on its own subnet.
    before = count();
    expect((await web.run(`ip address add 192.168.60.99/24 dev eth0 && ip route add ${WAN.client4} via 192.168.60.1 dev eth0 src 192.168.60.99`)).code).toBe(0);
    expect(await fromGuest('web', WAN.client4, WAN_PORT)).toBe(false);
    expect((await web.run(`ip route del ${WAN.client4} && ip address del 192.168.60.99/24 dev eth0`)).code).toBe(0);
    expect(await fromGuest('web', WAN.client4, WAN_PORT)).toBe(true);
    expect(await wanPeersAtLeast(4, before + 1)).toHaveLength(before + 1);
    // Routed: another public address, and a foreign MAC.
    const mail = guest('mail');
    const mailMac = m!.guests.find((g) => g.name === 'mail')!.interfaces[0]!.mac!;
    before = count();
    expect((await mail.run(`ip address add 203.0.113.41/32 dev eth0 && ip route add ${WAN.client4} via ${ROUTED_GATEWAY_V4} dev eth0 onlink src 203.0.113.41`)).code).toBe(0);
    expect(await fromGuest('mail', WAN.client4, WAN_PORT)).toBe(false);
    expect((await mail.run(`ip route del ${WAN.client4} && ip address del 203.0.113.41/32 dev eth0`)).code).toBe(0);
    expect((await mail.run('ip link set eth0 address 52:54:00:66:66:67')).code).toBe(0);
    expect(await fromGuest('mail', WAN.client4, WAN_PORT)).toBe(false);
    expect((await mail.run(`ip link set eth0 address ${mailMac}`)).code).toBe(0);
    expect(await fromGuest('mail', WAN.client4, WAN_PORT)).toBe(true);
    expect((await wanPeersAtLeast(4, before + 1)).slice(before)).toEqual([addrOf('mail', 4)]);
  }, 180_000);

  it('destroyed and started again: the same taps, the routed guest\'s routes go and come back, the rules still match', async () => {
    await lv!.virsh(['destroy', 'web']);
    await lv!.virsh(['destroy', 'mail']);
    for (const tap of ['gw-web', 'gw-mail']) expect((await execa('ip', ['-n', host, 'link', 'show', tap], { reject: false })).exitCode).not.toBe(0);
    expect(await inHost(['ip', 'route', 'show', `${addrOf('mail', 4)}/32`])).toBe('');
    expect(await lv!.commandsRun()).toContain('/etc/guestwall/hooks/port-down gw-mail');

    await bootGuests();
    const web = JSON.parse(await inHost(['ip', '-j', 'link', 'show', 'gw-web'])) as { master?: string }[];
    expect(web[0]?.master).toBe('br-lan');
    expect(await inHost(['ip', 'route', 'show', `${addrOf('mail', 4)}/32`])).toContain('dev gw-mail');
    expect(await inHost(['ip', '-6', 'route', 'show', `${addrOf('mail', 6)}/128`])).toContain('dev gw-mail');
    expect((await lv!.commandsRun()).filter((c) => c === '/etc/guestwall/hooks/port-up gw-mail')).toHaveLength(2);

    const got = guest('web').acceptedSince(guest('web').mark(), 10_000);
    expect(await fromWan(4, PUBLIC4, 8080, got)).toBe('connected');
    expect((await got)[0]?.local).toBe(`${addrOf('web', 4)}:80`);
    expect(await fromWan(4, addrOf('mail', 4), 25)).toBe('connected');
    expect(await fromWan(4, addrOf('mail', 4), 22)).toBe('timeout');
    expect(await fromGuest('mail', addrOf('web', 4), 80)).toBe(false);
    expect(await fromGuest('web', addrOf('mail', 4), 25)).toBe(true);
  }, BOOT_MS + 120_000);
});
