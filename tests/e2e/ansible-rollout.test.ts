// The Ansible rollout (integrations/ansible) with real ansible-playbook over real SSH, against
// three hosts that are namespaces (tests/support/fleet-lab.ts): a rollout succeeds host by host;
// a policy that cuts SSH on the second host stops the rollout there, that host restores its
// previous ruleset by itself (its confirm timer), and the third is never touched.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FleetLab, fleetLabUnavailable, startFleetLab } from '../support/fleet-lab.js';
import { kernelTestUnavailable } from '../support/kernel.js';

const skip = kernelTestUnavailable() ?? (await fleetLabUnavailable());
const PLAYBOOK = 'integrations/ansible/site.yml';

const policy = (h2Zone: string) => `version: 1
hosts:
  h1: { interfaces: { eth0: { zone: net, addresses: [10.77.0.11/24] } } }
  h2: { interfaces: { eth0: { zone: ${h2Zone}, addresses: [10.77.0.12/24] } } }
  h3: { interfaces: { eth0: { zone: net, addresses: [10.77.0.13/24] } } }
zones:
  net: { description: the management network the controller is on }
  quarantine: { description: nothing may reach the host from here }
policies:
  - { from: host, to: all, action: accept }
  - { from: all, to: all, action: drop }
rules:
  - { from: net, to: host, service: ssh, action: accept }
`;

describe.skipIf(skip !== undefined)(`rollout with Ansible over SSH${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: FleetLab;
  // Stateless (-s): counters move with every packet; the rules, sets and maps are what must match.
  const live = (h: number) => lab.inHost(lab.hosts[h]!, ['nft', '-s', 'list', 'ruleset']);
  const pending = (h: number) => existsSync(join(lab.hosts[h]!.state, 'pending-confirm.json'));

  beforeAll(async () => {
    lab = await startFleetLab(['h1', 'h2', 'h3']);
  }, 60_000);
  afterAll(async () => {
    await lab?.cleanup();
  }, 60_000);

  it('applies and confirms each host in turn, each with its own part of the policy', async () => {
    writeFileSync(join(lab.dir, 'good.yaml'), policy('net'));
    const r = await lab.playbook(PLAYBOOK, { guestwall_policy_src: join(lab.dir, 'good.yaml'), guestwall_confirm_seconds: 600, guestwall_reachable_timeout: 60 });
    expect(r.output, r.output).toMatch(/h3\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0/);
    expect(r.code, r.output).toBe(0);
    for (const [i, h] of lab.hosts.entries()) {
      expect(readFileSync(join(h.etc, 'policy.yaml'), 'utf8')).toBe(policy('net'));
      const ruleset = await live(i);
      expect(ruleset).toContain('table inet guestwall');
      expect(ruleset).toContain('policy.yaml');
      expect(pending(i), `${h.name} is confirmed`).toBe(false);
    }
    // One host at a time: h1's tasks all ran before h2's first.
    expect(r.output.indexOf('changed: [h2]')).toBeGreaterThan(r.output.lastIndexOf('[h1]'));
  }, 900_000);

  it('stops at a host the new policy cuts off; that host rolls back by itself, the next is untouched', async () => {
    const before = [await live(0), await live(1), await live(2)];
    const h3State = readFileSync(join(lab.hosts[2]!.state, 'current.json'), 'utf8');
    writeFileSync(join(lab.dir, 'bad.yaml'), policy('quarantine'));
    // The lockout guard would refuse this policy on h2 before loading it (also a stop); --force
    // stands for a mistake the guard cannot see, so that the confirm timer has to save the host.
    const r = await lab.playbook(PLAYBOOK, {
      guestwall_policy_src: join(lab.dir, 'bad.yaml'), guestwall_confirm_seconds: 10, guestwall_reachable_timeout: 30, guestwall_apply_args: ['--force'],
    });
    expect(r.code, r.output).not.toBe(0);
    expect(r.output).toMatch(/fatal: \[h2\]/);
    expect(r.output).not.toMatch(/\[h3\]/);
    // h2 was left unconfirmed: its timer restores the previous ruleset.
    let restored = false;
    for (let i = 0; i < 240 && !restored; i++) {
      restored = (await live(1)) === before[1];
      if (!restored) await new Promise((res) => setTimeout(res, 500));
    }
    expect(restored, 'h2 restored its previous ruleset').toBe(true);
    expect(readFileSync(join(lab.hosts[1]!.state, 'history.log'), 'utf8')).toContain('rollback (not confirmed in time)');
    expect(await live(0)).toBe(before[0]);
    expect(await live(2)).toBe(before[2]);
    expect(readFileSync(join(lab.hosts[2]!.state, 'current.json'), 'utf8')).toBe(h3State);
    expect(readFileSync(join(lab.hosts[2]!.etc, 'policy.yaml'), 'utf8')).toBe(policy('net'));
  }, 900_000);
});
