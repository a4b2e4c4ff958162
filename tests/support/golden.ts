// Golden files: compare generated output with a reviewed file; UPDATE_GOLDEN=1 rewrites them.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { expect } from 'vitest';

export const updating = process.env.UPDATE_GOLDEN === '1';

export function expectGolden(path: string, actual: string): void {
  if (updating || !existsSync(path)) {
    if (!updating) throw new Error(`golden file ${path} is missing; run with UPDATE_GOLDEN=1 and review it`);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
    return;
  }
  expect(actual, `${path} differs (run with UPDATE_GOLDEN=1 to accept, then review the diff)`).toBe(readFileSync(path, 'utf8'));
}
