// Packets that are not a connection's first: a later packet in the same direction, a reply, and
// an ICMP error about the connection (related). The kernel judges them by what conntrack knows,
// so explain first asks what happened to the connection's first packet (explainFlow) and then
// describes the later packet from conntrack's facts, never more:
//  - the first packet was accepted (every hook, so conntrack confirmed the entry): later packets
//    are `ct state established` (the same way: once the destination has answered; before that
//    they are `new` again and meet the first packet's rules), an ICMP error about it `related`; they carry `ct status dnat/snat`
//    when the first packet was translated, and are translated by conntrack's binding, not by the
//    nat chains: a reply is un-SNATed on arrival (prerouting) and un-DNATed on its way out
//    (postrouting), so the filter sees the guest's own address as its source;
//  - the first packet was dropped: the entry was never confirmed, nothing is known. A UDP
//    datagram (or ICMP echo) is a new connection of its own, in whichever direction; a TCP
//    segment without SYN is `ct state new` with nf_conntrack_tcp_loose=1 (the kernel's default:
//    conntrack picks up connections mid-stream) and `invalid` with 0; an ICMP echo reply or an
//    ICMP error that matches no entry is `ct state invalid`.
// Pure, like the rest of explain/: the facts are stated in the story, the evaluator judges the IR.
import type { HostModel } from '../model/host.js';
import type { Ruleset } from '../nft/ruleset.js';
import { type EvalEnv, type Packet, evaluateNat } from './evaluate.js';
import { type FlowExplanation, type FlowQuery, type PacketAs, explainFlow, splitHostPort } from './flow.js';

/** Which packet of a connection explain is asked about. */
export type ConnState = 'new' | 'established' | 'related';

/** The ICMP errors explain --state related can send, with their type names per family. */
export const ICMP_ERRORS = {
  'port-unreachable': { 4: 'destination-unreachable', 6: 'destination-unreachable', code: { 4: 3, 6: 4 } },
  'packet-too-big': { 4: 'destination-unreachable', 6: 'packet-too-big', code: { 4: 4, 6: 0 } },
  'time-exceeded': { 4: 'time-exceeded', 6: 'time-exceeded', code: { 4: 0, 6: 0 } },
} as const;
export type IcmpError = keyof typeof ICMP_ERRORS;

export interface PacketQuery extends FlowQuery {
  /** new (default): the connection's first packet; established: a later one; related: an ICMP error about it. */
  state?: ConnState;
  /** The packet goes back from `to` to `from` (a reply, or an error the destination sends). */
  reply?: boolean;
  /** For state related: which error (default port-unreachable; IPv4 packet-too-big is "fragmentation needed"). */
  icmpError?: IcmpError;
  /** nf_conntrack_tcp_loose (default true, the kernel's default): whether a TCP segment without SYN may start an entry. */
  tcpLoose?: boolean;
}

export interface PacketExplanation extends FlowExplanation {
  /** For a later packet: its connection's first packet, and the conntrack facts the answer rests on. */
  connection?: { first: FlowExplanation; entry: boolean; facts: string[] };
}

type Result<T> = { ok: true; value: T } | { ok: false; error: string };

/** explain for any packet of a connection: the first (explainFlow), a later one, a reply, or a related ICMP error. */
export function explainPacket(model: HostModel, ruleset: Ruleset, q: PacketQuery): Result<PacketExplanation> {
  const state = q.state ?? (q.reply ? 'established' : 'new');
  if (state === 'new' && q.reply) return { ok: false, error: '--reply with --state new: a connection\'s first packet goes from --from to --to; ask for --state established --reply (a reply) or --state related --reply (an ICMP error back)' };
  if (q.icmpError !== undefined && state !== 'related') return { ok: false, error: '--icmp-error goes with --state related' };
  if (state === 'new') return explainFlow(model, ruleset, q);
  if (q.proto !== 'tcp' && q.proto !== 'udp' && (q.icmpType ?? 'echo-request') !== 'echo-request') {
    return { ok: false, error: `--state ${state}: the connection's first packet must start one (tcp, udp or an ICMP echo-request)` };
  }
  const first = explainFlow(model, ruleset, q);
  if (!first.ok) return first;
  const f = first.value;
  const entry = f.evaluation.verdict === 'accept';
  const facts: string[] = [];
  const loose = q.tcpLoose ?? true;
  const icmp = (family: 4 | 6) => (family === 4 ? 'icmp' : 'icmpv6') as Packet['proto'];
  const err = ICMP_ERRORS[q.icmpError ?? 'port-unreachable'];
  const orig = f.packet;
  const fam = orig.family;
  const decided = `${{ accept: 'ACCEPTED', drop: 'DROPPED', reject: 'REJECTED' }[f.evaluation.verdict]}${f.evaluation.decidedBy ? ` by ${f.evaluation.decidedBy.what}` : ''}`;
  if (entry) facts.push(`the connection's first packet (${describe(orig)}) is ACCEPTED, so conntrack confirmed an entry for it`);
  else facts.push(`the connection's first packet (${describe(orig)}) is ${decided}: conntrack never confirms an entry for a dropped packet, so there is none`);

  // The tuple conntrack recorded: the first packet after DNAT (prerouting) and SNAT (postrouting).
  const dnat = f.nat?.translation?.kind === 'dnat' ? f.filtered : undefined;
  // A hairpin between two ports of one bridge, with br_netfilter: the kernel DNATs the frame in the
  // bridge's prerouting (br_netfilter) and bridges it, without masquerade; its later packets are
  // frames between the two ports, judged by the bridge's chains too, with DNAT already applied.
  // explainFlow models that first frame itself: it names the bridge (`f.bridge`) of a DNATed flow
  // only then, with the ports as input and output interfaces.
  const hairpinBridge = dnat === undefined ? undefined : f.bridge;
  const bridgedHairpin = entry && hairpinBridge !== undefined && (q.brNetfilter ?? true) && hasPort(model, q.from);
  const snat = entry && f.path !== 'input' && !bridgedHairpin ? sourceNat(model, ruleset, f) : undefined;
  const status: ('dnat' | 'snat')[] = [...(dnat ? ['dnat' as const] : []), ...(snat ? ['snat' as const] : [])];
  if (entry && dnat) facts.push(`ct status dnat: the first packet was sent on to ${f.filtered.daddr}${f.filtered.dport !== undefined ? ` port ${f.filtered.dport}` : ''} (${f.nat!.translation!.origin.what}); conntrack does the same to every later packet`);
  if (bridgedHairpin) {
    facts.push(`a hairpin on ${hairpinBridge} with br_netfilter: the kernel DNATs the frame on the bridge and bridges it, without masquerade, so later packets are frames between the two ports, met by the bridge's chains (without bridge conntrack they judge by the frame alone); with br_netfilter off the host routes and masquerades it`);
  }
  if (entry && snat) facts.push(`ct status snat: the first packet left with source ${snat.addr ?? "the output interface's address"} (${snat.what}); replies come back to it and conntrack restores ${orig.saddr} on arrival`);

  const toName = splitHostPort(q.to).host;
  // A reply goes from where the first packet went (its DNAT target, the host, or --to) back to its sender.
  const replyFrom = f.path === 'input' ? 'host' : dnat ? f.filtered.daddr : toName;
  const replyTo = f.path === 'output' ? orig.saddr : q.from;
  // The port (given with --port or in --to's ADDRESS:PORT) is the first packet's; later packets set their own.
  const base: FlowQuery = { ...q, direct: true, ...(orig.dport !== undefined ? { port: orig.dport } : {}) };
  let reverse: FlowQuery;
  let as: PacketAs;
  const where = q.reply ? 'back from the destination to the sender' : 'from the sender to the destination again';

  if (state === 'established' && !q.reply) {
    if (entry) {
      as = {
        ct: { state: 'established', ...(status.length ? { status } : {}) }, what: 'a later packet of an accepted connection (ct state established)',
        saddr: orig.saddr, daddr: bridgedHairpin ? dnat!.daddr : orig.daddr, ...(orig.sport !== undefined ? { sport: orig.sport, dport: bridgedHairpin ? dnat!.dport! : orig.dport! } : {}), tcpFlags: ['ack'],
        ...(dnat && !bridgedHairpin ? { binding: { daddr: dnat.daddr, ...(dnat.dport !== undefined ? { dport: dnat.dport } : {}), why: 'ct status dnat' } } : {}),
      };
      facts.push('ct state established: the connection was accepted earlier and the destination has answered (ct status seen-reply); this packet goes the same way. Before any answer a later packet is ct state new again, translated like the first, and meets the rules the first one met');
    } else {
      as = noEntry(orig.proto, 'the same way', loose, facts);
      as = { ...as, saddr: orig.saddr, daddr: orig.daddr, ...(orig.sport !== undefined ? { sport: orig.sport, dport: orig.dport! } : {}) };
    }
    const r = explainFlow(model, ruleset, bridgedHairpin ? { ...base, to: dnat!.daddr } : base, as);
    return finish(r, f, entry, facts);
  }

  // The reply direction (a reply or an error from the destination), or an error the sender sends.
  const proto: Packet['proto'] = state === 'related' ? icmp(fam) : orig.proto;
  const icmpType = state === 'related' ? err[fam] : orig.proto === 'icmp' || orig.proto === 'icmpv6' ? (q.reply ? 'echo-reply' : 'echo-request') : undefined;
  if (q.reply) {
    // On the wire a reply is addressed to the first packet's source after SNAT; the filter sees it restored.
    const replySaddr = dnat ? dnat.daddr : orig.daddr;
    const onWire = snat?.addr ?? orig.saddr;
    reverse = { ...base, from: replyFrom, to: replyTo, proto, family: fam, ...(icmpType ? { icmpType } : {}) };
    delete reverse.src;
    delete reverse.srcMac;
    if (entry) {
      const ct: Packet['ct'] = { state: state === 'related' ? 'related' : 'established', ...(status.length ? { status } : {}) };
      as = {
        ct, what: state === 'related' ? `an ICMP ${q.icmpError ?? 'port-unreachable'} error ${where} (ct state related)` : `a reply of an accepted connection (ct state established)`,
        saddr: replySaddr, daddr: onWire, ...(proto === 'tcp' || proto === 'udp' ? { sport: (dnat ?? orig).dport!, dport: orig.sport!, tcpFlags: ['ack'] } : {}),
        ...(snat ? { binding: { daddr: orig.saddr, why: `ct status snat: the reply is addressed to ${onWire}` } } : {}),
      };
      facts.push(state === 'related'
        ? `ct state related: the error's inner header matches the connection's entry (sent ${where})`
        : 'ct state established: the connection was accepted earlier; this packet is its reply');
      if (dnat) facts.push(`ct status dnat: the reply leaves ${replySaddr} and conntrack puts back ${orig.daddr} as its source on the way out (postrouting, after the filter)`);
    } else if (state === 'related') {
      as = { ct: { state: 'invalid' }, what: `an ICMP ${q.icmpError ?? 'port-unreachable'} error ${where}, about a connection conntrack does not know (ct state invalid)`, saddr: replySaddr, daddr: orig.saddr };
      facts.push('ct state invalid: an ICMP error whose inner header matches no entry is invalid to conntrack');
    } else {
      as = { ...noEntry(proto, 'back', loose, facts, icmpType), saddr: replySaddr, daddr: orig.saddr, ...(proto === 'tcp' || proto === 'udp' ? { sport: (dnat ?? orig).dport!, dport: orig.sport! } : {}) };
    }
  } else {
    // An ICMP error the sender's side sends about the connection's replies: the same way as the first packet.
    reverse = { ...base, proto, family: fam, icmpType: icmpType! };
    if (entry) {
      as = {
        ct: { state: 'related', ...(status.length ? { status } : {}) }, what: `an ICMP ${q.icmpError ?? 'port-unreachable'} error ${where} (ct state related)`,
        saddr: orig.saddr, daddr: bridgedHairpin ? dnat!.daddr : orig.daddr,
        ...(dnat && !bridgedHairpin ? { binding: { daddr: dnat.daddr, why: 'ct status dnat (conntrack translates a related error like its connection)' } } : {}),
      };
      if (bridgedHairpin) reverse = { ...reverse, to: dnat!.daddr };
      facts.push(`ct state related: the error's inner header matches the connection's entry (sent ${where})`);
    } else {
      as = { ct: { state: 'invalid' }, what: `an ICMP ${q.icmpError ?? 'port-unreachable'} error ${where}, about a connection conntrack does not know (ct state invalid)`, saddr: orig.saddr, daddr: orig.daddr };
      facts.push('ct state invalid: an ICMP error whose inner header matches no entry is invalid to conntrack');
    }
  }
  return finish(explainFlow(model, ruleset, reverse, as), f, entry, facts);
}

/** Whether `name` (explain's --from) sends through a bridge port: a bridged guest, its port, or a port of a bridge. */
function hasPort(model: HostModel, name: string): boolean {
  if (model.bridges.some((b) => b.ports.includes(name))) return true;
  return model.guests.some((g) => g.interfaces.some((i) => i.mode === 'bridged' && (g.name === name || i.hostNames.includes(name) || i.addresses.some((a) => a.addr === name))));
}

/** What a packet is when its connection has no entry: a new one of its own, or invalid. */
function noEntry(proto: Packet['proto'], way: string, loose: boolean, facts: string[], icmpType?: string): PacketAs {
  if (proto === 'tcp') {
    if (loose) {
      facts.push('no entry: a TCP segment without SYN (here ACK) starts one as ct state new, because nf_conntrack_tcp_loose=1 (the kernel default); with 0 it is ct state invalid. A SYN-ACK without an entry is always invalid');
      return { ct: { state: 'new' }, what: `a TCP ACK ${way}, with no conntrack entry (ct state new: nf_conntrack_tcp_loose=1)`, tcpFlags: ['ack'] };
    }
    facts.push('no entry: a TCP segment without SYN is ct state invalid, because nf_conntrack_tcp_loose=0');
    return { ct: { state: 'invalid' }, what: `a TCP ACK ${way}, with no conntrack entry (ct state invalid: nf_conntrack_tcp_loose=0)`, tcpFlags: ['ack'] };
  }
  if (icmpType === 'echo-reply') {
    facts.push('no entry: an ICMP echo reply that answers no known request is ct state invalid');
    return { ct: { state: 'invalid' }, what: `an ICMP echo reply ${way}, answering no known request (ct state invalid)` };
  }
  facts.push(`no entry: this ${proto === 'udp' ? 'datagram' : 'echo request'} is the first packet of a new connection of its own (ct state new)`);
  return { ct: { state: 'new' }, what: `a new connection of its own ${way} (no conntrack entry)` };
}

/** The source NAT the first packet got in postrouting (masquerade picks the output interface's address). */
function sourceNat(model: HostModel, ruleset: Ruleset, f: FlowExplanation): { addr?: string; what: string } | undefined {
  if (f.bridge !== undefined || f.filtered.oifname === undefined) return undefined;
  const env: EvalEnv = {
    interfaceAddress: (ifname, family) => [...model.hostInterfaces, ...model.bridges].find((i) => i.name === ifname)?.addresses.find((a) => a.family === family)?.addr,
  };
  const post = evaluateNat(ruleset, 'postrouting', { ...f.filtered, ct: { state: 'new', ...(f.filtered.ct.status ? { status: f.filtered.ct.status } : {}) } }, env);
  const t = post.translation;
  if (t === undefined || t.kind === 'dnat') return undefined;
  return { ...(t.addr !== undefined ? { addr: t.addr } : {}), what: t.origin.what };
}

function finish(r: Result<FlowExplanation>, first: FlowExplanation, entry: boolean, facts: string[]): Result<PacketExplanation> {
  if (!r.ok) return r;
  const story = [...facts.map((x) => `conntrack: ${x}`), ...r.value.story];
  return { ok: true, value: { ...r.value, story, connection: { first, entry, facts } } };
}

function describe(p: Packet): string {
  const ports = p.dport !== undefined ? ` port ${p.dport}` : p.icmpType ? ` ${p.icmpType}` : '';
  return `${p.proto} ${p.saddr} -> ${p.daddr}${ports}`;
}
