import { describe, expect, it } from 'vitest';
import { diffListings, formatChanges, parseListing } from '../../../src/nft/diff.js';

const live = `table inet guestwall {
	map zone_src {
		type ifname : verdict
		elements = { "eth0" : goto from_net }
	}

	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept comment "builtin:ct-established"
		counter packets 12 bytes 3400 drop comment "a.yaml:3 policies[0]"
	}

	chain lan_to_host {
		tcp dport 22 counter packets 3 bytes 180 accept comment "a.yaml:9 rules[0]"
	}
}
`;
const next = live
  .replace('		tcp dport 22 counter packets 3 bytes 180 accept comment "a.yaml:9 rules[0]"\n', '		tcp dport 22 counter packets 0 bytes 0 accept comment "a.yaml:9 rules[0]"\n		udp dport 53 counter packets 0 bytes 0 accept comment "a.yaml:10 rules[1]"\n')
  .replace('counter packets 12 bytes 3400 drop', 'counter packets 0 bytes 0 drop');
const json = (elems: unknown[]) => JSON.stringify({ nftables: [{ map: { family: 'inet', name: 'zone_src', table: 'guestwall', elem: elems } }] });

describe('diff of two listings', () => {
  it('ignores counters, shows added rules in their chain, and elements one by one', () => {
    const changes = diffListings(
      parseListing(live, json([['eth0', { goto: { target: 'from_net' } }]])),
      parseListing(next, json([['eth0', { goto: { target: 'from_net' } }], ['gw-web', { goto: { target: 'from_dmz' } }]])),
    );
    expect(formatChanges(changes)).toBe(
      [
        'chain lan_to_host:',
        '  + udp dport 53 counter accept comment "a.yaml:10 rules[1]"',
        'set zone_src:',
        '  + ["gw-web",{"goto":{"target":"from_dmz"}}]',
      ].join('\n'),
    );
  });

  it('finds nothing when only counters differ', () => {
    expect(diffListings(parseListing(live, json([])), parseListing(live.replace(/packets \d+ bytes \d+/g, 'packets 0 bytes 0'), json([])))).toEqual([]);
  });

  it('shows a removed chain and a changed policy line', () => {
    const changes = diffListings(parseListing(live, undefined), parseListing(live.replace('policy drop', 'policy accept').replace(/\tchain lan_to_host \{[\s\S]*?\}\n/, ''), undefined));
    expect(changes).toContainEqual({ where: 'chain input', kind: '-', text: 'type filter hook input priority filter; policy drop;' });
    expect(changes).toContainEqual({ where: 'chain input', kind: '+', text: 'type filter hook input priority filter; policy accept;' });
    expect(changes).toContainEqual({ where: 'chain lan_to_host', kind: '-', text: 'chain removed' });
  });
});
