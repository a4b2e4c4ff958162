// A guest moves between two hosts of a fleet policy: the "VM" is a network namespace whose
// routed veth port (kvm-vm) goes away on host A and comes back on host B with the same name.
// Each host runs its own compiled ruleset and hooks (compile --out --host, apply --host --netns);
// the hooks are called as libvirt would. Right after port-up on B, new connections to the
// guest's routed address and to its forwarded service on B work at the first attempt (connect
// timeout 2 s: the neighbours learnt the move from the announcement), and A keeps no route or
// proxy entry for it.
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ResultPromise, execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addNamespace, deleteNamespace, kernelTestUnavailable, namespaceName } from '../support/kernel.js';

async function toolsMissing(): Promise<string | undefined> {
  for (const [cmd, pkg] of [['arp-scan', 'arp-scan'], ['na6', 'ipv6toolkit'], ['python3', 'python3']] as const) {
    const r = await execa('sh', ['-c', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$1"', 'sh', cmd], { reject: false });
    if (r.exitCode !== 0) return `needs ${cmd} (Debian package ${pkg}) for the port-up announcement`;
  }
  return undefined;
}
const skip = kernelTestUnavailable() ?? (await toolsMissing());

const POLICY = `version: 1
hosts:
  a: { interfaces: { eth0: { zone: net, addresses: [10.88.0.2/24, "fd88::2/64"] } } }
  b: { interfaces: { eth0: { zone: net, addresses: [10.88.0.3/24, "fd88::3/64"] } } }
zones:
  net: {}
  web: { networks: [10.88.0.16/28, "fd88::/120"] }
guests:
  vm:
    platform: kvm
    zone: web
    host: a
    may_run_on: [b]
    interfaces:
      - { mode: routed, name: kvm-vm, mac: "02:00:0a:58:00:14", addresses: [10.88.0.20, "fd88::20"] }
policies:
  - { from: host, to: all, action: accept }
  - { from: web, to: net, action: accept }
  - { from: all, to: all, action: drop }
rules:
  - { from: net, to: vm, proto: tcp, ports: 8080, action: accept }
forwards:
  - { from: net, to: vm, proto: tcp, ports: 9090, to_port: 8080 }
`;

// One TCP connection with a 2 s timeout; prints what the guest's server says.
const CONNECT = 'import socket,sys\ns=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=2)\nprint(s.recv(16).decode().strip())';
const SERVE = 'import socket\ns=socket.socket(socket.AF_INET6)\ns.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,0)\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(("::",8080))\ns.listen(16)\nwhile True:\n  c,_=s.accept()\n  c.sendall(b"vm\\n")\n  c.close()';

describe.skipIf(skip !== undefined)(`a guest moves between two hosts${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const up = namespaceName('gwup');
  const hostA = namespaceName('gwha');
  const hostB = namespaceName('gwhb');
  const vm = namespaceName('gwvm');
  const made: string[] = [];
  let dir = '';
  let server: ResultPromise | undefined;
  const ip = (ns: string, ...a: string[]) => execa('ip', ['-n', ns, ...a]);
  const inNs = (ns: string, argv: string[]) => execa('ip', ['netns', 'exec', ns, ...argv], { reject: false });
  const hook = (ns: string, host: string, which: 'port-up' | 'port-down') => inNs(ns, ['sh', join(dir, host, 'network/etc/guestwall/hooks', which), 'kvm-vm']);
  const connect = async (addr: string, port: number) => (await inNs(up, ['python3', '-c', CONNECT, addr, String(port)])).stdout.trim();
  const macOf = async (ns: string) => JSON.parse((await ip(ns, '-j', 'link', 'show', 'eth0')).stdout)[0].address as string;
  const neigh = async (addr: string) => (await ip(up, 'neigh', 'show', addr, 'dev', 'br0')).stdout;

  /** The VM's interface appears on a host (as the hypervisor creates it), configured inside the guest as before. */
  const plugVm = async (ns: string) => {
    await execa('ip', ['link', 'add', 'kvm-vm', 'netns', ns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', vm, 'address', '02:00:0a:58:00:14']);
    await ip(vm, 'addr', 'add', '10.88.0.20/32', 'dev', 'eth0');
    await ip(vm, '-6', 'addr', 'add', 'fd88::20/128', 'dev', 'eth0', 'nodad');
    await ip(vm, 'link', 'set', 'eth0', 'up');
    await ip(vm, 'route', 'add', '169.254.0.1', 'dev', 'eth0');
    await ip(vm, 'route', 'add', 'default', 'via', '169.254.0.1', 'dev', 'eth0');
    await ip(vm, '-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', 'eth0');
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'guestwall-move-'));
    writeFileSync(join(dir, 'fleet.yaml'), POLICY);
    for (const ns of [up, hostA, hostB, vm]) {
      await addNamespace(ns);
      made.push(ns);
      await ip(ns, 'link', 'set', 'lo', 'up');
    }
    // The upstream router and client: a bridge to both hosts' eth0.
    await ip(up, 'link', 'add', 'br0', 'type', 'bridge');
    await ip(up, 'addr', 'add', '10.88.0.1/24', 'dev', 'br0');
    await ip(up, '-6', 'addr', 'add', 'fd88::1/64', 'dev', 'br0', 'nodad');
    await ip(up, 'link', 'set', 'br0', 'up');
    for (const [ns, n, host] of [[hostA, 2, 'a'], [hostB, 3, 'b']] as const) {
      await execa('ip', ['link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', `to-${host}`, 'netns', up]);
      await ip(up, 'link', 'set', `to-${host}`, 'master', 'br0');
      await ip(up, 'link', 'set', `to-${host}`, 'up');
      await ip(ns, 'addr', 'add', `10.88.0.${n}/24`, 'dev', 'eth0');
      await ip(ns, '-6', 'addr', 'add', `fd88::${n}/64`, 'dev', 'eth0', 'nodad');
      await ip(ns, 'link', 'set', 'eth0', 'up');
      const c = await execa('node', ['bin/guestwall.js', 'compile', join(dir, 'fleet.yaml'), '--host', host, '--out', join(dir, host), '--kernel-features', 'baseline'], { reject: false, all: true });
      expect(c.exitCode, c.all).toBe(0);
      const a = await execa('node', ['bin/guestwall.js', 'apply', join(dir, 'fleet.yaml'), '--host', host, '--netns', ns, '--state-dir', join(dir, `state-${host}`)], { reject: false, all: true });
      expect(a.exitCode, a.all).toBe(0);
    }
    server = execa('ip', ['netns', 'exec', vm, 'python3', '-c', SERVE], { reject: false });
    await plugVm(hostA);
    const upA = await hook(hostA, 'a', 'port-up');
    expect(upA.exitCode, upA.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    if (server?.pid !== undefined) server.kill('SIGKILL');
    await server?.catch(() => undefined);
    for (const ns of made) await deleteNamespace(ns);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves on host A first, by its routed addresses and by the forward on A', async () => {
    expect(await connect('10.88.0.20', 8080)).toBe('vm');
    expect(await connect('fd88::20', 8080)).toBe('vm');
    expect(await connect('10.88.0.2', 9090)).toBe('vm');
    expect(await neigh('10.88.0.20')).toContain(await macOf(hostA));
  });

  it('moves to host B: A forgets it, B announces it, new connections work at once', async () => {
    // The guest stops on A: the hypervisor runs port-down, then the interface goes.
    expect((await hook(hostA, 'a', 'port-down')).exitCode).toBe(0);
    await ip(hostA, 'link', 'del', 'kvm-vm');
    expect((await ip(hostA, 'route', 'show', '10.88.0.20')).stdout).toBe('');
    expect((await ip(hostA, '-6', 'route', 'show', 'fd88::20')).stdout).toBe('');
    expect((await ip(hostA, 'neigh', 'show', 'proxy')).stdout).not.toMatch(/10\.88\.0\.20|fd88::20/);

    // It starts on B from the same snippet (same interface name, MAC and addresses).
    await plugVm(hostB);
    const upB = await hook(hostB, 'b', 'port-up');
    expect(upB.exitCode, upB.stderr).toBe(0);
    expect(upB.stderr).not.toContain('missing');
    // The neighbours were told: their entries for the guest now name B.
    const macB = await macOf(hostB);
    expect(await neigh('10.88.0.20')).toContain(macB);
    expect(await neigh('fd88::20')).toContain(macB);
    // First attempts, 2 s connect timeout each.
    expect(await connect('10.88.0.20', 8080)).toBe('vm');
    expect(await connect('fd88::20', 8080)).toBe('vm');
    expect(await connect('10.88.0.3', 9090)).toBe('vm');
    expect((await ip(hostB, 'neigh', 'show', 'proxy')).stdout).toMatch(/10\.88\.0\.20 dev eth0/);
    // A's ruleset still holds the guest (it may come back); only its host-side setup went.
    expect(readFileSync(join(dir, 'a', 'ruleset.nft'), 'utf8')).toContain('kvm-vm');
  });
});
