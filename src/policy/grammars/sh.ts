// The POSIX sh hooks (templates/hooks): interface names appear single-quoted in `case` patterns
// and variable values, where every character is itself except NUL, which sh cannot hold.
import { type GrammarProblem, PORTABLE_HINT } from './problem.js';

export function shWordProblem(value: string): GrammarProblem | undefined {
  return value.includes('\0') ? { message: 'contains NUL, which a POSIX sh word cannot hold', hint: PORTABLE_HINT } : undefined;
}

