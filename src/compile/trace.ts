// Which packets `guestwall trace --from --to --proto --port` follows: the same names explain
// takes (a zone, a guest, the host, an address, a forward's public ADDRESS:PORT), turned into
// the matches of the marking rules in the trace table (src/nft/trace.ts). Broader than explain's
// one packet on purpose: every real packet between the two ends is followed.
import { HOST_ZONE, type HostModel } from '../model/host.js';
import type { TraceSelector } from '../nft/trace.js';
import type { Stmt } from '../nft/types.js';
import { parseHostAddress } from '../policy/addr.js';
import { daddr, iifnames, match, meta, payload, saddr } from './matches.js';

export interface TraceQuery {
  from: string;
  to: string;
  proto?: 'tcp' | 'udp' | 'icmp' | 'icmpv6';
  port?: number;
}

interface End {
  /** Addresses or networks by family; absent: any address of that family. */
  v4?: string[];
  v6?: string[];
  /** Interfaces packets from this end come in on (a zone without networks). */
  ifnames?: string[];
  host?: true;
  port?: number;
}

type Result<T> = { ok: true; value: T } | { ok: false; error: string };

const byFamily = (addrs: { family: 4 | 6; text: string }[]): Pick<End, 'v4' | 'v6'> => ({
  v4: addrs.filter((a) => a.family === 4).map((a) => a.text),
  v6: addrs.filter((a) => a.family === 6).map((a) => a.text),
});

function end(model: HostModel, name: string, side: 'from' | 'to'): Result<End> {
  if (name === HOST_ZONE) {
    const own = [...model.hostInterfaces, ...model.bridges].flatMap((i) => i.addresses.map((a) => ({ family: a.family, text: a.addr })));
    return { ok: true, value: { host: true, ...byFamily(own) } };
  }
  const zone = model.zones.find((z) => z.name === name);
  if (zone) {
    if (zone.networks.length > 0) return { ok: true, value: byFamily(zone.networks.map((n) => ({ family: n.family, text: `${n.addr}/${n.len}` }))) };
    // A zone without networks (the internet): by the interfaces its packets come in on.
    return { ok: true, value: side === 'from' ? { ifnames: zone.interfaces } : {} };
  }
  const guest = model.guests.find((g) => g.name === name);
  if (guest) return { ok: true, value: byFamily(guest.interfaces.flatMap((i) => i.addresses.map((a) => ({ family: a.family, text: a.addr })))) };
  const hostPort = side === 'to' ? /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(name) : null;
  const addr = parseHostAddress(hostPort ? hostPort[1]! : name);
  if (addr.ok) {
    const text = addr.value.len === (addr.value.family === 4 ? 32 : 128) ? addr.value.addr : `${addr.value.network.addr}/${addr.value.len}`;
    return { ok: true, value: { ...byFamily([{ family: addr.value.family, text }]), ...(hostPort ? { port: Number(hostPort[2]) } : {}) } };
  }
  return { ok: false, error: `--${side} ${name}: not a zone, guest, "host" or address of this policy` };
}

/** The marking rules for a trace query: one per IP version both ends can have, on the hook the packets enter by. */
export function traceSelectors(model: HostModel, q: TraceQuery): Result<TraceSelector[]> {
  const from = end(model, q.from, 'from');
  if (!from.ok) return from;
  const to = end(model, q.to, 'to');
  if (!to.ok) return to;
  const port = to.value.port ?? q.port;
  if (port !== undefined && q.proto !== undefined && q.proto !== 'tcp' && q.proto !== 'udp') return { ok: false, error: `--port needs --proto tcp or udp, not ${q.proto}` };
  const out: TraceSelector[] = [];
  for (const family of [4, 6] as const) {
    const f = family === 4 ? 'v4' : 'v6';
    const a = from.value[f];
    const b = to.value[f];
    // An end with addresses, none of this family: no packet of this family goes between them.
    if ((a && a.length === 0) || (b && b.length === 0)) continue;
    if ((q.proto === 'icmp' && family === 6) || (q.proto === 'icmpv6' && family === 4)) continue;
    const stmts: Stmt[] = [];
    if (from.value.ifnames) stmts.push(iifnames(from.value.ifnames));
    stmts.push(a ? saddr(family, a) : match(meta('nfproto'), family === 4 ? 'ipv4' : 'ipv6'));
    if (b) stmts.push(daddr(family, b));
    if (q.proto === 'tcp' || q.proto === 'udp') stmts.push(port !== undefined ? match(payload(q.proto, 'dport'), port) : match(meta('l4proto'), q.proto));
    else if (q.proto) stmts.push(match(meta('l4proto'), q.proto === 'icmp' ? 'icmp' : 'ipv6-icmp'));
    else if (port !== undefined) stmts.push(match(payload('th', 'dport'), port));
    out.push({ hook: from.value.host ? 'output' : 'prerouting', stmts });
  }
  if (out.length === 0) return { ok: false, error: `${q.from} and ${q.to} have no IP version in common${q.proto ? ` for ${q.proto}` : ''}: no packet goes between them` };
  return { ok: true, value: out };
}
