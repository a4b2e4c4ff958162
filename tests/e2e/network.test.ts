// The host network setup on a real kernel, inside throwaway namespaces: a host namespace with
// veth stand-ins for eth0 (the WAN behind it) and eth1 (the LAN behind it); guestwall creates
// br-lan/br-dmz, enslaves eth1, adds the uplink proxy entry and the sysctls; a second apply
// changes nothing. Then the REAL generated port-up configures a routed guest's veth (gw-mail),
// and the guest, configured as the policy says (its addresses as /32 and /128, default via
// 169.254.0.1 and fe80::1), reaches the host's gateway and, through the compiled ruleset,
// the WAN namespace over IPv4 and IPv6; port-down undoes it.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyNetwork } from '../../src/apply/network.js';
import { realSystem } from '../../src/apply/system.js';
import { networkOutput } from '../../src/cli/network.js';
import { run } from '../../src/cli/main.js';
import { compileYaml } from '../support/compile.js';
import { memoryIo } from '../support/io.js';
import { addNamespace, deleteNamespace, kernelTestUnavailable, namespaceName } from '../support/kernel.js';

const skipReason = kernelTestUnavailable();
const POLICY = 'policies/homelab-dmz.yaml';
const policyText = readFileSync(POLICY, 'utf8');
const model = compileYaml(policyText).model;

const host = namespaceName('gwn-host');
const wan = namespaceName('gwn-wan');
const lan = namespaceName('gwn-lan');
const mail = namespaceName('gwn-mail');
const namespaces = [host, wan, lan, mail];
let dir = '';

const sh = (ns: string, cmd: string, args: string[]) => execa('ip', ['netns', 'exec', ns, cmd, ...args], { reject: false });
const ipIn = async (ns: string, ...args: string[]) => {
  const r = await execa('ip', ['-n', ns, ...args], { reject: false });
  if (r.exitCode !== 0) throw new Error(`ip -n ${ns} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const json = async <T>(ns: string, ...args: string[]) => JSON.parse(await ipIn(ns, '-j', ...args)) as T;
const sysctl = async (ns: string, key: string) => (await sh(ns, 'sysctl', ['-n', key])).stdout.trim();
/** One ICMP echo over a raw socket (this machine has no ping): exit 0 when the reply came within 2 s. */
const PING = String.raw`
import os, select, socket, struct, sys, time
dst = sys.argv[1]; v6 = ":" in dst
info = socket.getaddrinfo(dst, None, socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW)[0]
s = socket.socket(info[0], socket.SOCK_RAW, socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
ident = os.getpid() & 0xffff
def csum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
body = struct.pack("!HH", ident, 1) + b"guestwall"
head = struct.pack("!BBH", 128 if v6 else 8, 0, 0)
pkt = head + body if v6 else struct.pack("!BBH", 8, 0, csum(head + body)) + body
s.sendto(pkt, info[4])
end = time.time() + 2
while time.time() < end:
    if not select.select([s], [], [], end - time.time())[0]: break
    data = s.recv(2048)
    icmp = data if v6 else data[(data[0] & 15) * 4:]
    if icmp[0] == (129 if v6 else 0) and struct.unpack("!H", icmp[4:6])[0] == ident: sys.exit(0)
sys.exit(1)
`;
const ping = async (ns: string, addr: string) => (await sh(ns, 'python3', ['-c', PING, addr])).exitCode === 0;

/** A veth pair whose `hostName` end is in the host namespace and `far` end in `farNs`. */
async function veth(hostName: string, farNs: string) {
  await ipIn(host, 'link', 'add', hostName, 'type', 'veth', 'peer', 'name', 'far', 'netns', farNs);
  await ipIn(farNs, 'link', 'set', 'far', 'up');
  await ipIn(farNs, 'link', 'set', 'lo', 'up');
}

describe.skipIf(skipReason !== undefined)(`host network setup in namespaces${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  beforeAll(async () => {
    for (const ns of namespaces) await addNamespace(ns);
    dir = mkdtempSync(join(tmpdir(), 'gwn-'));
    await ipIn(host, 'link', 'set', 'lo', 'up');
    // The admin's uplinks, as the policy describes eth0; guestwall configures neither address.
    await veth('eth0', wan);
    await ipIn(host, 'address', 'add', '203.0.113.10/24', 'dev', 'eth0');
    await ipIn(host, '-6', 'address', 'add', '2001:db8:1::10/64', 'dev', 'eth0', 'nodad');
    await ipIn(host, 'link', 'set', 'eth0', 'up');
    await ipIn(wan, 'address', 'add', '203.0.113.1/24', 'dev', 'far');
    await ipIn(wan, '-6', 'address', 'add', '2001:db8:1::1/64', 'dev', 'far', 'nodad');
    await ipIn(wan, '-6', 'route', 'add', 'default', 'via', '2001:db8:1::10');
    await veth('eth1', lan);
    await ipIn(lan, 'address', 'add', '192.168.1.50/24', 'dev', 'far');
  }, 60_000);

  afterAll(async () => {
    for (const ns of namespaces) await deleteNamespace(ns);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('creates the bridges, enslaves eth1, adds the uplink proxy entry and the sysctls; a second apply changes nothing', async () => {
    const setup = networkOutput(model).setup;
    const lines: string[] = [];
    const first = await applyNetwork(realSystem(host), setup, (l) => lines.push(l));
    expect(first.done.length).toBeGreaterThan(10);
    expect(lines).toContain('network: br-lan: create bridge (no STP, no forward delay)');
    expect(first.notes).toEqual(["gw-mail (mail) is not there yet; skipped: its hook (port-up) configures it when it appears"]);

    const links = await json<{ ifname: string; master?: string; flags: string[]; linkinfo?: { info_kind: string; info_data?: { stp_state: number; forward_delay: number } } }[]>(host, '-d', 'link', 'show');
    const link = (n: string) => links.find((l) => l.ifname === n)!;
    for (const b of ['br-lan', 'br-dmz']) {
      expect(link(b).linkinfo?.info_kind).toBe('bridge');
      expect(link(b).linkinfo?.info_data).toMatchObject({ stp_state: 0, forward_delay: 0 });
      expect(link(b).flags).toContain('UP');
    }
    expect(link('eth1').master).toBe('br-lan');
    const addrs = await ipIn(host, '-br', 'address', 'show');
    expect(addrs).toMatch(/^br-lan\s.*192\.168\.1\.1\/24 fd00:1::1\/64/m);
    expect(addrs).toMatch(/^br-dmz\s.*10\.0\.10\.1\/24 fd00:10::1\/64/m);
    expect(await json<{ dst: string; dev: string }[]>(host, 'neigh', 'show', 'proxy')).toEqual([expect.objectContaining({ dst: '203.0.113.20', dev: 'eth0' })]);
    expect(await sysctl(host, 'net.ipv4.ip_forward')).toBe('1');
    expect(await sysctl(host, 'net.ipv6.conf.all.forwarding')).toBe('1');
    expect(await sysctl(host, 'net.ipv4.conf.all.rp_filter')).toBe('0');

    // The LAN behind eth1 reaches the host through the bridge guestwall made.
    expect(await ping(lan, '192.168.1.1')).toBe(true);

    const second = await applyNetwork(realSystem(host), setup);
    expect(second.done).toEqual([]);

    // The command run inside the namespace (no --netns), as on a host, reads /proc/sys itself
    // (it shows the namespace of the reader): it puts back the forwarding turned off there, and
    // the next run finds nothing to change, which it can only if it read every sysctl right.
    await sh(host, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=0']);
    const inside = ['netns', 'exec', host, process.execPath, 'bin/guestwall.js', 'apply', '--state-dir', join(dir, 'inside'), POLICY];
    const fix = await execa('ip', inside, { reject: false });
    expect(fix.exitCode, fix.stderr).toBe(0);
    expect(fix.stderr).toContain('net.ipv4.ip_forward=1');
    expect(await sysctl(host, 'net.ipv4.ip_forward')).toBe('1');
    const again = await execa('ip', inside, { reject: false });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toBe('guestwall: nothing to change');
    // The next test loads the ruleset itself, after the guest is configured: none before it here.
    expect((await sh(host, 'nft', ['flush', 'ruleset'])).exitCode).toBe(0);
  }, 60_000);

  it('the generated port-up configures a routed guest port; the guest reaches its gateway, then across the host through the ruleset; port-down undoes it', async () => {
    const { files, setup } = networkOutput(model);
    for (const f of files.filter((x) => x.path.startsWith('/etc/guestwall/hooks/'))) {
      const p = join(dir, f.path.split('/').pop()!);
      writeFileSync(p, f.text);
      chmodSync(p, f.mode ?? 0o644);
    }
    await veth('gw-mail', mail);
    const up = await sh(host, join(dir, 'port-up'), ['gw-mail']);
    expect(up.exitCode, up.stderr).toBe(0);
    // Twice is the same as once.
    expect((await sh(host, join(dir, 'port-up'), ['gw-mail'])).exitCode).toBe(0);
    const unknown = await sh(host, join(dir, 'port-up'), ['vif7.0']);
    expect(unknown.exitCode).toBe(0);
    expect(unknown.stderr).toContain('vif7.0 is not a routed guest interface');

    // With guestwall's route protocol (158), so that port-down and apply remove only their own.
    expect(await ipIn(host, '-4', 'route', 'show', 'dev', 'gw-mail')).toContain('203.0.113.20 proto 158 scope link');
    expect(await ipIn(host, '-6', 'route', 'show', 'dev', 'gw-mail')).toContain('2001:db8:10::20 proto 158 metric 1024');
    expect(await ipIn(host, '-br', 'address', 'show', 'dev', 'gw-mail')).toMatch(/169\.254\.0\.1\/32 .*fe80::1\/64/);
    expect(await sysctl(host, 'net.ipv4.conf.gw-mail.proxy_arp')).toBe('1');
    // What port-up did is what apply plans: nothing left to do.
    expect((await applyNetwork(realSystem(host), setup)).done).toEqual([]);

    // The guest, as its snippet configures it.
    // The guest uses the MAC its snippet declares: the ruleset's anti-spoofing drops any other.
    await ipIn(mail, 'link', 'set', 'far', 'address', '00:16:3e:00:00:14');
    await ipIn(mail, 'address', 'add', '203.0.113.20/32', 'dev', 'far');
    await ipIn(mail, '-6', 'address', 'add', '2001:db8:10::20/128', 'dev', 'far', 'nodad');
    await ipIn(mail, 'route', 'add', '169.254.0.1', 'dev', 'far');
    await ipIn(mail, 'route', 'add', 'default', 'via', '169.254.0.1', 'dev', 'far');
    await ipIn(mail, '-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', 'far');
    expect(await ping(mail, '169.254.0.1')).toBe(true);
    expect(await ping(mail, 'fe80::1%far')).toBe(true);

    // The compiled ruleset (and the network setup, already complete) through the CLI.
    const state = join(dir, 'state');
    const m = memoryIo({ [POLICY]: policyText });
    expect(await run(['apply', POLICY, '--netns', host, '--state-dir', state], m.io), m.stderr()).toBe(0);
    expect(m.stdout()).toContain('network setup in network namespace');
    expect(m.stdout()).toContain('nothing to change');
    const d = memoryIo({ [POLICY]: policyText });
    expect(await run(['diff', POLICY, '--netns', host, '--state-dir', state], d.io), d.stdout()).toBe(0);

    // dmz -> net is accepted: the WAN answers to 203.0.113.20 by ARPing on eth0, where the host's proxy entry answers.
    expect(await ping(mail, '203.0.113.1')).toBe(true);
    expect(await ping(mail, '2001:db8:1::1')).toBe(true);
    // net -> mail allows mail services only: no ping, so the ruleset is what decided.
    expect(await ping(wan, '203.0.113.20')).toBe(false);
    expect(await ping(wan, '2001:db8:10::20')).toBe(false);

    // Someone else's route to the same address on the same port (another metric) is theirs: port-down
    // leaves it. (IPv6: removing a port's last IPv4 address makes the kernel flush all its IPv4 routes.)
    await ipIn(host, '-6', 'route', 'add', '2001:db8:10::20/128', 'dev', 'gw-mail', 'metric', '50', 'proto', 'static');
    const down = await sh(host, join(dir, 'port-down'), ['gw-mail']);
    expect(down.exitCode, down.stderr).toBe(0);
    expect(await ipIn(host, 'route', 'show', 'dev', 'gw-mail')).toBe('');
    expect((await ipIn(host, '-6', 'route', 'show', '2001:db8:10::20/128')).trim()).toBe('2001:db8:10::20 dev gw-mail proto static metric 50 pref medium');
    await ipIn(host, '-6', 'route', 'del', '2001:db8:10::20/128', 'dev', 'gw-mail', 'metric', '50', 'proto', 'static');
    expect(await ipIn(host, '-br', 'address', 'show', 'dev', 'gw-mail')).not.toMatch(/169\.254\.0\.1|fe80::1\//);
    expect(await sysctl(host, 'net.ipv4.conf.gw-mail.proxy_arp')).toBe('0');
    expect(await ping(mail, '203.0.113.1')).toBe(false);
  }, 90_000);

  it('the hooks are valid sh; the boot unit passes systemd-analyze verify', async () => {
    const { files } = networkOutput(model);
    for (const f of files.filter((x) => x.path.startsWith('/etc/guestwall/hooks/'))) {
      const p = join(dir, `check-${f.path.split('/').pop()!}`);
      writeFileSync(p, f.text);
      const r = await execa('sh', ['-n', p], { reject: false });
      expect(r.exitCode, `${f.path}: ${r.stderr}`).toBe(0);
    }
    const unit = files.find((f) => f.path.endsWith('guestwall-network.service'))!;
    const unitPath = join(dir, 'guestwall-network.service');
    writeFileSync(unitPath, unit.text);
    const v = await execa('systemd-analyze', ['verify', unitPath], { reject: false });
    if (v.failed && v.code === 'ENOENT') return; // no systemd on this machine
    expect(v.exitCode, v.stderr).toBe(0);
    expect(v.stderr).toBe('');
  });
});
