// The generated xen-vif with a stand-in for Xen's script directory: vif-common.sh finds its
// siblings through $0 and hands over $command and $dev; xen-vif calls port-up / port-down with
// the interface and reports success to Xen only for online. No kernel needed: the hooks are stubs.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { templateFile } from '../../../src/apply/install.js';
import { fillTemplate } from '../../../src/emit/template.js';

let dir = '';
let script = '';
const log = () => readFileSync(join(dir, 'log'), 'utf8');

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gw-xenvif-'));
  const xen = join(dir, 'xen');
  const hooks = join(dir, 'hooks');
  for (const d of [xen, hooks]) mkdirSync(d, { recursive: true });
  // Like Xen's: a bash library that sources a sibling found through $0, reads the command from $1.
  writeFileSync(join(xen, 'xen-hotplug-common.sh'), `log() { :; }\nsuccess() { echo "success" >> "${dir}/log"; }\nfatal() { echo "fatal: $*" >> "${dir}/log"; exit 1; }\n`);
  writeFileSync(join(xen, 'vif-common.sh'), 'dir=$(dirname "$0")\n. "$dir/xen-hotplug-common.sh"\ncommand=$1\n[[ $type_if == tap ]] && dev=$INTERFACE || dev=$vifname\n');
  for (const h of ['port-up', 'port-down']) {
    writeFileSync(join(hooks, h), `#!/bin/sh\necho "${h} $*" >> "${dir}/log"\n${h === 'port-up' ? '[ "$1" != broken ]' : 'true'}\n`);
    chmodSync(join(hooks, h), 0o755);
  }
  script = join(dir, 'xen-vif');
  const tpl = readFileSync(templateFile('hooks/xen-vif'), 'utf8');
  writeFileSync(script, fillTemplate(tpl, { generated: 'test', xenVif: script, hooksDir: hooks, xenScripts: xen }));
  chmodSync(script, 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const xenVif = (args: string[], env: Record<string, string>) => {
  writeFileSync(join(dir, 'log'), '');
  return execa(script, args, { env, reject: false });
};

describe('xen-vif', () => {
  it('online: port-up with the renamed vif, then success', async () => {
    const r = await xenVif(['online'], { type_if: 'vif', vifname: 'gw-mail' });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(log()).toBe('port-up gw-mail\nsuccess\n');
  });

  it("add for an HVM guest's tap: port-up with the -emu name", async () => {
    const r = await xenVif(['add'], { type_if: 'tap', INTERFACE: 'gw-mail-emu' });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(log()).toBe('port-up gw-mail-emu\n');
  });

  it('offline: port-down', async () => {
    expect((await xenVif(['offline'], { type_if: 'vif', vifname: 'gw-mail' })).exitCode).toBe(0);
    expect(log()).toBe('port-down gw-mail\n');
  });

  it('a failing port-up fails the hotplug, so xl does not start a guest without its route', async () => {
    const r = await xenVif(['online'], { type_if: 'vif', vifname: 'broken' });
    expect(r.exitCode).toBe(1);
    expect(log()).toBe('port-up broken\nfatal: guestwall port-up broken failed\n');
  });
});
