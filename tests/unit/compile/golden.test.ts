// Every example policy's compiled ruleset, in both forms, is a reviewed golden file.
import { readdirSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toNftJson } from '../../../src/nft/json.js';
import { printRuleset } from '../../../src/nft/print.js';
import { compileExample } from '../../support/compile.js';
import { expectGolden } from '../../support/golden.js';

const examples = readdirSync('policies').filter((f) => f.endsWith('.yaml')).sort();

describe('example policies compile to their reviewed rulesets', () => {
  it('ships at least the homelab example and three smaller ones', () => {
    expect(examples).toContain('homelab-dmz.yaml');
    expect(examples.length).toBeGreaterThanOrEqual(4);
  });

  for (const file of examples) {
    // A fleet example compiles once per host (--host), each host's ruleset its own golden file.
    for (const { name, result: r } of compileExample(file)) {
      it(name === basename(file, '.yaml') ? file : `${file} --host ${name.slice(name.indexOf('.') + 1)}`, () => {
        expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
        expectGolden(`tests/golden/${name}.nft`, printRuleset(r.compiled!.ruleset));
        expectGolden(`tests/golden/${name}.json`, `${JSON.stringify(toNftJson(r.compiled!.ruleset), null, 1)}\n`);
      });
    }
  }
});
