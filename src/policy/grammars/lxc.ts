// LXC's config files: one `key = value` per line; LXC trims the value, and a line that starts
// with '#' is a comment. A value guestwall writes (lxc.net.N.link, veth.pair) must be one line
// with nothing LXC would trim or read as a comment.
import { type GrammarProblem, PORTABLE_HINT, shown } from './problem.js';

export function lxcValueProblem(value: string): GrammarProblem | undefined {
  const control = /[\p{Cc}\p{Zl}\p{Zp}]/u.exec(value)?.[0];
  if (control !== undefined) return { message: `contains ${shown(control)}, which would end the line of LXC's config`, hint: PORTABLE_HINT };
  if (/^[ \t]|[ \t]$/.test(value)) return { message: "starts or ends with white space, which LXC trims from a config value", hint: PORTABLE_HINT };
  if (value.startsWith('#')) return { message: "starts with '#', which LXC's config reads as a comment", hint: PORTABLE_HINT };
  return undefined;
}
