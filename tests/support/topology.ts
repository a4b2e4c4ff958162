// A throwaway host built from a HostModel out of network namespaces, for tests that send real
// packets through a compiled ruleset. Every interface a zone names (host interfaces, bridges,
// routed guest interfaces) becomes one end of a veth pair in the host namespace, named exactly
// as the policy names it; the other end sits in a namespace of its own, the "far side", which
// stands for whatever is behind that interface (the internet, a bridged segment, a guest).
// guestwall filters at the inet level only, so a veth named like a bridge is all it sees of one.
//
// Routing is exact: every address a far side owns has a /32 or /128 route in the host
// namespace, every far side routes everything else to the host, and addresses are added without
// prefix routes, so where a packet goes never depends on overlapping subnets.
//
// Nothing here touches the machine's own namespace: links are created with both ends placed in
// test namespaces, and sysctls and nft run inside them via `ip netns exec`.
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { type ResultPromise, execa } from 'execa';
import { HOST_ZONE, type HostModel, type Place } from '../../src/model/host.js';
import { formatAddress, parseHostAddress } from '../../src/policy/addr.js';

export type LinkKind = 'host interface' | 'bridge' | 'routed guest';

export interface Link {
  /** The interface in the host namespace, named as the policy names it. */
  ifname: string;
  zone: string;
  kind: LinkKind;
  /** The far side's namespace (its end of the veth pair is called `far`). */
  ns: string;
  /** Addresses the far side owns; the host routes them here. Canonical, both families. */
  addresses: string[];
  /** The host's own addresses on this link (declared in the policy, or made up here). */
  hostAddresses: string[];
  /** The far side's MAC, when the policy declares one (a routed guest's: anti-spoofing checks it). */
  mac?: string;
}

export interface TopologyPlan {
  /** The host namespace. */
  host: string;
  links: Link[];
  /** Every address of the host namespace: what `fib daddr type local` calls local. */
  local: Set<string>;
  /** Address -> the link whose far side owns it. */
  owners: Map<string, Link>;
}

export interface Topology extends TopologyPlan {
  /** Every namespace made for this topology, the host's first. */
  namespaces: string[];
  isLocal(addr: string): boolean;
  /** The link whose far side owns `addr` (routes point there), if any. */
  linkOf(addr: string): Link | undefined;
  /** nft inside the host namespace, and nowhere else. */
  nft(args: string[]): Promise<string>;
  /** `nft -j <command>` in the host namespace, through the host's agent (libnftables) when it can. */
  nftJson(command: string): Promise<string>;
  /** The packet agent running in one of this topology's namespaces (started on first use). */
  agent(ns: string): Promise<Agent>;
  /** Stop the agents and delete every namespace; safe to call twice. */
  dispose(): Promise<void>;
}

export const FAR_IFNAME = 'far';

export const familyOf = (addr: string): 4 | 6 => (addr.includes(':') ? 6 : 4);

function canonical(text: string): string | undefined {
  const r = parseHostAddress(text);
  return r.ok ? r.value.addr : undefined;
}

/** Ranges a far side may stand in for when a rule names an address: private and documentation space only. */
const STAND_IN_RANGES = ['10.0.0.0/8', '100.64.0.0/10', '198.51.100.0/24', '203.0.113.0/24', 'fd00::/8', '2001:db8::/32'].map((t) => {
  const r = parseHostAddress(t);
  if (!r.ok) throw new Error(t);
  return r.value.network;
});

/** One address inside what a rule names ("10.1.0.16/28" -> 10.1.0.23), if it is in space a test may use. */
function standIn(text: string): string | undefined {
  const r = parseHostAddress(text);
  if (!r.ok) return undefined;
  const { network: n, family } = r.value;
  const v = n.start + (n.end - n.start) / 2n;
  if (!STAND_IN_RANGES.some((s) => s.family === family && s.start <= n.start && n.end <= s.end)) return undefined;
  return formatAddress(v, family);
}

/**
 * Which namespaces, links and addresses a policy's host needs: pure, so a test can resolve
 * packets against it before anything exists. `id` names the namespaces (`gw-x-<id>-<n>`).
 */
export function topologyPlan(model: HostModel, id: string): TopologyPlan {
  const host = `gw-x-${id}-0`;
  // Every address the policy itself places somewhere: made-up ones must not collide with them.
  const used = new Set<string>();
  const declare = (list: readonly { addr: string }[]) => list.forEach((a) => used.add(a.addr));
  model.hostInterfaces.forEach((i) => declare(i.addresses));
  model.bridges.forEach((b) => declare(b.addresses));
  model.guests.forEach((g) => g.interfaces.forEach((i) => declare(i.addresses)));
  for (const f of model.forwards) {
    for (const a of [f.targetV4, ...f.targetV6, ...f.publicV4]) {
      const c = a === '' ? undefined : canonical(a);
      if (c !== undefined) used.add(c);
    }
  }
  model.sourceNat.forEach((s) => s.address && used.add(s.address.addr));

  const links: Link[] = [];
  const add = (ifname: string, zone: string, kind: LinkKind, addresses: string[], hostAddresses: string[], mac?: string) =>
    links.push({ ifname, zone, kind, ns: `gw-x-${id}-${links.length + 1}`, addresses, hostAddresses, ...(mac !== undefined ? { mac } : {}) });
  const v = (list: readonly { addr: string }[]) => list.map((a) => a.addr);
  for (const i of model.hostInterfaces) add(i.name, i.zone, 'host interface', [], v(i.addresses));
  for (const b of model.bridges) {
    // The bridge's far side is the whole segment: every guest bridged onto it lives there.
    const guests = model.guests.flatMap((g) => g.interfaces).filter((i) => i.mode === 'bridged' && i.bridge === b.name);
    add(b.name, b.zone, 'bridge', guests.flatMap((i) => v(i.addresses)), v(b.addresses));
  }
  for (const g of model.guests) for (const i of g.interfaces) if (i.mode === 'routed') add(i.name, i.zone, 'routed guest', v(i.addresses), [], i.mac);

  const owners = new Map<string, Link>();
  for (const l of links) for (const a of l.addresses) owners.set(a, l);
  // Made-up machines never go behind a routed guest's link: its far side is that guest alone,
  // and anti-spoofing (ARP sender, MAC) refuses any address the policy does not declare for it.
  const firstLink = (zone: string) => links.find((l) => l.zone === zone && l.kind !== 'routed guest');
  const own = (addr: string, l: Link | undefined) => {
    if (l === undefined || owners.has(addr)) return;
    l.addresses.push(addr);
    owners.set(addr, l);
    used.add(addr);
  };
  // A forward to an address (not a guest) needs a machine there: one in the target zone.
  for (const f of model.forwards) if (f.guest === undefined && f.targetV4 !== '') own(canonical(f.targetV4)!, firstLink(f.targetZone));
  // Addresses the rules name, so that address matches meet real senders and receivers.
  const places: Place[] = [...model.rules.flatMap((r) => [...r.from, ...r.to]), ...model.helpers.flatMap((h) => [...h.from, ...h.to])];
  for (const p of places) {
    if (p.zone === HOST_ZONE) continue;
    for (const text of [...(p.v4 ?? []), ...(p.v6 ?? [])]) {
      const a = standIn(text);
      if (a !== undefined && !used.has(a)) own(a, firstLink(p.zone));
    }
  }

  // Made-up addresses: in the zone's first network of the family, else in documentation space.
  let doc = 100;
  const madeUp = (zone: string, family: 4 | 6): string => {
    const net = model.zones.find((z) => z.name === zone)?.networks.find((n) => n.family === family);
    if (net !== undefined) {
      for (let k = 150n; net.start + k < net.end; k++) {
        const a = formatAddress(net.start + k, family);
        if (!used.has(a)) {
          used.add(a);
          return a;
        }
      }
    }
    for (;;) {
      const n = doc++;
      const a = family === 4 ? `198.51.100.${n}` : `2001:db8:ffff::${n.toString(16)}`;
      if (n > 254) throw new Error('topologyPlan: out of documentation addresses');
      if (!used.has(a)) {
        used.add(a);
        return a;
      }
    }
  };
  for (const l of links) {
    for (const family of [4, 6] as const) {
      if (!l.hostAddresses.some((a) => familyOf(a) === family)) l.hostAddresses.push(madeUp(l.zone, family));
      // Something to send from on host interfaces and bridged segments; a routed guest has only its own addresses.
      if (l.kind !== 'routed guest') own(madeUp(l.zone, family), l);
    }
  }
  const local = new Set(links.flatMap((l) => l.hostAddresses));
  // The host answers on the public addresses its forwards name, like a real one would.
  for (const f of model.forwards) {
    for (const a of f.publicV4) {
      const c = canonical(a)!;
      if (local.has(c) || owners.has(c)) continue;
      const l = links.find((x) => f.from.includes(x.zone)) ?? links[0];
      if (l === undefined) continue;
      l.hostAddresses.push(c);
      local.add(c);
    }
  }
  return { host, links, local, owners };
}

// ---- Building it -------------------------------------------------------------------------------

/** Namespaces made by any topology and not deleted yet: the afterAll backstop deletes these. */
const live = new Set<Topology>();

export async function disposeAllTopologies(): Promise<void> {
  for (const t of [...live]) await t.dispose();
}

/** `ip -batch -` with one command a line, optionally inside a namespace; fails loudly. */
export async function ipBatch(lines: string[], ns?: string): Promise<void> {
  if (lines.length === 0) return;
  const r = await execa('ip', [...(ns ? ['-n', ns] : []), '-batch', '-'], { input: lines.join('\n') + '\n', reject: false });
  if (r.exitCode !== 0) throw new Error(`ip -batch${ns ? ` in ${ns}` : ''} failed: ${r.stderr}\n${lines.join('\n')}`);
}

const SYSCTLS_EVERYWHERE = [
  // IPv4 settings are copied from the machine's namespace; ours must not depend on them.
  'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0',
  // No duplicate address detection: IPv6 addresses work the moment they are added.
  'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0',
];
const SYSCTLS_HOST = [
  'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1',
  // A hairpinned packet goes back out where it came from; no redirect should teach the far side a shortcut.
  'net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.default.send_redirects=0',
];

const withLen = (a: string) => `${a}/${familyOf(a) === 4 ? 32 : 128}`;
const addrAdd = (a: string, dev: string) => `address add ${withLen(a)} dev ${dev}${familyOf(a) === 6 ? ' nodad' : ''}`;

/** Make the plan real. On any failure everything made so far is deleted before the error propagates. */
export async function buildTopology(plan: TopologyPlan, python: string): Promise<Topology> {
  const namespaces = [plan.host, ...plan.links.map((l) => l.ns)];
  const agents = new Map<string, Promise<Agent>>();
  let disposed = false;
  let viaAgent = true;
  const topo: Topology = {
    ...plan,
    namespaces,
    isLocal: (addr) => {
      const c = canonical(addr);
      return c !== undefined && plan.local.has(c);
    },
    linkOf: (addr) => {
      const c = canonical(addr);
      return c === undefined ? undefined : plan.owners.get(c);
    },
    async nft(args) {
      if (disposed) throw new Error('nft on a disposed topology');
      const r = await execa('ip', ['netns', 'exec', plan.host, 'nft', ...args], { reject: false });
      if (r.exitCode !== 0) throw new Error(`nft ${args.join(' ')} in ${plan.host} failed (exit ${r.exitCode}):\n${r.stderr}`);
      return r.stdout;
    },
    async nftJson(command) {
      if (viaAgent) {
        const a = await topo.agent(plan.host);
        const id = nextRequest++;
        a.request({ op: 'nft', id, cmd: command });
        const e = await a.waitFor(id, ['nft', 'error'], 10_000);
        if (e?.ev === 'nft') return e.out!;
        // No libnftables for Python to load: spawn nft from now on.
        if (!e?.error?.startsWith('libnftables')) throw new Error(`nft ${command} in ${plan.host}: ${e?.error ?? 'no answer'}`);
        viaAgent = false;
      }
      return topo.nft(['-j', ...command.split(' ')]);
    },
    agent(ns) {
      if (disposed) throw new Error('agent on a disposed topology');
      if (!namespaces.includes(ns)) throw new Error(`refusing to start an agent outside this topology (${ns})`);
      let a = agents.get(ns);
      if (a === undefined) {
        a = Agent.start(ns, python);
        agents.set(ns, a);
      }
      return a;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      for (const a of agents.values()) await a.then((x) => x.stop(), () => undefined);
      // -force: go on after a namespace that was never made.
      await execa('ip', ['-force', '-batch', '-'], { input: namespaces.map((ns) => `netns delete ${ns}`).join('\n') + '\n', reject: false });
      live.delete(topo);
    },
  };
  live.add(topo);
  try {
    await ipBatch(namespaces.flatMap((ns) => [
      `netns add ${ns}`,
      `netns exec ${ns} sysctl -qw ${[...SYSCTLS_EVERYWHERE, ...(ns === plan.host ? SYSCTLS_HOST : [])].join(' ')}`,
    ]));
    await ipBatch([
      'link set lo up',
      ...plan.links.flatMap((l) => [
        `link add ${l.ifname} type veth peer name ${FAR_IFNAME} netns ${l.ns}`,
        ...l.hostAddresses.map((a) => addrAdd(a, l.ifname)),
        `link set ${l.ifname} up`,
      ]),
    ], plan.host);
    await Promise.all(plan.links.map((l) => {
      const gw = (family: 4 | 6) => l.hostAddresses.find((a) => familyOf(a) === family)!;
      return ipBatch([
        'link set lo up',
        // Before the link comes up, so that its link-local address derives from this MAC too.
        ...(l.mac !== undefined ? [`link set ${FAR_IFNAME} address ${l.mac}`] : []),
        ...l.addresses.map((a) => addrAdd(a, FAR_IFNAME)),
        `link set ${FAR_IFNAME} up`,
        `route add default via ${gw(4)} dev ${FAR_IFNAME} onlink`,
        `route add ::/0 via ${gw(6)} dev ${FAR_IFNAME} onlink`,
      ], l.ns);
    }));
    await ipBatch(plan.links.flatMap((l) => l.addresses.map((a) => `route add ${withLen(a)} dev ${l.ifname}`)), plan.host);
  } catch (e) {
    await topo.dispose();
    throw e;
  }
  return topo;
}

// ---- Packets for real --------------------------------------------------------------------------

/** What an agent reports about one request (`id`). */
export interface AgentEvent {
  id: number;
  ev: 'hello' | 'ready' | 'sent' | 'got' | 'connected' | 'reply' | 'data' | 'nft' | 'error';
  /** `got`: the destination address and port the packet carried when it arrived. */
  to?: [string, number];
  peer?: [string, number];
  /** `got` by a sniff: the ICMP error's type and code. */
  icmp?: [number, number];
  /** `nft`: what the command printed. */
  out?: string;
  error?: string;
}

export type AgentRequest =
  | { op: 'listen'; id: number; proto: 'tcp' | 'udp'; family: 4 | 6; port: number; talk?: boolean }
  | { op: 'send'; id: number; proto: 'tcp' | 'udp' | 'icmp'; family: 4 | 6; src: string; dst: string; port?: number; ident?: number; sport?: number; talk?: boolean }
  /** An ICMP error (raw socket) from src to dst whose inner header is a packet isrc:isport -> idst:idport. */
  | { op: 'icmperr'; id: number; family: 4 | 6; src: string; dst: string; type: number; code: number; inner: { proto: 'tcp' | 'udp'; src: string; dst: string; sport: number; dport: number } }
  /** Report every ICMP error that arrives whose inner header carries these ports. */
  | { op: 'sniff'; id: number; family: 4 | 6; sport: number; dport: number }
  /** A crafted TCP segment (raw socket): a bare ACK or a SYN-ACK. */
  | { op: 'tcpraw'; id: number; family: 4 | 6; src: string; dst: string; sport: number; dport: number; flags: 'A' | 'SA' }
  /** Report every TCP segment that arrives with these ports (`got`, its flags in icmp[0]). */
  | { op: 'sniff-tcp'; id: number; family: 4 | 6; sport: number; dport: number }
  | { op: 'nft'; id: number; cmd: string }
  | { op: 'close'; id: number };

/**
 * One small Python process per namespace that listens and sends on request (JSON lines on
 * stdin, events on stdout), so a packet costs a few writes instead of process starts.
 * listen: TCP accept / UDP receive on any address, reporting the destination the packet
 * carried (the accepted socket's local address; IP_PKTINFO for UDP). send: TCP connect (non-
 * blocking), UDP send on a connected socket (ICMP errors come back as `error`), ICMP echo on a
 * raw socket; from a given source port with `sport`. A UDP sender reports each datagram that
 * comes back (`reply`) and each ICMP error (`error`, its socket kept). talk: the TCP sender sends
 * a few bytes once connected and reports the answer (`reply`); the TCP listener reports them
 * (`data`) and sends them back. icmperr: a crafted ICMP error about a given packet; sniff: every
 * ICMP error whose inner ports match (`got`, with type and code). close: drops the request's
 * sockets; an unfinished connect is aborted, so a dropped SYN is never retransmitted into the
 * next packet's measurement. nft: one nft command
 * through libnftables (a few milliseconds, where spawning nft costs tens).
 */
const AGENT = String.raw`
import errno, json, os, select, socket, struct, sys
IP_PKTINFO = 8
S = {}
IDS = {}
def out(**o):
    sys.stdout.write(json.dumps(o) + "\n"); sys.stdout.flush()
def add(i, kind, s, data=None):
    S[s.fileno()] = [i, kind, s, data]; IDS.setdefault(i, []).append(s.fileno())
def drop(fd):
    e = S.pop(fd, None)
    if e is None: return
    if fd in IDS.get(e[0], []): IDS[e[0]].remove(fd)
    e[2].close()
def close(i):
    for fd in IDS.pop(i, []):
        e = S.pop(fd, None)
        if e is None: continue
        if e[1] == "connect": e[2].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        e[2].close()
def name(n):
    return errno.errorcode.get(n, str(n))
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
NFT = []
def nft(cmd):
    if not NFT:
        import ctypes
        lib = ctypes.CDLL("libnftables.so.1")
        lib.nft_ctx_new.restype = ctypes.c_void_p
        for f in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"): getattr(lib, f).argtypes = [ctypes.c_void_p]
        for f in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(lib, f).argtypes = [ctypes.c_void_p]; getattr(lib, f).restype = ctypes.c_char_p
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        ctx = lib.nft_ctx_new(0); lib.nft_ctx_buffer_output(ctx); lib.nft_ctx_buffer_error(ctx)
        lib.nft_ctx_output_set_flags(ctx, 1 << 4)  # NFT_CTX_OUTPUT_JSON
        NFT.extend([lib, ctx])
    lib, ctx = NFT
    rc = lib.nft_run_cmd_from_buffer(ctx, cmd.encode())
    text, err = lib.nft_ctx_get_output_buffer(ctx).decode(), lib.nft_ctx_get_error_buffer(ctx).decode()
    return text if rc == 0 else None, err
def command(c):
    i, op = c["id"], c["op"]
    if op == "close": return close(i)
    if op == "nft":
        try: text, err = nft(c["cmd"])
        except OSError as e: return out(id=i, ev="error", error="libnftables: %s" % e)
        return out(id=i, ev="nft", out=text) if text is not None else out(id=i, ev="error", error=err)
    F = socket.AF_INET if c["family"] == 4 else socket.AF_INET6
    try:
        if op == "listen":
            tcp = c["proto"] == "tcp"
            s = socket.socket(F, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if F == socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if not tcp:
                if F == socket.AF_INET: s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
                else: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            s.bind(("0.0.0.0" if F == socket.AF_INET else "::", c["port"]))
            if tcp: s.listen(16)
            add(i, "listen-" + c["proto"], s, c.get("talk")); return out(id=i, ev="ready")
        if op == "sniff":
            s = socket.socket(F, socket.SOCK_RAW, socket.IPPROTO_ICMP if F == socket.AF_INET else socket.IPPROTO_ICMPV6)
            add(i, "sniff", s, (c["sport"], c["dport"])); return out(id=i, ev="ready")
        if op == "sniff-tcp":
            s = socket.socket(F, socket.SOCK_RAW, socket.IPPROTO_TCP)
            add(i, "sniff-tcp", s, (c["sport"], c["dport"])); return out(id=i, ev="ready")
        if op == "tcpraw":
            th = struct.pack("!HHIIBBHHH", c["sport"], c["dport"], 1000, 1000, 5 << 4, 0x10 if c["flags"] == "A" else 0x12, 65535, 0, 0)
            s = socket.socket(F, socket.SOCK_RAW, socket.IPPROTO_TCP)
            if F == socket.AF_INET:
                pseudo = socket.inet_pton(F, c["src"]) + socket.inet_pton(F, c["dst"]) + struct.pack("!BBH", 0, 6, len(th))
                th = th[:16] + struct.pack("!H", csum(pseudo + th)) + th[18:]
            else: s.setsockopt(socket.IPPROTO_IPV6, 7, 16)  # IPV6_CHECKSUM: the kernel fills it in
            s.bind((c["src"], 0)); s.sendto(th, (c["dst"], 0)); s.close(); return out(id=i, ev="sent")
        if op == "icmperr":
            n = c["inner"]; P = 6 if n["proto"] == "tcp" else 17
            l4 = struct.pack("!HHI", n["sport"], n["dport"], 0) if P == 6 else struct.pack("!HHHH", n["sport"], n["dport"], 8, 0)
            rest = struct.pack("!HH", 0, 1280) if (c["type"], c["code"]) == (3, 4) else struct.pack("!I", 1280) if (F, c["type"]) == (socket.AF_INET6, 2) else b"\0" * 4
            if F == socket.AF_INET:
                ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, P, 0, socket.inet_pton(F, n["src"]), socket.inet_pton(F, n["dst"]))
                ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
                h = struct.pack("!BBH", c["type"], c["code"], 0) + rest + ip + l4
                h = h[:2] + struct.pack("!H", csum(h)) + h[4:]
                s = socket.socket(F, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            else:
                ip = struct.pack("!IHBB16s16s", 0x60000000, 8, P, 64, socket.inet_pton(F, n["src"]), socket.inet_pton(F, n["dst"]))
                h = struct.pack("!BBH", c["type"], c["code"], 0) + rest + ip + l4
                s = socket.socket(F, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            s.bind((c["src"], 0)); s.sendto(h, (c["dst"], 0)); s.close(); return out(id=i, ev="sent")
        p = c["proto"]
        if p == "tcp":
            s = socket.socket(F, socket.SOCK_STREAM); s.bind((c["src"], c.get("sport", 0))); s.setblocking(False)
            r = s.connect_ex((c["dst"], c["port"]))
            if r not in (0, errno.EINPROGRESS):
                s.close(); return out(id=i, ev="error", error=name(r))
            add(i, "connect", s, c.get("talk")); return out(id=i, ev="sent")
        if p == "udp":
            s = socket.socket(F, socket.SOCK_DGRAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((c["src"], c.get("sport", 0))); s.connect((c["dst"], c["port"]))
            add(i, "udp", s); s.send(b"guestwall"); return out(id=i, ev="sent")
        if F == socket.AF_INET:
            s = socket.socket(F, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            h = struct.pack("!BBHHH", 8, 0, 0, c["ident"], 1) + b"guestwall"
            h = h[:2] + struct.pack("!H", csum(h)) + h[4:]
        else:
            s = socket.socket(F, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            h = struct.pack("!BBHHH", 128, 0, 0, c["ident"], 1) + b"guestwall"
        s.bind((c["src"], 0)); add(i, "icmp", s, c["ident"]); s.sendto(h, (c["dst"], 0)); return out(id=i, ev="sent")
    except OSError as e:
        close(i); out(id=i, ev="error", error=name(e.errno) if e.errno else str(e))
def readable(fd):
    i, kind, s, data = S[fd]
    if kind == "listen-tcp":
        conn, peer = s.accept(); to = conn.getsockname()
        if data: add(i, "echo", conn)
        else: conn.close()
        return out(id=i, ev="got", to=[to[0], to[1]], peer=[peer[0], peer[1]])
    if kind in ("echo", "talk"):
        try: b = s.recv(2048)
        except OSError as e:
            drop(fd); return out(id=i, ev="error", error=name(e.errno))
        if not b:
            drop(fd); return
        if kind == "echo": s.send(b)
        return out(id=i, ev="data" if kind == "echo" else "reply")
    if kind == "sniff-tcp":
        b = s.recv(2048)
        if s.family == socket.AF_INET: b = b[(b[0] & 15) * 4:]
        if len(b) >= 14 and struct.unpack("!HH", b[:4]) == tuple(data):
            return out(id=i, ev="got", icmp=[b[13], 0])
        return
    if kind == "sniff":
        b = s.recv(2048)
        if s.family == socket.AF_INET: src = socket.inet_ntop(socket.AF_INET, b[12:16]); b = b[(b[0] & 15) * 4:]
        else: src = ""
        if len(b) < 8 or b[0] not in ((3, 11, 12) if s.family == socket.AF_INET else (1, 2, 3, 4)): return
        inner = b[8:]
        off = (inner[0] & 15) * 4 if s.family == socket.AF_INET else 40
        if len(inner) >= off + 4 and struct.unpack("!HH", inner[off:off + 4]) == tuple(data):
            return out(id=i, ev="got", icmp=[b[0], b[1]], peer=[src, 0])
        return
    if kind == "listen-udp":
        msg, anc, flags, peer = s.recvmsg(2048, 256); to = None
        for level, t, d in anc:
            if level == socket.IPPROTO_IP and t == IP_PKTINFO: to = socket.inet_ntop(socket.AF_INET, d[8:12])
            if level == socket.IPPROTO_IPV6 and t == socket.IPV6_PKTINFO: to = socket.inet_ntop(socket.AF_INET6, d[:16])
        return out(id=i, ev="got", to=[to, s.getsockname()[1]], peer=[peer[0], peer[1]])
    if kind == "udp":
        try: s.recv(2048)
        except OSError as e:
            return out(id=i, ev="error", error=name(e.errno))
        return out(id=i, ev="reply")
    if kind == "icmp":
        b = s.recv(2048)
        if s.family == socket.AF_INET: b = b[(b[0] & 15) * 4:]
        if len(b) < 8: return
        if b[0] in (0, 129) and struct.unpack("!H", b[4:6])[0] == data:
            close(i); return out(id=i, ev="reply")
        if b[0] in (3, 1):
            inner = b[8:]
            off = (inner[0] & 15) * 4 if s.family == socket.AF_INET else 40
            if len(inner) >= off + 6 and struct.unpack("!H", inner[off + 4:off + 6])[0] == data:
                close(i); return out(id=i, ev="error", error="icmp type %d code %d" % (b[0], b[1]))
def writable(fd):
    e = S[fd]; err = e[2].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR); e[1] = "connected"
    if err == 0:
        out(id=e[0], ev="connected")
        if e[3]: e[1] = "talk"; e[2].send(b"guestwall")
    else: close(e[0]); out(id=e[0], ev="error", error=name(err))
out(id=0, ev="hello")
buf = b""
while True:
    r, w, _ = select.select([0] + [fd for fd, e in S.items() if e[1] not in ("connect", "connected")], [fd for fd, e in S.items() if e[1] == "connect"], [])
    for fd in w:
        if fd in S:
            try: writable(fd)
            except OSError as e: out(id=S[fd][0], ev="error", error=str(e))
    for fd in r:
        if fd == 0:
            chunk = os.read(0, 65536)
            if not chunk: sys.exit(0)
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip(): command(json.loads(line))
        elif fd in S:
            try: readable(fd)
            except OSError as e: out(id=S[fd][0] if fd in S else -1, ev="error", error=str(e))
`;

export class Agent {
  private readonly events: AgentEvent[] = [];
  private readonly waiters = new Set<() => void>();
  private exited = false;

  private constructor(readonly ns: string, private readonly proc: ResultPromise<{ stdin: 'pipe'; buffer: false; reject: false }>) {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as AgentEvent);
      } catch {
        this.events.push({ id: -1, ev: 'error', error: `agent in ${ns} printed: ${line}` });
      }
      for (const w of [...this.waiters]) w();
    });
    void proc.then(() => {
      this.exited = true;
      for (const w of [...this.waiters]) w();
    });
  }

  static async start(ns: string, python: string): Promise<Agent> {
    const proc = execa('ip', ['netns', 'exec', ns, python, '-S', '-u', '-c', AGENT], { stdin: 'pipe', buffer: false, reject: false });
    const agent = new Agent(ns, proc);
    if ((await agent.waitFor(0, ['hello'], 10_000)) === undefined) {
      await agent.stop();
      throw new Error(`the packet agent did not start in ${ns}`);
    }
    return agent;
  }

  request(r: AgentRequest): void {
    if (this.exited) throw new Error(`the packet agent in ${this.ns} has exited`);
    this.proc.stdin!.write(`${JSON.stringify(r)}\n`);
  }

  /** Events reported for `id` so far. */
  eventsOf(id: number): AgentEvent[] {
    return this.events.filter((e) => e.id === id);
  }

  /** The first event for `id` of one of `kinds`, waiting at most `ms`. */
  async waitFor(id: number, kinds: AgentEvent['ev'][], ms: number): Promise<AgentEvent | undefined> {
    const find = () => this.events.find((e) => e.id === id && kinds.includes(e.ev));
    const found = find();
    if (found !== undefined || ms <= 0) return found;
    return new Promise((resolve) => {
      const done = (e: AgentEvent | undefined) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(e);
      };
      const check = () => {
        const e = find();
        if (e !== undefined || this.exited) done(e);
      };
      const timer = setTimeout(() => done(undefined), ms);
      this.waiters.add(check);
    });
  }

  async stop(): Promise<void> {
    this.proc.stdin?.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 2_000);
    await this.proc;
    clearTimeout(timer);
  }
}

/** Request ids for agent commands the topology sends itself, apart from the test's own. */
let nextRequest = 1_000_000_000;

/** A short random id for namespace names (`gw-x-<id>-<n>`). */
export function topologyId(): string {
  return randomBytes(3).toString('hex');
}
