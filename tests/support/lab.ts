// A virtualization host built for real in network namespaces, the way a user's host is built:
// guestwall's own network setup makes the bridges, addresses, proxy entries and sysctls in the
// host namespace, and guests attach the way their hypervisors attach them — a bridged guest's
// host-side interface is a bridge port under the name guestwall chose, a routed guest's interface
// is configured by guestwall's generated port-up hook, and LXC guests can be real containers
// started by lxc-execute from the config guestwall rendered.
//
// Around the host: a WAN namespace (the ISP router on eth0's subnet, plus an "internet" client
// address behind it), a LAN machine behind eth1, a port of br-lan, and a machine behind every
// other port the policy gives a bridge (`<zone>-peer`, e.g. a DMZ machine that is not a guest
// behind eth2 of br-dmz, at .100 of the bridge's subnets). Addresses come from the policy; the
// few the policy does not name (the ISP router, the internet client, the LAN and other peers)
// are documentation and private addresses used only here.
//
// Nothing here touches the machine's own namespace; dispose() deletes every namespace, stops
// every process it started (by pid), and is also run by disposeAllLabs() in afterAll.
import { mkdtemp, rm, writeFile, mkdir, copyFile, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ResultPromise, execa } from 'execa';
import type { GuestInterfaceModel, GuestModel, HostModel } from '../../src/model/host.js';
import { formatAddress } from '../../src/policy/addr.js';
import { Agent, ipBatch, topologyId } from './topology.js';

export interface Endpoint {
  /** "internet", "lan-peer", a guest's name, or "host". */
  name: string;
  ns: string;
  zone: string;
  v4?: string;
  v6?: string;
  /** The host interface its packets arrive on (a bridge for bridged guests); absent for the host. */
  inInterface?: string;
  /** Which bridge it sits behind, if any: two endpoints on one bridge never cross the host's routing. */
  bridge?: string;
  guest?: string;
}

export interface Lab {
  model: HostModel;
  host: string;
  namespaces: string[];
  endpoints: Endpoint[];
  /** Every address of the host -> the interface that holds it. */
  hostAddresses: Map<string, string>;
  agent(ns: string): Promise<Agent>;
  /** A command inside the host namespace; fails loudly. */
  inHost(cmd: string[]): Promise<string>;
  dispose(): Promise<void>;
}

/** How the host gets its network and its guests: the parts guestwall supplies, passed in by the test. */
export interface LabSetup {
  /** Apply guestwall's ruleset and network setup inside namespace `ns` (e.g. `guestwall apply --netns`). */
  applyHost(ns: string): Promise<void>;
  /** The port-up hook for a routed guest interface, run inside the host namespace. */
  portUp(ns: string, ifname: string): Promise<void>;
  /** The rendered LXC network config for a guest, or undefined to stand it in with a namespace. */
  lxcConfig?(guest: GuestModel): string | undefined;
}

const WAN = { router4: '203.0.113.1', router6: '2001:db8:1::1', client4: '198.51.100.7', client6: '2001:db8:ffff::7' };
const LAN_PEER = { v4: '192.168.1.50', v6: 'fd00:1::50' };

const live = new Set<Lab>();
export async function disposeAllLabs(): Promise<void> {
  for (const l of [...live]) await l.dispose();
}

/** Wait until no IPv6 address in `ns` is tentative (DAD done), at most `ms`. */
async function dadDone(ns: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const r = await execa('ip', ['-n', ns, '-6', 'addr', 'show', 'tentative'], { reject: false });
    if (r.stdout.trim() === '') return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`IPv6 addresses in ${ns} stayed tentative`);
}

export async function buildLab(model: HostModel, setup: LabSetup, python: string): Promise<Lab> {
  const id = topologyId();
  const host = `gw-l-${id}-h`;
  const wan = `gw-l-${id}-wan`;
  const lanPeer = `gw-l-${id}-lan`;
  const namespaces = [host, wan, lanPeer];
  // Every bridge port but eth1 (and the uplinks) gets a machine of its own behind it.
  const otherPorts = model.bridges.flatMap((b) => b.ports.filter((p) => p !== 'eth1' && !model.hostInterfaces.some((i) => i.name === p)).map((port) => ({ port, bridge: b, ns: `gw-l-${id}-${port}` })));
  namespaces.push(...otherPorts.map((o) => o.ns));
  const agents = new Map<string, Promise<Agent>>();
  const containers: { proc: ResultPromise; name: string; lxcpath: string }[] = [];
  const tmp = await mkdtemp(join(tmpdir(), 'gw-lab-'));
  const endpoints: Endpoint[] = [];
  const hostAddresses = new Map<string, string>();
  let disposed = false;

  const lab: Lab = {
    model, host, namespaces, endpoints, hostAddresses,
    agent(ns) {
      if (disposed) throw new Error('agent on a disposed lab');
      if (!namespaces.includes(ns)) throw new Error(`refusing to start an agent outside this lab (${ns})`);
      let a = agents.get(ns);
      if (a === undefined) {
        a = Agent.start(ns, python);
        agents.set(ns, a);
      }
      return a;
    },
    async inHost(cmd) {
      const r = await execa('ip', ['netns', 'exec', host, ...cmd], { reject: false });
      if (r.exitCode !== 0) throw new Error(`${cmd.join(' ')} in ${host} failed: ${r.stderr}`);
      return r.stdout;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      for (const a of agents.values()) await a.then((x) => x.stop(), () => undefined);
      for (const c of containers) {
        await execa('ip', ['netns', 'exec', host, 'lxc-stop', '-P', c.lxcpath, '-n', c.name, '-k'], { reject: false, timeout: 10_000 });
        if (c.proc.pid !== undefined && c.proc.exitCode === null) c.proc.kill('SIGKILL');
        await c.proc.catch(() => undefined);
      }
      await execa('ip', ['-force', '-batch', '-'], { input: `${namespaces.map((ns) => `netns delete ${ns}`).join('\n')}\n`, reject: false });
      await rm(tmp, { recursive: true, force: true });
      live.delete(lab);
    },
  };
  live.add(lab);

  try {
    const guestNs = (g: string, i: number) => `gw-l-${id}-${g.slice(0, 12)}${i > 0 ? `-${i}` : ''}`;
    const plainGuests: { g: GuestModel; i: GuestInterfaceModel; ns: string }[] = [];
    const lxcGuests: { g: GuestModel; conf: string }[] = [];
    for (const g of model.guests) {
      const conf = g.platform === 'lxc' ? setup.lxcConfig?.(g) : undefined;
      if (conf !== undefined) lxcGuests.push({ g, conf });
      else g.interfaces.forEach((i, n) => plainGuests.push({ g, i, ns: guestNs(g.name, n) }));
    }
    namespaces.push(...plainGuests.map((p) => p.ns));
    const quiet = ['net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0'];
    await ipBatch(namespaces.flatMap((ns) => [`netns add ${ns}`, `netns exec ${ns} sysctl -qw ${quiet.join(' ')}`]));

    // The host's uplinks, as the machine would have them before guestwall: eth0 to the ISP, eth1 to the LAN switch.
    const uplinks = model.hostInterfaces.map((i) => i.name);
    const bridgePorts = model.bridges.flatMap((b) => b.ports);
    const stands = [...uplinks, ...bridgePorts.filter((p) => !uplinks.includes(p))];
    if (!stands.includes('eth0') || !bridgePorts.includes('eth1')) throw new Error('the lab expects eth0 as the uplink and eth1 as a bridge port (homelab-dmz.yaml)');
    await ipBatch(['link set lo up', `link add eth0 type veth peer name up0 netns ${wan}`, `link add eth1 type veth peer name up0 netns ${lanPeer}`], host);
    for (const i of model.hostInterfaces) for (const a of i.addresses) hostAddresses.set(a.addr, i.name);
    for (const b of model.bridges) for (const a of b.addresses) hostAddresses.set(a.addr, b.name);

    // The host's own addresses on its uplink are the admin's, not guestwall's: set them as a host would have them.
    const eth0 = model.hostInterfaces.find((i) => i.name === 'eth0')!;
    await ipBatch([
      ...eth0.addresses.map((a) => `address add ${a.addr}/${a.network.len} dev eth0${a.family === 6 ? ' nodad' : ''}`),
      'link set eth0 up', 'link set eth1 up',
      `route add default via ${WAN.router4} dev eth0`, `route add ::/0 via ${WAN.router6} dev eth0`,
    ], host);
    await ipBatch([
      'link set lo up', `address add ${WAN.client4}/32 dev lo`, `address add ${WAN.client6}/128 dev lo`,
      `address add ${WAN.router4}/24 dev up0`, `address add ${WAN.router6}/64 dev up0 nodad`, 'link set up0 up',
      // The ISP routes the host's delegated IPv6 prefixes to it; private space it does not route.
      ...model.zones.flatMap((z) => z.networks).filter((n) => n.family === 6 && !n.addr.startsWith('fd')).map((n) => `route add ${n.addr}/${n.len} via ${eth0.addresses.find((a) => a.family === 6)!.addr} dev up0`),
    ], wan);
    const brLan = model.bridges.find((b) => b.ports.includes('eth1'))!;
    const gw = (list: readonly { addr: string; family: 4 | 6 }[], f: 4 | 6) => list.find((a) => a.family === f)?.addr;
    await ipBatch([
      'link set lo up', `address add ${LAN_PEER.v4}/24 dev up0`, `address add ${LAN_PEER.v6}/64 dev up0 nodad`, 'link set up0 up',
      `route add default via ${gw(brLan.addresses, 4)} dev up0`, `route add ::/0 via ${gw(brLan.addresses, 6)} dev up0`,
    ], lanPeer);
    endpoints.push({ name: 'internet', ns: wan, zone: eth0.zone, v4: WAN.client4, v6: WAN.client6, inInterface: 'eth0' });
    endpoints.push({ name: 'lan-peer', ns: lanPeer, zone: brLan.zone, v4: LAN_PEER.v4, v6: LAN_PEER.v6, inInterface: brLan.name, bridge: brLan.name });
    for (const o of otherPorts) {
      // .100 of the bridge's subnets (the address explain's matrix stands a zone's machine in, for IPv4).
      const at = (f: 4 | 6) => {
        const a = o.bridge.addresses.find((x) => x.family === f);
        return a && { addr: formatAddress(a.network.start + 100n, f), len: a.network.len, gw: a.addr };
      };
      const [v4, v6] = [at(4), at(6)];
      await ipBatch([`link add ${o.port} type veth peer name up0 netns ${o.ns}`, `link set ${o.port} up`], host);
      await ipBatch([
        'link set lo up', 'link set up0 up',
        ...(v4 ? [`address add ${v4.addr}/${v4.len} dev up0`, `route add default via ${v4.gw} dev up0`] : []),
        ...(v6 ? [`address add ${v6.addr}/${v6.len} dev up0 nodad`, `route add ::/0 via ${v6.gw} dev up0`] : []),
      ], o.ns);
      endpoints.push({ name: `${o.bridge.zone}-peer`, ns: o.ns, zone: o.bridge.zone, ...(v4 ? { v4: v4.addr } : {}), ...(v6 ? { v6: v6.addr } : {}), inInterface: o.bridge.name, bridge: o.bridge.name });
    }

    // guestwall: the ruleset and the network setup (bridges, enslaved ports, addresses, proxies, sysctls).
    await setup.applyHost(host);
    endpoints.push({ name: 'host', ns: host, zone: 'host' });

    // Guests, attached as their hypervisors attach them.
    for (const { g, i, ns } of plainGuests) {
      const v4 = i.addresses.find((a) => a.family === 4)?.addr;
      const v6 = i.addresses.find((a) => a.family === 6)?.addr;
      const lines = [`link add ${i.name} type veth peer name eth0 netns ${ns}`];
      const inGuest = ['link set lo up', ...(i.mac ? [`link set eth0 address ${i.mac}`] : [])];
      if (i.mode === 'bridged') {
        const b = model.bridges.find((x) => x.name === i.bridge)!;
        lines.push(`link set ${i.name} master ${b.name}`, `link set ${i.name} up`);
        for (const a of i.addresses) {
          const net = b.addresses.find((x) => x.family === a.family);
          inGuest.push(`address add ${a.addr}/${net ? net.network.len : a.family === 4 ? 32 : 128} dev eth0${a.family === 6 ? ' nodad' : ''}`);
        }
        inGuest.push('link set eth0 up');
        const g4 = gw(b.addresses, 4);
        const g6 = gw(b.addresses, 6);
        if (g4) inGuest.push(`route add default via ${g4} dev eth0`);
        if (g6) inGuest.push(`route add ::/0 via ${g6} dev eth0`);
      } else {
        lines.push(`link set ${i.name} up`);
        for (const a of i.addresses) inGuest.push(`address add ${a.addr}/${a.family === 4 ? 32 : 128} dev eth0${a.family === 6 ? ' nodad' : ''}`);
        inGuest.push('link set eth0 up', 'route add 169.254.0.1/32 dev eth0', 'route add default via 169.254.0.1 dev eth0', 'route add ::/0 via fe80::1 dev eth0');
      }
      await ipBatch(lines, host);
      await ipBatch(inGuest, ns);
      if (i.mode === 'routed') await setup.portUp(host, i.name);
      endpoints.push({
        name: g.name, ns, zone: i.zone, guest: g.name, inInterface: i.mode === 'bridged' ? i.bridge : i.name,
        ...(i.mode === 'bridged' ? { bridge: i.bridge } : {}), ...(v4 ? { v4 } : {}), ...(v6 ? { v6 } : {}),
      });
    }

    // LXC guests as real containers: a busybox-static rootfs and the network config guestwall rendered.
    for (const { g, conf } of lxcGuests) {
      const dir = join(tmp, g.name);
      const rootfs = join(dir, 'rootfs');
      for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'sbin']) await mkdir(join(rootfs, d), { recursive: true });
      await copyFile('/bin/busybox', join(rootfs, 'bin/busybox'));
      await symlink('busybox', join(rootfs, 'bin/sh'));
      const lxcpath = join(dir, 'lxcpath');
      await mkdir(lxcpath);
      const file = join(dir, 'config');
      await writeFile(file, [
        `lxc.uts.name = ${g.name}`, `lxc.rootfs.path = dir:${rootfs}`, 'lxc.mount.auto = proc:rw sys:ro', 'lxc.apparmor.profile = unconfined',
        conf,
      ].join('\n'));
      const proc = execa('ip', ['netns', 'exec', host, 'lxc-execute', '-P', lxcpath, '-n', g.name, '-f', file, '-o', join(dir, 'log'), '-l', 'INFO', '--', '/bin/busybox', 'sleep', '600'], { reject: false });
      containers.push({ proc, name: g.name, lxcpath });
      // The container's network namespace, named so the packet agent (run from the host's
      // filesystem, only the network namespace is the container's) can enter it.
      const ns = `gw-l-${id}-lxc-${g.name.slice(0, 8)}`;
      const until = Date.now() + 20_000;
      let pid = '';
      while (Date.now() < until && pid === '') {
        // lxc's command socket is an abstract socket, which lives in the network namespace lxc-execute ran in.
        const info = await execa('ip', ['netns', 'exec', host, 'lxc-info', '-P', lxcpath, '-n', g.name, '-p', '-H'], { reject: false });
        pid = info.exitCode === 0 ? info.stdout.trim() : '';
        if (proc.exitCode !== null) throw new Error(`lxc-execute for ${g.name} exited (${proc.exitCode}): ${(await proc).stderr}`);
        if (pid === '') await new Promise((r) => setTimeout(r, 100));
      }
      if (pid === '') throw new Error(`container ${g.name} did not start within 20 s`);
      await execa('ip', ['netns', 'attach', ns, pid]);
      namespaces.push(ns);
      await dadDone(ns);
      const i = g.interfaces[0]!;
      endpoints.push({
        name: g.name, ns, zone: i.zone, guest: g.name, inInterface: i.mode === 'bridged' ? i.bridge : i.name,
        ...(i.mode === 'bridged' ? { bridge: i.bridge } : {}),
        ...(i.addresses.find((a) => a.family === 4) ? { v4: i.addresses.find((a) => a.family === 4)!.addr } : {}),
        ...(i.addresses.find((a) => a.family === 6) ? { v6: i.addresses.find((a) => a.family === 6)!.addr } : {}),
      });
    }
    await dadDone(host);
  } catch (e) {
    await lab.dispose();
    throw e;
  }
  return lab;
}

