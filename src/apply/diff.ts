// guestwall diff: what applying a ruleset would change on the live host. The compiled ruleset
// is loaded into a scratch namespace and listed back by the same nft, so both sides are
// spelled alike; then chains are compared rule by rule and sets element by element.
import { type Change, diffListings, parseListing } from '../nft/diff.js';
import { toNftJson } from '../nft/json.js';
import type { Ruleset } from '../nft/ruleset.js';
import { ApplyError } from './errors.js';
import { loadJson, nftMessage, nftVersion } from './nft.js';
import { withScratchNamespace } from './scratch.js';
import type { System } from './system.js';

async function listTable(sys: System, family: string, name: string): Promise<{ text?: string; json?: string }> {
  const text = await sys.run('nft', ['list', 'table', family, name]);
  if (text.code !== 0) return {};
  const json = await sys.run('nft', ['-j', 'list', 'table', family, name]);
  return { text: text.stdout, json: json.stdout };
}

/** `enter` gives the System of the scratch namespace (tests hand in a fake one). */
export async function diffRuleset(live: System, host: System, ruleset: Ruleset, scratchFile: string, enter?: (netns: string) => System): Promise<Change[]> {
  if (!live.isRoot()) throw new ApplyError('guestwall diff needs root to read the live ruleset', 'run it with sudo, or as root', 2);
  await nftVersion(live);
  return withScratchNamespace(host, async (scratch) => {
    await scratch.writeFile(scratchFile, `${JSON.stringify(toNftJson(ruleset))}\n`, 0o600);
    try {
      const load = await loadJson(scratch, scratchFile);
      if (load.code !== 0) throw new ApplyError(`the kernel refuses the compiled ruleset: ${nftMessage(load)}`);
    } finally {
      await scratch.remove(scratchFile);
    }
    const changes: Change[] = [];
    for (const t of ruleset.tables) {
      const now = await listTable(live, t.family, t.name);
      const next = await listTable(scratch, t.family, t.name);
      if (now.text === undefined) changes.push({ where: `table ${t.family} ${t.name}`, kind: '+', text: 'not loaded yet: everything below is new' });
      changes.push(...diffListings(parseListing(now.text, now.json), parseListing(next.text, next.json)));
    }
    return changes;
  }, enter);
}
