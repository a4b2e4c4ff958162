// The dataplane bench's host, built from the policy's model out of network namespaces: a host
// namespace that runs the ruleset, a WAN namespace behind the host interface of the `net` zone,
// and a namespace per guest that receives traffic. Only those few guests exist as interfaces;
// the thousands of others exist only as elements of the ruleset, which stays full size.
//
// Who does what, as on a real host (and as tests/support/lab.ts does it):
//  - the admin: the uplink's own address and default route (guestwall leaves those alone);
//  - guestwall: its compiled network setup (src/emit/network.ts), applied in the host namespace
//    by src/apply/network.ts through the System door: bridges and their addresses, forwarding and
//    rp_filter sysctls, proxy neighbour entries, and the host side of every routed port that
//    exists when it runs;
//  - the hypervisor: the guests' veth pairs under the names the policy gives them, bridged ports
//    enslaved to their bridge, and for a routed port its port-up hook, whose equivalent is
//    applying the same setup again once the port exists (the hook configures exactly the steps
//    the planner finds missing for that port: up, gateway address, /32 route, proxy_arp).
// Nothing here touches the machine's own namespace: every `ip` runs with `-n` or `netns exec`
// on a namespace this module created, and `dispose` deletes them all.
import { execa } from 'execa';
import { applyNetwork, planNetworkHere } from '../../src/apply/network.js';
import { realSystem } from '../../src/apply/system.js';
import { ifSysctlKey, networkSetup } from '../../src/emit/network.js';
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

/** The WAN router's address on the uplink's subnet: the host's default route points at it. */
const WAN_ROUTER = WAN_ADDR;

/**
 * guestwall's network setup for `model`, applied in `ns`. The planner (src/emit/network-plan.ts,
 * reading the namespace through src/apply/network.ts) decides every step; at thousands of guests
 * that is thousands of `ip neigh add proxy` steps, so its `ip` steps run in one `ip -batch` first
 * and `applyNetwork` then runs whatever is left one by one (nothing, unless the batch failed
 * part-way) — which also checks that applying twice finds nothing more to do.
 * Returns the number of steps the plan had and the number applyNetwork still ran.
 */
export async function applyHostNetwork(model: HostModel, ns: string): Promise<{ planned: number; left: number; notes: number }> {
  const sys = realSystem(ns);
  const setup = networkSetup(model);
  const plan = await planNetworkHere(sys, setup);
  // ip -batch takes one command per line without the global options: -4/-6 only pick the family,
  // which the addresses in these steps already say.
  const batch = plan.steps.filter((s) => s.program === 'ip').map((s) => s.args.filter((a) => a !== '-4' && a !== '-6').join(' '));
  await execa('ip', ['-n', ns, '-force', '-batch', '-'], { input: `${batch.join('\n')}\n`, reject: false });
  const report = await applyNetwork(sys, setup);
  return { planned: plan.steps.length, left: report.done.length, notes: plan.notes.length };
}

/** The guest interfaces to receive traffic: the middle routed and the middle bridged guest of `zone`. */
export function pickReceivers(model: HostModel, zone: string): GuestInterfaceModel[] {
  const inZone = model.guests.flatMap((g) => g.interfaces).filter((i) => i.zone === zone && v4(i) !== undefined);
  const middle = (xs: GuestInterfaceModel[]) => xs[Math.floor((xs.length - 1) / 2)];
  // A routed guest whose port guestwall configures (port-up), rather than LXC: when there is one.
  const routed = inZone.filter((i) => i.mode === 'routed');
  const hooked = routed.filter((i) => model.guests.find((g) => g.name === i.guest)?.platform !== 'lxc');
  return [middle(hooked.length > 0 ? hooked : routed), middle(inZone.filter((i) => i.mode === 'bridged'))].filter((i): i is GuestInterfaceModel => i !== undefined);
}

/** What building the host took: guestwall's setup steps, and the port-up equivalent for the routed receivers. */
export interface SetupReport {
  /** Steps of the first apply (before any guest port exists). */
  hostSteps: number;
  /** Steps the second apply found once the guest ports exist: the routed ports' port-up work. */
  portUpSteps: number;
  /** Steps a third apply still found: 0, or guestwall's setup is not idempotent. */
  thirdApplySteps: number;
  ms: number;
}

/** Namespaces, the WAN link and the guests' links (hypervisor, outside world); guestwall's network setup for the rest. */
export async function buildTopology(model: HostModel, receivers: GuestInterfaceModel[]): Promise<BenchTopology & { setup: SetupReport }> {
  const started = Date.now();
  const id = `${NS_PREFIX}${process.pid}`;
  const host = `${id}-host`;
  const wanNs = `${id}-wan`;
  const wanIf = model.hostInterfaces.find((i) => model.zones.find((z) => z.name === i.zone)?.public && v4(i) !== undefined);
  if (wanIf === undefined) throw new Error('the bench policy needs an internet-facing host interface with an IPv4 address');
  const namespaces: string[] = [];
  const topo: BenchTopology & { setup: SetupReport } = {
    host,
    wan: { ns: wanNs, ifname: 'far', addr: WAN_ADDR, hostIfname: wanIf.name },
    receivers: [],
    namespaces,
    setup: { hostSteps: 0, portUpSteps: 0, thirdApplySteps: 0, ms: 0 },
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
    // Before any link exists, so that every interface inherits it (guestwall's setup sets the same
    // for all/default, but the uplink exists before guestwall runs): the bench's senders use
    // source addresses from 198.18.0.0/15, which only the default route knows.
    await sysctl(host, { 'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.default.rp_filter': 0 });
    // The admin's part: the uplink, its address and the default route via the WAN router.
    await ipBatch(host, [
      'link set lo up',
      `link add ${wanIf.name} type veth peer name far netns ${wanNs}`,
      `addr add ${v4(wanIf)!.addr}/${v4(wanIf)!.len} dev ${wanIf.name}`,
      `link set ${wanIf.name} up`,
      `route add default via ${WAN_ROUTER} dev ${wanIf.name}`,
    ]);
    await ipBatch(wanNs, ['link set lo up', `addr add ${WAN_ADDR}/${v4(wanIf)!.len} dev far`, 'link set far up', `route add default via ${v4(wanIf)!.addr}`]);

    // guestwall: bridges, sysctls, proxy entries (the guests' ports do not exist yet).
    topo.setup.hostSteps = (await applyHostNetwork(model, host)).planned;

    // The hypervisor: a veth pair per receiving guest, named as the policy names its interface.
    for (const [k, i] of receivers.entries()) {
      const ns = `${id}-g${k}`;
      await execa('ip', ['netns', 'add', ns]);
      namespaces.push(ns);
      await ipBatch(host, [`link add ${i.name} type veth peer name eth0 netns ${ns}`]);
      // The guest sends from the MAC its snippet declares: guestwall's anti-spoofing drops any other (ARP included).
      if (i.mac !== undefined) await ipBatch(ns, [`link set eth0 address ${i.mac}`]);
      const a = v4(i)!;
      if (i.mode === 'routed') {
        await ipBatch(ns, ['link set lo up', `addr add ${a.addr}/32 dev eth0`, 'link set eth0 up', `route add ${ROUTED_GATEWAY_V4} dev eth0`, `route add default via ${ROUTED_GATEWAY_V4}`]);
        if (model.guests.find((g) => g.name === i.guest)?.platform === 'lxc') {
          // LXC configures its router-mode port itself (mechanics.md 3.2): up, forwarding on the
          // veth, a proxy entry for the gateway, a /32 route per address. guestwall only checks it.
          await sysctl(host, { [ifSysctlKey(4, i.name, 'forwarding')]: 1 });
          await ipBatch(host, [`link set ${i.name} up`, `neigh add proxy ${ROUTED_GATEWAY_V4} dev ${i.name}`, `route add ${a.addr}/32 dev ${i.name}`]);
        }
        topo.receivers.push({ guest: i.guest, mode: 'routed', ns, addr: a.addr, hostIfname: i.name });
      } else {
        const bridge = model.bridges.find((b) => b.name === i.bridge)!;
        const gw = v4(bridge);
        if (gw === undefined) throw new Error(`bridge ${bridge.name} has no IPv4 address to route through`);
        // A bridged guest's port is the hypervisor's to enslave (Xen's vif-bridge, libvirt, LXC).
        await ipBatch(host, [`link set ${i.name} master ${bridge.name}`, `link set ${i.name} up`]);
        await ipBatch(ns, ['link set lo up', `addr add ${a.addr}/${gw.len} dev eth0`, 'link set eth0 up', `route add default via ${gw.addr}`]);
        topo.receivers.push({ guest: i.guest, mode: 'bridged', ns, addr: a.addr, hostIfname: i.bridge, port: i.name });
      }
    }
    // The routed ports' port-up hook: guestwall's setup applied again now that they exist.
    topo.setup.portUpSteps = (await applyHostNetwork(model, host)).planned;
    topo.setup.thirdApplySteps = (await planNetworkHere(realSystem(host), networkSetup(model))).steps.length;
    if (topo.setup.thirdApplySteps !== 0) throw new Error(`guestwall's network setup still finds ${topo.setup.thirdApplySteps} steps after applying it twice in ${host}`);
    topo.setup.ms = Date.now() - started;
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
