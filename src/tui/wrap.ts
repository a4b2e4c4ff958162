// Text laid out for a terminal by hand: a view that knows how many lines a long message takes can
// give the rest of its screen to what follows, where Ink's own wrapping would push it off.

/** `text` broken at spaces into lines of at most `width` characters (a longer word is cut). */
export function wrapWords(text: string, width: number): string[] {
  const w = Math.max(1, width);
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > w) {
      out.push(line);
      line = '';
    }
    line = line ? `${line} ${word}` : word;
    while (line.length > w) {
      out.push(line.slice(0, w));
      line = line.slice(w);
    }
  }
  out.push(line);
  return out;
}

/** `text` wrapped at `width - indent.length`, each line after the first indented by `indent` (the first by `first`). */
export function hanging(text: string, width: number, first: string, indent: string): string[] {
  return wrapWords(text, width - Math.max(first.length, indent.length)).map((l, i) => `${i === 0 ? first : indent}${l}`);
}
