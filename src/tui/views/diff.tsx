// Diff: what `guestwall apply` would change on the host (or the --netns namespace), worked out
// by the host door off the render path; `a` applies behind a confirmation that states the
// change, with the same rollback timer as `apply --confirm`, then `c` keeps it and `x` rolls back.
import { Box, Text } from 'ink';
import { useEffect, useRef, useState } from 'react';
import type { Change } from '../../nft/diff.js';
import { diffSummary, diffSummaryText } from '../derive.js';
import { type HostDoor, errorText } from '../host.js';
import { type KeyHandler, scrollKey, useKeyedState } from '../keys.js';
import type { Compiled } from '../state.js';
import { Paint } from '../theme.js';

/** The live diff of one policy version. */
type DiffResult = { for: Compiled; changes?: Change[]; error?: string };

/** Where an apply from the preview is. */
export type ApplyPhase =
  | { kind: 'none' }
  | { kind: 'asking'; changes: Change[] }
  | { kind: 'busy'; what: string }
  | { kind: 'pending'; deadline: number }
  | { kind: 'done'; message: string }
  | { kind: 'failed'; message: string };

/** `stale`: the file as it is now does not compile, so `good` is an older version that must not be applied. */
export function useDiff(host: HostDoor | undefined, good: Compiled | undefined, stale: boolean, active: boolean, height: number) {
  const [result, setResult] = useState<DiffResult>();
  const [computing, setComputing] = useState<Compiled>();
  const [phase, setPhaseState] = useState<ApplyPhase>({ kind: 'none' });
  const phaseRef = useRef(phase);
  const setPhase = (p: ApplyPhase) => {
    phaseRef.current = p;
    setPhaseState(p);
  };
  const [top, stepTop] = useKeyedState(0);
  const [now, setNow] = useState(() => host?.now() ?? 0);
  const generation = useRef(0);

  const compute = (what: Compiled) => {
    if (!host || host.unavailable) return;
    const mine = ++generation.current;
    // The diff from before an apply, confirm or rollback is no longer true: show none until the new one.
    setResult(undefined);
    setComputing(what);
    host.diff(what.ruleset).then(
      (changes) => mine === generation.current && setResult({ for: what, changes }),
      (e: unknown) => mine === generation.current && setResult({ for: what, error: errorText(e) }),
    ).finally(() => mine === generation.current && setComputing(undefined));
  };
  // Worked out each time the view is opened (the host may have changed meanwhile, e.g. by
  // `guestwall apply` in another terminal), and again for each new policy version while it is open.
  useEffect(() => {
    if (active && good && computing !== good) compute(good);
  }, [active, good]);

  // While an apply waits for confirmation: a clock for the countdown, and the timer's rollback once it is due.
  useEffect(() => {
    if (phase.kind !== 'pending' || !host) return undefined;
    const tick = setInterval(() => {
      setNow(host.now());
      // The timer looks every 500 ms and then restores: give it a moment before reading the host again.
      if (host.now() > phase.deadline + 2000) {
        setPhase({ kind: 'done', message: 'not confirmed in time: the rollback timer restored the previous ruleset' });
        if (good) compute(good);
      }
    }, 1000);
    return () => clearInterval(tick);
  }, [phase, host]);

  const run = (what: string, action: () => Promise<ApplyPhase>) => {
    setPhase({ kind: 'busy', what });
    action().then(setPhase, (e: unknown) => setPhase({ kind: 'failed', message: errorText(e) }));
  };

  const changes = result && result.for === good ? result.changes : undefined;
  const lines = changes ? changeLines(changes) : [];
  const visible = Math.max(1, height - 4);
  const onKey: KeyHandler = (input, key) => {
    const p = phaseRef.current;
    if (!host || host.unavailable || !good) return false;
    if (p.kind === 'asking') {
      if (input === 'y') {
        run('applying', async () => {
          // The host now runs this version (or refused it, or half-read it): the old diff is no longer true.
          const r = await host.apply(good.ruleset).finally(() => compute(good));
          setNow(host.now());
          return r.deadline !== undefined ? { kind: 'pending', deadline: r.deadline } : { kind: 'done', message: r.changed ? 'applied' : 'nothing to change: the live ruleset already is this policy' };
        });
        return true;
      }
      if (input === 'n' || key.escape) setPhase({ kind: 'none' });
      return true; // the question takes every key
    }
    // While nft works, keys other than the views and q do nothing (a second `a` must not apply twice).
    if (p.kind === 'busy') return input !== 'q' && !/^[1-6omrpwd]$/.test(input);
    if (p.kind === 'pending') {
      if (input === 'c') {
        run('confirming', async () => {
          await host.confirm();
          compute(good);
          return { kind: 'done', message: 'confirmed: the new ruleset stays' };
        });
        return true;
      }
      if (input === 'x') {
        run('rolling back', async () => {
          await host.rollback();
          compute(good);
          return { kind: 'done', message: 'rolled back: guestwall\'s tables are as they were before the apply' };
        });
        return true;
      }
    }
    if (input === 'a' && p.kind !== 'pending') {
      if (stale) setPhase({ kind: 'failed', message: 'the file as saved now does not compile; these views show the last version that did, and apply only applies the file as it is: fix it first (see 4 Problems)' });
      else if (changes && changes.length > 0) setPhase({ kind: 'asking', changes });
      return true;
    }
    if (input === 'u') {
      // While an apply waits for confirmation, its notice stays: only the diff under it is worked out again.
      if (p.kind !== 'pending') setPhase({ kind: 'none' });
      compute(good);
      return true;
    }
    return stepTop((t) => scrollKey(input, key, Math.min(t, Math.max(0, lines.length - visible)), lines.length, visible));
  };
  return {
    onKey,
    phase,
    lines,
    changes,
    error: result && result.for === good ? result.error : undefined,
    // Also before the effect that starts it has run: the first frame of the view already says so.
    computing: computing !== undefined || (active && good !== undefined && result?.for !== good),
    top: Math.min(top, Math.max(0, lines.length - visible)),
    secondsLeft: phase.kind === 'pending' ? Math.max(0, Math.ceil((phase.deadline - now) / 1000)) : undefined,
  };
}

/** The changes as `guestwall diff` prints them: each chain or set, then its lines. */
function changeLines(changes: Change[]): { where?: string; kind?: '+' | '-'; text: string }[] {
  const out: { where?: string; kind?: '+' | '-'; text: string }[] = [];
  let where = '';
  for (const c of changes) {
    if (c.where !== where) out.push({ where: (where = c.where), text: `${c.where}:` });
    out.push({ kind: c.kind, text: `  ${c.kind} ${c.text}` });
  }
  return out;
}

/** The help bar's words for the Diff view, which change with the apply. */
export function diffHelp(phase: ApplyPhase): string {
  if (phase.kind === 'asking') return 'y apply  n Esc cancel';
  if (phase.kind === 'pending') return 'c confirm (keep)  x roll back';
  return '↑↓ scroll  a apply  u update';
}

export function Diff(props: { host: HostDoor | undefined; file: string; d: ReturnType<typeof useDiff>; height: number }) {
  const { host, d } = props;
  if (!host) return <Paint hue="yellow">the live diff is not available in this preview</Paint>;
  if (host.unavailable) return <Paint hue="yellow">{`Live diff and apply are unavailable: ${host.unavailable}.`}</Paint>;
  const status = (() => {
    const p = d.phase;
    if (p.kind === 'asking') {
      return (
        <Box flexDirection="column" borderStyle="single" paddingX={1}>
          <Text wrap="wrap">{`Apply ${props.file} to ${host.where}? It changes ${diffSummaryText(diffSummary(p.changes))}.`}</Text>
          <Text wrap="wrap">{`It rolls back by itself after ${host.confirmSeconds} s unless you confirm with c (the same timer as guestwall apply --confirm ${host.confirmSeconds}).`}</Text>
          <Paint bold>y apply, n or Esc cancel</Paint>
        </Box>
      );
    }
    if (p.kind === 'busy') return <Paint hue="yellow">{`${p.what}…`}</Paint>;
    if (p.kind === 'pending') return <Paint hue="yellow" bold>{`applied to ${host.where}: c keeps it, x rolls back; rolls back by itself in ${d.secondsLeft} s`}</Paint>;
    if (p.kind === 'done') return <Paint hue="green">{p.message}</Paint>;
    if (p.kind === 'failed') return <Paint hue="red">{`apply failed: ${p.message}`}</Paint>;
    return null;
  })();
  const body = (() => {
    if (d.computing && !d.changes) return <Paint hue="yellow">{`computing what apply would change on ${host.where}…`}</Paint>;
    if (d.error) return <Paint hue="red">{`the live diff failed: ${d.error}`}</Paint>;
    if (!d.changes) return <Paint hue="gray">press u to work out the live diff</Paint>;
    if (d.changes.length === 0) return <Paint hue="green">{`${host.where} already runs this policy: apply would change nothing`}</Paint>;
    const room = Math.max(1, props.height - 5 - (d.phase.kind === 'asking' ? 6 : 1));
    return (
      <Box flexDirection="column">
        <Text>
          <Paint bold>{`apply would change on ${host.where}: `}</Paint>
          {diffSummaryText(diffSummary(d.changes))}
        </Text>
        {d.lines.slice(d.top, d.top + room).map((l, i) => (
          <Text key={d.top + i} wrap="truncate">
            {l.where ? <Paint hue="cyan" bold>{l.text}</Paint> : <Paint hue={l.kind === '+' ? 'green' : 'red'}>{l.text}</Paint>}
          </Text>
        ))}
      </Box>
    );
  })();
  return (
    <Box flexDirection="column">
      {status}
      {body}
    </Box>
  );
}
