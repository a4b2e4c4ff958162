// Problems: every diagnostic of the latest reading, as `check` prints them, one line each; the
// selected one shows its fix hint and related places, and Enter opens it in full (wrapped).
import { Box, Text } from 'ink';
import type { Diagnostic } from '../../policy/diagnostics.js';
import { type KeyHandler, cursorKey, follow, useKeyedState } from '../keys.js';
import { Paint } from '../theme.js';
import { hanging } from '../wrap.js';

export function useProblems(diagnostics: Diagnostic[], height: number) {
  const [s, step] = useKeyedState({ at: 0, top: 0, open: false });
  const page = Math.max(1, height - 3);
  const onKey: KeyHandler = (input, key) =>
    step(({ at, top, open }) => {
      if (diagnostics.length === 0) return undefined;
      if (key.return) return { at, top, open: !open };
      if (key.escape && open) return { at, top, open: false };
      const next = cursorKey(input, key, Math.min(at, Math.max(0, diagnostics.length - 1)), diagnostics.length, page);
      return next === undefined ? undefined : { at: next, top: follow(top, next, page), open };
    });
  const selected = Math.min(s.at, Math.max(0, diagnostics.length - 1));
  return { selected, top: follow(Math.min(s.top, selected), selected, page), open: s.open && diagnostics.length > 0, onKey };
}

/** The help bar's words for the Problems view. */
export function problemsHelp(open: boolean): string {
  return open ? '↑↓ next, previous  Enter Esc back to the list' : '↑↓ select  Enter open in full';
}

const place = (d: { file: string; line: number; col: number }) => `${d.file}:${d.line}:${d.col}`;

/** One diagnostic in full: every line of it wrapped at `width`, as check prints it and more. */
export function problemLines(d: Diagnostic, width: number): { text: string; hue?: 'red' | 'yellow' | 'cyan' | 'gray' }[] {
  const out: { text: string; hue?: 'red' | 'yellow' | 'cyan' | 'gray' }[] = [];
  out.push({ text: `${place(d)}  ${d.severity} ${d.code} ${d.kind}`, hue: d.severity === 'error' ? 'red' : 'yellow' });
  for (const l of hanging(d.message, width, '', '')) out.push({ text: l });
  if (d.hint) for (const l of hanging(d.hint, width, 'hint: ', '      ')) out.push({ text: l, hue: 'cyan' });
  for (const r of d.related ?? []) for (const l of hanging(`${place(r)}: ${r.message}`, width, 'see ', '    ')) out.push({ text: l, hue: 'gray' });
  return out;
}

export function Problems(props: { diagnostics: Diagnostic[]; readError?: string; selected: number; top: number; open: boolean; width: number; height: number }) {
  const ds = props.diagnostics;
  if (props.readError) return <Paint hue="red">{props.readError}</Paint>;
  if (ds.length === 0) return <Paint hue="green">no problems: 0 errors, 0 warnings</Paint>;
  const errors = ds.filter((d) => d.severity === 'error').length;
  const counts = `${errors} error${errors === 1 ? '' : 's'}, ${ds.length - errors} warning${ds.length - errors === 1 ? '' : 's'}`;
  const sel = ds[props.selected]!;
  if (props.open) {
    const lines = problemLines(sel, props.width).slice(0, Math.max(1, props.height - 2));
    return (
      <Box flexDirection="column">
        <Paint hue="gray">{`problem ${props.selected + 1} of ${ds.length} (${counts})`}</Paint>
        <Text> </Text>
        {lines.map((l, i) => (
          <Text key={i} wrap="truncate">
            {l.hue ? <Paint hue={l.hue}>{l.text}</Paint> : l.text}
          </Text>
        ))}
      </Box>
    );
  }
  const room = Math.max(1, props.height - 3 - (sel.hint ? 1 : 0) - (sel.related?.length ?? 0));
  return (
    <Box flexDirection="column">
      <Paint hue="gray">{`${counts}; Enter shows the selected one in full`}</Paint>
      {ds.slice(props.top, props.top + room).map((d, i) => {
        const here = props.top + i === props.selected;
        return (
          <Box key={props.top + i} flexDirection="column">
            <Text wrap="truncate">
              {here ? '> ' : '  '}
              <Paint inverse={here}>{place(d)}</Paint>{' '}
              <Paint hue={d.severity === 'error' ? 'red' : 'yellow'} bold>
                {d.severity}
              </Paint>
              {`: ${d.message} [${d.code} ${d.kind}]`}
            </Text>
            {here && d.hint ? (
              <Text wrap="truncate">
                {'    '}
                <Paint hue="cyan">hint:</Paint> {d.hint}
              </Text>
            ) : null}
            {here
              ? (d.related ?? []).map((r, j) => (
                  <Text key={j} wrap="truncate">
                    {`    ${place(r)}: note: ${r.message}`}
                  </Text>
                ))
              : null}
          </Box>
        );
      })}
    </Box>
  );
}
