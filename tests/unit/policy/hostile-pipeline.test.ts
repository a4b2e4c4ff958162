// The whole pipeline on hostile policies: generated valid policies whose free fields (interface,
// bridge and port names, names of zones and guests, descriptions, log prefixes) are replaced by
// strings other programs read as syntax (quotes, brackets, `$()`, backticks, globs, '@', `{{…}}`,
// Unicode). `check` never throws: it accepts, or refuses with located diagnostics. Every accepted
// policy's artifacts are read back by their consumer (nft -c in a namespace, virt-xml-validate,
// sh -n) or by a faithful parser (tests/support/consumers.ts), and say exactly the policy's names.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNetworkTemplates as networkReadTemplates } from '../../../src/cli/network.js';
import { compilePolicyText } from '../../../src/compile/pipeline.js';
import { networkSetup } from '../../../src/emit/network.js';
import { networkFiles } from '../../../src/emit/network-files.js';
import { guestSnippets } from '../../../src/emit/snippets.js';
import type { HostModel } from '../../../src/model/host.js';
import { toNftJson } from '../../../src/nft/json.js';
import type { Policy } from '../../../src/policy/schema.js';
import { lxcEntries, networkdMatchNames, networkdNameMatches, xlVifSpecs, xmlAttributes } from '../../support/consumers.js';
import { policyArb, policyYaml } from '../../support/gen-policy.js';
import { addNamespace, deleteNamespace, kernelTestUnavailable, namespaceName } from '../../support/kernel.js';
import { snippetTemplates } from '../../support/templates.js';

/** Strings that some consumer reads as syntax, and a few plain ones so that some policies pass. */
const HOSTILE = [
  "x'];memory=9;#", "x','y", '!lo', 'eth?', 'e[a-z]h1', 'br<&x', '@wan', '$(id)', '`id`', '{{name}}', 'a"b', 'a\\b',
  'é-x', 'x\u202e', 'x\u00a0', 'web+1', 'web@1', 'a=b', '#x', 'a,b', '-x', 'x-emu', 'gw_x', 'x y', 'x\ny', 'a*', '%i',
  'ab;cd', 'a&b', 'x]', '[x', 'a:b', 'a/b', '', '.', 'éééééééé', 'a'.repeat(16), '__proto__', 'constructor',
  'br0', 'eth9', 'up1', 'gw.a', 'x-1', 'Y_2',
];
const hostile = fc.constantFrom(...HOSTILE);

type Mutation =
  | { kind: 'host-if' | 'bridge' | 'port' | 'guest-if' | 'zone' | 'guest' | 'description' | 'log'; pick: number; to: string };

const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('host-if', 'bridge', 'port', 'guest-if', 'guest-if', 'bridge', 'zone', 'guest', 'description', 'log'),
  pick: fc.nat(),
  to: hostile,
});

/** The policy with one free field replaced, references to it renamed along. */
function mutate(p: Policy, m: Mutation): Policy {
  const q = structuredClone(p);
  const renameKey = <T>(rec: Record<string, T> | undefined, from: string, to: string) => {
    if (!rec || !Object.hasOwn(rec, from)) return rec;
    return Object.fromEntries(Object.entries(rec).map(([k, v]) => [k === from ? to : k, v]));
  };
  const pickOf = <T>(list: T[]): T | undefined => (list.length === 0 ? undefined : list[m.pick % list.length]);
  const guests = Object.entries(q.guests ?? {});
  switch (m.kind) {
    case 'host-if': {
      const name = pickOf(Object.keys(q.host?.interfaces ?? {}));
      if (name !== undefined) q.host!.interfaces = renameKey(q.host!.interfaces, name, m.to)!;
      break;
    }
    case 'bridge': {
      const name = pickOf(Object.keys(q.bridges ?? {}));
      if (name === undefined) break;
      q.bridges = renameKey(q.bridges, name, m.to);
      for (const [, g] of guests) for (const i of g.interfaces) if (i.mode === 'bridged' && i.bridge === name) i.bridge = m.to;
      break;
    }
    case 'port': {
      const b = pickOf(Object.values(q.bridges ?? {}));
      if (b) b.ports = [...(b.ports ?? []), m.to];
      break;
    }
    case 'guest-if': {
      const g = pickOf(guests);
      if (g) pickOf(g[1].interfaces)!.name = m.to;
      break;
    }
    case 'zone': {
      // Only the key: references keep the old name, so this is refused as an unknown zone or a bad name.
      const name = pickOf(Object.keys(q.zones));
      if (name !== undefined) q.zones = renameKey(q.zones, name, m.to)!;
      break;
    }
    case 'guest': {
      const name = pickOf(guests.map(([n]) => n));
      if (name !== undefined) q.guests = renameKey(q.guests, name, m.to);
      break;
    }
    case 'description': {
      const r = pickOf(q.rules ?? []);
      if (r) r.description = m.to;
      else q.zones[Object.keys(q.zones)[0]!]!.description = m.to;
      break;
    }
    case 'log': {
      const r = pickOf(q.policies ?? []);
      if (r) r.log = m.to;
      break;
    }
  }
  return q;
}

const CONTROL_OR_BIDI = /[\p{Cc}\p{Cf}\u2028\u2029]/u;

/** Every artifact of an accepted policy, read back, names the guest interfaces and bridges the model holds. */
function readBack(model: HostModel, templates: ReturnType<typeof snippetTemplates>): void {
  const snippets = guestSnippets(model, templates);
  for (const g of model.guests) {
    const text = snippets.find((s) => s.guest === g.name)!.text;
    if (g.platform === 'xen') {
      const specs = xlVifSpecs(text);
      expect(specs).toHaveLength(g.interfaces.length);
      g.interfaces.forEach((i, n) => {
        const kv = new Map(specs[n]);
        expect(specs[n]!.map(([k]) => k).filter((k) => k === 'vifname' || k === 'bridge')).toEqual(i.mode === 'bridged' ? ['bridge', 'vifname'] : ['vifname']);
        expect(kv.get('vifname')).toBe(i.name);
        if (i.mode === 'bridged') expect(kv.get('bridge')).toBe(i.bridge);
      });
    } else if (g.platform === 'lxc') {
      const entries = lxcEntries(text);
      g.interfaces.forEach((i) => {
        const get = (k: string) => entries.filter(([key]) => key === `lxc.net.${i.index}.${k}`).map(([, v]) => v);
        expect(get('veth.pair')).toEqual([i.name]);
        if (i.mode === 'bridged') expect(get('link')).toEqual([i.bridge]);
      });
    } else {
      expect(xmlAttributes(text, 'target', 'dev')).toEqual(g.interfaces.map((i) => i.name));
      expect(xmlAttributes(text, 'source', 'bridge')).toEqual(g.interfaces.flatMap((i) => (i.mode === 'bridged' ? [i.bridge] : [])));
    }
  }
  // networkd: each [Match] Name= matches exactly the interface its file is for, among every name the host has.
  const everyName = [
    ...model.hostInterfaces.map((i) => i.name), ...model.bridges.flatMap((b) => [b.name, ...b.ports]),
    ...model.guests.flatMap((g) => g.interfaces.flatMap((i) => i.hostNames)), 'lo', 'eth0', 'wlan0', 'docker0',
  ];
  for (const f of networkFiles(networkSetup(model), networkReadTemplates())) {
    if (!f.path.startsWith('/etc/systemd/network/')) continue;
    const file = f.path.slice('/etc/systemd/network/00-guestwall-'.length).replace(/\.(network|netdev)$/, '');
    expect(everyName, f.path).toContain(file);
    for (const value of networkdMatchNames(f.text)) {
      expect(everyName.filter((n) => networkdNameMatches(value, n)), `${f.path}: Name=${value}`).toEqual([file]);
    }
  }
}

describe('hostile policies through the whole pipeline', () => {
  const templates = snippetTemplates();
  const accepted: { model: HostModel; json: string }[] = [];

  it('check never throws: it accepts, or refuses with located, printable diagnostics; accepted artifacts read back as the policy', () => {
    fc.assert(
      fc.property(policyArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 }), (p, ms) => {
        const policy = ms.reduce(mutate, p);
        const text = policyYaml(policy);
        const r = compilePolicyText('hostile.yaml', text);
        const errors = r.diagnostics.filter((d) => d.severity === 'error');
        for (const d of r.diagnostics) {
          expect(d.line, d.message).toBeGreaterThanOrEqual(1);
          expect(d.col, d.message).toBeGreaterThanOrEqual(1);
          expect(d.code).toMatch(/^GW\d{3}$/);
          expect(CONTROL_OR_BIDI.test(`${d.message} ${d.hint ?? ''}`), d.message).toBe(false);
        }
        if (errors.length > 0) {
          expect(r.compiled).toBeUndefined();
          return;
        }
        expect(r.model && r.compiled).toBeTruthy();
        readBack(r.model!, templates);
        const json = JSON.stringify(toNftJson(r.compiled!.ruleset));
        if (accepted.length < 25) accepted.push({ model: r.model!, json });
      }),
      { numRuns: Number(process.env.GW_FUZZ_RUNS ?? 100), seed: 1313 },
    );
    // The test means something only if some hostile policies are accepted and some refused.
    expect(accepted.length).toBeGreaterThan(5);
  });

  describe('real consumers', () => {
    const unavailable = kernelTestUnavailable();
    let dir = '';
    const ns = namespaceName('gw13');
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'gw13-'));
      if (!unavailable) await addNamespace(ns);
    });
    afterAll(async () => {
      rmSync(dir, { recursive: true, force: true });
      if (!unavailable) await deleteNamespace(ns);
    });

    it.skipIf(unavailable !== undefined)(`nft -c -j -f takes every accepted ruleset, in a throwaway namespace${unavailable ? ` (skipped: ${unavailable})` : ''}`, async () => {
      expect(accepted.length).toBeGreaterThan(0);
      for (const [n, a] of accepted.entries()) {
        const file = join(dir, `ruleset-${n}.json`);
        writeFileSync(file, a.json);
        const r = await execa('ip', ['netns', 'exec', ns, 'nft', '-c', '-j', '-f', file], { reject: false });
        expect(r.exitCode, `${r.stderr}\n${a.json.slice(0, 2000)}`).toBe(0);
      }
    }, 120_000);

    const onPath = (cmd: string) => (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, cmd)));
    const noValidator = onPath('virt-xml-validate') ? undefined : 'needs virt-xml-validate (libvirt-clients)';
    it.skipIf(noValidator !== undefined)(`virt-xml-validate takes every accepted KVM guest's interfaces in a domain${noValidator ? ` (skipped: ${noValidator})` : ''}`, async () => {
      const templates = snippetTemplates();
      let n = 0;
      for (const a of accepted) {
        for (const s of guestSnippets(a.model, templates).filter((x) => x.platform === 'kvm')) {
          if (n >= 12) break; // a dozen domains: each run of the validator costs about a second here
          const file = join(dir, `domain-${n++}.xml`);
          writeFileSync(file, `<domain type='kvm'><name>g</name><memory>65536</memory><os><type>hvm</type></os><devices>\n${s.text}\n</devices></domain>\n`);
          const r = await execa('virt-xml-validate', [file, 'domain'], { reject: false });
          expect(r.exitCode, `${r.stdout}\n${r.stderr}\n${s.text}`).toBe(0);
        }
      }
      expect(n).toBeGreaterThan(0);
    }, 120_000);

    const noAnalyze = onPath('systemd-analyze') ? undefined : 'needs systemd-analyze';
    it.skipIf(noAnalyze !== undefined)(`systemd-analyze verify takes every accepted policy's boot unit${noAnalyze ? ` (skipped: ${noAnalyze})` : ''}`, async () => {
      let n = 0;
      for (const a of accepted) {
        const unit = networkFiles(networkSetup(a.model), networkReadTemplates()).find((f) => f.path.endsWith('.service'));
        if (!unit || n >= 8) continue;
        const file = join(dir, `u${n++}`, 'guestwall-network.service');
        mkdirSync(join(file, '..'));
        writeFileSync(file, unit.text);
        const r = await execa('systemd-analyze', ['verify', file], { reject: false });
        expect(r.exitCode, `${r.stderr}\n${unit.text}`).toBe(0);
        expect(r.stderr, unit.text).toBe('');
      }
      expect(n).toBeGreaterThan(0);
    }, 120_000);

    it('port-up, run with a stub ip and sysctl that record their arguments, names each routed port exactly as the policy does', async () => {
      const stubs = join(dir, 'stubs');
      mkdirSync(stubs);
      const log = join(dir, 'calls');
      // Each call: the command and its arguments, separated by US, ended by RS (names hold neither).
      const stub = `#!/bin/sh\n{ printf '%s' "\${0##*/}"; for a in "$@"; do printf '\\037%s' "$a"; done; printf '\\036'; } >> '${log}'\n`;
      for (const cmd of ['ip', 'sysctl']) {
        writeFileSync(join(stubs, cmd), stub, { mode: 0o755 });
      }
      let ports = 0;
      // Ten policies and at most 20 ports: each run of the hook costs a few processes.
      for (const a of accepted.slice(0, 10)) {
        const setup = networkSetup(a.model);
        const hook = networkFiles(setup, networkReadTemplates()).find((f) => f.path.endsWith('/port-up'))!;
        const file = join(dir, 'port-up');
        // The hook sets PATH itself; here it finds the stubs first.
        writeFileSync(file, hook.text.replace(/^PATH=.*$/m, `PATH=${stubs}:/usr/bin:/bin`), { mode: 0o755 });
        for (const p of setup.routedPorts.filter((x) => x.by === 'hook').slice(0, Math.max(0, 20 - ports))) {
          writeFileSync(log, '');
          const r = await execa('sh', [file, p.name], { reject: false });
          expect(r.exitCode, r.stderr).toBe(0);
          const calls = readFileSync(log, 'utf8').split('\x1e').filter((c) => c !== '').map((c) => c.split('\x1f'));
          expect(calls[0], hook.text).toEqual(['ip', 'link', 'set', 'dev', p.name, 'up']);
          // `ip [-4|-6] route add|replace DST dev NAME ...`: the destination and the device as separate words.
          const routes = calls.filter((c) => c[0] === 'ip' && c.includes('route') && (c.includes('add') || c.includes('replace')))
            .map((c) => [c[c.indexOf('route') + 2], c[c.indexOf('dev') + 1]]);
          expect(routes).toEqual(p.routes.map((x) => [x.dst, p.name]));
          if (p.proxyArp) expect(calls).toContainEqual(['sysctl', '-q', '-w', `net.ipv4.conf.${p.name.replaceAll('.', '/')}.proxy_arp=1`]);
          ports++;
        }
        // A name the policy does not have: nothing is touched.
        writeFileSync(log, '');
        await execa('sh', [file, 'not-a-port0'], { reject: false });
        expect(readFileSync(log, 'utf8')).toBe('');
      }
      expect(ports).toBeGreaterThan(0);
    }, 120_000);

    it("sh -n takes every accepted policy's hooks", async () => {
      let n = 0;
      for (const a of accepted.slice(0, 10)) {
        for (const f of networkFiles(networkSetup(a.model), networkReadTemplates()).filter((x) => x.path.includes('/hooks/'))) {
          const file = join(dir, `hook-${n++}`);
          writeFileSync(file, f.text);
          const r = await execa('sh', ['-n', file], { reject: false });
          expect(r.exitCode, `${r.stderr}\n${f.text}`).toBe(0);
        }
      }
      expect(n).toBeGreaterThan(0);
    }, 60_000);
  });
});
