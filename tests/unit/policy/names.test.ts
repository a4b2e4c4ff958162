// The name authority: derived names are injective where two sources could meet, Xen HVM taps are
// part of every interface's names, and systemd unit names are escaped byte by byte.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicyText } from '../../../src/compile/pipeline.js';
import { systemdEscape } from '../../../src/policy/grammars/systemd.js';
import { fibChainName, guestInterfaceNames, ndChainName } from '../../../src/policy/names.js';

describe('ND chain names', () => {
  it('are distinct for distinct interface names (the encoding reads back)', () => {
    const decode = (chain: string): Buffer => {
      const bytes: number[] = [];
      for (let i = 3; i < chain.length; i++) bytes.push(chain[i] === '_' ? parseInt(chain.slice(i + 1, (i += 2) + 1), 16) : chain.charCodeAt(i));
      return Buffer.from(bytes);
    };
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 15 }), (name) => {
      const chain = ndChainName(name);
      expect(chain).toMatch(/^nd_([A-Za-z0-9.-]|_[0-9A-F]{2})*$/);
      expect(decode(chain).equals(Buffer.from(name, 'utf8'))).toBe(true);
    }), { numRuns: 500 });
    expect(ndChainName('web+1')).not.toBe(ndChainName('web@1'));
    expect(ndChainName('gw_x')).not.toBe(ndChainName('gw_5Fx'));
  });

  it('cannot be a zone pair chain (zone names are lower case: an escape is _ and upper-case hex)', () => {
    expect(ndChainName('to_x')).toBe('nd_to_5Fx');
  });

  it('keep plain names readable', () => {
    expect(ndChainName('gw-asterisk')).toBe('nd_gw-asterisk');
  });

  it('give "web+1" and "web@1" their own chain in the compiled ruleset (case 08)', () => {
    const r = compilePolicyText('policy.yaml', readFileSync('tests/cases/08-chain-names-from-odd-ifnames/policy.yaml', 'utf8'));
    const chains = r.compiled!.ruleset.tables.flatMap((t) => t.chains.map((c) => c.name)).filter((n) => n.startsWith('nd_'));
    expect(chains.sort()).toEqual(['nd_web_2B1', 'nd_web_401']);
  });
});

describe('HVM source check chain names', () => {
  it('are encoded as ND chain names are, under their own prefix', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 15 }), (name) => {
      expect(fibChainName(name)).toBe(`fib_${ndChainName(name).slice(3)}`);
    }), { numRuns: 200 });
    expect(fibChainName('to_x')).toBe('fib_to_5Fx');
  });
});

describe('guest interface names', () => {
  it('include the -emu tap of a Xen HVM guest, and nothing else', () => {
    expect(guestInterfaceNames('win', 0, undefined, true)).toMatchObject({ name: 'gw-win', emuTap: 'gw-win-emu', hostNames: ['gw-win', 'gw-win-emu'], fibChain: 'fib_gw-win' });
    expect(guestInterfaceNames('web', 1, undefined, false)).toEqual({ name: 'gw-web-1', hostNames: ['gw-web-1'], ndChain: 'nd_gw-web-1' });
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
