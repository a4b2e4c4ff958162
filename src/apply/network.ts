// The host network setup on a running host (or inside --netns): read what is there with
// `ip -j` and /proc/sys (guestwall's own routes by their protocol), plan the steps from the
// setup and what guestwall owns (src/emit/network-plan.ts), run them one by one and report each.
// Only what guestwall created is ever removed; a second run finds nothing to do.
import type { NetworkSetup } from '../emit/network.js';
import {
  type LiveNetwork, type NetworkPlan, type NetworkSnapshot, type NetworkStep, NOTHING_OWNED, type OwnedNetwork, ROUTE_PROTOCOL, planNetwork, planRestore, restoreSysctlKeys, sysctlKeys,
} from '../emit/network-plan.js';
import { ApplyError } from './errors.js';
import { procSysPath, readProcSys } from './proc-sys.js';
import type { System } from './system.js';

interface IpLink {
  ifname: string;
  flags?: string[];
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: { stp_state?: number; forward_delay?: number } };
}
interface IpAddr {
  ifname: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}
interface IpRoute {
  dst: string;
  dev?: string;
  metric?: number;
  /** A number with -N ("158"). */
  protocol?: string;
}
interface IpNeigh {
  dst: string;
  dev: string;
}

/** ip's answer as text, or a clear error. */
async function ip(sys: System, args: string[], input?: string): Promise<string> {
  const r = await sys.run('ip', args, input);
  if (r.code === 127) throw new ApplyError('ip is not installed here', 'install iproute2', 2);
  if (r.code !== 0) throw new ApplyError(`ip ${args.join(' ')}${input ? ` (${input.trim().split('\n').join('; ')})` : ''} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout;
}

const parse = <T>(text: string): T[] => (text.trim() === '' ? [] : (JSON.parse(text) as T[]));

/** ip prints host routes without their length ("203.0.113.20"); the plan writes them with it. */
const withPrefix = (dst: string, family: 4 | 6) => (dst.includes('/') ? dst : `${dst}/${family === 4 ? 32 : 128}`);

/**
 * The network as guestwall sees it, in two `ip` runs side by side (and /proc/sys beside them):
 * one `ip -batch` for the links with their addresses, the IPv4 routes and the proxy entries
 * (a batch line cannot say -6), and one for the IPv6 routes. Seven runs one after another
 * before (issue 17). `-N` prints route protocols as numbers: guestwall's own are 158 whatever
 * rt_protos calls them.
 */
export async function readLiveNetwork(sys: System, keys: string[]): Promise<LiveNetwork> {
  const [batch, v6, sysctls] = await Promise.all([
    ip(sys, ['-N', '-j', '-d', '-batch', '-'], 'address show\nroute show table main\nneigh show proxy\n'),
    ip(sys, ['-N', '-j', '-6', 'route', 'show', 'table', 'main']),
    readSysctls(sys, keys),
  ]);
  // One JSON document per batch line, each on its own line.
  const [linkText = '', v4 = '', proxyText = ''] = batch.split('\n').filter((l) => l.trim() !== '');
  const withAddresses = parse<IpLink & IpAddr>(linkText);
  const links = withAddresses.map((l) => ({
    ifname: l.ifname,
    ...(l.linkinfo?.info_kind !== undefined ? { kind: l.linkinfo.info_kind } : {}),
    ...(l.master !== undefined ? { master: l.master } : {}),
    up: l.flags?.includes('UP') ?? false,
    ...(l.linkinfo?.info_kind === 'bridge'
      ? { stpState: l.linkinfo.info_data?.stp_state ?? -1, forwardDelay: l.linkinfo.info_data?.forward_delay ?? -1 }
      : {}),
  }));
  const addresses = withAddresses.flatMap((a) => (a.addr_info ?? []).map((i) => ({ ifname: a.ifname, cidr: `${i.local}/${i.prefixlen}` })));
  const routes = [
    ...parse<IpRoute>(v4).map((r) => ({ ...r, dst: withPrefix(r.dst, 4) })),
    ...parse<IpRoute>(v6).map((r) => ({ ...r, dst: withPrefix(r.dst, 6) })),
  ].map((r) => ({
    dst: r.dst,
    ...(r.dev !== undefined ? { dev: r.dev } : {}),
    ...(r.metric !== undefined ? { metric: r.metric } : {}),
    // guestwall's own: by protocol number, so no rt_protos name is needed.
    ...(r.protocol === String(ROUTE_PROTOCOL) ? { owned: true } : {}),
  }));
  const proxies = parse<IpNeigh>(proxyText).map((n) => ({ address: n.dst, dev: n.dev }));
  return { links, addresses, routes, proxies, sysctls };
}

/** The sysctls by the names sysctl(8) gives them, for those that exist here (a port not there yet has none). */
async function readSysctls(sys: System, keys: string[]): Promise<Record<string, string>> {
  const values = await readProcSys(sys, keys.map(procSysPath));
  const sysctls: Record<string, string> = {};
  for (const key of keys) {
    const value = values.get(procSysPath(key));
    if (value !== undefined) sysctls[key] = value;
  }
  return sysctls;
}

/** What applying the setup would do here, given what guestwall owns, without doing it (diff). */
export async function planNetworkHere(sys: System, setup: NetworkSetup, owned: OwnedNetwork = NOTHING_OWNED): Promise<NetworkPlan> {
  return (await planAndSnapshot(sys, setup, owned)).plan;
}

/** The plan, and guestwall's part of the network as it is now (what rollback restores), from one read. */
export async function planAndSnapshot(sys: System, setup: NetworkSetup, owned: OwnedNetwork = NOTHING_OWNED): Promise<{ plan: NetworkPlan; snapshot: NetworkSnapshot }> {
  const live = await readLiveNetwork(sys, [...new Set([...sysctlKeys(setup), ...owned.sysctls.map((s) => s.key)])]);
  return { plan: planNetwork(setup, live, owned), snapshot: snapshotOf(live, owned) };
}

/** guestwall's part of the host network now, for rollback: its routes (by protocol) and its record. */
const snapshotOf = (live: LiveNetwork, owned: OwnedNetwork): NetworkSnapshot => ({ routes: live.routes.filter((r) => r.owned).map(({ owned: _, ...r }) => r), owned });

/** The steps that bring guestwall's part of the host network back to `snapshot`. */
export async function planRestoreHere(sys: System, snapshot: NetworkSnapshot, owned: OwnedNetwork): Promise<NetworkPlan> {
  return planRestore(snapshot, await readLiveNetwork(sys, restoreSysctlKeys(snapshot, owned)), owned);
}

export interface NetworkApplyReport {
  /** The steps that ran, in order. */
  done: NetworkStep[];
  notes: string[];
}

/** A step that failed: which one, and the ones before it that did run (they stay). */
export class NetworkStepError extends ApplyError {
  constructor(
    readonly step: NetworkStep,
    readonly done: NetworkStep[],
    why: string,
  ) {
    const list = done.length ? `; done before it: ${done.map((d) => d.what).join('; ')}` : '; nothing was changed before it';
    super(`network setup failed at "${step.what}" (${step.program} ${step.args.join(' ')}): ${why}${list}`, 'fix the cause and apply again: the steps that ran are not repeated');
  }
}

export async function applyNetwork(sys: System, setup: NetworkSetup, progress: (line: string) => void = () => {}): Promise<NetworkApplyReport> {
  if (!sys.isRoot()) throw new ApplyError('setting up the host network needs root', 'run it with sudo, or as root', 2);
  return runNetworkPlan(sys, await planNetworkHere(sys, setup), progress);
}

/** Run a plan's steps in order, reporting each; the first that fails stops it (NetworkStepError). */
export async function runNetworkPlan(sys: System, plan: NetworkPlan, progress: (line: string) => void = () => {}): Promise<NetworkApplyReport> {
  for (const n of plan.notes) progress(`network: ${n}`);
  const done: NetworkStep[] = [];
  for (const step of plan.steps) {
    const r = await sys.run(step.program, step.args);
    if (r.code !== 0) throw new NetworkStepError(step, done, r.stderr.trim() || `exit ${r.code}`);
    done.push(step);
    progress(`network: ${step.what}`);
  }
  return { done, notes: plan.notes };
}
