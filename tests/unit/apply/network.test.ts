// apply's network step against an in-memory host: it reads the live state with ip -j and /proc/sys,
// runs only the missing steps, reports each, and names the step that failed with what ran before.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NetworkStepError, applyNetwork } from '../../../src/apply/network.js';
import { networkSetup } from '../../../src/emit/network.js';
import { compileYaml } from '../../support/compile.js';
import { fakeSystem } from '../../support/fake-system.js';

const setup = networkSetup(compileYaml(readFileSync('policies/homelab-dmz.yaml', 'utf8')).model);

/** A host with eth0 and eth1, nothing configured, forwarding off; `fail` makes one command line fail. */
function host(fail?: string) {
  // /proc/sys: every key the setup reads is 0, but gw-mail's port is not there, so neither are its keys.
  const procSys = Object.fromEntries(setup.sysctls.filter((s) => !s.key.includes('gw-mail')).map((s) => [`/proc/sys/${s.key.replaceAll('.', '/')}`, '0\n']));
  return fakeSystem({
    files: procSys,
    answer(cmd, args, _files, input) {
      const line = [cmd, ...args].join(' ');
      if (line === fail) return { code: 2, stderr: 'RTNETLINK answers: Operation not permitted\n' };
      // One batch: links with their addresses, IPv4 routes, proxy entries; then the IPv6 routes.
      if (line === 'ip -N -j -d -batch -' && input === 'address show\nroute show table main\nneigh show proxy\n') {
        const links = [{ ifname: 'lo', flags: ['UP'] }, { ifname: 'eth0', flags: ['UP'], addr_info: [{ family: 'inet', local: '203.0.113.10', prefixlen: 24 }] }, { ifname: 'eth1', flags: [] }];
        return `${JSON.stringify(links)}\n[]\n[]\n`;
      }
      if (line === 'ip -N -j -6 route show table main') return '[]';
      return '';
    },
  });
}

describe('applying the network setup', () => {
  it('runs the missing steps, reports each, and notes the guest port that is not there', async () => {
    const h = host();
    const lines: string[] = [];
    const r = await applyNetwork(h.sys, setup, (l) => lines.push(l));
    expect(lines[0]).toBe('network: gw-mail (mail) is not there yet; skipped: its hook (port-up) configures it when it appears');
    expect(lines).toContain('network: eth1: port of br-lan');
    expect(h.calls).toContain('ip link add name br-dmz type bridge stp_state 0 forward_delay 0');
    expect(h.calls).toContain('ip -4 neigh add proxy 203.0.113.20 dev eth0');
    expect(h.calls.some((c) => c.includes('gw-mail'))).toBe(false);
    // The sysctls are read from /proc/sys, not by a process: nothing but ip ran to read the host.
    expect(h.calls.filter((c) => !c.startsWith('ip ') && !c.startsWith('sysctl -q -w '))).toEqual([]);
    expect(h.calls).toContain('sysctl -q -w net.ipv4.ip_forward=1');
    expect(r.done.length).toBe(lines.length - 1);
  });

  it('stops at a failing step, names it, and lists what was done before it', async () => {
    const h = host('ip link set dev eth1 master br-lan');
    const err = await applyNetwork(h.sys, setup).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkStepError);
    const e = err as NetworkStepError;
    expect(e.message).toMatch(/^network setup failed at "eth1: port of br-lan" \(ip link set dev eth1 master br-lan\): RTNETLINK answers: Operation not permitted; done before it: /);
    expect(e.message).toContain('br-lan: create bridge');
    expect(e.done.map((d) => d.what)).toContain('br-lan: up');
    expect(h.calls).not.toContain('ip link add name br-dmz type bridge stp_state 0 forward_delay 0');
  });

  it('refuses without root, having run nothing', async () => {
    const h = fakeSystem({ root: false });
    await expect(applyNetwork(h.sys, setup)).rejects.toThrow('needs root');
    expect(h.calls).toEqual([]);
  });
});
