// "did you mean", how paths read in messages, and which keys the schema allows where: the
// pieces every schema message is built from.
import { describe, expect, it } from 'vitest';
import { didYouMean, suggestion } from '../../../src/policy/diagnostics.js';
import { describe as describePath, keysAt } from '../../../src/policy/schema-findings.js';

describe('didYouMean', () => {
  const zones = ['net', 'lan', 'dmz'];

  it('suggests the closest name for a typo', () => {
    expect(didYouMean('dmx', zones)).toBe('dmz');
    expect(didYouMean('nett', zones)).toBe('net');
    expect(didYouMean('htps', ['http', 'https', 'ssh'])).toBe('https');
  });

  it('counts two swapped letters as one edit', () => {
    expect(didYouMean('wbe', ['web', 'mail'])).toBe('web');
    expect(didYouMean('adresses', ['addresses', 'networks'])).toBe('addresses');
  });

  it('ignores case when comparing, and suggests the name as written', () => {
    expect(didYouMean('DMZ', zones)).toBe('dmz');
  });

  it('suggests nothing when no candidate is close (at most a third of the word, and one edit at least)', () => {
    expect(didYouMean('gopher', ['http', 'https', 'ssh'])).toBeUndefined();
    expect(didYouMean('ab', ['xy'])).toBeUndefined();
    expect(didYouMean('a', ['b'])).toBe('b');
    expect(didYouMean('internal', ['net'])).toBeUndefined();
  });

  it('suggests nothing for a word that is itself a candidate, or with no candidates', () => {
    expect(didYouMean('lan', zones)).toBeUndefined();
    expect(didYouMean('lan', [])).toBeUndefined();
  });

  it('takes the first of equally close candidates', () => {
    expect(didYouMean('lab', ['lan', 'lap'])).toBe('lan');
  });

  it('reads as a clause for messages', () => {
    expect(suggestion('dmx', zones)).toBe("; did you mean 'dmz'?");
    expect(suggestion('gopher', zones)).toBe('');
  });
});

describe('describe (a document path in words)', () => {
  it('names the policy itself', () => {
    expect(describePath([])).toBe('the policy');
  });

  it('names entries of the top-level maps and lists, numbering list items from 1', () => {
    expect(describePath(['zones', 'dmz'])).toBe("zone 'dmz'");
    expect(describePath(['rules', 0])).toBe('rule 1');
    expect(describePath(['policies', 2])).toBe('policy 3');
    expect(describePath(['nat', 'masquerade', 0])).toBe("masquerade 1 of 'nat'");
  });

  it('reads from the key outwards', () => {
    expect(describePath(['rules', 2, 'ports'])).toBe("'ports' of rule 3");
    expect(describePath(['guests', 'web', 'interfaces', 0, 'mac'])).toBe("'mac' of interface 1 of guest 'web'");
    expect(describePath(['host', 'interfaces', 'eth0', 'zone'])).toBe("'zone' of interface 'eth0' of 'host'");
  });

  it('calls other list items by number', () => {
    expect(describePath(['bridges', 'br-lan', 'ports', 1])).toBe("item 2 of 'ports' of bridge 'br-lan'");
  });
});

describe('keysAt (the keys the schema allows at a path)', () => {
  it('lists the top-level keys', () => {
    expect(keysAt([])).toEqual(['bridges', 'forwards', 'guests', 'helpers', 'host', 'hosts', 'nat', 'policies', 'rules', 'services', 'version', 'zones']);
  });

  it('looks through maps of named entries and lists', () => {
    expect(keysAt(['zones', 'anything'])).toEqual(['description', 'networks', 'public']);
    expect(keysAt(['rules', 7])).toEqual(['action', 'description', 'from', 'limit', 'log', 'ports', 'proto', 'service', 'to']);
    expect(keysAt(['host', 'interfaces', 'eth0'])).toEqual(['addresses', 'description', 'zone']);
  });

  it('joins the keys of every branch of a union (bridged and routed interfaces, a limit as text or mapping)', () => {
    expect(keysAt(['guests', 'web', 'interfaces', 0])).toEqual(['addresses', 'bridge', 'mac', 'mode', 'name', 'zone']);
    expect(keysAt(['rules', 0, 'limit'])).toEqual(['burst', 'rate']);
  });

  it('has nothing where there is no mapping', () => {
    expect(keysAt(['version'])).toEqual([]);
    expect(keysAt(['rules', 0, 'from'])).toEqual([]);
    expect(keysAt(['nope'])).toEqual([]);
  });
});
