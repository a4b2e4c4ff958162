// The name authority: every name guestwall derives that reaches the kernel or another program's
// file is made here, and only here. The checks claim each one once (claimNames below) and report
// a clash or a name a consumer would read differently at its place; the model, the compiler and
// the emitters take the names from the model and never derive them again.
import { type DocPath, type Finding, error } from './diagnostics.js';
import { libvirtProblem } from './grammars/libvirt.js';
import { lxcValueProblem } from './grammars/lxc.js';
import { networkdNameProblem } from './grammars/networkd.js';
import { nftStringProblem } from './grammars/nft.js';
import type { GrammarProblem } from './grammars/problem.js';
import { shWordProblem } from './grammars/sh.js';
import { sysctlNameProblem } from './grammars/sysctl.js';
import { deviceUnitProblem } from './grammars/systemd.js';
import { xlVifValueProblem } from './grammars/xl.js';
import { IFNAME_MAX, ifnameProblem } from './ifnames.js';

/** Xen HVM guests get a second, emulated tap named "<vifname>-emu". */
export const XEN_EMU_SUFFIX = '-emu';

/** The host-side name of a guest interface: the declared one, or "gw-<guest>" ("gw-<guest>-<n>" after the first). */
export function guestIfName(guest: string, index: number, declared: string | undefined): string {
  if (declared !== undefined) return declared;
  return index === 0 ? `gw-${guest}` : `gw-${guest}-${index}`;
}

/** The tap QEMU gives a Xen HVM guest's emulated NIC (the guest uses it until its PV drivers load). */
export function xenEmuTap(ifname: string): string {
  return `${ifname}${XEN_EMU_SUFFIX}`;
}

export interface GuestInterfaceNames {
  /** The stable host-side name (vifname, <target dev>, veth.pair). */
  name: string;
  /** The Xen HVM emulated NIC's tap, when there is one. */
  emuTap?: string;
  /** Every host-side name the interface's traffic can appear on: `name`, then `emuTap`. */
  hostNames: string[];
  /** Xen HVM only: the inet chain whose `fib` check takes a source routed to either of the two ports. */
  fibChain?: string;
}

export function guestInterfaceNames(guest: string, index: number, declared: string | undefined, hvm: boolean): GuestInterfaceNames {
  const name = guestIfName(guest, index, declared);
  if (!hvm) return { name, hostNames: [name] };
  const emuTap = xenEmuTap(name);
  return { name, emuTap, hostNames: [name, emuTap], fibChain: fibChainName(name) };
}

/**
 * The chain name for a Xen HVM guest interface's source check (both of its ports jump there):
 * "fib_" and the PV vif's name, with every byte outside [A-Za-z0-9.-] (including '_') written as
 * '_' and two upper-case hex digits. The encoding can be read back, so two interfaces never share
 * a chain ("web+1" is fib_web_2B1, "web@1" fib_web_401), and no other chain (zone pairs are lower
 * case) can be one of these.
 */
export function fibChainName(ifname: string): string {
  return `fib_${chainSafe(ifname)}`;
}

/** Every byte outside [A-Za-z0-9.-] (including '_') as '_' and two upper-case hex digits. */
function chainSafe(ifname: string): string {
  let out = '';
  for (const b of Buffer.from(ifname, 'utf8')) {
    const c = String.fromCharCode(b);
    out += b < 0x80 && /[A-Za-z0-9.-]/.test(c) ? c : `_${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A systemd-networkd file guestwall owns for an interface (a bridge's .netdev, a port's .network). */
export function networkdFileName(ifname: string, ext: 'netdev' | 'network'): string {
  return `00-guestwall-${ifname}.${ext}`;
}

// ---- claiming: every name once, each read back by every consumer it reaches --------------

/** The programs an interface name is written for, besides the kernel and nftables (which read every one). */
export type Consumer = 'xl' | 'libvirt-dev' | 'libvirt-bridge' | 'lxc' | 'networkd' | 'sysctl' | 'sh' | 'systemd-unit';

const CONSUMER_GRAMMAR: Readonly<Record<Consumer, (v: string) => GrammarProblem | undefined>> = {
  xl: xlVifValueProblem,
  'libvirt-dev': (v) => libvirtProblem(v, 'target dev'),
  'libvirt-bridge': (v) => libvirtProblem(v, 'source bridge'),
  lxc: lxcValueProblem,
  networkd: networkdNameProblem,
  sysctl: sysctlNameProblem,
  sh: shWordProblem,
  'systemd-unit': deviceUnitProblem,
};

interface Claimed {
  path: DocPath;
  atKey: boolean;
  owner: string;
}

/**
 * The interface names of one policy. `claim` reports a name the kernel or a consumer would read
 * differently, or one already taken, and returns whether the name is new and sound.
 */
export class InterfaceNames {
  readonly #names = new Map<string, Claimed>();
  constructor(private readonly report: (f: Finding) => void) {}

  /**
   * `owner` completes "interface 'x' is already ...". `derivedFrom`, for a name guestwall made up
   * (a default name, an -emu tap), says how, so the message explains a name nobody wrote.
   */
  claim(name: string, at: { path: DocPath; atKey: boolean }, owner: string, consumers: readonly Consumer[], derivedFrom?: string): boolean {
    const { path, atKey } = at;
    const said = derivedFrom !== undefined ? `${derivedFrom} '${name}'` : `interface name '${name}'`;
    const kernel = ifnameProblem(name);
    if (kernel) {
      const message = derivedFrom !== undefined ? kernel.message.replace(`interface name '${name}'`, said) : kernel.message;
      this.report({ ...error(kernel.kind, path, message, kernel.hint), atKey });
      return false;
    }
    for (const c of ['nft', ...consumers] as const) {
      const problem = c === 'nft' ? nftStringProblem(name) : CONSUMER_GRAMMAR[c](name);
      if (problem) {
        this.report({ ...error('invalid-ifname', path, `${said} ${problem.message}`, problem.hint), atKey });
        return false;
      }
    }
    const first = this.#names.get(name);
    if (first) {
      this.report({
        ...error('duplicate-interface', path, `${said} is already ${first.owner}`,
          first.owner.startsWith('a port') && owner.startsWith('a port') ? 'an interface can be a port of one bridge only' : 'every interface on the host needs its own name'),
        atKey, related: [{ path: first.path, message: `'${name}' first declared here`, atKey: first.atKey }],
      });
      return false;
    }
    this.#names.set(name, { path, atKey, owner });
    return true;
  }
}

/** IFNAMSIZ counts bytes, and so does everything here. */
export function ifnameBytes(name: string): number {
  return Buffer.byteLength(name, 'utf8');
}

export { IFNAME_MAX };
