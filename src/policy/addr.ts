// Address syntax and math for the policy language: host addresses ("10.0.0.5", "10.0.0.1/24" on
// an interface) and networks ("10.0.0.0/24"), IPv4 and IPv6 alike. Canonical text is what the
// compiler emits, so "fd00:0::1" and "fd00::1" are one address everywhere.
import IPCIDR from 'ip-cidr';

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

function familyOf(s: string): IpFamily {
  return s.includes(':') ? 6 : 4;
}

function toNetwork(cidr: string): Network {
  const c = new IPCIDR(cidr);
  const start = BigInt(String(c.start({ type: 'bigInteger' })));
  const end = BigInt(String(c.end({ type: 'bigInteger' })));
  const family = familyOf(cidr);
  const len = Number(cidr.split('/')[1]);
  return { family, addr: IPCIDR.createAddress(c.start() as string).correctForm(), len, start, end };
}

export function parseHostAddress(text: string): Parsed<HostAddress> {
  const [ip, lenText, ...rest] = text.split('/');
  if (ip === undefined || rest.length > 0 || !IPCIDR.isValidAddress(ip) || ip.includes('/')) {
    return { ok: false, reason: `'${text}' is not an IPv4 or IPv6 address` };
  }
  const family = familyOf(ip);
  const max = family === 4 ? 32 : 128;
  const len = lenText === undefined ? max : Number(lenText);
  if (!/^\d{1,3}$/.test(lenText ?? String(max)) || len > max) {
    return { ok: false, reason: `'${text}' has an invalid prefix length (0 to ${max})` };
  }
  const a = IPCIDR.createAddress(ip);
  const value = BigInt(a.bigInteger().toString());
  return { ok: true, value: { family, addr: a.correctForm(), len, value, network: toNetwork(`${ip}/${len}`) } };
}

export function parseNetwork(text: string): Parsed<Network> {
  const host = parseHostAddress(text.includes('/') ? text : `${text}/${text.includes(':') ? 128 : 32}`);
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
