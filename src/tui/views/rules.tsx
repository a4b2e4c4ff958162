// Rules: the generated ruleset in nft syntax, each rule with the YAML place that wrote it;
// scrolls, and searches with '/' (n and N for the next and previous match).
import { Box, Text } from 'ink';
import { useMemo, useRef } from 'react';
import type { HostModel } from '../../model/host.js';
import { type RuleFilter, type RuleLine, filterChoices, filterRuleLines, originPlace } from '../derive.js';
import { type KeyHandler, scrollKey, useKeyedState } from '../keys.js';
import { type Hue, Paint, verdictHue } from '../theme.js';

const lineMatches = (l: RuleLine, q: string) => {
  const needle = q.toLowerCase();
  // The nft text shows port numbers: a service name is found through the YAML element that named it.
  return (
    l.text.toLowerCase().includes(needle) ||
    (l.origin !== undefined && `${originPlace(l.origin)} ${l.origin.id} ${l.origin.what}`.toLowerCase().includes(needle)) ||
    (l.services?.some((s) => s.toLowerCase().includes(needle)) ?? false)
  );
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
  /** Only the rules that concern this zone or guest. */
  filter?: RuleFilter;
  /** The filter picker, while it is open: what is typed to narrow it, and the choice under the cursor. */
  picking?: { typed: string; at: number };
}

/** The picker's choices for what is typed: names that start with it first, then those that contain it. */
export function pickerChoices(choices: RuleFilter[], typed: string): RuleFilter[] {
  const t = typed.toLowerCase();
  return [...choices.filter((c) => c.name.toLowerCase().startsWith(t)), ...choices.filter((c) => !c.name.toLowerCase().startsWith(t) && c.name.toLowerCase().includes(t))];
}

export function useRules(all: RuleLine[], model: HostModel | undefined, height: number) {
  const [state, step] = useKeyedState<RulesState>({ top: 0, query: '', start: 0 });
  // The filtered lines of each filter, worked out once per ruleset.
  const cache = useRef<{ all: RuleLine[]; byFilter: Map<string, RuleLine[]> }>({ all, byFilter: new Map() });
  if (cache.current.all !== all) cache.current = { all, byFilter: new Map() };
  const linesOf = (f: RuleFilter | undefined): RuleLine[] => {
    if (!f || !model) return all;
    const key = `${f.kind}:${f.name}`;
    let l = cache.current.byFilter.get(key);
    if (!l) cache.current.byFilter.set(key, (l = filterRuleLines(model, all, f)));
    return l;
  };
  const choices = useMemo(() => (model ? filterChoices(model) : []), [model]);
  const visible = Math.max(1, height - 1); // the last line is the status
  const onKey: KeyHandler = (input, key) =>
    step((s): RulesState | undefined => {
      const lines = linesOf(s.filter);
      const last = Math.max(0, lines.length - visible);
      const jump = (q: string, from: number, step: 1 | -1, otherwise: number) => {
        const i = q ? nextMatch(lines, q, from, step) : undefined;
        return i === undefined ? otherwise : Math.min(i, last);
      };
      const top = Math.min(s.top, last);
      if (s.picking) {
        // The picker takes every key.
        const { picking: _open, ...rest } = s;
        const shown = pickerChoices(choices, s.picking.typed);
        if (key.escape) return rest;
        if (key.return) {
          const chosen = shown[Math.min(s.picking.at, shown.length - 1)];
          return chosen ? { ...rest, filter: chosen, top: 0 } : rest;
        }
        if (key.downArrow || key.tab) return { ...s, picking: { ...s.picking, at: Math.min(shown.length - 1, s.picking.at + 1) } };
        if (key.upArrow) return { ...s, picking: { ...s.picking, at: Math.max(0, s.picking.at - 1) } };
        const typed = key.backspace || key.delete ? s.picking.typed.slice(0, -1) : input && !key.ctrl && !key.meta ? s.picking.typed + input : s.picking.typed;
        return { ...s, picking: { typed, at: 0 } };
      }
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
      if (input === 'f' && model) return { ...s, top, picking: { typed: '', at: 0 } };
      if (input === 'F') {
        const { filter: _gone, ...rest } = s;
        return { ...rest, top: 0 };
      }
      const next = scrollKey(input, key, top, lines.length, visible);
      return next === undefined ? undefined : { ...s, top: next };
    });
  const lines = linesOf(state.filter);
  const last = Math.max(0, lines.length - visible);
  return {
    lines,
    total: all.length,
    top: Math.min(state.top, last),
    query: state.draft ?? state.query,
    typing: state.draft !== undefined,
    ...(state.filter ? { filter: state.filter } : {}),
    ...(state.picking ? { picker: { typed: state.picking.typed, at: state.picking.at, choices: pickerChoices(choices, state.picking.typed) } } : {}),
    onKey,
  };
}

/** The help bar's words for the Rules view. */
export function rulesHelp(r: { typing: boolean; picker?: unknown; filter?: RuleFilter }): string {
  if (r.picker) return 'type to narrow  ↑↓ choose  Enter filter  Esc cancel';
  if (r.typing) return 'type to search  Enter keep  Esc cancel';
  return `↑↓ PgUp PgDn  / search  n N  f filter${r.filter ? '  F clear' : ''}`;
}

/** The filter picker: zones, the host and guests, narrowed by what is typed. */
export function RulePicker(props: { typed: string; at: number; choices: RuleFilter[]; height: number }) {
  const room = Math.max(1, props.height - 2);
  const first = Math.max(0, props.at - room + 1);
  return (
    <Box flexDirection="column">
      <Paint hue="yellow">{`show only the rules of: ${props.typed}_  (${props.choices.length} matching zones and guests)`}</Paint>
      {props.choices.slice(first, first + room).map((c, i) => {
        const here = first + i === props.at;
        return (
          <Text key={`${c.kind}:${c.name}`} wrap="truncate">
            {here ? '> ' : '  '}
            <Paint inverse={here} hue={c.kind === 'zone' ? 'cyan' : 'green'}>{`${c.kind} ${c.name}`}</Paint>
          </Text>
        );
      })}
      {props.choices.length === 0 ? <Text>no zone or guest has that name</Text> : null}
    </Box>
  );
}

const wordHue = (w: string): Hue | undefined => {
  if (w === 'accept' || w === 'drop' || w === 'reject') return verdictHue[w];
  if (w === 'jump' || w === 'goto' || w === 'vmap' || w === 'return') return 'blue';
  if (w.startsWith('@')) return 'magenta';
  if (w === 'dnat' || w === 'snat' || w === 'masquerade') return 'cyan';
  return undefined;
};

/** A rule in nft syntax with its verdicts, jumps, sets and NAT picked out; plain words run together in one piece. */
export function NftText(props: { text: string }) {
  const pieces: { text: string; hue?: Hue }[] = [];
  props.text.split(' ').forEach((w, i) => {
    const hue = wordHue(w);
    const word = i === 0 ? w : ` ${w}`;
    const last = pieces.at(-1);
    if (hue) pieces.push({ text: word, hue });
    else if (last && !last.hue) last.text += word;
    else pieces.push({ text: word });
  });
  return (
    <>
      {pieces.map((p, i) =>
        p.hue ? (
          <Paint key={i} hue={p.hue}>
            {p.text}
          </Paint>
        ) : (
          p.text
        ),
      )}
    </>
  );
}

/** `text` cut to `width` characters (with … when cut) and padded to it. */
export function fit(text: string, width: number): string {
  if (width <= 0) return '';
  return text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text.padEnd(width);
}

/**
 * One line of the ruleset: the rule (or chain, table) on the left, its YAML place on the right.
 * Laid out by hand in one Text: a frame of the Rules view is 20-50 of these, and flex boxes per
 * line made switching to the view miss 100 ms at 1,000 guests.
 */
export function RuleRow(props: { line: RuleLine; width: number; mark?: string; indent?: string }) {
  const l = props.line;
  const place = l.origin ? originPlace(l.origin) : '';
  const lead = `${props.mark ?? ''}${l.kind === 'rule' ? (props.indent ?? '    ') : l.kind === 'chain' ? '  ' : ''}`;
  const room = props.width - lead.length - (place ? place.length + 1 : 0);
  const body = fit(l.text, room);
  return (
    <Text wrap="truncate">
      {lead}
      {l.kind === 'rule' ? (
        <NftText text={body} />
      ) : (
        <Paint hue="cyan" bold>
          {body}
        </Paint>
      )}
      {place ? (
        <>
          {' '}
          <Paint hue="gray">{place}</Paint>
        </>
      ) : null}
    </Text>
  );
}

export function Rules(props: { lines: RuleLine[]; total: number; filter?: RuleFilter; top: number; width: number; height: number; query: string; typing: boolean }) {
  const bodyHeight = Math.max(1, props.height - 1);
  const rows = props.lines.slice(props.top, props.top + bodyHeight);
  const hits = props.query ? props.lines.filter((l) => lineMatches(l, props.query)).length : 0;
  const status = props.typing
    ? `/${props.query}_  (${hits} matching; Enter keeps, Esc cancels)`
    : `lines ${props.lines.length ? props.top + 1 : 0}-${props.top + rows.length} of ${props.lines.length}${props.filter ? ` (${props.filter.kind} ${props.filter.name}; ${props.total} without the filter, F clears)` : ''}${props.query ? `  search "${props.query}": ${hits} matching (n/N)` : ''}`;
  return (
    <Box flexDirection="column">
      {rows.map((l, i) => (
        <RuleRow key={props.top + i} line={l} width={props.width} mark={props.query !== '' && lineMatches(l, props.query) ? '* ' : '  '} />
      ))}
      <Text wrap="truncate">
        <Paint hue={props.typing ? 'yellow' : 'gray'}>{status}</Paint>
      </Text>
    </Box>
  );
}
