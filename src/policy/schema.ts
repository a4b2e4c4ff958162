// The policy language: the one source of both the validator and the JSON Schema that editors
// use (`guestwall schema`). Shapes only: references between names, address math and other
// cross-field rules are checked in checks.ts, with the same locations.
//
// zod's functional entry (zod/mini), not its chained one: the same package, validator and JSON
// Schema generator, but the chained entry costs every command ~75 ms of start (767 KB to compile
// and evaluate) where this one costs none measurable (issue 17).
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';

// The chained entry sets English messages on first use; this one leaves the choice to the caller.
// Unknown-key, size and format messages reach users through schema-findings.ts. Without zod's
// JIT: a command parses one policy once, and generating and compiling a parser per object shape
// made that first parse 14-18 ms where interpreting it takes 4-11 (issue 17); the result is the same.
z.config({ ...en(), jitless: true });

/** A copy of `schema` that carries `data` into the JSON Schema: what zod's chained .meta() does. */
function meta<T extends z.ZodMiniType>(schema: T, data: z.core.GlobalMeta): T {
  const copy = schema.clone() as T;
  z.globalRegistry.add(copy, data);
  return copy;
}

export const NAME = /^[a-z][a-z0-9_-]*$/;
const nameText = 'lowercase letters, digits, - and _, starting with a letter';

/** Names of zones, guests and services: they become chain and set names in the ruleset. */
export const Name = meta(z.string().check(z.maxLength(24), z.regex(NAME, { message: `must be ${nameText}` })), {
  description: `A name: ${nameText}; at most 24 characters.`,
});

/**
 * Zone names become chain names joined by "_to_" ("lan_to_dmz"), so they may not contain "_":
 * zones "a" and "b_to_c" would otherwise share a chain with zones "a_to_b" and "c".
 */
export const ZONE_NAME = /^[a-z][a-z0-9-]*$/;
export const ZoneName = meta(
  z.string().check(
    z.maxLength(24),
    z.regex(ZONE_NAME, { message: 'must be lowercase letters, digits and -, starting with a letter (no "_": zone names are joined by "_to_" in chain names)' }),
  ),
  { description: 'A zone name: lowercase letters, digits and -, starting with a letter; at most 24 characters.' },
);

/** A Linux interface name as the kernel takes it; length is checked with a precise message later. */
export const IfName = meta(z.string(), {
  description: 'A Linux interface name: at most 15 characters, no "/", ":", "*" or whitespace.',
});

export const AddressText = meta(z.string(), {
  description: 'An IPv4 or IPv6 address, optionally with its prefix length ("10.0.0.1/24", "fd00::1/64").',
  examples: ['192.0.2.10', '2001:db8::10/64'],
});
export const NetworkText = meta(z.string(), {
  description: 'An IPv4 or IPv6 network in CIDR notation ("10.0.10.0/24", "fd00:10::/64").',
  examples: ['10.0.10.0/24', 'fd00:10::/64'],
});

const int = () => z.number().check(z.int());

/** A port, or a range "lo-hi"; ranges and bounds are checked in checks.ts with locations. */
export const PortSpec = meta(z.union([int(), z.string().check(z.regex(/^\s*\d+\s*(-\s*\d+\s*)?$/, { message: 'must be a port number or a range like "10000-20000"' }))]), {
  description: 'A port (1-65535) or an inclusive range "lo-hi".',
  examples: [5060, '10000-20000'],
});
export const Ports = z.union([PortSpec, z.array(PortSpec).check(z.minLength(1))]);

export const Action = meta(z.enum(['accept', 'drop', 'reject']), { description: 'What happens to a matching new connection.' });

export const Log = meta(
  z.union([z.boolean(), z.string().check(z.maxLength(20), z.regex(/^[A-Za-z0-9 _:.\->]*$/, { message: 'must be a short plain prefix' }))]),
  { description: 'Log matching packets (rate limited for default policies); a string sets the log prefix.' },
);

// 1 to 999,999,999 per unit: nft takes a 64-bit rate, but 0 is refused and JSON loses precision past 2^53.
const RATE = /^\s*[1-9]\d{0,8}\s*\/\s*(second|minute|hour|day)\s*$/;
export const Limit = meta(
  z.union([
    z.string().check(z.regex(RATE, { message: 'must look like "10/minute": 1 to 999999999 per second, minute, hour or day' })),
    z.strictObject({
      rate: z.string().check(z.regex(RATE, { message: 'must look like "10/minute": 1 to 999999999 per second, minute, hour or day' })),
      burst: z.optional(int().check(z.minimum(1), z.maximum(100_000))),
    }),
  ]),
  { description: 'Rate limit: "N/second|minute|hour|day", optionally with a burst. Connections over the limit fall through to the next rule.' },
);

/** One endpoint or several: a zone, a guest, "host" (this machine), "all", or an address/CIDR. */
export const Endpoints = meta(z.union([z.string().check(z.minLength(1)), z.array(z.string().check(z.minLength(1))).check(z.minLength(1))]), {
  description: 'A zone, a guest, "host" (the firewall itself), "all", or an IPv4/IPv6 address or CIDR; or a list of these.',
});

const text = () => z.optional(z.string());
const described = <T extends z.ZodMiniType>(schema: T, description: string) => meta(schema, { description });

export const ServiceDef = described(
  z.strictObject({
    description: text(),
    tcp: z.optional(Ports),
    udp: z.optional(Ports),
    icmp: described(z.optional(z.array(z.string())), 'ICMP (IPv4) types by name, e.g. echo-request.'),
    icmpv6: described(z.optional(z.array(z.string())), 'ICMPv6 types by name, e.g. echo-request.'),
  }),
  'A service: the ports and ICMP types it uses.',
);

export const HostInterface = z.strictObject({
  zone: described(Name, 'The zone this interface belongs to.'),
  addresses: described(z.optional(z.array(AddressText)), "The host's own addresses on this interface; used to match port forwards to the public address (hairpin NAT)."),
  description: text(),
});

export const Zone = z.strictObject({
  description: text(),
  networks: described(z.optional(z.array(NetworkText)), "The zone's address space. Guest and bridge addresses in this zone must lie inside it."),
  public: described(z.optional(z.boolean()), 'The zone faces the internet (default: true for zones named net, wan or internet). Permissive policies from it are warned about.'),
});

export const Bridge = z.strictObject({
  zone: described(Name, 'The zone of the bridge and of every guest interface on it.'),
  ports: described(z.optional(z.array(IfName)), 'Host interfaces enslaved to the bridge (uplinks).'),
  addresses: described(z.optional(z.array(AddressText)), "The host's addresses on the bridge (the guests' gateway)."),
  description: text(),
});

const InterfaceCommon = {
  name: described(z.optional(IfName), 'The stable host-side interface name (at most 15 characters). Derived from the guest name when omitted.'),
  mac: described(z.optional(z.string()), 'The guest-side MAC address, e.g. 02:00:0a:00:0a:0a.'),
  addresses: described(z.optional(z.array(AddressText)), 'The addresses the guest uses on this interface (IPv4 and IPv6).'),
};

export const BridgedInterface = z.strictObject({
  mode: z.literal('bridged'),
  bridge: described(z.string(), 'The bridge this interface is a port of.'),
  ...InterfaceCommon,
});

export const RoutedInterface = z.strictObject({
  mode: z.literal('routed'),
  zone: described(z.optional(Name), "The zone of this interface (default: the guest's zone)."),
  ...InterfaceCommon,
});

export const GuestInterface = described(
  z.discriminatedUnion('mode', [BridgedInterface, RoutedInterface]),
  'A guest interface: a port of a bridge ("bridged") or its own point-to-point link routed by the host ("routed").',
);

export const Guest = z.strictObject({
  platform: z.enum(['xen', 'kvm', 'lxc']),
  zone: described(z.optional(Name), "The guest's zone (default: the zone of its first interface)."),
  description: text(),
  interfaces: z.array(GuestInterface).check(z.minLength(1)),
  xen: described(
    z.optional(z.strictObject({ type: z.optional(z.enum(['pv', 'pvh', 'hvm'])) })),
    'Xen details: HVM guests also get a "<vifname>-emu" tap, so their names have at most 11 characters.',
  ),
  router: described(z.optional(z.boolean()), 'The guest may act as a router (send router advertisements, answer DHCP).'),
  host: described(z.optional(Name), 'Fleet policies (with hosts:): the host the guest runs on now. Its interfaces, names, MACs and addresses travel with it.'),
  may_run_on: described(
    z.optional(z.union([z.literal('all'), z.array(Name).check(z.minLength(1))])),
    'Fleet policies: the hosts the guest may move to ("all", or a list; its host: is always included). Each of their rulesets holds the guest.',
  ),
  lxc: described(
    z.optional(z.strictObject({
      unprivileged: described(
        z.optional(z.boolean()),
        'A non-root user starts the container (lxc-user-nic), so LXC ignores veth.pair and the host-side names are random: guestwall warns.',
      ),
    })),
    'LXC details.',
  ),
});

export const ZonePolicy = z.strictObject({
  from: Endpoints,
  to: Endpoints,
  action: Action,
  log: z.optional(Log),
});

const serviceNames = () => z.optional(z.union([z.string(), z.array(z.string()).check(z.minLength(1))]));

export const Rule = z.strictObject({
  description: text(),
  from: Endpoints,
  to: Endpoints,
  service: described(serviceNames(), 'A service from the catalogue or from services:, or a list of them.'),
  proto: z.optional(z.enum(['tcp', 'udp', 'icmp', 'icmpv6'])),
  ports: z.optional(Ports),
  action: Action,
  log: z.optional(Log),
  limit: z.optional(Limit),
});

export const Forward = z.strictObject({
  description: text(),
  from: described(Endpoints, 'The zone(s) the forwarded service is published to, usually net.'),
  to: described(z.string(), 'The guest (or address) that serves it.'),
  service: serviceNames(),
  proto: z.optional(z.enum(['tcp', 'udp'])),
  ports: z.optional(Ports),
  to_port: described(z.optional(int()), 'Translate a single external port to this port on the guest.'),
  address: described(z.optional(z.string()), "The public address to forward (default: the host's addresses on the from zone's interfaces)."),
  hairpin: described(z.optional(z.boolean()), "Let every other zone reach the service by the public address too (default true)."),
});

export const Masquerade = z.strictObject({
  from: Endpoints,
  to: Name,
  family: described(z.optional(z.enum(['ipv4', 'ipv6', 'both'])), 'Which traffic to masquerade (default ipv4; IPv6 is usually routed).'),
});

export const Snat = z.strictObject({
  from: Endpoints,
  to: Name,
  address: AddressText,
});

export const Helper = z.strictObject({
  helper: z.enum(['sip', 'ftp']),
  from: Endpoints,
  to: Endpoints,
  ports: described(z.optional(Ports), 'The control ports (default: 5060 for sip, 21 for ftp).'),
});

/** One host of a fleet policy: what the single-host policy declares under host.interfaces and bridges. */
export const FleetHost = described(
  z.strictObject({
    description: text(),
    interfaces: z.optional(z.record(IfName, HostInterface)),
    bridges: z.optional(z.record(IfName, Bridge)),
  }),
  "One host of the fleet: its own interfaces and bridges (zones, services and rules are shared).",
);

export const Policy = meta(
  z.strictObject({
    version: described(z.literal(1), 'The policy language version. Always 1 for now.'),
    host: z.optional(z.strictObject({
      name: z.optional(z.string()),
      interfaces: z.optional(z.record(IfName, HostInterface)),
    })),
    hosts: described(
      z.optional(z.record(Name, FleetHost)),
      'Several hosts in one policy (a fleet): each declares its interfaces and bridges here instead of host: and bridges:; compile, apply and install take --host NAME.',
    ),
    zones: z.record(ZoneName, Zone),
    bridges: z.optional(z.record(IfName, Bridge)),
    guests: z.optional(z.record(Name, Guest)),
    services: z.optional(z.record(Name, ServiceDef)),
    policies: described(z.optional(z.array(ZonePolicy)), 'Zone-to-zone defaults, first match wins. Pairs no policy covers drop.'),
    rules: described(z.optional(z.array(Rule)), 'Exceptions to the policies, checked in order before them.'),
    forwards: described(z.optional(z.array(Forward)), 'Port forwards (DNAT) to guests.'),
    nat: z.optional(z.strictObject({
      masquerade: z.optional(z.array(Masquerade)),
      snat: z.optional(z.array(Snat)),
      hairpin_mark: described(
        z.optional(int()),
        'The packet mark bit that tells the bridge table a connection was DNATed, on kernels without bridge conntrack (default 0x1000). One bit, e.g. 0x1000; guestwall only ORs it in and tests it, other bits stay. Change it if other software on the host uses that bit.',
      ),
    })),
    helpers: described(z.optional(z.array(Helper)), 'Conntrack helpers, only where asked for (never implicit).'),
  }),
  { title: 'guestwall policy', description: 'A guestwall policy: zones, bridges, guests and the rules between them.' },
);

export type Policy = z.infer<typeof Policy>;
export type ZonePolicy = z.infer<typeof ZonePolicy>;
export type Rule = z.infer<typeof Rule>;
export type Forward = z.infer<typeof Forward>;
export type Guest = z.infer<typeof Guest>;
export type GuestInterface = z.infer<typeof GuestInterface>;
export type ServiceDef = z.infer<typeof ServiceDef>;
export type FleetHost = z.infer<typeof FleetHost>;
export type PortSpec = z.infer<typeof PortSpec>;
