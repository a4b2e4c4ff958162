// guestwall guest FILE NAME, and the snippets compile --out writes beside the ruleset.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { run } from '../../../src/cli/main.js';
import { memoryIo } from '../../support/io.js';
import { snippetTemplateFiles } from '../../support/templates.js';

const homelab = readFileSync('policies/homelab-dmz.yaml', 'utf8');
const golden = (guest: string, file: string) => readFileSync(`tests/golden/guests/homelab-dmz/${guest}/${file}`, 'utf8');

describe('guestwall guest', () => {
  it("prints one guest's snippet for its platform, the same text compile --out writes", async () => {
    for (const [guest, file] of [['mail', 'xl.cfg'], ['desktop', 'libvirt.xml'], ['asterisk', 'lxc.conf']] as const) {
      const m = memoryIo({ 'policies/homelab-dmz.yaml': homelab, ...snippetTemplateFiles() });
      expect(await run(['guest', 'policies/homelab-dmz.yaml', guest], m.io)).toBe(0);
      expect(m.stdout()).toBe(golden(guest, file));
    }
  });

  it("prints the policy's errors only: its warnings are check's and apply's to say, not every snippet's", async () => {
    const check = memoryIo({ 'h.yaml': homelab });
    expect(await run(['check', 'h.yaml'], check.io)).toBe(0);
    expect(`${check.stdout()}${check.stderr()}`).toMatch(/warning: .*\[GW\d+/);
    const m = memoryIo({ 'h.yaml': homelab, ...snippetTemplateFiles() });
    expect(await run(['guest', 'h.yaml', 'asterisk'], m.io)).toBe(0);
    expect(m.stderr()).toBe('');
  });

  it('names the known guests when asked for an unknown one, exit 2', async () => {
    const m = memoryIo({ 'h.yaml': homelab, ...snippetTemplateFiles() });
    expect(await run(['guest', 'h.yaml', 'asterix'], m.io)).toBe(2);
    expect(m.stdout()).toBe('');
    expect(m.stderr()).toContain("guestwall: h.yaml has no guest 'asterix'; its guests: asterisk, mumble, teamspeak, minecraft, mail, desktop");
  });

  it('refuses a policy with errors, exit 1', async () => {
    const m = memoryIo({ 'h.yaml': homelab.replace('bridge: br-dmz, mac: "02:00:0a:00:0a:0a"', 'bridge: br-dmx, mac: "02:00:0a:00:0a:0a"'), ...snippetTemplateFiles() });
    expect(await run(['guest', 'h.yaml', 'asterisk'], m.io)).toBe(1);
    expect(m.stderr()).toContain("unknown bridge 'br-dmx'");
    expect(m.stdout()).toBe('');
  });

  it('says which template it cannot read, exit 2', async () => {
    const m = memoryIo({ 'h.yaml': homelab });
    expect(await run(['guest', 'h.yaml', 'mail'], m.io)).toBe(2);
    expect(m.stderr()).toMatch(/cannot read the guest snippet templates.*xen\/xl\.cfg.*reinstall guestwall/);
  });

  it('is listed with its help text', async () => {
    const m = memoryIo();
    expect(await run(['--help'], m.io)).toBe(0);
    expect(m.stdout()).toMatch(/guest \[options\] <file> <name>\s+print one guest's snippet/);
  });
});

describe('guestwall compile --out', () => {
  it('writes guests/<guest>/<xl.cfg|libvirt.xml|lxc.conf> for every guest', async () => {
    const m = memoryIo({ 'policies/homelab-dmz.yaml': homelab, ...snippetTemplateFiles() });
    expect(await run(['compile', 'policies/homelab-dmz.yaml', '--out', 'o'], m.io)).toBe(0);
    const guests = Object.keys(m.written).filter((k) => k.startsWith('o/guests/')).sort();
    expect(guests).toEqual([
      'o/guests/asterisk/lxc.conf', 'o/guests/desktop/libvirt.xml', 'o/guests/mail/xl.cfg',
      'o/guests/minecraft/lxc.conf', 'o/guests/mumble/lxc.conf', 'o/guests/teamspeak/lxc.conf',
    ]);
    expect(m.written['o/guests/mail/xl.cfg']).toBe(golden('mail', 'xl.cfg'));
    expect(m.stderr()).toContain('wrote the guest snippets to o/guests');
  });
});
