// Problems: every diagnostic of the latest reading, as `check` prints them; the selected one
// shows its fix hint and related places.
import { Box, Text } from 'ink';
import type { Diagnostic } from '../../policy/diagnostics.js';
import { type KeyHandler, cursorKey, follow, useKeyedState } from '../keys.js';
import { Paint } from '../theme.js';

export function useProblems(diagnostics: Diagnostic[], height: number) {
  const [s, step] = useKeyedState({ at: 0, top: 0 });
  const page = Math.max(1, height - 3);
  const onKey: KeyHandler = (input, key) =>
    step(({ at, top }) => {
      const next = cursorKey(input, key, Math.min(at, Math.max(0, diagnostics.length - 1)), diagnostics.length, page);
      return next === undefined ? undefined : { at: next, top: follow(top, next, page) };
    });
  const selected = Math.min(s.at, Math.max(0, diagnostics.length - 1));
  return { selected, top: follow(Math.min(s.top, selected), selected, page), onKey };
}

const place = (d: { file: string; line: number; col: number }) => `${d.file}:${d.line}:${d.col}`;

export function Problems(props: { diagnostics: Diagnostic[]; readError?: string; selected: number; top: number; height: number }) {
  const ds = props.diagnostics;
  if (props.readError) return <Paint hue="red">{props.readError}</Paint>;
  if (ds.length === 0) return <Paint hue="green">no problems: 0 errors, 0 warnings</Paint>;
  const errors = ds.filter((d) => d.severity === 'error').length;
  const sel = ds[props.selected]!;
  const room = Math.max(1, props.height - 3 - (sel.hint ? 1 : 0) - (sel.related?.length ?? 0));
  return (
    <Box flexDirection="column">
      <Paint hue="gray">{`${errors} error${errors === 1 ? '' : 's'}, ${ds.length - errors} warning${ds.length - errors === 1 ? '' : 's'}`}</Paint>
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
