// The symbolic constants nft accepts in the places the evaluator reads, with the numbers the
// kernel compares (nft's src/proto.c, src/ct.c, src/meta.c, src/fib.c). Rules compare numbers,
// so `icmp type 8` and `icmp type echo-request` are one match.

export const ICMP_TYPE: Readonly<Record<string, number>> = {
  'echo-reply': 0, 'destination-unreachable': 3, 'source-quench': 4, redirect: 5, 'echo-request': 8,
  'router-advertisement': 9, 'router-solicitation': 10, 'time-exceeded': 11, 'parameter-problem': 12,
  'timestamp-request': 13, 'timestamp-reply': 14, 'info-request': 15, 'info-reply': 16,
  'address-mask-request': 17, 'address-mask-reply': 18,
};

export const ICMPV6_TYPE: Readonly<Record<string, number>> = {
  'destination-unreachable': 1, 'packet-too-big': 2, 'time-exceeded': 3, 'parameter-problem': 4,
  'echo-request': 128, 'echo-reply': 129, 'mld-listener-query': 130, 'mld-listener-report': 131,
  'mld-listener-done': 132, 'mld-listener-reduction': 132, 'nd-router-solicit': 133, 'nd-router-advert': 134,
  'nd-neighbor-solicit': 135, 'nd-neighbor-advert': 136, 'nd-redirect': 137, 'router-renumbering': 138,
  'ind-neighbor-solicit': 141, 'ind-neighbor-advert': 142, 'mld2-listener-report': 143,
};

/** `meta l4proto`: IP protocol numbers; nft spells ICMPv6 `ipv6-icmp` and also reads `icmpv6`. */
export const L4PROTO: Readonly<Record<string, number>> = { icmp: 1, tcp: 6, udp: 17, 'ipv6-icmp': 58, icmpv6: 58 };

/** `meta nfproto`: the netfilter protocol family of the packet. */
export const NFPROTO: Readonly<Record<string, number>> = { ipv4: 2, ipv6: 10 };

/** `ct state` bits; a packet has exactly one of them. */
export const CT_STATES = ['invalid', 'established', 'related', 'new', 'untracked'] as const;

/** `ct status` bits nft names; a packet description only knows dnat and snat. */
export const CT_STATUS = ['expected', 'seen-reply', 'assured', 'confirmed', 'snat', 'dnat', 'dying'] as const;

/** `fib ... type` results (RTN_* route types). */
export const FIB_TYPES = [
  'unspec', 'unicast', 'local', 'broadcast', 'anycast', 'multicast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'nat', 'xresolve',
] as const;

/** `tcp flags` bits. */
export const TCP_FLAGS = ['fin', 'syn', 'rst', 'psh', 'ack', 'urg', 'ecn', 'cwr'] as const;

/** `ether type` values nft names (the ones guestwall reads). */
export const ETHER_TYPES = ['ip', 'arp', 'ip6', 'vlan', '8021q', '8021ad'] as const;
