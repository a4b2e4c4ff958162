// Interface names: what the kernel accepts, and the stable names guestwall gives guest interfaces.
// Hypervisors name host-side interfaces by counters (vif<domid>.<n>, vnetN, random vethXXXX) that
// change on every boot, so every guest interface gets a fixed name the guest snippets set.

/** IFNAMSIZ is 16 including the terminating NUL. */
export const IFNAME_MAX = 15;

/** Why the kernel would refuse this interface name (net/core/dev.c dev_valid_name), or undefined. */
export function ifnameProblem(name: string): { kind: 'invalid-ifname' | 'ifname-too-long'; message: string } | undefined {
  if (name.length === 0 || name === '.' || name === '..') return { kind: 'invalid-ifname', message: `'${name}' is not a valid interface name` };
  if (/[/:\s*]/.test(name)) {
    return { kind: 'invalid-ifname', message: `interface name '${name}' contains '/', ':', '*' or whitespace, which the kernel refuses` };
  }
  if (name.length > IFNAME_MAX) {
    return { kind: 'ifname-too-long', message: `interface name '${name}' has ${name.length} characters; Linux allows at most ${IFNAME_MAX}` };
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
