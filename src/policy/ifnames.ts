// Interface names: what the kernel accepts, and the stable names guestwall gives guest interfaces.
// Hypervisors name host-side interfaces by counters (vif<domid>.<n>, vnetN, random vethXXXX) that
// change on every boot, so every guest interface gets a fixed name the guest snippets set.

/** IFNAMSIZ is 16 including the terminating NUL. */
export const IFNAME_MAX = 15;

const IFNAME_HINT = `use letters, digits, '-', '_' and '.', at most ${IFNAME_MAX} characters`;

/** Why the kernel would refuse this interface name (net/core/dev.c dev_valid_name), or undefined. */
export function ifnameProblem(name: string): { kind: 'invalid-ifname' | 'ifname-too-long'; message: string; hint: string } | undefined {
  const hint = IFNAME_HINT;
  if (name.length === 0 || name === '.' || name === '..') return { kind: 'invalid-ifname', message: `'${name}' is not a valid interface name`, hint };
  const bad = /[/:\s*]/.exec(name)?.[0];
  if (bad !== undefined) {
    const what = /\s/.test(bad) ? 'whitespace' : `'${bad}'`;
    return { kind: 'invalid-ifname', message: `interface name '${name}' contains ${what}, which the kernel refuses in interface names`, hint };
  }
  // The kernel would take these, but nft syntax cannot quote them, and nobody means them.
  const unquotable = /["\\\p{Cc}]/u.exec(name)?.[0];
  if (unquotable !== undefined) {
    return { kind: 'invalid-ifname', message: `interface name '${name}' contains ${JSON.stringify(unquotable)}, which nftables cannot quote`, hint };
  }
  // IFNAMSIZ counts bytes: "ethé0" is 5 characters but 6 bytes.
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > IFNAME_MAX) {
    const size = bytes === name.length ? `${bytes} characters; Linux allows at most ${IFNAME_MAX}` : `${bytes} bytes in UTF-8; Linux allows at most ${IFNAME_MAX} bytes`;
    return { kind: 'ifname-too-long', message: `interface name '${name}' has ${size}`, hint: `choose a name of at most ${IFNAME_MAX} ASCII characters` };
  }
  return undefined;
}

/** Names the hypervisors hand out and change on every boot; rules keyed on them do not last. */
export const UNSTABLE_PREFIXES = ['vif', 'vnet', 'macvtap', 'macvlan', 'veth'] as const;

/** The host-side name of a guest interface: the declared one, or "gw-<guest>" ("gw-<guest>-<n>" after the first). */
export function guestIfName(guest: string, index: number, declared: string | undefined): string {
  if (declared !== undefined) return declared;
  return index === 0 ? `gw-${guest}` : `gw-${guest}-${index}`;
}

/** Xen HVM guests get a second, emulated tap named "<vifname>-emu". */
export const XEN_EMU_SUFFIX = '-emu';
