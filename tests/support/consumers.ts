// Faithful readers of the files guestwall writes for other programs, where the program itself
// does not run here: xl.cfg's vif= list (libxlu's lexer and parse_nic_config), LXC's
// `key = value` lines, systemd-networkd's [Match] Name= (fnmatch globs, '!' negation), and the
// attributes of libvirt's <interface> XML. Tests read each artifact back with them and compare
// with the names the policy gave.

/** The vif specs of an xl.cfg text, each as its key=value pairs in order (split as xl splits them). */
export function xlVifSpecs(text: string): [string, string][][] {
  const at = text.search(/^vif\s*=\s*\[/m);
  if (at < 0) throw new Error('no vif = [ ... ] line');
  let i = text.indexOf('[', at) + 1;
  const specs: string[] = [];
  const skip = () => {
    while (i < text.length && /[ \t\n]/.test(text[i]!)) i++;
  };
  skip();
  while (text[i] !== ']') {
    const quote = text[i];
    if (quote !== "'" && quote !== '"') throw new Error(`xl.cfg: expected a string at ${i}: ${text.slice(i, i + 20)}`);
    let s = '';
    i++;
    // libxlu: '...' holds any character but ' and newline; "..." also takes backslash escapes.
    while (text[i] !== quote) {
      if (i >= text.length || text[i] === '\n') throw new Error('xl.cfg: unterminated string');
      if (quote === '"' && text[i] === '\\') i++;
      s += text[i++];
    }
    i++;
    specs.push(s);
    skip();
    if (text[i] === ',') {
      i++;
      skip();
    } else if (text[i] !== ']') throw new Error(`xl.cfg: expected ',' or ']' at ${i}: ${text.slice(i, i + 20)}`);
  }
  // After the list: nothing but the end of the line (a comment or another setting would be read too).
  const rest = text.slice(i + 1).split('\n')[0]!;
  if (rest.trim() !== '') throw new Error(`xl.cfg: '${rest}' after the vif list`);
  return specs.map((spec) => spec.split(',').map((kv) => {
    const eq = kv.indexOf('=');
    return eq < 0 ? [kv, ''] : [kv.slice(0, eq), kv.slice(eq + 1)];
  }));
}

/** LXC config lines as (key, value): comments and blank lines skipped, key and value trimmed as LXC does. */
export function lxcEntries(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of text.split('\n')) {
    const t = line.replace(/^[ \t]+/, '');
    if (t === '' || t.startsWith('#')) continue;
    const eq = t.indexOf('=');
    if (eq < 0) throw new Error(`LXC: a line without '=': ${line}`);
    out.push([t.slice(0, eq).trim(), t.slice(eq + 1).trim()]);
  }
  return out;
}

/** fnmatch(3) without flags, as systemd's strv_fnmatch uses it: '*', '?', '[...]' (with '!' or '^' negation), '\' escapes. */
export function fnmatch(pattern: string, name: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '\\' && i + 1 < pattern.length) re += escapeRe(pattern[++i]!);
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, close);
      const neg = body.startsWith('!') || body.startsWith('^');
      if (neg) body = body.slice(1);
      re += `[${neg ? '^' : ''}${body.replace(/\\/g, '\\\\')}]`;
      i = close;
    } else re += escapeRe(c);
  }
  try {
    return new RegExp(`${re}$`, 'su').test(name);
  } catch {
    return false;
  }
}

const escapeRe = (c: string) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * Whether a [Match] Name= value matches an interface, as systemd-networkd decides: a
 * whitespace-separated list of globs (quotes removed), the whole list negated by a leading '!'.
 */
export function networkdNameMatches(value: string, ifname: string): boolean {
  let v = value.trim();
  const negate = v.startsWith('!');
  if (negate) v = v.slice(1);
  const words = [...v.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
  const hit = words.some((w) => fnmatch(w, ifname));
  return negate ? !hit : hit;
}

/** The Name= values of a networkd file's [Match] section. */
export function networkdMatchNames(text: string): string[] {
  const out: string[] = [];
  let section = '';
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t.startsWith('[')) section = t;
    else if (section === '[Match]' && t.startsWith('Name=')) out.push(t.slice('Name='.length));
  }
  return out;
}

const XML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', apos: "'", quot: '"' };

/** The values of an XML attribute on every element of that name, entities decoded. */
export function xmlAttributes(text: string, element: string, attribute: string): string[] {
  const re = new RegExp(`<${element}\\s[^>]*?${attribute}='([^']*)'`, 'g');
  return [...text.replace(/<!--[\s\S]*?-->/g, '').matchAll(re)].map((m) => m[1]!.replace(/&(#\d+|#x[0-9a-f]+|[a-z]+);/gi, (_, e: string) =>
    e.startsWith('#x') ? String.fromCodePoint(parseInt(e.slice(2), 16)) : e.startsWith('#') ? String.fromCodePoint(Number(e.slice(1))) : XML_ENTITIES[e] ?? `&${e};`));
}
