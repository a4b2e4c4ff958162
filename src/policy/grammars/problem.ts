// What a consumer's grammar says about a value guestwall would write into its file: nothing (the
// consumer reads it back as written), or why not and what to write instead. Checks report it at
// the value's place; nothing downstream escapes a value into something else.

export interface GrammarProblem {
  /** Completes "interface name 'x' ...": what the consumer would do with it. */
  message: string;
  hint: string;
}

/** A character for a message: itself when visible, its code point otherwise. */
export function shown(c: string): string {
  if (c === "'") return `"'"`;
  return /^[\x21-\x7e]$/.test(c) ? `'${c}'` : `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

export const PORTABLE_HINT = "use letters, digits, '-', '_' and '.'";
