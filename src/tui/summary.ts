// The preview without a terminal (stdout is a pipe or a file): the same data as plain text.
import { formatMatrix, reachabilityMatrix } from '../explain/matrix.js';
import { formatDiagnostic } from '../policy/diagnostics.js';
import { overviewTree, ruleLines } from './derive.js';
import type { PreviewState } from './state.js';

export function plainSummary(s: PreviewState): string {
  const errors = s.diagnostics.filter((d) => d.severity === 'error').length;
  const out = [`guestwall preview ${s.file}: ${errors} error${errors === 1 ? '' : 's'}, ${s.diagnostics.length - errors} warning${s.diagnostics.length - errors === 1 ? '' : 's'}`];
  if (s.readError) out.push(s.readError);
  out.push(...s.diagnostics.map(formatDiagnostic));
  if (!s.good || s.stale) return `${out.join('\n')}\n`;
  const { model, ruleset } = s.good;
  const rules = ruleLines(ruleset).filter((l) => l.kind === 'rule' && !l.element).length;
  out.push(
    '',
    `Overview: ${model.zones.length} zones, ${model.hostInterfaces.length} host interfaces, ${model.bridges.length} bridges, ${model.guests.length} guests`,
    ...overviewTree(model).map((l) => `${'  '.repeat(l.depth + 1)}${l.kind === 'zone' ? `zone ${l.name}` : l.name}${l.detail ? `  ${l.detail}` : ''}`),
    '',
    'Matrix:',
    formatMatrix(reachabilityMatrix(model, ruleset, 4)),
    '',
    `Rules: ${rules} in ${ruleset.tables.reduce((n, t) => n + t.chains.length, 0)} chains (guestwall compile ${s.file} --format nft prints them)`,
    'Run guestwall preview in a terminal to browse them, the matrix cells and what-if questions.',
  );
  return `${out.join('\n')}\n`;
}
