// Ethernet frames built byte by byte (with correct IP, UDP and ICMPv6 checksums, so that
// conntrack does not call them invalid), sent and sniffed with AF_PACKET sockets by a few lines of
// Python inside a test's namespace. For what a normal socket cannot send: another source MAC,
// another source address, ARP replies, DHCP offers and router advertisements.
import { execa } from 'execa';
import { parseHostAddress } from '../../src/policy/addr.js';

const mac = (m: string) => Buffer.from(m.split(':').map((h) => parseInt(h, 16)));

function addr(a: string): Buffer {
  const r = parseHostAddress(a);
  if (!r.ok) throw new Error(`not an address: ${a}`);
  const n = r.value.family === 4 ? 4 : 16;
  const out = Buffer.alloc(n);
  let v = r.value.value;
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function checksum(...parts: Buffer[]): number {
  const b = Buffer.concat(parts);
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) + (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u32 = (n: number) => Buffer.from([n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);

export function ether(dst: string, src: string, type: number, payload: Buffer): Buffer {
  return Buffer.concat([mac(dst), mac(src), u16(type), payload]);
}

/** An IP packet (v4 or v6 by the addresses) carrying `proto` (17 udp, 58 icmpv6) with `l4` built by `body`. */
function ip(src: string, dst: string, proto: number, l4: (pseudo: Buffer) => Buffer, hopLimit = 64): { type: number; packet: Buffer } {
  const s = addr(src);
  const d = addr(dst);
  if (s.length === 4) {
    const payload = l4(Buffer.concat([s, d, Buffer.from([0, proto])]));
    const h = Buffer.concat([Buffer.from([0x45, 0]), u16(20 + payload.length), u16(0x1234), u16(0x4000), Buffer.from([hopLimit, proto]), u16(0), s, d]);
    h.writeUInt16BE(checksum(h), 10);
    return { type: 0x0800, packet: Buffer.concat([h, payload]) };
  }
  const payload = l4(Buffer.concat([s, d, Buffer.from([0, 0, 0, 0, 0, 0, 0, proto])]));
  const h = Buffer.concat([u32(0x60000000), u16(payload.length), Buffer.from([proto, hopLimit]), s, d]);
  return { type: 0x86dd, packet: Buffer.concat([h, payload]) };
}

export interface Frame {
  srcMac: string;
  dstMac: string;
}

export function udpFrame(f: Frame & { src: string; dst: string; sport: number; dport: number; data: string }): Buffer {
  const { type, packet } = ip(f.src, f.dst, 17, (pseudo) => {
    const body = Buffer.from(f.data);
    const len = 8 + body.length;
    const h = Buffer.concat([u16(f.sport), u16(f.dport), u16(len), u16(0), body]);
    const lenField = pseudo.length === 10 ? u16(len) : u32(len);
    const ps = pseudo.length === 10 ? Buffer.concat([pseudo, lenField]) : Buffer.concat([pseudo.subarray(0, 32), lenField, pseudo.subarray(36)]);
    h.writeUInt16BE(checksum(ps, h) || 0xffff, 6);
    return h;
  });
  return ether(f.dstMac, f.srcMac, type, packet);
}

/** ICMPv6 with a correct checksum; `rest` follows type, code and checksum. */
export function icmpv6Frame(f: Frame & { src: string; dst: string; type: number; rest: Buffer }): Buffer {
  const { type, packet } = ip(f.src, f.dst, 58, (pseudo) => {
    const h = Buffer.concat([Buffer.from([f.type, 0]), u16(0), f.rest]);
    const ps = Buffer.concat([pseudo.subarray(0, 32), u32(h.length), pseudo.subarray(36)]);
    h.writeUInt16BE(checksum(ps, h), 2);
    return h;
  }, 255);
  return ether(f.dstMac, f.srcMac, type, packet);
}

/** A router advertisement: hop limit 64, no flags, lifetime 1800 s. */
export function routerAdvert(f: Frame & { src: string }): Buffer {
  return icmpv6Frame({ ...f, dst: 'ff02::1', type: 134, rest: Buffer.concat([Buffer.from([64, 0]), u16(1800), u32(0), u32(0)]) });
}

/** An unsolicited neighbour advertisement: "target is at srcMac". */
export function neighbourAdvert(f: Frame & { src: string; target: string }): Buffer {
  return icmpv6Frame({ ...f, dst: 'ff02::1', type: 136, rest: Buffer.concat([u32(0x20000000), addr(f.target), Buffer.from([2, 1]), mac(f.srcMac)]) });
}

/** ARP: op 1 request, 2 reply; sender and target hardware and protocol addresses. */
export function arpFrame(f: Frame & { op: 1 | 2; sha: string; spa: string; tha: string; tpa: string }): Buffer {
  const body = Buffer.concat([u16(1), u16(0x0800), Buffer.from([6, 4]), u16(f.op), mac(f.sha), addr(f.spa), mac(f.tha), addr(f.tpa)]);
  return ether(f.dstMac, f.srcMac, 0x0806, body);
}

const SEND = String.raw`
import binascii, socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((sys.argv[1], 0))
for h in sys.argv[2:]: s.send(binascii.unhexlify(h))
`;

const SNIFF = String.raw`
import binascii, select, socket, sys, time
want = [binascii.unhexlify(h) for h in sys.argv[2:]]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)); s.bind((sys.argv[1], 0))
print("ready", flush=True)
end = None; n = 0
while end is None or time.time() < end:
    r, _, _ = select.select([s, 0] if end is None else [s], [], [], 0.05)
    if 0 in r:
        sys.stdin.readline(); end = time.time() + 0.4  # told the frames are sent: a little longer, then report
    if s in r:
        f, a = s.recvfrom(65535)
        if a[2] != socket.PACKET_OUTGOING and any(f.startswith(w) for w in want): n += 1
print(n, flush=True)
`;

/** Send `frames` from `ifname` in `ns`. */
export async function sendFrames(ns: string, ifname: string, frames: Buffer[]): Promise<void> {
  await execa('ip', ['netns', 'exec', ns, 'python3', '-c', SEND, ifname, ...frames.map((f) => f.toString('hex'))]);
}

/**
 * How many of `frames` arrive on `ifname` in `ns` when `action` sends them: the sniffer listens
 * before the action starts and keeps listening a little after it ends.
 */
export async function framesArriving(ns: string, ifname: string, frames: Buffer[], action: () => Promise<void>): Promise<number> {
  const sniffer = execa('ip', ['netns', 'exec', ns, 'python3', '-u', '-c', SNIFF, ifname, ...frames.map((f) => f.toString('hex'))], { stdin: 'pipe', buffer: true });
  await new Promise<void>((resolve, reject) => {
    sniffer.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
    sniffer.catch(reject);
  });
  try {
    await action();
  } finally {
    sniffer.stdin!.end('sent\n');
  }
  const { stdout } = await sniffer;
  return Number(String(stdout).trim().split('\n').pop());
}
