// Free text in a policy (descriptions, the host's name) is shown as it is: in explain's output,
// the TUI, rule origins. A control character there (an ANSI escape, a carriage return) or a bidi
// control (U+202E turns the rest of the line around) would make that output say something else,
// so it is refused at its place. Line breaks and tabs are text.
import { type DocPath, type Finding, error } from './diagnostics.js';

const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

function codePoint(c: string): string {
  return `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Findings for every description (and the host's name) holding a control or bidi character. */
export function freeTextFindings(data: unknown): Finding[] {
  const out: Finding[] = [];
  const walk = (v: unknown, path: DocPath) => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    else if (typeof v === 'string') {
      const last = path[path.length - 1];
      const free = last === 'description' || (path.length === 2 && path[0] === 'host' && last === 'name');
      const bad = free ? UNSAFE.exec(v)?.[0] : undefined;
      if (bad !== undefined) {
        const what = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u.test(bad) ? 'a bidi control, which turns the text around it' : 'a control character, which a terminal acts on';
        out.push(error('invalid-text', path, `${last === 'name' ? "the host's name" : 'the description'} '${v}' contains ${codePoint(bad)}, ${what} wherever guestwall shows it (explain, the TUI, rule origins)`,
          'write plain text; line breaks and tabs are fine'));
      }
    }
  };
  walk(data, []);
  return out;
}
