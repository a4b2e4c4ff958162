// Prints one plain closing line, "N passed, N failed, N skipped", that CI and people can read
// without knowing vitest's own summary format.
import type { Reporter, RunnerTask, RunnerTestFile } from 'vitest';

function count(tasks: RunnerTask[], acc = { passed: 0, failed: 0, skipped: 0 }) {
  for (const t of tasks) {
    if (t.type === 'suite') count(t.tasks, acc);
    else if (t.mode === 'skip' || t.mode === 'todo') acc.skipped++;
    else if (t.result?.state === 'pass') acc.passed++;
    else if (t.result?.state === 'fail') acc.failed++;
    else acc.skipped++;
  }
  return acc;
}

export default class SummaryReporter implements Reporter {
  onFinished(files: RunnerTestFile[] = [], errors: unknown[] = []): void {
    const c = count(files);
    const failedFiles = files.filter((f) => f.result?.state === 'fail' && f.tasks.length === 0).length;
    const failed = c.failed + failedFiles + errors.length;
    process.stdout.write(`\ntests: ${c.passed} passed, ${failed} failed, ${c.skipped} skipped\n`);
  }
}
