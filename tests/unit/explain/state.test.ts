// explain for packets that are not a connection's first: later packets, replies and related ICMP
// errors, judged from what conntrack knows about the connection's first packet.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { run } from '../../../src/cli/main.js';
import { compilePolicyText } from '../../../src/compile/pipeline.js';
import { type PacketQuery, explainPacket } from '../../../src/explain/state.js';
import { memoryIo } from '../../support/io.js';

const files = { 'policies/homelab-dmz.yaml': readFileSync('policies/homelab-dmz.yaml', 'utf8') };
const homelab = compilePolicyText('policies/homelab-dmz.yaml', readFileSync('policies/homelab-dmz.yaml', 'utf8'));
const ask = (from: string, to: string, proto: PacketQuery['proto'], port: number | undefined, more: Partial<PacketQuery>) => {
  const r = explainPacket(homelab.model!, homelab.compiled!.ruleset, { from, to, proto, ...(port !== undefined ? { port } : {}), ...more });
  if (!r.ok) throw new Error(r.error);
  return r.value;
};

describe('explain --reply: a reply of an accepted connection is established, whatever the reverse policy says', () => {
  it('the host -> asterisk: the reply passes by ct state established although dmz -> host rejects new connections', () => {
    const reply = ask('host', 'asterisk', 'udp', 4444, { reply: true });
    expect(reply.connection).toMatchObject({ entry: true });
    expect(reply.filtered).toMatchObject({ saddr: '10.0.10.10', daddr: '10.0.10.1', sport: 4444, dport: 40000, ct: { state: 'established' } });
    expect(reply.path).toBe('input');
    expect(reply.evaluation.verdict).toBe('accept');
    expect(reply.evaluation.decidedBy?.id).toBe('builtin:ct-state');
    expect(reply.story[0]).toMatch(/^conntrack: the connection's first packet .* is ACCEPTED/);
    // The same packet as a connection of its own is rejected: the state is what lets it through.
    const fresh = ask('asterisk', 'host', 'udp', 40000, { src: '10.0.10.10' });
    expect(fresh.evaluation.verdict).toBe('reject');
  });

  it('a reply to a forwarded guest\'s client leaves the guest with its own address (un-DNAT comes after the filter), ct status dnat', () => {
    const r = ask('net', 'asterisk', 'udp', 5060, { reply: true });
    expect(r.filtered).toMatchObject({ iifname: 'br-dmz', oifname: 'eth0', saddr: '10.0.10.10', daddr: '198.51.100.1', sport: 5060, ct: { state: 'established', status: ['dnat'] } });
    expect(r.story.join('\n')).toMatch(/puts back 203\.0\.113\.10 as its source/);
    expect(r.evaluation.verdict).toBe('accept');
  });

  it('a masqueraded connection\'s reply arrives at the host\'s address and is un-SNATed on arrival, IPv4; IPv6 is not masqueraded', () => {
    const r = ask('lan', 'net', 'tcp', 443, { reply: true });
    expect(r.packet.daddr).toBe('203.0.113.10');
    expect(r.filtered).toMatchObject({ daddr: '192.168.1.100', oifname: 'br-lan', ct: { state: 'established', status: ['snat'] }, tcpFlags: ['ack'] });
    expect(r.evaluation.verdict).toBe('accept');
    const v6 = ask('lan', 'net', 'tcp', 443, { reply: true, family: 6 });
    expect(v6.filtered.ct).toEqual({ state: 'established' });
    expect(v6.evaluation.verdict).toBe('accept');
  });

  it('between two ports of one bridge the reply goes port to port', () => {
    const r = ask('desktop', 'lan', 'udp', 4444, { reply: true });
    expect(r.evaluation.verdict).toBe('accept');
    const b = ask('host', 'desktop', 'icmp', undefined, { reply: true });
    expect(b.filtered).toMatchObject({ icmpType: 'echo-reply', ct: { state: 'established' } });
  });
});

describe('explain --reply of a refused connection: no conntrack entry, so no more than a packet of its own', () => {
  it('UDP: a new connection the other way, judged by the reverse policy (lan -> net accepts, dmz -> dmz drops)', () => {
    const r = ask('net', 'lan', 'udp', 4444, { reply: true });
    expect(r.connection).toMatchObject({ entry: false });
    expect(r.filtered.ct).toEqual({ state: 'new' });
    expect(r.evaluation.decidedBy?.id).toBe('policies[0]');
    const d = ask('mumble', 'asterisk', 'udp', 4444, { reply: true, direct: true });
    expect(d.evaluation.verdict).toBe('drop');
    expect(d.filtered.ct).toEqual({ state: 'new' });
  });

  it('TCP: an ACK without an entry is ct state new with nf_conntrack_tcp_loose=1 (the default) and invalid with 0', () => {
    const loose = ask('net', 'lan', 'tcp', 4444, { reply: true });
    expect(loose.filtered).toMatchObject({ ct: { state: 'new' }, tcpFlags: ['ack'] });
    expect(loose.evaluation.verdict).toBe('accept');
    expect(loose.story.join('\n')).toMatch(/nf_conntrack_tcp_loose=1/);
    const strict = ask('net', 'lan', 'tcp', 4444, { reply: true, tcpLoose: false });
    expect(strict.filtered.ct).toEqual({ state: 'invalid' });
    expect(strict.evaluation.decidedBy?.id).toBe('builtin:ct-invalid');
  });

  it('an ICMP echo reply answering no request is invalid and dropped', () => {
    const r = ask('net', 'lan', 'icmp', undefined, { reply: true });
    expect(r.filtered).toMatchObject({ icmpType: 'echo-reply', ct: { state: 'invalid' } });
    expect(r.evaluation.verdict).toBe('drop');
  });
});

describe('explain --state established: a later packet the same way', () => {
  it('follows the first packet\'s DNAT by conntrack\'s binding (the nat chains see first packets only)', () => {
    const r = ask('net', 'asterisk', 'udp', 5060, { state: 'established' });
    expect(r.packet.daddr).toBe('203.0.113.10');
    expect(r.filtered).toMatchObject({ daddr: '10.0.10.10', oifname: 'br-dmz', ct: { state: 'established', status: ['dnat'] } });
    expect(r.nat).toBeUndefined();
    expect(r.evaluation.verdict).toBe('accept');
  });

  it('of a refused connection: UDP is a new packet again and meets the same drop', () => {
    const r = ask('net', 'lan', 'udp', 4444, { state: 'established' });
    expect(r.filtered.ct).toEqual({ state: 'new' });
    expect(r.evaluation.decidedBy?.id).toBe('policies[3]');
  });
});

describe('explain --state related: ICMP errors about a connection', () => {
  it('from the destination back (--reply), for every error type, IPv4 and IPv6, through the forward', () => {
    for (const icmpError of ['port-unreachable', 'packet-too-big', 'time-exceeded'] as const) {
      const v4 = ask('net', 'asterisk', 'udp', 5060, { state: 'related', reply: true, icmpError });
      expect(v4.filtered).toMatchObject({ proto: 'icmp', saddr: '10.0.10.10', daddr: '198.51.100.1', ct: { state: 'related', status: ['dnat'] } });
      expect(v4.evaluation.verdict).toBe('accept');
      const v6 = ask('net', 'mail', 'tcp', 25, { state: 'related', reply: true, icmpError, family: 6 });
      expect(v6.filtered).toMatchObject({ proto: 'icmpv6', icmpType: icmpError === 'packet-too-big' ? 'packet-too-big' : icmpError === 'time-exceeded' ? 'time-exceeded' : 'destination-unreachable' });
      expect(v6.evaluation.verdict).toBe('accept');
    }
  });

  it('from the sender (no --reply): DNATed like its connection', () => {
    const r = ask('net', 'asterisk', 'udp', 5060, { state: 'related', icmpError: 'packet-too-big' });
    expect(r.filtered).toMatchObject({ daddr: '10.0.10.10', icmpType: 'destination-unreachable', ct: { state: 'related' } });
    expect(r.evaluation.verdict).toBe('accept');
  });

  it('of a hairpin on one bridge: with br_netfilter a frame between the ports, which the bridge chain passes by the hairpin mark and its ICMP type; without, routed and related', () => {
    const bridged = ask('mumble', '203.0.113.10:10010', 'udp', undefined, { state: 'related', reply: true });
    expect(bridged.bridge).toBe('br-dmz');
    expect(bridged.filtered).toMatchObject({ iifname: 'gw-asterisk', oifname: 'gw-mumble', saddr: '10.0.10.10', daddr: '10.0.10.11' });
    expect(bridged.evaluation.verdict).toBe('accept');
    const decided = bridged.evaluation.steps.find((s) => s.family === 'bridge' && s.chain === 'dmz_to_dmz' && s.outcome === 'verdict');
    expect(decided?.text).toMatch(/^meta mark & 0x00001000 == 0x00001000 icmp type \{ destination-unreachable, /);
    expect(decided?.origin?.id).toBe('forwards:bridge-hairpin');
    // Its data replies pass the bridge by their look (from the forwarded port).
    expect(ask('mumble', '203.0.113.10:10010', 'udp', undefined, { reply: true }).evaluation.verdict).toBe('accept');
    const routed = ask('mumble', '203.0.113.10:10010', 'udp', undefined, { state: 'related', reply: true, brNetfilter: false });
    expect(routed.bridge).toBeUndefined();
    expect(routed.packet.daddr).toBe('10.0.10.1');
    expect(routed.evaluation.verdict).toBe('accept');
  });

  it('about a refused connection: invalid, dropped', () => {
    const r = ask('net', 'lan', 'udp', 4444, { state: 'related', reply: true });
    expect(r.filtered.ct).toEqual({ state: 'invalid' });
    expect(r.evaluation.decidedBy?.id).toBe('builtin:ct-invalid');
  });
});

describe('explain --state/--reply on the command line', () => {
  it('prints the conntrack facts first and exits by the verdict', async () => {
    const io = memoryIo(files);
    const code = await run(['explain', 'policies/homelab-dmz.yaml', '--from', 'host', '--to', 'asterisk', '--proto', 'udp', '--port', '4444', '--reply'], io.io);
    expect(code).toBe(0);
    expect(io.stdout()).toMatch(/^conntrack: the connection's first packet \(udp 10\.0\.10\.1 -> 10\.0\.10\.10 port 4444\) is ACCEPTED/);
    expect(io.stdout()).toMatch(/ct state established: the connection was accepted earlier; this packet is its reply/);
  });

  it('--json says on which conntrack facts the answer rests', async () => {
    const io = memoryIo(files);
    expect(await run(['explain', 'policies/homelab-dmz.yaml', '--from', 'net', '--to', 'lan', '--proto', 'udp', '--port', '4444', '--reply', '--json'], io.io)).toBe(0);
    const j = JSON.parse(io.stdout()) as { verdict: string; packet: { ct: unknown }; connection: { firstVerdict: string; entry: boolean; facts: string[] } };
    expect(j.verdict).toBe('accept');
    expect(j.packet.ct).toEqual({ state: 'new' });
    expect(j.connection).toMatchObject({ firstVerdict: 'drop', entry: false });
    expect(j.connection.facts.join(' ')).toMatch(/no entry: this datagram is the first packet of a new connection of its own/);
  });

  it('--br-netfilter off: a hairpin between two ports of one bridge is routed by the host, not bridged, and its later packets follow', async () => {
    const args = ['explain', 'policies/homelab-dmz.yaml', '--from', 'mumble', '--to', '203.0.113.10:10010', '--proto', 'udp'];
    const on = memoryIo(files);
    expect(await run(args, on.io)).toBe(0);
    expect(on.stdout()).toMatch(/the DNATed frame is bridged straight from port gw-mumble to port gw-asterisk/);
    const off = memoryIo(files);
    expect(await run([...args, '--br-netfilter', 'off'], off.io)).toBe(0);
    expect(off.stdout()).not.toMatch(/bridged straight/);
    expect(off.stdout()).toMatch(/routed to zone dmz through br-dmz/);
    const error = memoryIo(files);
    expect(await run([...args, '--br-netfilter', 'off', '--state', 'related', '--reply', '--json'], error.io)).toBe(0);
    const j = JSON.parse(error.stdout()) as { packet: { daddr: string }; connection: { facts: string[] } };
    expect(j.packet.daddr).toBe('10.0.10.1'); // masqueraded by the host: the error comes back to its address
    const wrong = memoryIo(files);
    expect(await run([...args, '--br-netfilter', 'maybe'], wrong.io)).toBe(2);
  });

  it('refuses --reply with --state new and --icmp-error without related', async () => {
    const io = memoryIo(files);
    expect(await run(['explain', 'policies/homelab-dmz.yaml', '--from', 'net', '--to', 'mail', '--port', '25', '--state', 'new', '--reply'], io.io)).toBe(2);
    expect(io.stderr()).toMatch(/--reply with --state new/);
    const io2 = memoryIo(files);
    expect(await run(['explain', 'policies/homelab-dmz.yaml', '--from', 'net', '--to', 'mail', '--port', '25', '--icmp-error', 'time-exceeded'], io2.io)).toBe(2);
    expect(io2.stderr()).toMatch(/--icmp-error goes with --state related/);
  });
});
