// Every example policy's compiled ruleset, in both forms, is a reviewed golden file.
import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePolicyText } from '../../../src/compile/pipeline.js';
import { toNftJson } from '../../../src/nft/json.js';
import { printRuleset } from '../../../src/nft/print.js';
import { expectGolden } from '../../support/golden.js';

const examples = readdirSync('policies').filter((f) => f.endsWith('.yaml')).sort();

describe('example policies compile to their reviewed rulesets', () => {
  it('ships at least the homelab example and three smaller ones', () => {
    expect(examples).toContain('homelab-dmz.yaml');
    expect(examples.length).toBeGreaterThanOrEqual(4);
  });

  for (const file of examples) {
    it(file, () => {
      const r = compilePolicyText(`policies/${file}`, readFileSync(`policies/${file}`, 'utf8'));
      expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
      const name = basename(file, '.yaml');
      expectGolden(`tests/golden/${name}.nft`, printRuleset(r.compiled!.ruleset));
      expectGolden(`tests/golden/${name}.json`, `${JSON.stringify(toNftJson(r.compiled!.ruleset), null, 1)}\n`);
    });
  }
});
