// The name authority: derived names are injective where two sources could meet, Xen HVM taps are
// part of every interface's names, and systemd unit names are escaped byte by byte.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicyText } from '../../../src/compile/pipeline.js';
import { systemdEscape } from '../../../src/policy/grammars/systemd.js';
import { fibChainName, guestInterfaceNames } from '../../../src/policy/names.js';

describe('odd interface names in the ruleset', () => {
  it('"web+1" and "web@1" keep apart in the ND target check: each has its own targets (case 08)', () => {
    const r = compilePolicyText('policy.yaml', readFileSync('tests/cases/08-chain-names-from-odd-ifnames/policy.yaml', 'utf8'));
    const nd = r.compiled!.ruleset.tables.flatMap((t) => t.chains.flatMap((c) => c.rules)).find((x) => x.origin.id.endsWith('spoof-nd'))!;
    const set = nd.stmts.flatMap((s) => ('match' in s && typeof s.match.right === 'object' && 'set' in s.match.right ? s.match.right.set : []));
    const ports = set.map((e) => (typeof e === 'object' && 'concat' in e ? e.concat[0] : undefined));
    expect(new Set(ports)).toEqual(new Set(['web+1', 'web@1']));
  });
});

describe('HVM source check chain names', () => {
  it('are distinct for distinct interface names (the encoding reads back)', () => {
    const decode = (chain: string): Buffer => {
      const bytes: number[] = [];
      for (let i = 4; i < chain.length; i++) bytes.push(chain[i] === '_' ? parseInt(chain.slice(i + 1, (i += 2) + 1), 16) : chain.charCodeAt(i));
      return Buffer.from(bytes);
    };
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 15 }), (name) => {
      const chain = fibChainName(name);
      expect(chain).toMatch(/^fib_([A-Za-z0-9.-]|_[0-9A-F]{2})*$/);
      expect(decode(chain).equals(Buffer.from(name, 'utf8'))).toBe(true);
    }), { numRuns: 500 });
    expect(fibChainName('web+1')).not.toBe(fibChainName('web@1'));
  });

  it('cannot be a zone pair chain (zone names are lower case: an escape is _ and upper-case hex)', () => {
    expect(fibChainName('to_x')).toBe('fib_to_5Fx');
  });
});

describe('guest interface names', () => {
  it('include the -emu tap of a Xen HVM guest, and nothing else', () => {
    expect(guestInterfaceNames('win', 0, undefined, true)).toMatchObject({ name: 'gw-win', emuTap: 'gw-win-emu', hostNames: ['gw-win', 'gw-win-emu'], fibChain: 'fib_gw-win' });
    expect(guestInterfaceNames('web', 1, undefined, false)).toEqual({ name: 'gw-web-1', hostNames: ['gw-web-1'] });
  });
});

describe('systemd unit names', () => {
  const onPath = (cmd: string) => (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, cmd)));
  it.skipIf(!onPath('systemd-escape'))('are escaped as systemd-escape does, byte by byte', async () => {
    for (const name of ['eth0', 'br-lan', 'é-x', '.x', 'gw.a', 'a_b', 'x\\y', 'ü']) {
      const { stdout } = await execa('systemd-escape', ['--', name]);
      expect(systemdEscape(name), name).toBe(stdout);
    }
  });
});
