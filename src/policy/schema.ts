// The policy language: the one source of both the validator and the JSON Schema that editors
// use (`guestwall schema`). Shapes only: references between names, address math and other
// cross-field rules are checked in checks.ts, with the same locations.
import { z } from 'zod';

export const NAME = /^[a-z][a-z0-9_-]*$/;
const nameText = 'lowercase letters, digits, - and _, starting with a letter';

/** Names of zones, guests and services: they become chain and set names in the ruleset. */
export const Name = z
  .string()
  .max(24)
  .regex(NAME, { message: `must be ${nameText}` })
  .meta({ description: `A name: ${nameText}; at most 24 characters.` });

/**
 * Zone names become chain names joined by "_to_" ("lan_to_dmz"), so they may not contain "_":
 * zones "a" and "b_to_c" would otherwise share a chain with zones "a_to_b" and "c".
 */
export const ZONE_NAME = /^[a-z][a-z0-9-]*$/;
export const ZoneName = z
  .string()
  .max(24)
  .regex(ZONE_NAME, { message: 'must be lowercase letters, digits and -, starting with a letter (no "_": zone names are joined by "_to_" in chain names)' })
  .meta({ description: 'A zone name: lowercase letters, digits and -, starting with a letter; at most 24 characters.' });

/** A Linux interface name as the kernel takes it; length is checked with a precise message later. */
export const IfName = z.string().meta({
  description: 'A Linux interface name: at most 15 characters, no "/", ":", "*" or whitespace.',
});

export const AddressText = z.string().meta({
  description: 'An IPv4 or IPv6 address, optionally with its prefix length ("10.0.0.1/24", "fd00::1/64").',
  examples: ['192.0.2.10', '2001:db8::10/64'],
});
export const NetworkText = z.string().meta({
  description: 'An IPv4 or IPv6 network in CIDR notation ("10.0.10.0/24", "fd00:10::/64").',
  examples: ['10.0.10.0/24', 'fd00:10::/64'],
});

/** A port, or a range "lo-hi"; ranges and bounds are checked in checks.ts with locations. */
export const PortSpec = z.union([z.number().int(), z.string().regex(/^\s*\d+\s*(-\s*\d+\s*)?$/, { message: 'must be a port number or a range like "10000-20000"' })]).meta({
  description: 'A port (1-65535) or an inclusive range "lo-hi".',
  examples: [5060, '10000-20000'],
});
export const Ports = z.union([PortSpec, z.array(PortSpec).min(1)]);

export const Action = z.enum(['accept', 'drop', 'reject']).meta({ description: 'What happens to a matching new connection.' });

export const Log = z
  .union([z.boolean(), z.string().max(20).regex(/^[A-Za-z0-9 _:.\->]*$/, { message: 'must be a short plain prefix' })])
  .meta({ description: 'Log matching packets (rate limited for default policies); a string sets the log prefix.' });

// 1 to 999,999,999 per unit: nft takes a 64-bit rate, but 0 is refused and JSON loses precision past 2^53.
const RATE = /^\s*[1-9]\d{0,8}\s*\/\s*(second|minute|hour|day)\s*$/;
export const Limit = z.union([
  z.string().regex(RATE, { message: 'must look like "10/minute": 1 to 999999999 per second, minute, hour or day' }),
  z.strictObject({
    rate: z.string().regex(RATE, { message: 'must look like "10/minute": 1 to 999999999 per second, minute, hour or day' }),
    burst: z.number().int().min(1).max(100_000).optional(),
  }),
]).meta({ description: 'Rate limit: "N/second|minute|hour|day", optionally with a burst. Connections over the limit fall through to the next rule.' });

/** One endpoint or several: a zone, a guest, "host" (this machine), "all", or an address/CIDR. */
export const Endpoints = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).meta({
  description: 'A zone, a guest, "host" (the firewall itself), "all", or an IPv4/IPv6 address or CIDR; or a list of these.',
});

export const ServiceDef = z
  .strictObject({
    description: z.string().optional(),
    tcp: Ports.optional(),
    udp: Ports.optional(),
    icmp: z.array(z.string()).optional().meta({ description: 'ICMP (IPv4) types by name, e.g. echo-request.' }),
    icmpv6: z.array(z.string()).optional().meta({ description: 'ICMPv6 types by name, e.g. echo-request.' }),
  })
  .meta({ description: 'A service: the ports and ICMP types it uses.' });

export const HostInterface = z.strictObject({
  zone: Name.meta({ description: 'The zone this interface belongs to.' }),
  addresses: z.array(AddressText).optional().meta({
    description: "The host's own addresses on this interface; used to match port forwards to the public address (hairpin NAT).",
  }),
  description: z.string().optional(),
});

export const Zone = z.strictObject({
  description: z.string().optional(),
  networks: z.array(NetworkText).optional().meta({
    description: "The zone's address space. Guest and bridge addresses in this zone must lie inside it.",
  }),
  public: z.boolean().optional().meta({
    description: 'The zone faces the internet (default: true for zones named net, wan or internet). Permissive policies from it are warned about.',
  }),
});

export const Bridge = z.strictObject({
  zone: Name.meta({ description: 'The zone of the bridge and of every guest interface on it.' }),
  ports: z.array(IfName).optional().meta({ description: 'Host interfaces enslaved to the bridge (uplinks).' }),
  addresses: z.array(AddressText).optional().meta({ description: "The host's addresses on the bridge (the guests' gateway)." }),
  description: z.string().optional(),
});

const InterfaceCommon = {
  name: IfName.optional().meta({
    description: 'The stable host-side interface name (at most 15 characters). Derived from the guest name when omitted.',
  }),
  mac: z.string().optional().meta({ description: 'The guest-side MAC address, e.g. 02:00:0a:00:0a:0a.' }),
  addresses: z.array(AddressText).optional().meta({ description: 'The addresses the guest uses on this interface (IPv4 and IPv6).' }),
};

export const BridgedInterface = z.strictObject({
  mode: z.literal('bridged'),
  bridge: z.string().meta({ description: 'The bridge this interface is a port of.' }),
  ...InterfaceCommon,
});

export const RoutedInterface = z.strictObject({
  mode: z.literal('routed'),
  zone: Name.optional().meta({ description: "The zone of this interface (default: the guest's zone)." }),
  ...InterfaceCommon,
});

export const GuestInterface = z.discriminatedUnion('mode', [BridgedInterface, RoutedInterface]).meta({
  description: 'A guest interface: a port of a bridge ("bridged") or its own point-to-point link routed by the host ("routed").',
});

export const Guest = z.strictObject({
  platform: z.enum(['xen', 'kvm', 'lxc']),
  zone: Name.optional().meta({ description: "The guest's zone (default: the zone of its first interface)." }),
  description: z.string().optional(),
  interfaces: z.array(GuestInterface).min(1),
  xen: z
    .strictObject({ type: z.enum(['pv', 'pvh', 'hvm']).optional() })
    .optional()
    .meta({ description: 'Xen details: HVM guests also get a "<vifname>-emu" tap, so their names have at most 11 characters.' }),
  router: z.boolean().optional().meta({ description: 'The guest may act as a router (send router advertisements, answer DHCP).' }),
  host: Name.optional().meta({
    description: 'Fleet policies (with hosts:): the host the guest runs on now. Its interfaces, names, MACs and addresses travel with it.',
  }),
  may_run_on: z.union([z.literal('all'), z.array(Name).min(1)]).optional().meta({
    description: 'Fleet policies: the hosts the guest may move to ("all", or a list; its host: is always included). Each of their rulesets holds the guest.',
  }),
  lxc: z
    .strictObject({
      unprivileged: z.boolean().optional().meta({
        description: 'A non-root user starts the container (lxc-user-nic), so LXC ignores veth.pair and the host-side names are random: guestwall warns.',
      }),
    })
    .optional()
    .meta({ description: 'LXC details.' }),
});

export const ZonePolicy = z.strictObject({
  from: Endpoints,
  to: Endpoints,
  action: Action,
  log: Log.optional(),
});

export const Rule = z.strictObject({
  description: z.string().optional(),
  from: Endpoints,
  to: Endpoints,
  service: z.union([z.string(), z.array(z.string()).min(1)]).optional().meta({ description: 'A service from the catalogue or from services:, or a list of them.' }),
  proto: z.enum(['tcp', 'udp', 'icmp', 'icmpv6']).optional(),
  ports: Ports.optional(),
  action: Action,
  log: Log.optional(),
  limit: Limit.optional(),
});

export const Forward = z.strictObject({
  description: z.string().optional(),
  from: Endpoints.meta({ description: 'The zone(s) the forwarded service is published to, usually net.' }),
  to: z.string().meta({ description: 'The guest (or address) that serves it.' }),
  service: z.union([z.string(), z.array(z.string()).min(1)]).optional(),
  proto: z.enum(['tcp', 'udp']).optional(),
  ports: Ports.optional(),
  to_port: z.number().int().optional().meta({ description: 'Translate a single external port to this port on the guest.' }),
  address: z.string().optional().meta({
    description: "The public address to forward (default: the host's addresses on the from zone's interfaces).",
  }),
  hairpin: z.boolean().optional().meta({
    description: "Let every other zone reach the service by the public address too (default true).",
  }),
});

export const Masquerade = z.strictObject({
  from: Endpoints,
  to: Name,
  family: z.enum(['ipv4', 'ipv6', 'both']).optional().meta({ description: 'Which traffic to masquerade (default ipv4; IPv6 is usually routed).' }),
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
  ports: Ports.optional().meta({ description: 'The control ports (default: 5060 for sip, 21 for ftp).' }),
});

/** One host of a fleet policy: what the single-host policy declares under host.interfaces and bridges. */
export const FleetHost = z
  .strictObject({
    description: z.string().optional(),
    interfaces: z.record(IfName, HostInterface).optional(),
    bridges: z.record(IfName, Bridge).optional(),
  })
  .meta({ description: "One host of the fleet: its own interfaces and bridges (zones, services and rules are shared)." });

export const Policy = z
  .strictObject({
    version: z.literal(1).meta({ description: 'The policy language version. Always 1 for now.' }),
    host: z
      .strictObject({
        name: z.string().optional(),
        interfaces: z.record(IfName, HostInterface).optional(),
      })
      .optional(),
    hosts: z.record(Name, FleetHost).optional().meta({
      description: 'Several hosts in one policy (a fleet): each declares its interfaces and bridges here instead of host: and bridges:; compile, apply and install take --host NAME.',
    }),
    zones: z.record(ZoneName, Zone),
    bridges: z.record(IfName, Bridge).optional(),
    guests: z.record(Name, Guest).optional(),
    services: z.record(Name, ServiceDef).optional(),
    policies: z.array(ZonePolicy).optional().meta({ description: 'Zone-to-zone defaults, first match wins. Pairs no policy covers drop.' }),
    rules: z.array(Rule).optional().meta({ description: 'Exceptions to the policies, checked in order before them.' }),
    forwards: z.array(Forward).optional().meta({ description: 'Port forwards (DNAT) to guests.' }),
    nat: z
      .strictObject({
        masquerade: z.array(Masquerade).optional(),
        snat: z.array(Snat).optional(),
        hairpin_mark: z.number().int().optional().meta({
          description: 'The packet mark bit that tells the bridge table a connection was DNATed, on kernels without bridge conntrack (default 0x1000). One bit, e.g. 0x1000; guestwall only ORs it in and tests it, other bits stay. Change it if other software on the host uses that bit.',
        }),
      })
      .optional(),
    helpers: z.array(Helper).optional().meta({ description: 'Conntrack helpers, only where asked for (never implicit).' }),
  })
  .meta({ title: 'guestwall policy', description: 'A guestwall policy: zones, bridges, guests and the rules between them.' });

export type Policy = z.infer<typeof Policy>;
export type ZonePolicy = z.infer<typeof ZonePolicy>;
export type Rule = z.infer<typeof Rule>;
export type Forward = z.infer<typeof Forward>;
export type Guest = z.infer<typeof Guest>;
export type GuestInterface = z.infer<typeof GuestInterface>;
export type ServiceDef = z.infer<typeof ServiceDef>;
export type FleetHost = z.infer<typeof FleetHost>;
export type PortSpec = z.infer<typeof PortSpec>;

/** The JSON Schema editors read (yaml-language-server); generated, never written by hand. */
export function policyJsonSchema(): object {
  return z.toJSONSchema(Policy, { target: 'draft-2020-12', unrepresentable: 'any' });
}
