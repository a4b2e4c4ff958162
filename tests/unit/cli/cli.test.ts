import { existsSync, readFileSync } from 'node:fs';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { timerCommand } from '../../../src/cli/apply.js';
import { run } from '../../../src/cli/main.js';
import { policyJsonSchema } from '../../../src/cli/schema.js';
import { memoryIo } from '../../support/io.js';
import { snippetTemplateFiles } from '../../support/templates.js';

const homelab = readFileSync('policies/homelab-dmz.yaml', 'utf8');
const broken = `version: 1
zones:
  net: {}
host:
  interfaces:
    eth0: { zone: nett }
rules:
  - { from: net, to: host, service: shh, action: accept }
`;

describe('guestwall check', () => {
  it('exits 0 on a valid policy and says so', async () => {
    const m = memoryIo({ 'h.yaml': homelab });
    expect(await run(['check', 'h.yaml'], m.io)).toBe(0);
    expect(m.stdout()).toContain('0 errors');
  });

  it('reports every error of every file as file:line:col and exits 1', async () => {
    const m = memoryIo({ 'a.yaml': broken, 'b.yaml': broken.replace('shh', 'ssh') });
    expect(await run(['check', 'a.yaml', 'b.yaml'], m.io)).toBe(1);
    const text = m.stdout();
    expect(text).toContain("a.yaml:6:19: error: unknown zone 'nett'; did you mean 'net'? [GW012 unknown-zone]");
    expect(text).toContain("a.yaml:8:37: error: unknown service 'shh'; did you mean 'ssh'? [GW015 unknown-service]");
    expect(text).toContain("b.yaml:6:19: error: unknown zone 'nett'");
    expect(m.stderr()).toContain('3 errors');
  });

  it('prints diagnostics as JSON with --json', async () => {
    const m = memoryIo({ 'a.yaml': broken });
    expect(await run(['check', '--json', 'a.yaml'], m.io)).toBe(1);
    const ds = JSON.parse(m.stdout()) as { file: string; line: number; col: number; code: string; severity: string }[];
    expect(ds.map((d) => d.code)).toEqual(['GW012', 'GW015']);
    expect(ds[0]).toMatchObject({ file: 'a.yaml', line: 6, col: 19, code: 'GW012', severity: 'error' });
  });

  it('fails on warnings only with --strict', async () => {
    const m = memoryIo({ 'h.yaml': homelab.replace('  - { from: net, to: all, action: drop, log: true }', '  - { from: net, to: all, action: accept }') });
    expect(await run(['check', 'h.yaml'], m.io)).toBe(0);
    expect(m.stdout()).toContain('GW102');
    expect(await run(['check', '--strict', 'h.yaml'], memoryIo({ 'h.yaml': m.io.readFile('h.yaml') }).io)).toBe(1);
  });

  it('exits 2 with a one-line reason when a file cannot be read', async () => {
    const m = memoryIo();
    expect(await run(['check', 'missing.yaml'], m.io)).toBe(2);
    expect(m.stderr()).toContain('guestwall: cannot read missing.yaml: no such file');
  });
});

describe('guestwall compile', () => {
  it('prints nftables JSON by default, with the replace idiom and no flush ruleset', async () => {
    const m = memoryIo({ 'h.yaml': homelab });
    expect(await run(['compile', 'h.yaml'], m.io)).toBe(0);
    const doc = JSON.parse(m.stdout()) as { nftables: Record<string, unknown>[] };
    expect(doc.nftables.slice(1, 4)).toEqual([
      { add: { table: { family: 'inet', name: 'guestwall' } } },
      { delete: { table: { family: 'inet', name: 'guestwall' } } },
      { add: { table: { family: 'inet', name: 'guestwall' } } },
    ]);
    expect(m.stdout()).not.toMatch(/flush/);
  });

  it('prints nft syntax with --format nft', async () => {
    const m = memoryIo({ 'h.yaml': homelab });
    expect(await run(['compile', 'h.yaml', '--format', 'nft'], m.io)).toBe(0);
    expect(m.stdout()).toMatch(/^table inet guestwall \{\}\ndelete table inet guestwall\ntable inet guestwall \{/);
  });

  it('writes the ruleset and the origin map with --out', async () => {
    const m = memoryIo({ 'h.yaml': homelab, ...snippetTemplateFiles() });
    expect(await run(['compile', 'h.yaml', '--out', 'o'], m.io)).toBe(0);
    expect(Object.keys(m.written).filter((k) => !k.startsWith('o/guests/') && !k.startsWith('o/network/')).sort()).toEqual(['o/origins.json', 'o/ruleset.json', 'o/ruleset.nft']);
    expect(Object.keys(m.written)).toContain('o/guests/asterisk/lxc.conf');
    expect(Object.keys(m.written)).toContain('o/network/etc/guestwall/hooks/port-up');
    const origins = JSON.parse(m.written['o/origins.json']!) as Record<string, { line: number; what: string }>;
    expect(origins['h.yaml:90 forwards[0]']).toMatchObject({ line: 90, what: 'forward 1: net -> asterisk' });
  });

  it('writes the host network setup under network/ with --out: the target tree and plan.json', async () => {
    const m = memoryIo({ 'h.yaml': homelab, ...snippetTemplateFiles() });
    expect(await run(['compile', 'h.yaml', '--out', 'o'], m.io)).toBe(0);
    const net = Object.keys(m.written).filter((k) => k.startsWith('o/network/'));
    expect(net).toContain('o/network/etc/systemd/network/00-guestwall-br-lan.netdev');
    expect(net).toContain('o/network/etc/guestwall/hooks/port-up');
    expect(net).toContain('o/network/etc/sysctl.d/60-guestwall.conf');
    const plan = JSON.parse(m.written['o/network/plan.json']!) as { steps: { args: string[] }[] };
    expect(plan.steps.map((s) => s.args.join(' '))).toContain('-4 neigh add proxy 203.0.113.20 dev eth0');
  });

  it('refuses to compile a policy with errors, exit 1, nothing on stdout', async () => {
    const m = memoryIo({ 'a.yaml': broken });
    expect(await run(['compile', 'a.yaml'], m.io)).toBe(1);
    expect(m.stdout()).toBe('');
    expect(m.stderr()).toContain('has errors; nothing compiled');
  });

  it('compiles for the kernel features asked for, and with --verbose says on one stderr line which and what is weaker', async () => {
    const full = memoryIo({ 'h.yaml': homelab });
    expect(await run(['compile', 'h.yaml', '--format', 'nft', '--kernel-features', 'full', '--verbose'], full.io)).toBe(0);
    expect(full.stdout()).toMatch(/table bridge guestwall \{[^]*ct state vmap @ct_state comment "builtin:bridge-ct-state"[^]*chain ct_invalid \{\n\t\tcounter drop comment "builtin:bridge-ct-invalid"/);
    expect(full.stderr()).toContain('guestwall: kernel features: full (--kernel-features full)');
    expect(full.stderr()).not.toContain('weaker');
    const base = memoryIo({ 'h.yaml': homelab });
    expect(await run(['compile', 'h.yaml', '--format', 'nft', '--kernel-features', 'baseline', '--verbose'], base.io)).toBe(0);
    expect(base.stdout()).not.toContain('builtin:bridge-ct-state');
    expect(base.stderr()).toContain(
      "guestwall: kernel features: baseline (--kernel-features baseline); weaker without the rest: guest-to-guest filtering on a bridge is stateless (replies pass by their look, not by connection); 'reject' between bridge ports is a silent drop",
    );
    expect(base.stderr().match(/kernel features:/g)).toHaveLength(1);
    expect(await run(['compile', 'h.yaml', '--kernel-features', 'most'], memoryIo({ 'h.yaml': homelab }).io)).toBe(2);
  });

  it('keeps quiet about the kernel features without --verbose', async () => {
    const quiet = memoryIo({ 'h.yaml': homelab });
    expect(await run(['compile', 'h.yaml', '--format', 'nft', '--kernel-features', 'baseline'], quiet.io)).toBe(0);
    expect(quiet.stderr()).not.toContain('kernel features');
  });

  it('rejects an unknown format with usage exit 2', async () => {
    const m = memoryIo({ 'h.yaml': homelab });
    expect(await run(['compile', 'h.yaml', '--format', 'xml'], m.io)).toBe(2);
    expect(m.stderr()).toContain("Allowed choices are json, nft");
  });
});

describe('guestwall schema', () => {
  it('prints the JSON Schema generated from the validator, identical to the shipped schema file', async () => {
    const m = memoryIo();
    expect(await run(['schema'], m.io)).toBe(0);
    expect(JSON.parse(m.stdout())).toEqual(policyJsonSchema());
    expect(m.stdout(), 'schema/guestwall.schema.json is stale: run node bin/guestwall.js schema > schema/guestwall.schema.json').toBe(readFileSync('schema/guestwall.schema.json', 'utf8'));
  });

  it('is referenced by every example policy for editors', () => {
    for (const f of ['homelab-dmz', 'kvm-lan', 'routed-xen', 'lxc-isolated']) {
      expect(readFileSync(`policies/${f}.yaml`, 'utf8').split('\n')[0]).toBe('# yaml-language-server: $schema=../schema/guestwall.schema.json');
    }
  });
});

describe('the installed binary', () => {
  it('runs check on the bundled example and prints help', async () => {
    const r = await execa('node', ['bin/guestwall.js', 'check', 'policies/homelab-dmz.yaml'], { reject: false });
    expect(r.exitCode).toBe(0);
    const help = await execa('node', ['bin/guestwall.js', '--help']);
    expect(help.stdout).toContain('compile [options] <file>');
  });

  it('runs the bundle (dist/bundle/), which finds the rollback timer tsc built', () => {
    expect(readFileSync('bin/guestwall.js', 'utf8')).toContain("from '../dist/bundle/main.js'");
    const timer = (at: string) => timerCommand(at)[1];
    expect(timer('/opt/gw/dist/bundle/apply.js')).toBe('/opt/gw/dist/src/apply/rollback-timer.js');
    expect(timer('/opt/gw/dist/src/cli/apply.js')).toBe('/opt/gw/dist/src/apply/rollback-timer.js');
    expect(timer('/opt/gw/src/cli/apply.ts')).toBe('/opt/gw/dist/src/apply/rollback-timer.js');
    expect(existsSync(timerCommand()[1]!), 'npm run build first').toBe(true);
  });

  it('loads for apply only the argument parser and the apply bundle, which holds nothing apply does not use', () => {
    // esbuild writes each bundled file's path as a comment above its code.
    const files = (name: string) => new Set([...readFileSync(`dist/bundle/${name}.js`, 'utf8').matchAll(/^\/\/ ((?:dist\/src|node_modules)\/\S+)$/gm)].map((m) => m[1]!));
    const main = files('main');
    expect([...main].filter((f) => !f.startsWith('node_modules/commander/'))).toEqual(['dist/src/compile/features.js', 'dist/src/cli/io.js', 'dist/src/cli/main.js']);
    const apply = [...files('apply')];
    expect(apply).toContain('dist/src/apply/apply.js');
    expect(apply).toContain('dist/src/policy/schema.js');
    // Not the TUI, not explain's evaluator (lockout.js, only over SSH), not the JSON Schema generator.
    expect(apply.filter((f) => /^dist\/src\/(tui|explain)\/|^node_modules\/(ink|react)/.test(f) || f.includes('json-schema'))).toEqual([]);
    expect([...files('lockout')]).toContain('dist/src/explain/evaluate.js');
  });
});

describe('the README', () => {
  const readme = readFileSync('README.md', 'utf8');

  it('opens with the install-and-run command and the test command', () => {
    const firstBlock = readme.split('```sh\n')[1]!.split('```')[0]!;
    expect(firstBlock.split('\n')[0]).toMatch(/^npm ci && npm run preview +#/);
    expect(firstBlock).toContain('npm test');
    const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.preview).toBe('node bin/guestwall.js preview policies/homelab-dmz.yaml');
  });

  it('runs the main job without a terminal: npm run preview prints the plain summary and exits 0', async () => {
    const r = await execa('npm', ['run', '--silent', 'preview'], { reject: false, stdin: 'ignore' });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('guestwall preview policies/homelab-dmz.yaml: 0 errors, 1 warning');
    expect(r.stdout).toMatch(/^Matrix:$/m);
  });

  it('tours a policy that checks clean and compiles', async () => {
    const tour = readme.split('```yaml\n')[1]!.split('```')[0]!;
    const m = memoryIo({ 'tour.yaml': tour });
    expect(await run(['check', '--strict', 'tour.yaml'], m.io), m.stdout()).toBe(0);
    expect(await run(['compile', 'tour.yaml'], m.io)).toBe(0);
  });
});
