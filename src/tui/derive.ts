// The data each view lists, derived from the model and the ruleset the compiler produced. Pure,
// so that the views, the plain summary and the tests all read the same lines.
import { pairChainName } from '../compile/zones.js';
import { HOST_ZONE, type HostModel } from '../model/host.js';
import { printSetElement, printStmt } from '../nft/print.js';
import { isSetRef } from '../nft/types.js';
import type { Chain, Origin, Rule, Ruleset, Table } from '../nft/ruleset.js';
import type { HostAddress } from '../policy/addr.js';
import type { Change } from '../nft/diff.js';

export interface TreeLine {
  depth: number;
  kind: 'zone' | 'interface' | 'bridge' | 'guest';
  name: string;
  detail: string;
}

const addrs = (as: HostAddress[]) => as.map((a) => (a.len === (a.family === 4 ? 32 : 128) ? a.addr : `${a.addr}/${a.len}`)).join(' ');

/** Zones, then in each its host interfaces and bridges, and the guests on them or routed into it. */
export function overviewTree(model: HostModel): TreeLine[] {
  const out: TreeLine[] = [];
  const guestLine = (depth: number, i: HostModel['guests'][number]['interfaces'][number]): TreeLine => {
    const g = model.guests.find((x) => x.name === i.guest)!;
    const platform = g.xenType ? `${g.platform} ${g.xenType}` : g.platform;
    return { depth, kind: 'guest', name: g.interfaces.length > 1 ? `${g.name}#${i.index}` : g.name, detail: [platform, i.mode, i.name, addrs(i.addresses), i.mac ?? ''].filter(Boolean).join('  ') };
  };
  const ifaces = model.guests.flatMap((g) => g.interfaces);
  for (const z of model.zones) {
    const nets = z.networks.map((n) => `${n.addr}/${n.len}`).join(' ');
    out.push({ depth: 0, kind: 'zone', name: z.name, detail: [z.public ? 'public' : '', nets].filter(Boolean).join('  ') });
    for (const h of model.hostInterfaces.filter((x) => x.zone === z.name)) out.push({ depth: 1, kind: 'interface', name: h.name, detail: ['host interface', addrs(h.addresses)].filter(Boolean).join('  ') });
    for (const b of model.bridges.filter((x) => x.zone === z.name)) {
      out.push({ depth: 1, kind: 'bridge', name: b.name, detail: ['bridge', b.ports.length ? `ports ${b.ports.join(' ')}` : '', addrs(b.addresses)].filter(Boolean).join('  ') });
      for (const i of ifaces) if (i.mode === 'bridged' && i.bridge === b.name) out.push(guestLine(2, i));
    }
    for (const i of ifaces) if (i.mode === 'routed' && i.zone === z.name) out.push(guestLine(1, i));
  }
  return out;
}

export interface RuleLine {
  /** "table inet guestwall", "chain input", or a rule. */
  kind: 'table' | 'chain' | 'rule';
  text: string;
  origin?: Origin;
  /** The chain a rule or chain line belongs to. */
  chain?: string;
  /** The services the YAML element that wrote the rule names (`smtp`, `sip,rtp`), for search. */
  services?: string[];
  /** A set or map element the rule above looks up, standing for a policy entry (a port forward). */
  element?: boolean;
}

/** The ruleset as nft syntax, one line per table, chain and rule, each rule with its origin (and, given the model, the services its YAML element names). */
export function ruleLines(ruleset: Ruleset, model?: HostModel): RuleLine[] {
  const services = new Map<string, string[]>();
  for (const r of model?.rules ?? []) services.set(`rules[${r.index}]`, r.labels);
  for (const f of model?.forwards ?? []) services.set(`forwards[${f.index}]`, f.labels);
  const out: RuleLine[] = [];
  for (const t of ruleset.tables) {
    out.push({ kind: 'table', text: `table ${t.family} ${t.name}` });
    for (const c of t.chains) {
      const base = c.base ? `  # ${c.base.type} hook ${c.base.hook} priority ${c.base.prio} policy ${c.base.policy}` : '';
      out.push({ kind: 'chain', text: `chain ${c.name}${base}`, chain: c.name });
      for (const r of c.rules) {
        const named = services.get(r.origin.id);
        out.push({ kind: 'rule', text: r.stmts.map(printStmt).join(' '), origin: r.origin, chain: c.name, ...(named?.length ? { services: named } : {}) });
        for (const l of elementLines(t, r, c.name)) {
          const of = l.origin ? services.get(l.origin.id) : undefined;
          out.push({ ...l, ...(of?.length ? { services: of } : {}) });
        }
      }
    }
  }
  return out;
}

/**
 * The elements a rule looks up that stand for policy entries (port forwards are set and map
 * elements, not rules), one line each under the rule, with the entry's origin: traceable to
 * their YAML line like rules.
 */
function elementLines(t: Table, r: Rule, chain?: string): RuleLine[] {
  const names = new Set<string>();
  JSON.stringify(r.stmts, (_k, v: unknown) => {
    if (isSetRef(v)) names.add(v.setRef);
    return v;
  });
  const out: RuleLine[] = [];
  for (const s of t.sets) {
    if (!names.has(s.name) || !('origins' in s) || s.origins === undefined) continue;
    s.origins.forEach((origin, i) => out.push({ kind: 'rule', element: true, text: `  @${s.name} ${printSetElement(s, i)}`, origin, ...(chain !== undefined ? { chain } : {}) }));
  }
  return out;
}

/** `file:line` of an origin, or its id for the rules guestwall always adds. */
export function originPlace(o: Origin): string {
  return o.line > 0 ? `${o.file.split('/').pop()}:${o.line}` : o.id;
}

/** The zone a matrix row or column stands for: a zone, the host, or a guest's zone. */
export function zoneOfEndpoint(model: HostModel, name: string): string {
  if (name === HOST_ZONE || model.zones.some((z) => z.name === name)) return name;
  return model.guests.find((g) => g.name === name)?.zone ?? name;
}

/** The rules of the zone-pair chain a matrix cell is decided in. */
export function cellRules(model: HostModel, ruleset: Ruleset, from: string, to: string): RuleLine[] {
  const chain = pairChainName(zoneOfEndpoint(model, from), zoneOfEndpoint(model, to));
  // The inet table's pair chain (the bridge table has one of the same name for traffic between
  // bridge ports). A rule that jumps (the compiler's gate in front of port-forward accepts) is
  // followed by the rules it jumps to: they decide the cell as much as the chain's own.
  return ruleset.tables.filter((t) => t.family === 'inet').flatMap((t) => {
    const byName = new Map(t.chains.map((c) => [c.name, c]));
    const lines = (c: Chain, depth: number): RuleLine[] =>
      c.rules.flatMap((r) => {
        const line: RuleLine = { kind: 'rule', text: r.stmts.map(printStmt).join(' '), origin: r.origin };
        const target = r.stmts.flatMap((s) => ('jump' in s ? [s.jump.target] : []))[0];
        const sub = target !== undefined && depth < 4 ? byName.get(target) : undefined;
        return [line, ...elementLines(t, r), ...(sub ? lines(sub, depth + 1) : [])];
      });
    return t.chains.filter((c) => c.name === chain).flatMap((c) => lines(c, 0));
  });
}

/** A port forward as a what-if destination: its public ADDRESS:PORT (explain's own form) and what it forwards to. */
export interface ForwardTarget {
  to: string;
  label: string;
}

/** Each port forward with a public IPv4 address, once per public address and first port of each protocol. */
export function forwardTargets(model: HostModel): ForwardTarget[] {
  const out: ForwardTarget[] = [];
  for (const f of model.forwards) {
    for (const addr of f.publicV4) {
      for (const [proto, ranges] of [['tcp', f.tcp], ['udp', f.udp]] as const) {
        const port = ranges[0]?.[0];
        const to = `${addr}:${port}`;
        if (port === undefined || out.some((t) => t.to === to)) continue;
        out.push({ to, label: `forward ${f.labels.join(',') || proto} -> ${f.guest ?? f.targetV4}` });
      }
    }
  }
  return out;
}

/** What the what-if view offers as a source or destination: zones with interfaces, the host, guests. */
export function endpoints(model: HostModel): string[] {
  return [...model.zones.filter((z) => z.interfaces.length > 0).map((z) => z.name), HOST_ZONE, ...model.guests.map((g) => g.name)];
}

/** What the Rules view can be narrowed to: a zone (or the host) or a guest. */
export interface RuleFilter {
  kind: 'zone' | 'guest';
  name: string;
}

/** Every zone, the host, then every guest: what the filter picker offers. */
export function filterChoices(model: HostModel): RuleFilter[] {
  return [...model.zones.map((z): RuleFilter => ({ kind: 'zone', name: z.name })), { kind: 'zone', name: HOST_ZONE }, ...model.guests.map((g): RuleFilter => ({ kind: 'guest', name: g.name }))];
}

interface Concerns {
  zones: Set<string>;
  guests: Set<string>;
}

/** For each YAML origin id (`rules[3]`, `forwards[0]`, ...), the zones and guests it names. */
function originConcerns(model: HostModel): Map<string, Concerns> {
  const owner = new Map(model.guests.flatMap((g) => g.interfaces.flatMap((i) => i.addresses.map((a) => [a.addr, g.name] as const))));
  const guestsAt = (addrs: string[]) => addrs.flatMap((a) => (owner.has(a) ? [owner.get(a)!] : []));
  const ofPlaces = (places: { zone: string; v4?: string[]; v6?: string[] }[]): Concerns => ({
    zones: new Set(places.map((p) => p.zone)),
    guests: new Set(places.flatMap((p) => guestsAt([...(p.v4 ?? []), ...(p.v6 ?? [])]))),
  });
  const join = (a: Concerns, b: Concerns): Concerns => ({ zones: new Set([...a.zones, ...b.zones]), guests: new Set([...a.guests, ...b.guests]) });
  const out = new Map<string, Concerns>();
  for (const p of model.policies) out.set(`policies[${p.index}]`, join(ofPlaces(p.from), ofPlaces(p.to)));
  for (const r of model.rules) out.set(`rules[${r.index}]`, join(ofPlaces(r.from), ofPlaces(r.to)));
  for (const f of model.forwards) out.set(`forwards[${f.index}]`, { zones: new Set([...f.from, f.targetZone]), guests: new Set(f.guest ? [f.guest] : []) });
  for (const n of model.sourceNat) out.set(`nat.${n.kind}[${n.index}]`, join(ofPlaces(n.from), { zones: new Set([n.to]), guests: new Set() }));
  return out;
}

/** The zones a chain is about, by its name: `from_<zone>`, `<from>_to_<to>`, and the host's input and output. */
function chainZones(chain: string): string[] {
  if (chain.startsWith('from_')) return [chain.slice(5)];
  if (chain.includes('_to_')) return chain.split('_to_');
  if (chain === 'input' || chain === 'output') return [HOST_ZONE];
  return [];
}

/**
 * The rule lines that concern a zone (its chains, and in the shared chains the rules whose YAML
 * origin names it) or a guest (rules whose origin names it, or that match its interfaces or addresses), with the
 * table and chain lines above them.
 */
export function filterRuleLines(model: HostModel, lines: RuleLine[], filter: RuleFilter): RuleLine[] {
  const concerns = originConcerns(model);
  const guest = filter.kind === 'guest' ? model.guests.find((g) => g.name === filter.name) : undefined;
  const words = guest ? new Set(guest.interfaces.flatMap((i) => [`"${i.name}"`, ...i.addresses.map((a) => a.addr)])) : new Set<string>();
  const keep = (l: RuleLine): boolean => {
    const c = l.origin ? concerns.get(l.origin.id) : undefined;
    if (filter.kind === 'zone') {
      // A zone's own chains say it all; in the shared ones (forward, dstnat, srcnat) the YAML origin does.
      const zones = chainZones(l.chain ?? '');
      return zones.length > 0 ? zones.includes(filter.name) : (c?.zones.has(filter.name) ?? false);
    }
    return (c?.guests.has(filter.name) ?? false) || l.text.split(/[\s,{}]+/).some((w) => words.has(w) || words.has(w.replace(/\/\d+$/, '')));
  };
  const out: RuleLine[] = [];
  let table: RuleLine | undefined;
  let chain: RuleLine | undefined;
  for (const l of lines) {
    if (l.kind === 'table') [table, chain] = [l, undefined];
    else if (l.kind === 'chain') chain = l;
    else if (keep(l)) {
      if (table) out.push(table);
      if (chain) out.push(chain);
      [table, chain] = [undefined, undefined];
      out.push(l);
    }
  }
  return out;
}

export interface DiffSummary {
  added: number;
  removed: number;
  /** The chains and sets that change, in order. */
  places: string[];
}

/** What a live diff amounts to, for the confirmation before an apply. */
export function diffSummary(changes: Change[]): DiffSummary {
  return { added: changes.filter((c) => c.kind === '+').length, removed: changes.filter((c) => c.kind === '-').length, places: [...new Set(changes.map((c) => c.where))] };
}

/** "12 to add, 3 to remove in chain input, set zone_src and 2 more" */
export function diffSummaryText(s: DiffSummary, most = 3): string {
  const places = s.places.length > most ? `${s.places.slice(0, most).join(', ')} and ${s.places.length - most} more` : s.places.join(', ');
  return `${s.added} to add, ${s.removed} to remove${places ? ` in ${places}` : ''}`;
}
