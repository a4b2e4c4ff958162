// apply, confirm and rollback on a real kernel, inside throwaway network namespaces: other
// software's tables stay byte-identical, a refused ruleset changes nothing, an unconfirmed
// apply comes back by itself (also when apply is SIGKILLed), and two applies never mix.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { applyRuleset, liveDifferences } from '../../src/apply/apply.js';
import { ApplyError } from '../../src/apply/errors.js';
import { statePaths } from '../../src/apply/state.js';
import { realSystem } from '../../src/apply/system.js';
import { applyCommand } from '../../src/cli/apply.js';
import { run } from '../../src/cli/main.js';
import { compilePolicyText } from '../../src/compile/pipeline.js';
import type { Ruleset } from '../../src/nft/ruleset.js';
import { compileYaml } from '../support/compile.js';
import { memoryIo } from '../support/io.js';
import { addNamespace, deleteNamespace, kernelTestUnavailable, namespaceName } from '../support/kernel.js';

const skipReason = kernelTestUnavailable();
const POLICIES = Object.fromEntries(
  readdirSync('policies').filter((f) => f.endsWith('.yaml')).map((f) => [`policies/${f}`, readFileSync(`policies/${f}`, 'utf8')]),
);
const BIN = 'bin/guestwall.js';

const FOREIGN = `table inet dockerish {
	chain forward {
		type filter hook forward priority 0; policy drop;
		iifname "docker0" oifname != "docker0" counter accept
	}
}
table ip libvirtish {
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 masquerade
	}
}
`;

async function nft(ns: string, ...args: string[]): Promise<string> {
  return (await execa('ip', ['netns', 'exec', ns, 'nft', ...args])).stdout;
}

/** Everything in the namespace's ruleset except guestwall's own tables, as nft lists it. */
async function foreign(ns: string): Promise<string> {
  const text = await nft(ns, 'list', 'ruleset');
  return text.replace(/table (inet|bridge|arp) guestwall \{[\s\S]*?\n\}\n?/g, '').trim();
}

/** guestwall's tables (inet, bridge, arp) as nft lists them; undefined when the inet one is not loaded. */
async function guestwallTable(ns: string): Promise<string | undefined> {
  const parts: string[] = [];
  for (const family of ['inet', 'bridge', 'arp']) {
    const r = await execa('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', family, 'guestwall'], { reject: false });
    if (r.exitCode !== 0 && family === 'inet') return undefined;
    parts.push(r.exitCode === 0 ? r.stdout : `(no ${family} guestwall)`);
  }
  return parts.join('\n');
}

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

describe.skipIf(skipReason !== undefined)(`apply on a live kernel${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let ns = '';
  let stateDir = '';
  const created: string[] = [];
  const cliWithNetwork = async (...args: string[]) => {
    const m = memoryIo(POLICIES);
    const code = await run([...args, '--netns', ns, '--state-dir', stateDir], m.io);
    return { code, out: m.stdout(), err: m.stderr() };
  };
  // The ruleset only: bridges with addresses send packets of their own (DAD, MLD), which move
  // the counters these tests compare byte for byte. tests/e2e/network.test.ts covers the network.
  const cli = (...args: string[]) => cliWithNetwork(...args, ...(args[0] === 'apply' ? ['--no-network'] : []));

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'gw-apply-'));
  });
  beforeEach(async () => {
    ns = namespaceName('gw-apply');
    await addNamespace(ns);
    created.push(ns);
    await execa('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: FOREIGN });
  });
  afterEach(async () => {
    await deleteNamespace(ns);
  });
  afterAll(async () => {
    for (const n of created) await deleteNamespace(n);
    await rm(stateDir, { recursive: true, force: true });
  });

  it('loads the policy and leaves foreign tables byte-identical, also on re-apply and rollback', async () => {
    const before = await foreign(ns);
    const beforeJson = await nft(ns, '-j', 'list', 'table', 'inet', 'dockerish');
    const first = await cli('apply', 'policies/homelab-dmz.yaml');
    expect(first.code, first.err).toBe(0);
    // The policy's own rules and its forwards (map and set elements since issue 17) are live.
    const live = await guestwallTable(ns);
    expect(live).toContain('comment "homelab-dmz.yaml:83 rules[2]"');
    expect(live).toMatch(/203\.0\.113\.10 \. udp \. 5060 : 10\.0\.10\.10/);
    expect(await foreign(ns)).toBe(before);
    const again = await cli('apply', 'policies/homelab-dmz.yaml');
    expect(again.out).toContain('nothing to change');
    const other = await cli('apply', 'policies/kvm-lan.yaml');
    expect(other.code).toBe(0);
    expect(await guestwallTable(ns)).toContain('kvm-lan.yaml');
    const back = await cli('rollback');
    expect(back.code, back.err).toBe(0);
    expect(await guestwallTable(ns)).toContain('homelab-dmz.yaml');
    expect(await foreign(ns)).toBe(before);
    expect(await nft(ns, '-j', 'list', 'table', 'inet', 'dockerish')).toBe(beforeJson);
  });

  it('changes nothing when the kernel refuses the ruleset, and names the cause', async () => {
    expect((await cli('apply', 'policies/homelab-dmz.yaml')).code).toBe(0);
    const before = await nft(ns, 'list', 'ruleset');
    const sys = realSystem(ns);
    const state = statePaths(stateDir, ns);
    const opts = { state, timerCommand: ['true'] };
    const previous = () => { try { return readFileSync(state.previous, 'utf8'); } catch { return undefined; } };
    const previousBefore = previous();
    expect(previousBefore).toContain('guestwall snapshot');
    const base = compileYaml(`
version: 1
host: { interfaces: { eth0: { zone: net } } }
zones: { net: {} }
`).ruleset;

    // Refused as nft builds the batch: a jump to a chain that does not exist.
    const missingChain: Ruleset = structuredClone(base);
    missingChain.tables[0]!.chains[0]!.rules.unshift({ stmts: [{ jump: { target: 'nowhere' } }], origin: { id: 'test', file: 't', line: 0, col: 0, what: 'injected' } });
    await expect(applyRuleset(sys, missingChain, opts)).rejects.toThrow(/kernel refuses the ruleset: .*No such file or directory.*nothing was changed/);
    expect(await nft(ns, 'list', 'ruleset')).toBe(before);

    // Refused only at commit (mechanics.md 5.3): masquerade in a filter chain of a re-created table.
    const natInFilter: Ruleset = structuredClone(base);
    natInFilter.tables[0]!.chains.find((c) => c.name === 'forward')!.rules.unshift({ stmts: [{ masquerade: null }], origin: { id: 'test', file: 't', line: 0, col: 0, what: 'injected' } });
    const err = await applyRuleset(sys, natInFilter, opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplyError);
    expect((err as Error).message).toMatch(/Operation not supported|nothing was changed/);
    expect(await nft(ns, 'list', 'ruleset')).toBe(before);
    // `rollback` still goes back to where the last apply that worked came from.
    expect(previous()).toBe(previousBefore);
  });

  it('rolls back by itself when --confirm is not confirmed, and keeps the new state when it is', async () => {
    expect((await cli('apply', 'policies/homelab-dmz.yaml')).code).toBe(0);
    const homelab = await guestwallTable(ns);

    const unconfirmed = await cli('apply', 'policies/kvm-lan.yaml', '--confirm', '2');
    expect(unconfirmed.code, unconfirmed.err).toBe(0);
    expect(unconfirmed.out).toContain("run 'guestwall confirm");
    expect(await guestwallTable(ns)).toContain('kvm-lan.yaml');
    expect(await waitFor(async () => (await guestwallTable(ns)) === homelab, 6000)).toBe(true);

    const confirmed = await cli('apply', 'policies/kvm-lan.yaml', '--confirm', '2');
    expect(confirmed.code).toBe(0);
    const c = await cli('confirm');
    expect(c.code, c.err).toBe(0);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await guestwallTable(ns)).toContain('kvm-lan.yaml');
    expect((await cli('confirm')).err).toContain('nothing to confirm');
  });

  it('rolls back even when the apply process is killed right after loading', async () => {
    expect((await cli('apply', 'policies/homelab-dmz.yaml')).code).toBe(0);
    const homelab = await guestwallTable(ns);
    const child = execa('node', [BIN, 'apply', 'policies/kvm-lan.yaml', '--confirm', '2', '--no-network', '--netns', ns, '--state-dir', stateDir], { reject: false });
    // Kill it the moment the new ruleset is live, before it can print or clean up.
    // (Generous waits: on a loaded machine one apply takes over 10 s.)
    expect(await waitFor(async () => (await guestwallTable(ns))?.includes('kvm-lan.yaml') ?? false, 40_000)).toBe(true);
    child.kill('SIGKILL');
    await child;
    expect(await waitFor(async () => (await guestwallTable(ns)) === homelab, 30_000)).toBe(true);
  }, 90_000);

  it('diff says what apply would change, rule by rule, and exits 1 until they agree', async () => {
    const fresh = await cli('diff', 'policies/kvm-lan.yaml');
    expect(fresh.code).toBe(1);
    expect(fresh.out).toContain('table inet guestwall:\n  + not loaded yet');
    expect((await cliWithNetwork('apply', 'policies/kvm-lan.yaml')).code).toBe(0);
    const same = await cli('diff', 'policies/kvm-lan.yaml');
    expect(same.code, same.out).toBe(0);
    const changed = await cli('diff', 'policies/lxc-isolated.yaml');
    expect(changed.code).toBe(1);
    expect(changed.out).toMatch(/chain dmz_to_dmz:\n  \+ new chain/);
    expect(changed.out).toContain('+ ["lxcbr-dmz",{"goto":{"target":"from_dmz"}}]');
    // diff changed nothing, and left no scratch namespace behind.
    expect((await cli('diff', 'policies/kvm-lan.yaml')).code).toBe(0);
    expect((await execa('ip', ['netns', 'list'])).stdout).not.toContain('guestwall-scratch');
  });

  it('refuses a policy that would lock out the SSH session it runs in, unless --force', async () => {
    // (veth, because this kernel has no dummy interfaces.) The namespace's "eth0" holds the host's public address; the admin is logged in from the internet.
    await execa('ip', ['netns', 'exec', ns, 'ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0-peer']);
    await execa('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', '203.0.113.10/24', 'dev', 'eth0']);
    const real = realSystem(ns);
    const overSsh = { ...real, env: (name: string) => (name === 'SSH_CONNECTION' ? '198.51.100.7 50022 203.0.113.10 22' : real.env(name)) };
    const before = await nft(ns, 'list', 'ruleset');
    const m = memoryIo(POLICIES);
    expect(await applyCommand(m.io, 'policies/homelab-dmz.yaml', { netns: ns, stateDir }, overSsh)).toBe(1);
    expect(m.stderr()).toContain('this policy would drop new SSH connections from 198.51.100.7 to 203.0.113.10 port 22 on eth0');
    expect(m.stderr()).toContain('policies/homelab-dmz.yaml:68');
    expect(await nft(ns, 'list', 'ruleset')).toBe(before);

    // The same admin logged in from the LAN side is fine; and --force overrides the guard.
    await execa('ip', ['netns', 'exec', ns, 'ip', 'link', 'add', 'br-lan', 'type', 'veth', 'peer', 'name', 'br-lan-peer']);
    await execa('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', '192.168.1.1/24', 'dev', 'br-lan']);
    const lanSession = { ...real, env: (name: string) => (name === 'SSH_CONNECTION' ? '192.168.1.50 50022 192.168.1.1 22' : undefined) };
    expect(await applyCommand(memoryIo(POLICIES).io, 'policies/homelab-dmz.yaml', { netns: ns, stateDir }, lanSession)).toBe(0);
    await execa('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'guestwall']);
    expect(await applyCommand(memoryIo(POLICIES).io, 'policies/homelab-dmz.yaml', { netns: ns, stateDir, force: true }, overSsh)).toBe(0);
    // A table of guestwall's that someone deleted is a difference, not "nothing to change": it is loaded again.
    expect(await guestwallTable(ns)).toContain('homelab-dmz.yaml');
  });

  it('serialises two concurrent applies: the result is exactly one of them, never a mix', async () => {
    const runs = await Promise.all(
      ['policies/homelab-dmz.yaml', 'policies/routed-xen.yaml'].map((p) =>
        execa('node', [BIN, 'apply', p, '--netns', ns, '--state-dir', stateDir], { reject: false }),
      ),
    );
    for (const r of runs) expect([0, 1]).toContain(r.exitCode);
    const failed = runs.filter((r) => r.exitCode !== 0);
    for (const r of failed) expect(r.stderr).toContain('another guestwall');
    const table = (await guestwallTable(ns))!;
    const files = ['homelab-dmz.yaml', 'routed-xen.yaml'].filter((f) => table.includes(f));
    expect(files).toHaveLength(1);
    // The live table is the winner's ruleset exactly: same chains, rule comments and elements.
    const winner = `policies/${files[0]}`;
    const compiled = compilePolicyText(winner, POLICIES[winner]!).compiled!;
    expect(await liveDifferences(realSystem(ns), compiled.ruleset)).toEqual([]);
  });
});
