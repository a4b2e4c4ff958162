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
  // The kernel takes these, but they are invisible or turn text around (U+202E) wherever the
  // name is shown: in nft listings, logs, the TUI. Nobody means them.
  const invisible = /[\p{Cf}\p{Zl}\p{Zp}]/u.exec(name)?.[0];
  if (invisible !== undefined) {
    const code = `U+${invisible.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    return { kind: 'invalid-ifname', message: `interface name '${name}' contains ${code}, an invisible formatting character (a bidi control turns the text around it)`, hint };
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
