// Fleet policies: one file for several hosts (`hosts:`), guests saying where they run (`host:`)
// and where they may move (`may_run_on:`). The rest of guestwall compiles single-host policies;
// hostPolicy() projects a fleet onto one host, so the same pipeline, checks and goldens serve
// both. The projection keeps the fleet document's shape where it can (guest, rule and forward
// entries keep their names and indexes) and hostDocPath() maps the rest back, so every finding
// on a projection is still placed at the fleet file's line and column.
import { parseHostAddress } from './addr.js';
import { checkPolicy } from './checks.js';
import { type DocPath, type Finding } from './diagnostics.js';
import { checkFleet } from './fleet-checks.js';
import type { NameIndex } from './references.js';
import type { Guest, Policy } from './schema.js';

export function isFleet(p: Policy): boolean {
  return p.hosts !== undefined;
}

export function fleetHostNames(p: Policy): string[] {
  return Object.keys(p.hosts ?? {});
}

/** The hosts a guest may run on, its own host first; names that are no host of the fleet are left out (fleet-checks reports them). */
export function guestHosts(p: Policy, g: Guest): string[] {
  const hosts = p.hosts ?? {};
  const out: string[] = [];
  const add = (h: string) => {
    if (Object.hasOwn(hosts, h) && !out.includes(h)) out.push(h);
  };
  if (g.host !== undefined) add(g.host);
  if (g.may_run_on === 'all') Object.keys(hosts).forEach(add);
  else g.may_run_on?.forEach(add);
  return out;
}

/** A list with the items `keep` refuses left as holes (checks and the model skip holes), or the list itself when it keeps all. */
function sparse<T>(list: T[] | undefined, keep: (item: T) => T | undefined): T[] | undefined {
  if (list === undefined) return undefined;
  let changed = false;
  const out: T[] = new Array(list.length);
  list.forEach((item, i) => {
    const kept = keep(item);
    if (kept !== item) changed = true;
    if (kept !== undefined) out[i] = kept;
  });
  return changed ? out : list;
}

/**
 * The single-host policy for `host`: its interfaces and bridges, every guest that may run on it
 * (names, MACs, interface names and addresses unchanged), and the shared zones, services,
 * policies and rules, where a guest that never runs on this host stands for its addresses. A
 * rule left with no source or destination, and a forward to a guest elsewhere, are left out (as
 * holes: indexes stay). Pure; `host` must be one of the fleet's hosts.
 */
export function hostPolicy(fleet: Policy, host: string): Policy {
  const h = fleet.hosts?.[host];
  if (!h) throw new Error(`hostPolicy: '${host}' is not a host of the fleet`);
  const guests: NonNullable<Policy['guests']> = {};
  // A guest that never runs here is, to this host, its addresses: traffic to or from it may still cross this host.
  const elsewhere = new Map<string, string[]>();
  for (const [name, g] of Object.entries(fleet.guests ?? {})) {
    if (!guestHosts(fleet, g).includes(host)) {
      elsewhere.set(name, g.interfaces.flatMap((i) => (i.addresses ?? []).flatMap((t) => {
        const a = parseHostAddress(t);
        return a.ok ? [a.value.addr] : [];
      })));
      continue;
    }
    const { host: _runsOn, may_run_on: _mayRunOn, ...single } = g;
    guests[name] = single;
  }
  // An endpoint (or list of them) with the guests that never run here as their addresses; undefined when nothing is left.
  // In a list, a guest's first address takes its place and the others go at the end, so the written items keep their indexes.
  const here = (v: string | string[]): string | string[] | undefined => {
    const list = Array.isArray(v) ? v : [v];
    if (!list.some((t) => elsewhere.has(t))) return v;
    const out: string[] = new Array(list.length);
    const extra: string[] = [];
    list.forEach((t, i) => {
      const addrs = elsewhere.get(t);
      if (!addrs) out[i] = t;
      else if (addrs.length > 0) {
        out[i] = addrs[0]!;
        extra.push(...addrs.slice(1));
      }
    });
    out.push(...extra);
    return out.some(() => true) ? out : undefined;
  };
  const both = <T extends { from: string | string[]; to: string | string[] }>(item: T): T | undefined => {
    const from = here(item.from);
    const to = here(item.to);
    if (from === undefined || to === undefined) return undefined;
    return from === item.from && to === item.to ? item : { ...item, from, to };
  };
  const fromOnly = <T extends { from: string | string[] }>(item: T): T | undefined => {
    const from = here(item.from);
    if (from === undefined) return undefined;
    return from === item.from ? item : { ...item, from };
  };

  const { hosts: _hosts, host: _host, bridges: _bridges, ...shared } = fleet;
  const out: Policy = {
    ...shared,
    host: { name: host, ...(h.interfaces ? { interfaces: h.interfaces } : {}) },
    ...(h.bridges ? { bridges: h.bridges } : {}),
    guests,
  };
  // A forward publishes a guest on this host's addresses: one to a guest elsewhere is left out, not sent across.
  const forwardHere = (f: NonNullable<Policy['forwards']>[number]) => (elsewhere.has(f.to) ? undefined : fromOnly(f));
  const policies = sparse(fleet.policies, both);
  const rules = sparse(fleet.rules, both);
  const forwards = sparse(fleet.forwards, forwardHere);
  const helpers = sparse(fleet.helpers, both);
  if (policies) out.policies = policies;
  if (rules) out.rules = rules;
  if (forwards) out.forwards = forwards;
  if (helpers) out.helpers = helpers;
  if (fleet.nat) {
    const masquerade = sparse(fleet.nat.masquerade, fromOnly);
    const snat = sparse(fleet.nat.snat, fromOnly);
    out.nat = { ...(masquerade ? { masquerade } : {}), ...(snat ? { snat } : {}) };
  }
  return out;
}

/** Where a path into hostPolicy(fleet, host) is written in the fleet document. */
export function hostDocPath(host: string): (path: DocPath) => DocPath {
  return (path) => {
    if (path[0] === 'host') return path[1] === 'interfaces' ? ['hosts', host, ...path.slice(1)] : ['hosts', host];
    if (path[0] === 'bridges') return ['hosts', host, ...path];
    return path;
  };
}

/** Warnings about a zone that only mean something fleet-wide: a zone empty on some hosts is in use on others. */
const EVERY_HOST_OR_NONE = new Set<Finding['kind']>(['empty-zone']);

/**
 * Every check of a policy: a single-host policy as before (plus what only a fleet may say), a
 * fleet as each of its hosts' projections and the checks across hosts. A finding on some hosts
 * only says which; one on every host is reported once.
 */
export function checkAnyPolicy(p: Policy, known?: Partial<NameIndex>): Finding[] {
  const fleetFindings = checkFleet(p);
  if (!isFleet(p)) return [...checkPolicy(p, known), ...fleetFindings];
  const hosts = fleetHostNames(p);
  const byKey = new Map<string, { finding: Finding; hosts: string[] }>();
  // The fleet checks say better why a bridge is missing on a host than "unknown bridge" does.
  const missingBridge = new Set(fleetFindings.filter((f) => f.kind === 'fleet-missing-bridge').map((f) => JSON.stringify(f.path)));
  for (const h of hosts) {
    const toDoc = hostDocPath(h);
    for (const f of checkPolicy(hostPolicy(p, h), known)) {
      const placed: Finding = { ...f, path: toDoc(f.path), ...(f.related ? { related: f.related.map((r) => ({ ...r, path: toDoc(r.path) })) } : {}) };
      if (f.kind === 'unknown-bridge' && missingBridge.has(JSON.stringify(placed.path))) continue;
      const key = JSON.stringify([placed.kind, placed.severity, placed.path, placed.message]);
      const seen = byKey.get(key);
      if (seen) seen.hosts.push(h);
      else byKey.set(key, { finding: placed, hosts: [h] });
    }
  }
  const perHost = [...byKey.values()].filter(({ finding, hosts: on }) => !(EVERY_HOST_OR_NONE.has(finding.kind) && on.length < hosts.length)).map(({ finding, hosts: on }) =>
    on.length === hosts.length || finding.path[0] === 'hosts' ? finding : { ...finding, message: `${finding.message} (on host${on.length === 1 ? '' : 's'} ${on.join(', ')})` });
  return [...perHost, ...fleetFindings];
}
