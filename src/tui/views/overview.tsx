// Overview: zones, with their host interfaces, bridges and guests as a tree.
import { Box, Text } from 'ink';
import type { TreeLine } from '../derive.js';
import { type KeyHandler, scrollKey, useKeyedState } from '../keys.js';
import { Paint } from '../theme.js';

export function useOverview(lines: TreeLine[], height: number) {
  const [top, step] = useKeyedState(0);
  const onKey: KeyHandler = (input, key) => step((t) => scrollKey(input, key, Math.min(t, Math.max(0, lines.length - height)), lines.length, height));
  return { top: Math.min(top, Math.max(0, lines.length - height)), onKey };
}

const hue = { zone: 'cyan', interface: 'blue', bridge: 'magenta', guest: 'green' } as const;

export function Overview(props: { lines: TreeLine[]; top: number; height: number }) {
  const rows = props.lines.slice(props.top, props.top + props.height);
  return (
    <Box flexDirection="column">
      {rows.map((l, i) => (
        <Text key={props.top + i} wrap="truncate">
          {'  '.repeat(l.depth)}
          {l.depth > 0 ? '└ ' : ''}
          <Paint hue={hue[l.kind]} bold={l.kind === 'zone'}>
            {l.kind === 'zone' ? `zone ${l.name}` : l.name}
          </Paint>
          {l.detail ? `  ${l.detail}` : ''}
        </Text>
      ))}
      {props.lines.length === 0 ? <Text>no zones</Text> : null}
    </Box>
  );
}
