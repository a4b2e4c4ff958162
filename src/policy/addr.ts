// Address syntax and math for the policy language: host addresses ("10.0.0.5", "10.0.0.1/24" on
// an interface) and networks ("10.0.0.0/24"), IPv4 and IPv6 alike. Canonical text is what the
// compiler emits, so "fd00:0::1" and "fd00::1" are one address everywhere.
export type IpFamily = 4 | 6;

export interface Network {
  family: IpFamily;
  /** Canonical network address (host bits zero). */
  addr: string;
  len: number;
  start: bigint;
  end: bigint;
}

/** A host address; `len` is the prefix it was written with (32/128 when none). */
export interface HostAddress {
  family: IpFamily;
  addr: string;
  len: number;
  value: bigint;
  /** The subnet the address was written in ("10.0.0.1/24" -> 10.0.0.0/24); a /32 or /128 otherwise. */
  network: Network;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

// Hand-written because policies carry tens of thousands of addresses and this is the hot path of
// loading one; tests check it against ip-cidr on random addresses.
const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const HEXGROUP = /^[0-9a-fA-F]{1,4}$/;

/** An IPv4 address as a 32-bit unsigned number. */
function parseV4(s: string): number | undefined {
  const m = V4.exec(s);
  if (!m) return undefined;
  return ((Number(m[1]) << 24) >>> 0) + (Number(m[2]) << 16) + (Number(m[3]) << 8) + Number(m[4]);
}

/** An IPv6 address as its eight 16-bit groups. */
function parseV6(s: string): number[] | undefined {
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const g = items[i]!;
      if (i === items.length - 1 && g.includes('.')) {
        const v4 = parseV4(g);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else if (HEXGROUP.test(g)) out.push(parseInt(g, 16));
      else return undefined;
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  if (halves.length === 2 ? head.length + tail.length > 7 : head.length !== 8) return undefined;
  // An embedded IPv4 may only close the address.
  if (halves.length === 2 && halves[0]!.includes('.')) return undefined;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** Eight 16-bit groups as one 128-bit value: four 32-bit words, so a handful of BigInt operations. */
function groupsValue(g: readonly number[]): bigint {
  const word = (i: number) => BigInt(g[i]! * 0x10000 + g[i + 1]!);
  return (word(0) << 96n) | (word(2) << 64n) | (word(4) << 32n) | word(6);
}

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run as "::"). */
export function formatAddress(value: bigint, family: IpFamily): string {
  if (family === 4) return formatV4(Number(value));
  const digits = value.toString(16).padStart(32, '0');
  return formatIpv6Groups(Array.from({ length: 8 }, (_, i) => parseInt(digits.slice(4 * i, 4 * i + 4), 16)));
}

function formatV4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

/** RFC 5952 text of an IPv6 address given as its eight 16-bit groups. */
export function formatIpv6Groups(g: readonly number[]): string {
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return `::ffff:${formatV4(g[6]! * 0x10000 + g[7]!)}`;
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = (xs: readonly number[]) => xs.map((x) => x.toString(16)).join(':');
  return best < 0 ? hex(g) : `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

function familyOf(s: string): IpFamily {
  return s.includes(':') ? 6 : 4;
}

/** `addr` is the canonical text of `value`: a host address is its own /32 or /128 network. */
function toNetwork(value: bigint, addr: string, family: IpFamily, len: number): Network {
  const bits = family === 4 ? 32 : 128;
  if (len === bits) return { family, addr, len, start: value, end: value };
  const hostMask = (1n << BigInt(bits - len)) - 1n;
  const start = value & ~hostMask & ((1n << BigInt(bits)) - 1n);
  return { family, addr: formatAddress(start, family), len, start, end: start | hostMask };
}

/** Policies repeat addresses between checks, model and rules: parse each text once. */
const parsedHosts = new Map<string, Parsed<HostAddress>>();

export function parseHostAddress(text: string): Parsed<HostAddress> {
  let r = parsedHosts.get(text);
  if (r === undefined) {
    if (parsedHosts.size > 200_000) parsedHosts.clear();
    r = parseHostAddressUncached(text);
    parsedHosts.set(text, r);
  }
  return r;
}

function parseHostAddressUncached(text: string): Parsed<HostAddress> {
  const [ip, lenText, ...rest] = text.split('/');
  const family = familyOf(ip ?? '');
  const parsed = ip === undefined || rest.length > 0 ? undefined : parseIp(ip, family);
  if (parsed === undefined) return { ok: false, reason: `'${text}' is not an IPv4 or IPv6 address` };
  const max = family === 4 ? 32 : 128;
  const len = lenText === undefined ? max : Number(lenText);
  if (lenText !== undefined && (!/^\d{1,3}$/.test(lenText) || len > max)) {
    return { ok: false, reason: `'${text}' has an invalid prefix length (0 to ${max})` };
  }
  const { value, addr } = parsed;
  return { ok: true, value: { family, addr, len, value, network: toNetwork(value, addr, family, len) } };
}

/** An address without prefix: its value and canonical text, both from one parse. */
function parseIp(ip: string, family: IpFamily): { value: bigint; addr: string } | undefined {
  if (family === 4) {
    const n = parseV4(ip);
    return n === undefined ? undefined : { value: BigInt(n), addr: formatV4(n) };
  }
  const g = parseV6(ip);
  return g === undefined ? undefined : { value: groupsValue(g), addr: formatIpv6Groups(g) };
}

export function parseNetwork(text: string): Parsed<Network> {
  const host = parseHostAddress(text);
  if (!host.ok) return { ok: false, reason: host.reason.replace('an IPv4 or IPv6 address', 'an IPv4 or IPv6 network (CIDR)') };
  const net = host.value.network;
  if (net.start !== host.value.value) {
    return { ok: false, reason: `'${text}' has host bits set; write '${net.addr}/${net.len}'` };
  }
  return { ok: true, value: net };
}

export function contains(net: Network, value: bigint, family: IpFamily): boolean {
  return net.family === family && net.start <= value && value <= net.end;
}

export function overlaps(a: Network, b: Network): boolean {
  return a.family === b.family && a.start <= b.end && b.start <= a.end;
}

export function networkText(n: Network): string {
  return `${n.addr}/${n.len}`;
}
