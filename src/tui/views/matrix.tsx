// Matrix: sources x destinations, each cell what a new connection gets; the cell under the
// cursor lists the rules of the zone-pair chain that decides it.
import { Box, type Key, Text } from 'ink';
import { useEffect, useRef, useState } from 'react';
import { type Matrix as MatrixData, type MatrixCell, type MatrixProgress, exceptionText, matrixSteps } from '../../explain/matrix.js';
import { cellRules } from '../derive.js';
import { type KeyHandler, useKeyedState } from '../keys.js';
import type { Compiled } from '../state.js';
import { Paint, verdictHue } from '../theme.js';
import { runInSlices } from '../work.js';
import { wrapWords } from '../wrap.js';
import { RuleRow } from './rules.js';

function move(input: string, key: Key): [number, number] | undefined {
  if (key.upArrow || input === 'k') return [-1, 0];
  if (key.downArrow || input === 'j') return [1, 0];
  if (key.leftArrow || input === 'h') return [0, -1];
  if (key.rightArrow || input === 'l') return [0, 1];
  return undefined;
}

/**
 * The matrix of each policy version, worked out once in the background (a slice at a time, from
 * the first frame on) and kept across view switches; until it is there the view says how far it is.
 */
export function useMatrix(good: Compiled | undefined) {
  const [computed, setComputed] = useState<{ good: Compiled; matrix?: MatrixData; progress?: MatrixProgress; error?: string }>();
  const latest = useRef(computed);
  latest.current = computed;
  useEffect(() => {
    if (!good) return undefined;
    setComputed({ good });
    let shown = 0;
    return runInSlices(matrixSteps(good.model, good.ruleset), {
      // A new frame for the progress at most every 250 ms: frames cost time too.
      progress: (progress) => {
        if (performance.now() - shown < 250) return;
        shown = performance.now();
        setComputed({ good, progress });
      },
      done: (matrix) => setComputed({ good, matrix }),
      failed: (e) => setComputed({ good, error: e instanceof Error ? e.message : String(e) }),
    });
  }, [good]);
  const now = computed?.good === good ? computed : undefined;
  const [at, step] = useKeyedState<[number, number]>([0, 0]);
  const clamp = (n: number, count: number) => Math.min(Math.max(0, count - 1), Math.max(0, n));
  const onKey: KeyHandler = (input, key) =>
    step(([r, c]) => {
      const d = move(input, key);
      if (!d) return undefined;
      // Keys typed while the matrix is still being worked out move the cursor all the same.
      const m = latest.current?.good === good ? latest.current?.matrix : undefined;
      const rows = m?.rows.length ?? Number.MAX_SAFE_INTEGER;
      const cols = m?.cols.length ?? Number.MAX_SAFE_INTEGER;
      return [clamp(clamp(r, rows) + d[0], rows), clamp(clamp(c, cols) + d[1], cols)];
    });
  const matrix = now?.matrix;
  return { matrix, progress: now?.progress, error: now?.error, row: clamp(at[0], matrix?.rows.length ?? 0), col: clamp(at[1], matrix?.cols.length ?? 0), onKey };
}

/** What the Matrix view shows until the matrix is there. */
export function MatrixPending(props: { progress: MatrixProgress | undefined; error: string | undefined }) {
  if (props.error) return <Paint hue="red">{`the matrix could not be worked out: ${props.error}`}</Paint>;
  const p = props.progress;
  return <Paint hue="yellow">{`computing the matrix…${p ? ` ${p.done} of ${p.total} cells` : ''} (explain runs for every cell; keys work meanwhile)`}</Paint>;
}

const cellText = (c: MatrixCell | undefined) => (c ? `${c.verdict ?? '?'}${c.exceptions.length ? ` +${c.exceptions.length}` : ''}` : '-');
const exceptionsText = (c: MatrixCell) => c.exceptions.map(exceptionText).join(' ');

/** What the numbers and signs in the cells mean, in one line under the selected cell. */
export const MATRIX_LEGEND = 'a cell: the default for a new connection, +N: N services that fare otherwise (+ accepted, - dropped, ! rejected, ~ only in part; (fwd) through a port forward)';

/**
 * The matrix on a screen of `height` lines: the header with the column names always first (the
 * rows and the rule list give way to it), the selected cell's whole story wrapped under it, then
 * as many of the deciding rules as fit.
 */
export function Matrix(props: { good: Compiled; matrix: MatrixData; row: number; col: number; width: number; height: number }) {
  const { matrix: m, row, col, width, height } = props;
  const cell = (r: string, c: string) => m.cells.find((x) => x.from === r && x.to === c);
  const rowHead = Math.min(16, Math.max(9, ...m.rows.map((r) => r.length))) + 1;
  const colWidth = Math.min(14, Math.max(10, ...m.cols.map((c) => c.length + 2))) + 1; // +2: the selected one is [named]
  const fit = Math.max(1, Math.floor((width - rowHead - 2) / colWidth));
  const first = Math.max(0, Math.min(col - fit + 1, m.cols.length - fit));
  const cols = m.cols.slice(first, first + fit);
  const from = m.rows[row]!;
  const to = m.cols[col]!;
  const selected = cell(from, to);
  const rules = cellRules(props.good.model, props.good.ruleset, from, to);
  const story = selected
    ? `${from} -> ${to}: ${selected.verdict ?? 'cannot be tried'} by default${selected.exceptions.length ? `; ${exceptionsText(selected)}` : ''}`
    : `${from} -> ${to}: no cell (the host to itself goes over lo)`;
  const count = `${rules.length} rule${rules.length === 1 ? '' : 's'} in the chain that decides it:`;
  // Fixed lines: the header, the story (wrapped), the legend and the count; the rows get what
  // is left but at least the selected one, and the rules what the rows leave.
  const storyLines = wrapWords(story, width);
  const legendLines = wrapWords(MATRIX_LEGEND, width);
  const fixed = 1 + storyLines.length + legendLines.length + 1;
  const rowRoom = Math.max(1, Math.min(m.rows.length, height - fixed - 1));
  const firstRow = Math.max(0, Math.min(row - rowRoom + 1, m.rows.length - rowRoom, row));
  const shownRows = m.rows.slice(firstRow, firstRow + rowRoom);
  const ruleRoom = Math.max(0, height - fixed - shownRows.length);
  const shownRules = rules.length > ruleRoom ? rules.slice(0, Math.max(0, ruleRoom - 1)) : rules;
  const pad = (s: string, w: number) => (s.length >= w ? `${s.slice(0, w - 2)}~ ` : s.padEnd(w));
  return (
    <Box flexDirection="column">
      <Text wrap="truncate">
        <Paint hue="gray">{pad('from\\to', rowHead)}</Paint>
        {cols.map((c) => (
          <Paint key={c} bold hue={c === to ? 'cyan' : undefined}>
            {pad(c === to ? `[${c}]` : c, colWidth)}
          </Paint>
        ))}
        {first + fit < m.cols.length ? '…' : ''}
      </Text>
      {shownRows.map((r) => {
        const i = m.rows.indexOf(r);
        return (
          <Text key={r} wrap="truncate">
            <Paint bold hue={i === row ? 'cyan' : undefined}>
              {pad(r, rowHead)}
            </Paint>
            {cols.map((c) => {
              const x = cell(r, c);
              const here = i === row && c === to;
              return (
                <Paint key={c} inverse={here} {...(x?.verdict ? { hue: verdictHue[x.verdict] } : {})}>
                  {pad(`${here ? '>' : ' '}${cellText(x)}`, colWidth)}
                </Paint>
              );
            })}
          </Text>
        );
      })}
      {storyLines.map((l, i) => (
        <Text key={`s${i}`} wrap="truncate">
          {i === 0 && selected?.verdict && l.startsWith(`${from} -> ${to}: ${selected.verdict}`) ? (
            <>
              <Paint bold>{`${from} -> ${to}: `}</Paint>
              <Paint hue={verdictHue[selected.verdict]}>{selected.verdict}</Paint>
              {l.slice(`${from} -> ${to}: ${selected.verdict}`.length)}
            </>
          ) : (
            l
          )}
        </Text>
      ))}
      {legendLines.map((l, i) => (
        <Text key={`l${i}`} wrap="truncate">
          <Paint hue="gray">{l}</Paint>
        </Text>
      ))}
      <Text wrap="truncate">
        <Paint hue="gray">{count}</Paint>
      </Text>
      {shownRules.map((l, i) => (
        <RuleRow key={i} line={l} width={width} indent="  " />
      ))}
      {shownRules.length < rules.length && ruleRoom > 0 ? <Paint hue="gray">{`  … ${rules.length - shownRules.length} more (see Rules)`}</Paint> : null}
    </Box>
  );
}
