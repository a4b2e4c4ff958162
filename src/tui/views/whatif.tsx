// What-if: pick a source, a destination (a zone, the host, a guest, or a port forward's public
// ADDRESS:PORT), a protocol, a port and which packet of the connection (its first, a later one,
// a reply, an ICMP error) with the keyboard; the verdict and the trace are explain's, worked out
// again on every change.
import { Box, Text } from 'ink';
import type { Proto } from '../../explain/flow.js';
import { type PacketQuery, explainPacket } from '../../explain/state.js';
import { endpoints, forwardTargets, originPlace } from '../derive.js';
import { type KeyHandler, useKeyedState } from '../keys.js';
import type { Compiled } from '../state.js';
import { Paint, verdictHue } from '../theme.js';
import { hanging } from '../wrap.js';

const PROTOS: Proto[] = ['tcp', 'udp', 'icmp', 'icmpv6'];
const FIELDS = ['from', 'to', 'proto', 'port', 'packet'] as const;
type Field = (typeof FIELDS)[number];

/** Which packet of the connection, as explain --state/--reply asks. */
const PACKETS: Record<string, Pick<PacketQuery, 'state' | 'reply'>> = {
  first: {},
  later: { state: 'established' },
  reply: { reply: true },
  'error back': { state: 'related', reply: true },
  error: { state: 'related' },
};
type Which = keyof typeof PACKETS;
const WHICH = Object.keys(PACKETS);

export interface Question {
  from: string;
  to: string;
  proto: Proto;
  port: string;
  packet: Which;
}

interface WhatIfState {
  field: Field;
  /** What the user picked; a name that disappears on reload falls back to a default. */
  from?: string;
  to?: string;
  proto: Proto;
  port: string;
  packet: Which;
  /** The port field was just reached: the first digit typed replaces its value. */
  fresh?: boolean;
}

const cycle = <T,>(list: readonly T[], now: T, step: number) => list[(list.indexOf(now) + step + list.length) % list.length]!;

export function useWhatIf(good: Compiled | undefined) {
  const names = good ? endpoints(good.model) : [];
  // Where a packet can go: the endpoints, then each port forward's public side.
  const targets = good ? [...names, ...forwardTargets(good.model).map((t) => t.to)] : [];
  const [state, step] = useKeyedState<WhatIfState>({ field: 'from', proto: 'tcp', port: '22', packet: 'first' });
  const question = (s: WhatIfState): Question => ({
    from: s.from && names.includes(s.from) ? s.from : (names[0] ?? ''),
    to: s.to && targets.includes(s.to) ? s.to : (good?.model.guests[0]?.name ?? names[1] ?? ''),
    proto: s.proto,
    port: s.port,
    packet: s.packet,
  });
  const onKey: KeyHandler = (input, key) =>
    step((s): WhatIfState | undefined => {
      const q = question(s);
      const moved = (field: Field): WhatIfState => ({ ...s, field, fresh: field === 'port' });
      if (key.downArrow || key.tab) return moved(cycle(FIELDS, s.field, key.shift ? -1 : 1));
      if (key.upArrow) return moved(cycle(FIELDS, s.field, -1));
      if (key.leftArrow || key.rightArrow) {
        const by = key.rightArrow ? 1 : -1;
        if (s.field === 'from' && names.length) return { ...s, from: cycle(names, q.from, by) };
        if (s.field === 'to' && targets.length) return { ...s, to: cycle(targets, q.to, by) };
        if (s.field === 'proto') return { ...s, proto: cycle(PROTOS, s.proto, by) };
        if (s.field === 'packet') return { ...s, packet: cycle(WHICH, s.packet, by) };
        if (s.field === 'port') return { ...s, fresh: false, port: String(Math.min(65535, Math.max(1, Number(s.port || 0) + by))) };
        return s;
      }
      if (s.field === 'port' && /^[0-9]$/.test(input)) return { ...s, fresh: false, port: ((s.fresh ? '' : s.port) + input).replace(/^0+/, '').slice(0, 5) };
      if (s.field === 'port' && (key.backspace || key.delete)) return { ...s, fresh: false, port: s.port.slice(0, -1) };
      return undefined;
    });
  return { field: state.field, question: question(state), onKey };
}

export function WhatIf(props: { good: Compiled; field: Field; question: Question; width: number; height: number }) {
  const q = props.question;
  const forward = forwardTargets(props.good.model).find((t) => t.to === q.to);
  const withPort = (q.proto === 'tcp' || q.proto === 'udp') && !forward;
  const portNumber = Number(q.port);
  const r =
    withPort && !(Number.isInteger(portNumber) && portNumber >= 1 && portNumber <= 65535)
      ? ({ ok: false, error: 'type a port from 1 to 65535' } as const)
      : explainPacket(props.good.model, props.good.ruleset, { from: q.from, to: q.to, proto: q.proto, ...(withPort ? { port: portNumber } : {}), ...PACKETS[q.packet] });
  const fieldLine = (f: Field, value: string) => (
    <Text key={f}>
      {props.field === f ? '> ' : '  '}
      {f.padEnd(6)}
      <Paint inverse={props.field === f} bold>{` ${value} `}</Paint>
    </Text>
  );
  return (
    <Box flexDirection="column">
      {fieldLine('from', q.from)}
      {fieldLine('to', forward ? `${q.to} (${forward.label})` : q.to)}
      {fieldLine('proto', q.proto)}
      {fieldLine('port', forward ? `(${q.to.split(':').pop()}, the forward's public port)` : withPort ? q.port || '_' : '(none for icmp)')}
      {fieldLine('packet', q.packet === 'first' ? 'first (a new connection)' : q.packet === 'error back' ? 'error back (ICMP, related)' : q.packet === 'error' ? 'error (ICMP, related)' : q.packet)}
      <Text> </Text>
      {r.ok ? (
        <>
          <Text>
            {'verdict: '}
            <Paint bold hue={verdictHue[r.value.evaluation.verdict]}>
              {r.value.evaluation.verdict.toUpperCase()}
            </Paint>
          </Text>
          {r.value.nat?.translation?.kind === 'dnat' ? (
            <Text wrap="truncate">
              {'port forward taken: '}
              <Paint bold>{`${r.value.nat.translation.origin.what} (${originPlace(r.value.nat.translation.origin)})`}</Paint>
            </Text>
          ) : forward ? (
            <Paint hue="yellow">{`no port forward takes ${q.proto} to ${q.to}`}</Paint>
          ) : null}
          {r.value.story
            .flatMap((s) => hanging(s, props.width, '', '    '))
            .slice(0, Math.max(0, props.height - 8 - (r.value.nat?.translation?.kind === 'dnat' || forward ? 1 : 0)))
            .map((s, i) => (
              <Text key={i} wrap="truncate">
                {s}
              </Text>
            ))}
        </>
      ) : (
        <Paint hue="yellow">{r.error}</Paint>
      )}
    </Box>
  );
}
