// The dataplane bench's host, built from the policy's model out of network namespaces: a host
// namespace that runs the ruleset, a WAN namespace behind the host interface of the `net` zone,
// and a namespace per guest that receives traffic. Only those few guests exist as interfaces;
// the thousands of others exist only as elements of the ruleset, which stays full size.
//
// Two parts, so that the second can be swapped for guestwall's own network-setup executor
// (src/apply/network.ts) when it lands:
//  - `farSides`: what the hypervisor does: the guests' veth pairs, named as the policy names
//    them, with the guest end configured inside the guest; and the WAN's link;
//  - `HostSetup` (`ipHostSetup` for now): what guestwall's network setup does on the host:
//    bridges with their addresses and ports, routed guests' gateway address and /32 route,
//    host interface addresses, forwarding.
// Nothing here touches the machine's own namespace: every `ip` runs with `-n` or `netns exec`
// on a namespace this module created, and `dispose` deletes them all.
import { execa } from 'execa';
import { ROUTED_GATEWAY_V4, type GuestInterfaceModel, type HostModel } from '../../src/model/host.js';

export interface Receiver {
  guest: string;
  mode: 'routed' | 'bridged';
  /** The guest's namespace. */
  ns: string;
  /** Its IPv4 address: what the senders aim at. */
  addr: string;
  /** The interface in the host namespace the traffic leaves by: the routed guest's own, or the bridge. */
  hostIfname: string;
  /** The bridge port, for bridged guests. */
  port?: string;
}

export interface BenchTopology {
  /** The namespace that runs the ruleset. */
  host: string;
  wan: { ns: string; ifname: string; addr: string; hostIfname: string };
  receivers: Receiver[];
  namespaces: string[];
  dispose(): Promise<void>;
}

/** Sets up the host's side of the network for the guests that exist (`present`), in namespace `ns`. */
export type HostSetup = (model: HostModel, ns: string, present: ReadonlySet<string>) => Promise<void>;

/** The prefix of every namespace the bench makes: `gwb-<pid>-<role>`. */
export const NS_PREFIX = 'gwb-';

const WAN_ADDR = '203.0.113.1';

/** `ip -batch -` in a namespace; fails loudly with the commands it ran. */
export async function ipBatch(ns: string, lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  const r = await execa('ip', ['-n', ns, '-batch', '-'], { input: `${lines.join('\n')}\n`, reject: false });
  if (r.exitCode !== 0) throw new Error(`ip -n ${ns} -batch failed: ${r.stderr}\n${lines.join('\n')}`);
}

export async function sysctl(ns: string, settings: Record<string, string | number>): Promise<void> {
  const args = Object.entries(settings).map(([k, v]) => `${k}=${v}`);
  const r = await execa('ip', ['netns', 'exec', ns, 'sysctl', '-qw', ...args], { reject: false });
  if (r.exitCode !== 0) throw new Error(`sysctl in ${ns} failed: ${r.stderr}`);
}

const v4 = (i: { addresses: readonly { addr: string; len: number }[] }) => i.addresses.find((a) => !a.addr.includes(':'));

/** guestwall's host network setup, done with `ip` until src/apply/network.ts can do it. */
export const ipHostSetup: HostSetup = async (model, ns, present) => {
  await sysctl(ns, { 'net.ipv4.ip_forward': 1 });
  const lines: string[] = [];
  for (const i of model.hostInterfaces) {
    // Only the interfaces that exist (the bench links the WAN one); the others are ruleset names.
    if ((await execa('ip', ['-n', ns, 'link', 'show', i.name], { reject: false })).exitCode !== 0) continue;
    for (const a of i.addresses) if (!a.addr.includes(':')) lines.push(`addr add ${a.addr}/${a.len} dev ${i.name}`);
  }
  for (const b of model.bridges) {
    lines.push(`link add ${b.name} type bridge stp_state 0`);
    for (const a of b.addresses) if (!a.addr.includes(':')) lines.push(`addr add ${a.addr}/${a.len} dev ${b.name}`);
    lines.push(`link set ${b.name} up`);
  }
  for (const g of model.guests) {
    if (!present.has(g.name)) continue;
    for (const i of g.interfaces) {
      if (i.mode === 'bridged') {
        lines.push(`link set ${i.name} master ${i.bridge}`, `link set ${i.name} up`);
      } else {
        const a = v4(i);
        lines.push(`addr add ${ROUTED_GATEWAY_V4}/32 dev ${i.name}`, `link set ${i.name} up`);
        if (a) lines.push(`route add ${a.addr}/32 dev ${i.name}`);
      }
    }
  }
  await ipBatch(ns, lines);
};

/** The guest interfaces to receive traffic: the middle routed and the middle bridged guest of `zone`. */
export function pickReceivers(model: HostModel, zone: string): GuestInterfaceModel[] {
  const inZone = model.guests.flatMap((g) => g.interfaces).filter((i) => i.zone === zone && v4(i) !== undefined);
  const middle = (xs: GuestInterfaceModel[]) => xs[Math.floor((xs.length - 1) / 2)];
  return [middle(inZone.filter((i) => i.mode === 'routed')), middle(inZone.filter((i) => i.mode === 'bridged'))].filter((i): i is GuestInterfaceModel => i !== undefined);
}

/** Namespaces, the WAN link and the receivers' links: everything the hypervisor and the outside world provide. */
export async function buildTopology(model: HostModel, receivers: GuestInterfaceModel[], setup: HostSetup = ipHostSetup): Promise<BenchTopology> {
  const id = `${NS_PREFIX}${process.pid}`;
  const host = `${id}-host`;
  const wanNs = `${id}-wan`;
  const wanIf = model.hostInterfaces.find((i) => model.zones.find((z) => z.name === i.zone)?.public && v4(i) !== undefined);
  if (wanIf === undefined) throw new Error('the bench policy needs an internet-facing host interface with an IPv4 address');
  const namespaces: string[] = [];
  const topo: BenchTopology = {
    host,
    wan: { ns: wanNs, ifname: 'far', addr: WAN_ADDR, hostIfname: wanIf.name },
    receivers: [],
    namespaces,
    dispose: async () => {
      for (const ns of [...namespaces].reverse()) await execa('ip', ['netns', 'del', ns], { reject: false });
      namespaces.length = 0;
    },
  };
  try {
    for (const ns of [host, wanNs]) {
      await execa('ip', ['netns', 'add', ns]);
      namespaces.push(ns);
    }
    // Before any link exists, so that every interface inherits it: the bench's senders use
    // source addresses only the WAN route knows.
    await sysctl(host, { 'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.default.rp_filter': 0 });
    await ipBatch(host, ['link set lo up', `link add ${wanIf.name} type veth peer name far netns ${wanNs}`, `link set ${wanIf.name} up`]);
    await ipBatch(wanNs, ['link set lo up', `addr add ${WAN_ADDR}/${v4(wanIf)!.len} dev far`, 'link set far up', `route add default via ${v4(wanIf)!.addr}`]);
    for (const [k, i] of receivers.entries()) {
      const ns = `${id}-g${k}`;
      await execa('ip', ['netns', 'add', ns]);
      namespaces.push(ns);
      await ipBatch(host, [`link add ${i.name} type veth peer name eth0 netns ${ns}`]);
      const a = v4(i)!;
      if (i.mode === 'routed') {
        await ipBatch(ns, ['link set lo up', `addr add ${a.addr}/32 dev eth0`, 'link set eth0 up', `route add ${ROUTED_GATEWAY_V4} dev eth0`, `route add default via ${ROUTED_GATEWAY_V4}`]);
        topo.receivers.push({ guest: i.guest, mode: 'routed', ns, addr: a.addr, hostIfname: i.name });
      } else {
        const bridge = model.bridges.find((b) => b.name === i.bridge)!;
        const gw = v4(bridge);
        if (gw === undefined) throw new Error(`bridge ${bridge.name} has no IPv4 address to route through`);
        await ipBatch(ns, ['link set lo up', `addr add ${a.addr}/${gw.len} dev eth0`, 'link set eth0 up', `route add default via ${gw.addr}`]);
        topo.receivers.push({ guest: i.guest, mode: 'bridged', ns, addr: a.addr, hostIfname: i.bridge, port: i.name });
      }
    }
    await setup(model, host, new Set(receivers.map((i) => i.guest)));
    return topo;
  } catch (e) {
    await topo.dispose();
    throw e;
  }
}

/** Namespaces an earlier bench left behind (killed with SIGKILL): `gwb-<pid>-*` whose pid is gone. */
export async function sweepStaleNamespaces(): Promise<string[]> {
  const r = await execa('ip', ['netns', 'list'], { reject: false });
  const stale: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^gwb-(\d+)-/.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    let alive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      alive = false;
    }
    if (!alive) {
      await execa('ip', ['netns', 'del', name], { reject: false });
      stale.push(name);
    }
  }
  return stale;
}
