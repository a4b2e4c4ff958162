// The data each view lists, derived from the model and the ruleset the compiler produced. Pure,
// so that the views, the plain summary and the tests all read the same lines.
import { pairChainName } from '../compile/zones.js';
import { HOST_ZONE, type HostModel } from '../model/host.js';
import { printStmt } from '../nft/print.js';
import type { Chain, Origin, Ruleset } from '../nft/ruleset.js';
import type { HostAddress } from '../policy/addr.js';

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
}

/** The ruleset as nft syntax, one line per table, chain and rule, each rule with its origin. */
export function ruleLines(ruleset: Ruleset): RuleLine[] {
  const out: RuleLine[] = [];
  for (const t of ruleset.tables) {
    out.push({ kind: 'table', text: `table ${t.family} ${t.name}` });
    for (const c of t.chains) {
      const base = c.base ? `  # ${c.base.type} hook ${c.base.hook} priority ${c.base.prio} policy ${c.base.policy}` : '';
      out.push({ kind: 'chain', text: `chain ${c.name}${base}` });
      for (const r of c.rules) out.push({ kind: 'rule', text: r.stmts.map(printStmt).join(' '), origin: r.origin });
    }
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
  // A rule that jumps (the compiler's gate in front of port-forward accepts) is followed by the
  // rules it jumps to: they decide the cell as much as the chain's own.
  return ruleset.tables.flatMap((t) => {
    const byName = new Map(t.chains.map((c) => [c.name, c]));
    const lines = (c: Chain, depth: number): RuleLine[] =>
      c.rules.flatMap((r) => {
        const line: RuleLine = { kind: 'rule', text: r.stmts.map(printStmt).join(' '), origin: r.origin };
        const target = r.stmts.flatMap((s) => ('jump' in s ? [s.jump.target] : []))[0];
        const sub = target !== undefined && depth < 4 ? byName.get(target) : undefined;
        return sub ? [line, ...lines(sub, depth + 1)] : [line];
      });
    return t.chains.filter((c) => c.name === chain).flatMap((c) => lines(c, 0));
  });
}

/** What the what-if view offers as a source or destination: zones with interfaces, the host, guests. */
export function endpoints(model: HostModel): string[] {
  return [...model.zones.filter((z) => z.interfaces.length > 0).map((z) => z.name), HOST_ZONE, ...model.guests.map((g) => g.name)];
}
