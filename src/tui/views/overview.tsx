// Overview: zones, with their host interfaces, bridges and guests as a tree. A line too long for
// the terminal goes on under its name rather than being cut (a guest's MAC comes last).
import { Box, Text } from 'ink';
import type { TreeLine } from '../derive.js';
import { type KeyHandler, scrollKey, useKeyedState } from '../keys.js';
import { Paint } from '../theme.js';

/** One screen line of the tree: the first of a tree line has its name, the next ones go on with its details. */
export interface OverviewRow {
  line: TreeLine;
  lead: string;
  /** The name, on the first screen line of a tree line only. */
  name?: string;
  detail: string;
}

/** The tree laid out at `width`: each line's details (two-space separated fields) wrap under its name, never cut. */
export function overviewRows(lines: TreeLine[], width: number): OverviewRow[] {
  const out: OverviewRow[] = [];
  for (const l of lines) {
    const lead = `${'  '.repeat(l.depth)}${l.depth > 0 ? '└ ' : ''}`;
    const name = l.kind === 'zone' ? `zone ${l.name}` : l.name;
    const more = ' '.repeat(lead.length + 2);
    let row: OverviewRow = { line: l, lead, name, detail: '' };
    let used = lead.length + name.length;
    for (const field of l.detail ? l.detail.split('  ') : []) {
      if (used + 2 + field.length > width && used > more.length) {
        out.push(row);
        row = { line: l, lead: more, detail: '' };
        used = more.length - 2;
      }
      row.detail += `  ${field}`;
      used += 2 + field.length;
    }
    out.push(row);
  }
  return out;
}

export function useOverview(rows: OverviewRow[], height: number) {
  const [top, step] = useKeyedState(0);
  const onKey: KeyHandler = (input, key) => step((t) => scrollKey(input, key, Math.min(t, Math.max(0, rows.length - height)), rows.length, height));
  return { top: Math.min(top, Math.max(0, rows.length - height)), onKey };
}

const hue = { zone: 'cyan', interface: 'blue', bridge: 'magenta', guest: 'green' } as const;

export function Overview(props: { rows: OverviewRow[]; top: number; height: number }) {
  const rows = props.rows.slice(props.top, props.top + props.height);
  return (
    <Box flexDirection="column">
      {rows.map((r, i) => (
        <Text key={props.top + i} wrap="truncate">
          {r.lead}
          {r.name !== undefined ? (
            <Paint hue={hue[r.line.kind]} bold={r.line.kind === 'zone'}>
              {r.name}
            </Paint>
          ) : null}
          {r.name !== undefined ? r.detail : r.detail.slice(2)}
        </Text>
      ))}
      {props.rows.length === 0 ? <Text>no zones</Text> : null}
    </Box>
  );
}
