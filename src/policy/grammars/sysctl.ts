// sysctl keys with an interface in them (net.ipv4.conf.IFNAME.proxy_arp), written to sysctl.d
// and passed to `sysctl -w key=value`: '=' ends the key, '.' separates its parts ('.' in the
// name is written '/'), and systemd-sysctl reads '*', '?' and '[' in a key as globs.
import { type GrammarProblem, PORTABLE_HINT, shown } from './problem.js';

export function sysctlNameProblem(value: string): GrammarProblem | undefined {
  const bad = /[=*?[\]\s]/.exec(value)?.[0];
  if (bad === undefined) return undefined;
  return { message: `contains ${shown(bad)}, which a sysctl key (net.ipv4.conf.${value.replaceAll('.', '/')}.proxy_arp) cannot carry as itself`, hint: PORTABLE_HINT };
}
