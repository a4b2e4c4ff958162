// The preview application: a header with the views, the active view, and the help bar. It only
// shows what it is given (the state from state.ts); the CLI reads the file and re-renders.
import { Box, Text, useApp, useInput, useStdout } from 'ink';
import { useEffect, useMemo, useState } from 'react';
import { overviewTree, ruleLines } from './derive.js';
import { type KeyHandler, splitKeys, useKeyedState } from './keys.js';
import type { HostDoor } from './host.js';
import type { PreviewState } from './state.js';
import { ColorContext, Paint } from './theme.js';
import { Matrix, MatrixPending, useMatrix } from './views/matrix.js';
import { Overview, overviewRows, useOverview } from './views/overview.js';
import { Problems, problemsHelp, useProblems } from './views/problems.js';
import { RulePicker, Rules, rulesHelp, useRules } from './views/rules.js';
import { WhatIf, useWhatIf } from './views/whatif.js';
import { Diff, diffHelp, useDiff } from './views/diff.js';

export const VIEWS = [
  { id: 'overview', title: 'Overview', keys: ['1', 'o'], help: '↑↓ PgUp PgDn scroll' },
  { id: 'matrix', title: 'Matrix', keys: ['2', 'm'], help: '←↑↓→ select a cell' },
  { id: 'rules', title: 'Rules', keys: ['3', 'r'], help: '' },
  { id: 'problems', title: 'Problems', keys: ['4', 'p'], help: '↑↓ select' },
  { id: 'whatif', title: 'What-if', keys: ['5', 'w'], help: '↑↓ Tab field  ←→ change  digits port' },
  { id: 'diff', title: 'Diff', keys: ['6', 'd'], help: '' },
] as const;
export type ViewId = (typeof VIEWS)[number]['id'];

function useTerminalSize() {
  const { stdout } = useStdout();
  const read = () => ({ columns: stdout.columns || 100, rows: stdout.rows || 30 });
  const [size, setSize] = useState(read);
  useEffect(() => {
    const onResize = () => setSize(read());
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  return size;
}

export interface AppProps {
  state: PreviewState;
  color?: boolean;
  initialView?: ViewId;
  /** The live diff and apply; without it the Diff view says it is not available. */
  host?: HostDoor;
}

export function App({ state, color = true, initialView = 'overview', host }: AppProps) {
  const { exit } = useApp();
  const { columns, rows } = useTerminalSize();
  const [view, step] = useKeyedState<ViewId>(initialView);
  const good = state.good;
  const banner = bannerText(state);
  // Header, help bar, the banner when there is one, and a spare line so Ink never fills the screen.
  const height = Math.max(3, rows - 3 - (banner ? 1 : 0));

  const tree = useMemo(() => (good ? overviewTree(good.model) : []), [good]);
  const lines = useMemo(() => (good ? ruleLines(good.ruleset, good.model) : []), [good]);
  const treeRows = useMemo(() => overviewRows(tree, columns), [tree, columns]);
  const overview = useOverview(treeRows, height);
  const matrix = useMatrix(good);
  const rules = useRules(lines, good?.model, height);
  const problems = useProblems(state.diagnostics, height);
  const whatIf = useWhatIf(good);
  const diff = useDiff(host, good, state.stale, view === 'diff', height);
  const handlers: Record<ViewId, KeyHandler> = { overview: overview.onKey, matrix: matrix.onKey, rules: rules.onKey, problems: problems.onKey, whatif: whatIf.onKey, diff: diff.onKey };
  const help = view === 'rules' ? rulesHelp(rules) : view === 'diff' ? diffHelp(diff.phase) : view === 'problems' ? problemsHelp(problems.open) : VIEWS.find((v) => v.id === view)!.help;
  // An apply waiting for confirmation is said on every view: the timer rolls back whatever the user looks at.
  const pending = diff.phase.kind === 'pending' && view !== 'diff' ? `applied: 6 then c keeps it, x rolls back; rolls back by itself in ${diff.secondsLeft} s` : undefined;

  useInput((chunk, chunkKey) => {
    for (const [input, key] of splitKeys(chunk, chunkKey)) {
      if (key.ctrl && input === 'c') return exit();
      step((current) => {
        if (handlers[current](input, key)) return undefined;
        if (input === 'q') exit();
        return VIEWS.find((v) => (v.keys as readonly string[]).includes(input))?.id;
      });
    }
  });

  const needsGood = view !== 'problems';
  return (
    <ColorContext.Provider value={color}>
      <Box flexDirection="column" width={columns}>
        <Text wrap="truncate">
          {/* At 80 columns the six views fit only without the word "preview". */}
          <Paint bold>{columns >= 90 ? 'guestwall preview' : 'guestwall'}</Paint>{' '}
          {VIEWS.map((v) => (
            <Paint key={v.id} inverse={v.id === view} bold={v.id === view}>
              {v.id === view ? `[${v.keys[0]} ${v.title}]` : ` ${v.keys[0]} ${v.title} `}
            </Paint>
          ))}
          {/* The file last: a long path is what gets cut, never the views. */}
          {`  ${state.file}`}
        </Text>
        {banner ? (
          <Text wrap="truncate">
            <Paint hue="red">{banner}</Paint>
          </Text>
        ) : null}
        <Box flexDirection="column" height={height} overflow="hidden">
          {needsGood && !good ? (
            <Paint hue="red">{`${state.file} has not compiled yet; its problems are under 4 Problems.`}</Paint>
          ) : view === 'overview' ? (
            <Overview rows={treeRows} top={overview.top} height={height} />
          ) : view === 'matrix' && good ? (
            matrix.matrix ? (
              <Matrix good={good} matrix={matrix.matrix} row={matrix.row} col={matrix.col} width={columns} height={height} />
            ) : (
              <MatrixPending progress={matrix.progress} error={matrix.error} />
            )
          ) : view === 'rules' ? (
            rules.picker ? (
              <RulePicker {...rules.picker} height={height} />
            ) : (
              <Rules lines={rules.lines} total={rules.total} {...(rules.filter ? { filter: rules.filter } : {})} top={rules.top} width={columns} height={height} query={rules.query} typing={rules.typing} />
            )
          ) : view === 'diff' ? (
            <Diff host={host} file={state.file} d={diff} height={height} />
          ) : view === 'problems' ? (
            <Problems diagnostics={state.diagnostics} {...(state.readError ? { readError: state.readError } : {})} selected={problems.selected} top={problems.top} open={problems.open} width={columns} height={height} />
          ) : good ? (
            <WhatIf good={good} field={whatIf.field} question={whatIf.question} width={columns} height={height} />
          ) : null}
        </Box>
        <Text wrap="truncate">
          <Paint hue="gray">{'q quit  1-6 views  '}</Paint>
          {pending ? (
            <Paint hue="yellow" bold>
              {pending}
            </Paint>
          ) : (
            <Paint hue="gray">{help}</Paint>
          )}
        </Text>
      </Box>
    </ColorContext.Provider>
  );
}

/** One line over the views when what they show is not the file as it is now. */
function bannerText(s: PreviewState): string | undefined {
  if (s.readError) return `${s.readError}${s.good ? '; showing the last good version' : ''}`;
  if (!s.stale) return undefined;
  const errors = s.diagnostics.filter((d) => d.severity === 'error').length;
  return `${s.file} has ${errors} error${errors === 1 ? '' : 's'} (see 4 Problems)${s.good ? '; showing the last good version' : ''}`;
}
