// xl.cfg's vif= line (xl-network-configuration(5)): `vif = [ 'key=value,key=value', ... ]`. The
// list is xl.cfg syntax (quotes, brackets, commas, '#' comments), each spec is split at ',' and
// each key=value at its first '='. A value guestwall writes there (vifname=, bridge=) must be
// read back as itself: only characters that are syntax nowhere on that line.
import { type GrammarProblem, PORTABLE_HINT, shown } from './problem.js';

/** Letters, digits, a few marks, and any non-ASCII character (xl reads UTF-8 strings byte for byte). */
const SAFE = /^[A-Za-z0-9_.@+%\-\u0080-\u{10ffff}]+$/u;
const SYNTAX: Readonly<Record<string, string>> = {
  ',': 'separates the keys of a vif spec',
  '=': 'separates a key from its value',
  "'": 'ends the quoted vif spec',
  '"': 'quotes a string in xl.cfg',
  '[': 'opens a list in xl.cfg',
  ']': 'closes the vif= list',
  '#': 'starts a comment in xl.cfg',
  ';': 'ends a setting in xl.cfg',
  '\\': 'escapes in xl.cfg strings',
};

export function xlVifValueProblem(value: string): GrammarProblem | undefined {
  if (SAFE.test(value)) return undefined;
  const bad = [...value].find((c) => !SAFE.test(c)) ?? '';
  const why = SYNTAX[bad] ?? 'is not a character xl reads back as itself';
  return { message: `contains ${shown(bad)}, which ${why} on xl.cfg's vif= line`, hint: PORTABLE_HINT };
}
