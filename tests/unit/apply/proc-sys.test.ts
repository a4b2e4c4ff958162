// Reading /proc/sys: in guestwall's own network namespace from the files (no process started),
// for --netns by one grep per 500 files run in the namespace; the same values either way.
import { describe, expect, it } from 'vitest';
import { procSysPath, readProcSys, sysctlName } from '../../../src/apply/proc-sys.js';
import { fakeSystem } from '../../support/fake-system.js';

const values: Record<string, string> = { 'net/ipv4/ip_forward': '1', 'net/ipv4/conf/eth0.100/rp_filter': '2' };
const paths = ['net/ipv4/ip_forward', 'net/ipv4/conf/eth0.100/rp_filter', 'net/ipv4/conf/gone/rp_filter'];

/** A host whose /proc/sys holds `values`, as files and as grep in a namespace prints them. */
function host(netns?: string) {
  return fakeSystem({
    ...(netns !== undefined ? { netns } : {}),
    files: Object.fromEntries(Object.entries(values).map(([p, v]) => [`/proc/sys/${p}`, `${v}\n`])),
    answer(cmd, args) {
      if (cmd !== 'grep' || args.slice(0, 3).join(' ') !== '-s -H .') return undefined;
      const found = args.slice(3).filter((a) => a.slice('/proc/sys/'.length) in values);
      return { code: found.length === args.length - 3 ? 0 : 2, stdout: found.map((a) => `${a}:${values[a.slice('/proc/sys/'.length)]}\n`).join('') };
    },
  });
}

describe('readProcSys', () => {
  it("reads the files in guestwall's own namespace, starting no process, and leaves out missing ones", async () => {
    const h = host();
    expect(Object.fromEntries(await readProcSys(h.sys, paths))).toEqual(values);
    expect(h.calls).toEqual([]);
  });

  it('reads them with one command in the namespace for --netns, where its own files would be the wrong ones', async () => {
    const h = host('lab');
    h.files.set('/proc/sys/net/ipv4/ip_forward', '0\n'); // this process's namespace: not the one asked about
    expect(Object.fromEntries(await readProcSys(h.sys, paths))).toEqual(values);
    expect(h.calls).toEqual([`grep -s -H . ${paths.map((p) => `/proc/sys/${p}`).join(' ')}`]);
  });

  it('asks for at most 500 files per command', async () => {
    const h = host('lab');
    const many = Array.from({ length: 1200 }, (_, i) => `net/ipv4/conf/p${i}/proxy_arp`);
    await readProcSys(h.sys, many);
    expect(h.calls.map((c) => c.split(' ').length - 4)).toEqual([500, 500, 200]);
  });
});

describe('sysctl names and /proc/sys paths', () => {
  it('swap dots and slashes as sysctl(8) does, so a VLAN interface keeps its dot', () => {
    expect(procSysPath('net.ipv4.conf.eth0/100.rp_filter')).toBe('net/ipv4/conf/eth0.100/rp_filter');
    expect(sysctlName('net/ipv4/conf/eth0.100/rp_filter')).toBe('net.ipv4.conf.eth0/100.rp_filter');
    expect(sysctlName(procSysPath('net.ipv6.conf.br-dmz.proxy_ndp'))).toBe('net.ipv6.conf.br-dmz.proxy_ndp');
  });
});
