// Rules: the generated ruleset in nft syntax, each rule with the YAML place that wrote it;
// scrolls, and searches with '/' (n and N for the next and previous match).
import { Box, Text } from 'ink';
import { type RuleLine, originPlace } from '../derive.js';
import { type KeyHandler, scrollKey, useKeyedState } from '../keys.js';
import { type Hue, Paint, verdictHue } from '../theme.js';

const lineMatches = (l: RuleLine, q: string) => {
  const needle = q.toLowerCase();
  return l.text.toLowerCase().includes(needle) || (l.origin !== undefined && `${originPlace(l.origin)} ${l.origin.what}`.toLowerCase().includes(needle));
};

/** The index of the next line at or after `from` (before it, backwards) that matches, wrapping. */
function nextMatch(lines: RuleLine[], q: string, from: number, step: 1 | -1): number | undefined {
  for (let n = 0; n < lines.length; n++) {
    const i = (((from + step * n) % lines.length) + lines.length) % lines.length;
    if (lineMatches(lines[i]!, q)) return i;
  }
  return undefined;
}

interface RulesState {
  top: number;
  query: string;
  /** The search being typed, when one is. */
  draft?: string;
  /** Where the view was when the search began (Esc goes back there). */
  start: number;
}

export function useRules(lines: RuleLine[], height: number) {
  const [state, step] = useKeyedState<RulesState>({ top: 0, query: '', start: 0 });
  const visible = Math.max(1, height - 1); // the last line is the status
  const last = Math.max(0, lines.length - visible);
  const jump = (q: string, from: number, step: 1 | -1, otherwise: number) => {
    const i = q ? nextMatch(lines, q, from, step) : undefined;
    return i === undefined ? otherwise : Math.min(i, last);
  };
  const onKey: KeyHandler = (input, key) =>
    step((s): RulesState | undefined => {
      const top = Math.min(s.top, last);
      if (s.draft !== undefined) {
        // Typing a search takes every key.
        const { draft: _typed, ...rest } = s;
        if (key.escape) return { ...rest, top: s.start };
        if (key.return) return { ...rest, top, query: s.draft };
        const draft = key.backspace || key.delete ? s.draft.slice(0, -1) : input && !key.ctrl && !key.meta ? s.draft + input : s.draft;
        return { ...s, draft, top: jump(draft, s.start, 1, top) };
      }
      if (input === '/') return { ...s, top, draft: '', start: top };
      if (input === 'n') return { ...s, top: jump(s.query, top + 1, 1, top) };
      if (input === 'N') return { ...s, top: jump(s.query, top - 1, -1, top) };
      const next = scrollKey(input, key, top, lines.length, visible);
      return next === undefined ? undefined : { ...s, top: next };
    });
  return { top: Math.min(state.top, last), query: state.draft ?? state.query, typing: state.draft !== undefined, onKey };
}

const wordHue = (w: string): Hue | undefined => {
  if (w === 'accept' || w === 'drop' || w === 'reject') return verdictHue[w];
  if (w === 'jump' || w === 'goto' || w === 'vmap' || w === 'return') return 'blue';
  if (w.startsWith('@')) return 'magenta';
  if (w === 'dnat' || w === 'snat' || w === 'masquerade') return 'cyan';
  return undefined;
};

/** A rule in nft syntax with its verdicts, jumps, sets and NAT picked out. */
export function NftText(props: { text: string }) {
  return (
    <>
      {props.text.split(' ').map((w, i) => {
        const hue = wordHue(w);
        const word = i === 0 ? w : ` ${w}`;
        return hue ? (
          <Paint key={i} hue={hue}>
            {word}
          </Paint>
        ) : (
          word
        );
      })}
    </>
  );
}

export function Rules(props: { lines: RuleLine[]; top: number; height: number; query: string; typing: boolean }) {
  const bodyHeight = Math.max(1, props.height - 1);
  const rows = props.lines.slice(props.top, props.top + bodyHeight);
  const hits = props.query ? props.lines.filter((l) => lineMatches(l, props.query)).length : 0;
  const status = props.typing
    ? `/${props.query}_  (${hits} matching; Enter keeps, Esc cancels)`
    : `lines ${props.lines.length ? props.top + 1 : 0}-${props.top + rows.length} of ${props.lines.length}${props.query ? `  search "${props.query}": ${hits} matching (n/N)` : ''}`;
  return (
    <Box flexDirection="column">
      {rows.map((l, i) => {
        const hit = props.query !== '' && lineMatches(l, props.query);
        return (
          <Box key={props.top + i}>
            <Box flexGrow={1} flexShrink={1}>
              <Text wrap="truncate">
                {hit ? '* ' : '  '}
                {l.kind === 'rule' ? (
                  <>
                    {'    '}
                    <NftText text={l.text} />
                  </>
                ) : (
                  <Paint hue="cyan" bold>
                    {l.kind === 'chain' ? `  ${l.text}` : l.text}
                  </Paint>
                )}
              </Text>
            </Box>
            {l.origin ? (
              <Box flexShrink={0} marginLeft={1}>
                <Paint hue="gray">{originPlace(l.origin)}</Paint>
              </Box>
            ) : null}
          </Box>
        );
      })}
      <Paint hue={props.typing ? 'yellow' : 'gray'}>{status}</Paint>
    </Box>
  );
}
