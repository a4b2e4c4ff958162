// systemd-networkd (systemd.network(5)): [Match] Name= takes a whitespace-separated list of
// shell-style globs, a leading '!' negates the list, and quotes and backslashes are unquoted.
// `Name=!lo` matches every link but lo; `Name=eth?` every eth0..eth9. Names guestwall writes
// there must match exactly one interface: the name itself.
import { type GrammarProblem, PORTABLE_HINT, shown } from './problem.js';

const PATTERN: Readonly<Record<string, string>> = {
  '*': 'is a glob',
  '?': 'is a glob',
  '[': 'opens a glob character class',
  ']': 'closes a glob character class',
  '"': 'is a quote',
  "'": 'is a quote',
  '\\': 'escapes the next character',
  '%': 'starts a specifier in unit files',
};

export function networkdNameProblem(value: string): GrammarProblem | undefined {
  if (value.startsWith('!')) {
    return { message: "starts with '!', which negates systemd-networkd's Name= match: it would match every other interface", hint: PORTABLE_HINT };
  }
  const ws = /[\s\p{Cc}]/u.exec(value)?.[0];
  if (ws !== undefined) return { message: `contains ${shown(ws)}, which separates the names in systemd-networkd's Name=`, hint: PORTABLE_HINT };
  for (const c of value) {
    const why = PATTERN[c];
    if (why !== undefined) return { message: `contains ${shown(c)}, which ${why} in systemd-networkd's Name=, so it would match other interfaces`, hint: PORTABLE_HINT };
  }
  return undefined;
}
