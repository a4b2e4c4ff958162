// Origins: every rule the compiler writes points back to the policy element that asked for it.
import type { Source } from '../model/host.js';
import type { Origin } from '../nft/ruleset.js';

/** The origin of a rule written by a policy element (`rules[3]`, `forwards[0]`). */
export function originOf(src: Source, what: string): Origin {
  return { id: pathId(src.path), file: src.loc.file, line: src.loc.line, col: src.loc.col, what, path: src.path };
}

/** The origin of a rule every guestwall ruleset has, such as "established connections pass". */
export function builtin(id: string, what: string, file: string): Origin {
  return { id: `builtin:${id}`, file, line: 0, col: 0, what };
}

/**
 * The origin of a rule guestwall adds because of a policy element the user wrote, though not as a
 * rule (a zone's dispatch, a guest interface's neighbour-advert check, anti-spoofing for the
 * `guests:` section): that element's place, with `id` under its path. No `path`: the shadow check
 * and the rule filter treat it as guestwall's own. Without a place it is a builtin.
 */
export function placed(src: Source | undefined, id: string, what: string, file: string): Origin {
  if (src === undefined) return builtin(id, what, file);
  return { id: `${pathId(src.path)}:${id}`, file: src.loc.file, line: src.loc.line, col: src.loc.col, what };
}

/** ["rules", 3] -> "rules[3]"; ["nat", "masquerade", 0] -> "nat.masquerade[0]". */
export function pathId(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}
