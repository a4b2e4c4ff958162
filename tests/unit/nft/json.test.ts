// Set references and literal strings are different types in the IR: the JSON writer spells a
// reference "@name" and refuses a literal that nft would read as one.
import { describe, expect, it } from 'vitest';
import { jsonStmt } from '../../../src/nft/json.js';
import { setRef } from '../../../src/nft/types.js';

const iifname = { meta: { key: 'iifname' as const } };

describe('nft JSON: set references are typed', () => {
  it('writes a set reference as "@name"', () => {
    expect(jsonStmt({ match: { op: '==', left: iifname, right: setRef('wan_ports') } })).toEqual({ match: { op: '==', left: iifname, right: '@wan_ports' } });
    expect(jsonStmt({ vmap: { key: iifname, data: setRef('zone_in') } })).toEqual({ vmap: { key: iifname, data: '@zone_in' } });
  });

  it('writes a literal interface name as itself', () => {
    expect(jsonStmt({ match: { op: '==', left: iifname, right: 'wan' } })).toEqual({ match: { op: '==', left: iifname, right: 'wan' } });
    expect(jsonStmt({ match: { op: '==', left: iifname, right: { set: ['a', { concat: ['b', 'c'] }] } } }))
      .toEqual({ match: { op: '==', left: iifname, right: { set: ['a', { concat: ['b', 'c'] }] } } });
  });

  it('refuses a literal that nft would read as a set reference, in a match, a set or a concatenation', () => {
    expect(() => jsonStmt({ match: { op: '==', left: iifname, right: '@wan' } })).toThrow(/compiler bug.*set reference/);
    expect(() => jsonStmt({ match: { op: '==', left: iifname, right: { set: ['ok', '@wan'] } } })).toThrow(/set reference/);
    expect(() => jsonStmt({ match: { op: '==', left: { concat: [iifname, iifname] }, right: { set: [{ concat: ['x', '@y'] }] } } })).toThrow(/set reference/);
  });
});
