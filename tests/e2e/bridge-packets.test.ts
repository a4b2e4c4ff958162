// Anti-spoofing and guest-to-guest filtering with real frames on a real bridge. A host namespace
// holds bridge br-dmz with veth ports named as the policy names them (gw-web, gw-db, gw-gw) and a
// routed veth xmail; each guest is a namespace of its own with the declared MAC and addresses.
// The compiled ruleset (baseline kernel features: this machine has no bridge conntrack) is loaded
// into the host namespace, once with bridge-nf-call-iptables/ip6tables = 0 and once with 1.
// Each spoofing attempt must not arrive and must be counted by the rule meant to stop it; its
// legitimate twin must arrive. Everything runs in namespaces gw-bp-*, deleted afterwards.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eui64LinkLocal } from '../../src/compile/antispoof.js';
import { BASELINE_FEATURES } from '../../src/compile/features.js';
import { compilePolicyText } from '../../src/compile/pipeline.js';
import { toNftJson } from '../../src/nft/json.js';
import { formatDiagnostic } from '../../src/policy/diagnostics.js';
import { arpFrame, framesArriving, neighbourAdvert, routerAdvert, sendFrames, udpFrame } from '../support/frames.js';
import { deleteNamespace, kernelTestUnavailable, namespaceName } from '../support/kernel.js';
import { Agent } from '../support/topology.js';

const skipReason = kernelTestUnavailable();
const skipped = skipReason ? ` (skipped: ${skipReason})` : '';

const POLICY = `
version: 1
zones:
  dmz: { networks: [10.0.10.0/24, fd00:10::/64, 203.0.113.16/28] }
bridges:
  br-dmz: { zone: dmz, addresses: [10.0.10.1/24, fd00:10::1/64] }
guests:
  web:
    platform: lxc
    interfaces:
      - { mode: bridged, bridge: br-dmz, mac: "02:00:0a:00:0a:0a", addresses: [10.0.10.10, fd00:10::10] }
  db:
    platform: lxc
    interfaces:
      - { mode: bridged, bridge: br-dmz, mac: "02:00:0a:00:0a:0b", addresses: [10.0.10.11, fd00:10::11] }
  gw:
    platform: kvm
    router: true
    interfaces:
      - { mode: bridged, bridge: br-dmz, mac: "52:54:00:00:00:0c", addresses: [10.0.10.12, fd00:10::12] }
  mail:
    platform: xen
    zone: dmz
    interfaces:
      - { mode: routed, name: xmail, mac: "00:16:3e:00:00:14", addresses: [203.0.113.20] }
services:
  postgres: { tcp: 5432 }
  game: { udp: 5000 }
policies:
  - { from: all, to: all, action: drop }
rules:
  - { from: web, to: db, service: [postgres, game, ping], action: accept }
  - { from: mail, to: host, proto: udp, ports: 9999, action: accept }
  - { from: host, to: dmz, proto: udp, ports: 40001, action: accept }
`;

const MAC = { web: '02:00:0a:00:0a:0a', db: '02:00:0a:00:0a:0b', gw: '52:54:00:00:00:0c', mail: '00:16:3e:00:00:14' } as const;
const GUEST_IF = 'eth0';
const ROUTED_GATEWAY = '169.254.0.1';

interface Lab {
  host: string;
  ns: Record<'web' | 'db' | 'gw' | 'mail', string>;
  xmailMac: string;
}

async function ipBatch(lines: string[], ns?: string): Promise<void> {
  await execa('ip', [...(ns ? ['-n', ns] : []), '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

async function sh(ns: string, cmd: string, ...args: string[]): Promise<string> {
  return (await execa('ip', ['netns', 'exec', ns, cmd, ...args])).stdout;
}

/** Every namespace made here, deleted in afterAll even when building a lab failed halfway. */
const made = new Set<string>();

async function buildLab(brNetfilter: 0 | 1, rulesetFile: string): Promise<Lab> {
  const id = namespaceName('gw-bp');
  const ns = { web: `${id}-w`, db: `${id}-d`, gw: `${id}-g`, mail: `${id}-m` };
  const host = `${id}-h`;
  for (const n of [host, ...Object.values(ns)]) {
    made.add(n);
    await execa('ip', ['netns', 'add', n]);
  }
  await sh(host, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', `net.bridge.bridge-nf-call-iptables=${brNetfilter}`, `net.bridge.bridge-nf-call-ip6tables=${brNetfilter}`);
  const bridged = ['web', 'db', 'gw'] as const;
  await ipBatch([
    'link set lo up',
    'link add br-dmz type bridge',
    'address add 10.0.10.1/24 dev br-dmz',
    'address add fd00:10::1/64 dev br-dmz nodad',
    'link set br-dmz up',
    ...bridged.flatMap((g) => [`link add gw-${g} type veth peer name ${GUEST_IF} netns ${ns[g]}`, `link set gw-${g} master br-dmz`, `link set gw-${g} up`]),
    `link add xmail type veth peer name ${GUEST_IF} netns ${ns.mail}`,
    `address add ${ROUTED_GATEWAY}/32 dev xmail`,
    'link set xmail up',
    'route add 203.0.113.20/32 dev xmail',
  ], host);
  const addrs = { web: ['10.0.10.10/24', 'fd00:10::10/64'], db: ['10.0.10.11/24', 'fd00:10::11/64'], gw: ['10.0.10.12/24', 'fd00:10::12/64'] };
  for (const g of bridged) {
    await ipBatch(['link set lo up', `link set ${GUEST_IF} address ${MAC[g]}`, ...addrs[g].map((a) => `address add ${a} dev ${GUEST_IF}${a.includes(':') ? ' nodad' : ''}`), `link set ${GUEST_IF} up`], ns[g]);
  }
  await ipBatch(['link set lo up', `link set ${GUEST_IF} address ${MAC.mail}`, `address add 203.0.113.20/32 dev ${GUEST_IF}`, `link set ${GUEST_IF} up`,
    `route add ${ROUTED_GATEWAY} dev ${GUEST_IF}`, `route add default via ${ROUTED_GATEWAY} dev ${GUEST_IF}`], ns.mail);
  await sh(host, 'nft', '-j', '-f', rulesetFile);
  const xmailMac = (JSON.parse(await sh(host, 'ip', '-j', 'link', 'show', 'xmail')) as { address: string }[])[0]!.address;
  return { host, ns, xmailMac };
}

/** The packets counted by the rules with this comment in one of guestwall's tables. */
async function counted(lab: Lab, family: string, comment: string): Promise<number> {
  const listing = JSON.parse(await sh(lab.host, 'nft', '-j', 'list', 'table', family, 'guestwall')) as { nftables: { rule?: { comment?: string; expr: Record<string, { packets?: number }>[] } }[] };
  return listing.nftables
    // A comment is the origin id, after the YAML place when the rule has one ("h.yaml:34 guests:spoof-mac").
    .flatMap((i) => (i.rule && (i.rule.comment === comment || i.rule.comment?.endsWith(` ${comment}`)) ? i.rule.expr : []))
    .reduce((n, e) => n + (e.counter?.packets ?? 0), 0);
}

for (const brNetfilter of [0, 1] as const) {
  describe.skipIf(skipReason !== undefined)(`a real bridge with bridge-nf-call-iptables=${brNetfilter}${skipped}`, () => {
    let lab: Lab;
    let dir = '';
    const agents: Agent[] = [];

    beforeAll(async () => {
      const r = compilePolicyText('bridge-lab.yaml', POLICY, BASELINE_FEATURES);
      if (!r.compiled) throw new Error(r.diagnostics.map(formatDiagnostic).join('\n'));
      dir = await mkdtemp(join(tmpdir(), 'gw-bp-'));
      const file = join(dir, 'ruleset.json');
      await writeFile(file, JSON.stringify(toNftJson(r.compiled.ruleset)));
      lab = await buildLab(brNetfilter, file);
    }, 30_000);
    afterAll(async () => {
      for (const a of agents) await a.stop();
      for (const n of made) await deleteNamespace(n);
      made.clear();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    /** Sends `frame` from a guest; returns whether it reached the other guest's interface. */
    async function arrives(from: keyof Lab['ns'], to: keyof Lab['ns'] | 'host', frame: Buffer, ifname = GUEST_IF): Promise<boolean> {
      const where = to === 'host' ? lab.host : lab.ns[to];
      const n = await framesArriving(where, ifname, [frame], () => sendFrames(lab.ns[from], GUEST_IF, [frame]));
      return n > 0;
    }
    /** Runs `send` and says by how many packets the rule(s) with `comment` counted up. */
    async function countedBy(family: string, comment: string, send: () => Promise<unknown>): Promise<number> {
      const before = await counted(lab, family, comment);
      await send();
      return (await counted(lab, family, comment)) - before;
    }

    const game = (over: Partial<Parameters<typeof udpFrame>[0]> = {}) =>
      udpFrame({ srcMac: MAC.web, dstMac: MAC.db, src: '10.0.10.10', dst: '10.0.10.11', sport: 40000, dport: 5000, data: `gw-${Math.random()}`, ...over });

    it('passes a guest\'s own IPv4 and IPv6 traffic to an allowed service', async () => {
      expect(await arrives('web', 'db', game())).toBe(true);
      expect(await arrives('web', 'db', game({ src: 'fd00:10::10', dst: 'fd00:10::11' }))).toBe(true);
    }, 20_000);

    it('drops a spoofed IPv4 or IPv6 source address at bridge prerouting', async () => {
      let got = true;
      expect(await countedBy('bridge', 'guests:spoof-ipv4', async () => { got = await arrives('web', 'db', game({ src: '10.0.10.99' })); })).toBe(1);
      expect(got).toBe(false);
      expect(await countedBy('bridge', 'guests:spoof-ipv6', async () => { got = await arrives('web', 'db', game({ src: 'fd00:10::99', dst: 'fd00:10::11' })); })).toBe(1);
      expect(got).toBe(false);
    }, 20_000);

    it('drops a spoofed source MAC, even with the right address', async () => {
      let got = true;
      expect(await countedBy('bridge', 'guests:spoof-mac', async () => { got = await arrives('web', 'db', game({ srcMac: '02:00:0a:00:0a:99' })); })).toBe(1);
      expect(got).toBe(false);
    }, 20_000);

    it('drops an ARP reply for another guest\'s address, passes one for its own', async () => {
      const reply = (spa: string) => arpFrame({ srcMac: MAC.web, dstMac: MAC.db, op: 2, sha: MAC.web, spa, tha: MAC.db, tpa: '10.0.10.11' });
      let got = true;
      expect(await countedBy('bridge', 'guests:spoof-arp-ip', async () => { got = await arrives('web', 'db', reply('10.0.10.12')); })).toBe(1);
      expect(got).toBe(false);
      expect(await arrives('web', 'db', reply('10.0.10.10'))).toBe(true);
    }, 20_000);

    it('drops a neighbour advert for another guest\'s address, passes one for its own', async () => {
      const na = (target: string) => neighbourAdvert({ srcMac: MAC.web, dstMac: '33:33:00:00:00:01', src: eui64LinkLocal(MAC.web), target });
      let got = true;
      expect(await countedBy('bridge', 'guests:spoof-nd', async () => { got = await arrives('web', 'db', na('fd00:10::11')); })).toBe(1);
      expect(got).toBe(false);
      expect(await arrives('web', 'db', na('fd00:10::10'))).toBe(true);
    }, 20_000);

    it('drops a neighbour advert for another guest\'s link-local address, passes one for its own', async () => {
      const na = (target: string) => neighbourAdvert({ srcMac: MAC.web, dstMac: '33:33:00:00:00:01', src: eui64LinkLocal(MAC.web), target });
      let got = true;
      expect(await countedBy('bridge', 'guests:spoof-nd', async () => { got = await arrives('web', 'db', na(eui64LinkLocal(MAC.db))); })).toBe(1);
      expect(got).toBe(false);
      expect(await arrives('web', 'db', na(eui64LinkLocal(MAC.web)))).toBe(true);
    }, 20_000);

    it('drops a rogue DHCP offer and router advertisement; the router guest may send both', async () => {
      const offer = (g: 'web' | 'gw', src: string) => udpFrame({ srcMac: MAC[g], dstMac: 'ff:ff:ff:ff:ff:ff', src, dst: '255.255.255.255', sport: 67, dport: 68, data: `offer-${Math.random()}` });
      const ra = (g: 'web' | 'gw') => routerAdvert({ srcMac: MAC[g], dstMac: '33:33:00:00:00:01', src: eui64LinkLocal(MAC[g]) });
      let got = true;
      expect(await countedBy('bridge', 'guests:rogue-dhcp', async () => { got = await arrives('web', 'db', offer('web', '10.0.10.10')); })).toBe(1);
      expect(got).toBe(false);
      expect(await countedBy('bridge', 'guests:rogue-ra', async () => { got = await arrives('web', 'db', ra('web')); })).toBe(1);
      expect(got).toBe(false);
      expect(await arrives('gw', 'db', offer('gw', '10.0.10.12'))).toBe(true);
      expect(await arrives('gw', 'db', ra('gw'))).toBe(true);
    }, 30_000);

    it('isolates guests on one bridge by the intra-zone policy; an allowed service passes with its replies', async () => {
      const agent = async (g: keyof Lab['ns']) => {
        const a = await Agent.start(lab.ns[g], 'python3');
        agents.push(a);
        return a;
      };
      const [web, db] = [await agent('web'), await agent('db')];
      db.request({ op: 'listen', id: 1, proto: 'tcp', family: 4, port: 5432 });
      db.request({ op: 'listen', id: 2, proto: 'tcp', family: 4, port: 22 });
      expect(await db.waitFor(1, ['ready'], 3000)).toBeDefined();
      expect(await db.waitFor(2, ['ready'], 3000)).toBeDefined();
      // A full TCP handshake: the SYN-ACK is a reply, accepted without conntrack by its look.
      web.request({ op: 'send', id: 3, proto: 'tcp', family: 4, src: '10.0.10.10', dst: '10.0.10.11', port: 5432 });
      expect((await web.waitFor(3, ['connected', 'error'], 5000))?.ev).toBe('connected');
      web.request({ op: 'send', id: 4, proto: 'tcp', family: 4, src: '10.0.10.10', dst: '10.0.10.11', port: 22 });
      expect(await web.waitFor(4, ['connected', 'error'], 2000)).toBeUndefined();
      web.request({ op: 'close', id: 4 });
      // The other way round nothing is allowed: db cannot open a connection to web.
      web.request({ op: 'listen', id: 5, proto: 'tcp', family: 4, port: 5432 });
      expect(await web.waitFor(5, ['ready'], 3000)).toBeDefined();
      db.request({ op: 'send', id: 6, proto: 'tcp', family: 4, src: '10.0.10.11', dst: '10.0.10.10', port: 5432 });
      expect(await db.waitFor(6, ['connected', 'error'], 2000)).toBeUndefined();
      db.request({ op: 'close', id: 6 });
      web.request({ op: 'send', id: 7, proto: 'icmp', family: 4, src: '10.0.10.10', dst: '10.0.10.11', ident: 77 });
      expect((await web.waitFor(7, ['reply', 'error'], 3000))?.ev).toBe('reply');
    }, 30_000);

    describe('a routed guest port', () => {
      let hostAgent: Agent;
      beforeAll(async () => {
        hostAgent = await Agent.start(lab.host, 'python3');
        agents.push(hostAgent);
        hostAgent.request({ op: 'listen', id: 1, proto: 'udp', family: 4, port: 9999 });
        expect(await hostAgent.waitFor(1, ['ready'], 3000)).toBeDefined();
      }, 20_000);
      const toHost = (over: Partial<Parameters<typeof udpFrame>[0]> = {}) =>
        udpFrame({ srcMac: MAC.mail, dstMac: lab.xmailMac, src: '203.0.113.20', dst: ROUTED_GATEWAY, sport: 40000, dport: 9999, data: `gw-${Math.random()}`, ...over });
      const received = () => hostAgent.eventsOf(1).filter((e) => e.ev === 'got').length;

      it('accepts its own traffic, drops a spoofed MAC (inet prerouting) and a spoofed address (fib)', async () => {
        const sent = async (frame: Buffer) => {
          const before = received();
          await sendFrames(lab.ns.mail, GUEST_IF, [frame]);
          await new Promise((r) => setTimeout(r, 400));
          return received() - before;
        };
        expect(await sent(toHost())).toBe(1);
        let n = 1;
        expect(await countedBy('inet', 'guests:spoof-mac', async () => { n = await sent(toHost({ srcMac: '00:16:3e:00:00:99' })); })).toBe(1);
        expect(n).toBe(0);
        expect(await countedBy('inet', 'guests:routed-antispoof', async () => { n = await sent(toHost({ src: '203.0.113.21' })); })).toBe(1);
        expect(n).toBe(0);
      }, 20_000);

      it('drops a spoofed address even when conntrack would place it in an established connection', async () => {
        // The host talks to 203.0.113.21 (routed out of br-dmz here; the policy lets the host send
        // to UDP 40001): conntrack now has that connection, and a packet from 203.0.113.21:40001
        // to the host's port 9998 is its reply.
        // Sent from the mail guest's port it is a spoof, and must be dropped before conntrack
        // can pass it as established.
        await sh(lab.host, 'ip', 'route', 'replace', '203.0.113.21/32', 'dev', 'br-dmz');
        await sh(lab.host, 'python3', '-c',
          "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('169.254.0.1', 9998)); s.sendto(b'x', ('203.0.113.21', 40001))");
        const entries = await sh(lab.host, 'cat', '/proc/net/nf_conntrack').catch(() => '');
        if (entries) expect(entries).toMatch(/src=169\.254\.0\.1 dst=203\.0\.113\.21 sport=9998 dport=40001/);
        const reply = toHost({ src: '203.0.113.21', sport: 40001, dport: 9998 });
        expect(await countedBy('inet', 'guests:routed-antispoof', () => sendFrames(lab.ns.mail, GUEST_IF, [reply]))).toBe(1);
      }, 20_000);

      it('drops ARP that claims another address (arp table); the host learns the guest from its own', async () => {
        const who = (spa: string) => arpFrame({ srcMac: MAC.mail, dstMac: 'ff:ff:ff:ff:ff:ff', op: 1, sha: MAC.mail, spa, tha: '00:00:00:00:00:00', tpa: ROUTED_GATEWAY });
        await sh(lab.host, 'ip', 'neigh', 'flush', 'dev', 'xmail');
        expect(await countedBy('arp', 'guests:spoof-arp-ip', () => sendFrames(lab.ns.mail, GUEST_IF, [who('203.0.113.21')]))).toBe(1);
        await sendFrames(lab.ns.mail, GUEST_IF, [who('203.0.113.20')]);
        await new Promise((r) => setTimeout(r, 300));
        const neigh = await sh(lab.host, 'ip', 'neigh', 'show', 'dev', 'xmail');
        expect(neigh).not.toContain('203.0.113.21');
        expect(neigh).toContain(`203.0.113.20 lladdr ${MAC.mail}`);
      }, 20_000);

      it('drops a rogue DHCP offer and router advertisement', async () => {
        const offer = udpFrame({ srcMac: MAC.mail, dstMac: 'ff:ff:ff:ff:ff:ff', src: '203.0.113.20', dst: '255.255.255.255', sport: 67, dport: 68, data: 'offer' });
        expect(await countedBy('inet', 'guests:rogue-dhcp', () => sendFrames(lab.ns.mail, GUEST_IF, [offer]))).toBe(1);
        const ra = routerAdvert({ srcMac: MAC.mail, dstMac: '33:33:00:00:00:01', src: eui64LinkLocal(MAC.mail) });
        expect(await countedBy('inet', 'guests:rogue-ra', () => sendFrames(lab.ns.mail, GUEST_IF, [ra]))).toBe(1);
      }, 20_000);
    });
  });
}
