// Keys shared by the views: each view's hook gets a key first and says whether it used it.
import type { Key } from 'ink';
import { useRef, useState } from 'react';

export type KeyHandler = (input: string, key: Key) => boolean;

/** The new first visible line after a scrolling key, or undefined for any other key. */
export function scrollKey(input: string, key: Key, top: number, total: number, height: number): number | undefined {
  const last = Math.max(0, total - height);
  const to = (n: number) => Math.min(last, Math.max(0, n));
  if (key.downArrow || input === 'j') return to(top + 1);
  if (key.upArrow || input === 'k') return to(top - 1);
  if (key.pageDown || input === ' ') return to(top + height);
  if (key.pageUp) return to(top - height);
  if (key.home || input === 'g') return 0;
  if (key.end || input === 'G') return last;
  return undefined;
}

/** A selection cursor moved by the arrow keys (or j/k), kept inside 0..count-1. */
export function cursorKey(input: string, key: Key, at: number, count: number, page: number): number | undefined {
  const to = (n: number) => Math.min(Math.max(0, count - 1), Math.max(0, n));
  if (key.downArrow || input === 'j') return to(at + 1);
  if (key.upArrow || input === 'k') return to(at - 1);
  if (key.pageDown) return to(at + page);
  if (key.pageUp) return to(at - page);
  if (key.home || input === 'g') return 0;
  if (key.end || input === 'G') return to(count - 1);
  return undefined;
}

/** The first visible line that keeps `at` on a screen of `height` lines, moving as little as possible. */
export function follow(top: number, at: number, height: number): number {
  if (at < top) return at;
  if (at >= top + height) return at - height + 1;
  return top;
}

/**
 * State that keys change one after another. Ink hands every key of a burst (a paste, or tmux
 * send-keys) to the handler before React renders again, so each key must see the state the
 * previous one left: `step` applies `f` to that state at once; `f` returns undefined to leave
 * the key to someone else.
 */
export function useKeyedState<S>(initial: S | (() => S)): [S, (f: (s: S) => S | undefined) => boolean] {
  const [state, setState] = useState(initial);
  const latest = useRef(state);
  const step = (f: (s: S) => S | undefined) => {
    const next = f(latest.current);
    if (next === undefined) return false;
    latest.current = next;
    setState(next);
    return true;
  };
  return [state, step];
}

/** The keys in one chunk of input: Ink passes typed-ahead or pasted text as one string. */
export function splitKeys(input: string, key: Key): [string, Key][] {
  if (input.length <= 1 || key.ctrl || key.meta) return [[input, key]];
  const plain = Object.fromEntries(Object.keys(key).map((k) => [k, false])) as unknown as Key;
  return [...input].map((ch): [string, Key] => (ch === '\r' || ch === '\n' ? ['', { ...plain, return: true }] : ch === '\x7f' ? ['', { ...plain, backspace: true }] : [ch, plain]));
}
