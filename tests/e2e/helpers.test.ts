// Conntrack helpers attach where the compiler puts them. The helper rules live in the nat
// prerouting chain (dstnat, behind its port gate), or, where a port forward translates the ports
// they match, in the chains the helper's `from` zone reaches on forward and input (`from_lan`,
// `lan_to_host`). This checks with a real kernel that the FTP helper sees the connections it is
// asked for: a client on the LAN opens an FTP control connection, through the host to a server
// on the internet side and to a server on the host itself; the server answers "227 Entering
// Passive Mode", and the helper must turn that into an expectation for the data connection.
// Through a port forward (DNAT), the helper's NAT half must also rewrite the server's address in
// that answer to the one the client dialled. Without the helper in the policy no expectation may
// appear and nothing is rewritten (the test can fail). Namespaces gw-hlp-*, deleted afterwards.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicyText } from '../../src/compile/pipeline.js';
import { toNftJson } from '../../src/nft/json.js';
import { formatDiagnostic } from '../../src/policy/diagnostics.js';
import { addNamespace, deleteNamespace, kernelTestUnavailable, namespaceName } from '../support/kernel.js';

const skipReason = kernelTestUnavailable();
const skipped = skipReason ? ` (skipped: ${skipReason})` : '';

const policy = (helpers: string) => `
version: 1
host:
  interfaces:
    eth0: { zone: net, addresses: [198.51.100.1/24] }
    eth1: { zone: lan, addresses: [10.0.1.1/24] }
zones:
  net: {}
  lan: { networks: [10.0.1.0/24] }
services:
  ftp-control: { tcp: 21 }
policies:
  - { from: lan, to: all, action: accept }
  - { from: host, to: all, action: accept }
  - { from: net, to: all, action: drop }
${helpers}
`;
const WITH_HELPER = policy('helpers:\n  - { helper: ftp, from: lan, to: [net, host] }');

/** An FTP server's first words: a greeting, then the passive-mode answer the helper parses. */
const SERVER = `
const net = require('node:net');
const [addr] = process.argv.slice(1);
net.createServer((s) => {
  s.on('error', () => {});
  s.write('220 ready\\r\\n');
  setTimeout(() => s.write('227 Entering Passive Mode (' + addr.replaceAll('.', ',') + ',200,10)\\r\\n'), 200);
}).listen(21, () => console.log('ready'));
`;
const CLIENT = `
const net = require('node:net');
const c = net.connect(Number(process.argv[2] ?? 21), process.argv[1]);
let got = '';
c.on('data', (d) => { got += d; const m = /^227 .*$/m.exec(got); if (m && got.endsWith('\\n')) { console.log(m[0].trim()); c.end(); } });
c.on('error', (e) => { console.error(String(e)); process.exit(1); });
setTimeout(() => process.exit(2), 5000);
`;

describe.skipIf(skipReason !== undefined)(`conntrack helpers on a real kernel${skipped}`, () => {
  const host = namespaceName('gw-hlp-h');
  const wan = namespaceName('gw-hlp-n');
  const lan = namespaceName('gw-hlp-l');
  let dir = '';
  const servers: ReturnType<typeof execa>[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gw-hlp-'));
    for (const ns of [host, wan, lan]) await addNamespace(ns);
    const ip = (ns: string, ...args: string[]) => execa('ip', ['-n', ns, ...args]);
    await ip(host, 'link', 'set', 'lo', 'up');
    await ip(host, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'far', 'netns', wan);
    await ip(host, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'far', 'netns', lan);
    for (const [ifname, addr] of [['eth0', '198.51.100.1/24'], ['eth1', '10.0.1.1/24']] as const) {
      await ip(host, 'addr', 'add', addr, 'dev', ifname);
      await ip(host, 'link', 'set', ifname, 'up');
    }
    for (const [ns, addr, gw] of [[wan, '198.51.100.2/24', '198.51.100.1'], [lan, '10.0.1.2/24', '10.0.1.1']] as const) {
      await ip(ns, 'link', 'set', 'lo', 'up');
      await ip(ns, 'addr', 'add', addr, 'dev', 'far');
      await ip(ns, 'link', 'set', 'far', 'up');
      await ip(ns, 'route', 'add', 'default', 'via', gw);
    }
    await execa('ip', ['netns', 'exec', host, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    for (const [ns, addr] of [[wan, '198.51.100.2'], [host, '10.0.1.1']] as const) {
      const s = execa('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER, addr], { reject: false });
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.stdout!.once('data', () => resolve());
        void s.then((r) => reject(new Error(`the FTP stand-in in ${ns} ended: ${r.stderr}`)));
      });
    }
  }, 60_000);

  afterAll(async () => {
    for (const s of servers) s.kill('SIGKILL');
    await Promise.allSettled(servers);
    for (const ns of [lan, wan, host]) await deleteNamespace(ns);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const expectations = async (server: string) => {
    const all = (await execa('ip', ['netns', 'exec', host, 'cat', '/proc/net/nf_conntrack_expect'])).stdout;
    return all.split('\n').filter((l) => l.includes(`src=10.0.1.2 dst=${server} sport=0 dport=51210 ftp`)).length;
  };

  /**
   * Loads the policy, opens one control connection from the LAN to `server`, returns how many
   * FTP data expectations the host gained (an expectation lives as long as its control
   * connection's conntrack entry, so earlier cases' are still there: count the new ones).
   */
  async function newExpectations(yaml: string, server: string): Promise<number> {
    await load(yaml);
    const before = await expectations(server);
    const r = await execa('ip', ['netns', 'exec', lan, process.execPath, '-e', CLIENT, server], { reject: false });
    expect(r.stdout.trim(), r.stderr).toMatch(/^227 /);
    return (await expectations(server)) - before;
  }

  /** Loads the policy, opens one control connection from the LAN to `addr`:`port`, returns the passive-mode answer the client read. */
  async function passiveAnswer(yaml: string, addr: string, port: number): Promise<string> {
    await load(yaml);
    const r = await execa('ip', ['netns', 'exec', lan, process.execPath, '-e', CLIENT, addr, String(port)], { reject: false });
    expect(r.stdout.trim(), r.stderr).toMatch(/^227 /);
    return r.stdout.trim();
  }

  async function load(yaml: string): Promise<void> {
    const c = compilePolicyText('helpers.yaml', yaml);
    if (!c.compiled) throw new Error(c.diagnostics.map((d) => formatDiagnostic(d)).join('\n'));
    const file = join(dir, 'ruleset.json');
    await writeFile(file, JSON.stringify(toNftJson(c.compiled.ruleset)));
    await execa('ip', ['netns', 'exec', host, 'nft', 'flush', 'ruleset']);
    await execa('ip', ['netns', 'exec', host, 'nft', '-j', '-f', file]);
  }

  it('attaches the FTP helper to a connection through the host (forward): the data connection is expected', async () => {
    expect(await newExpectations(WITH_HELPER, '198.51.100.2')).toBe(1);
  });

  it('attaches it to a connection to the host itself (input)', async () => {
    expect(await newExpectations(WITH_HELPER, '10.0.1.1')).toBe(1);
  });

  // The LAN reaches the server on the internet side through the host's LAN address (DNAT).
  const forwarded = (ports: string, helpers: string) => policy(`forwards:\n  - { from: lan, to: 198.51.100.2, proto: tcp, ${ports} }\n${helpers}`);
  const HELPER = 'helpers:\n  - { helper: ftp, from: lan, to: [net, host] }';

  it('attaches it to a port-forwarded connection (the rule in dstnat, before the DNAT): the answer names the address the client dialled', async () => {
    // The port may move too: an earlier case's expectation can hold 51210 (200,10).
    expect(await passiveAnswer(forwarded('ports: 21', HELPER), '10.0.1.1', 21)).toMatch(/^227 Entering Passive Mode \(10,0,1,1,\d+,\d+\)$/);
  });

  it('attaches it after the DNAT when the forward translates the port (2121 to 21)', async () => {
    expect(await passiveAnswer(forwarded('ports: 2121, to_port: 21', HELPER), '10.0.1.1', 2121)).toMatch(/^227 Entering Passive Mode \(10,0,1,1,\d+,\d+\)$/);
  });

  it('rewrites nothing through the forward when the policy asks for no helper', async () => {
    expect(await passiveAnswer(forwarded('ports: 21', ''), '10.0.1.1', 21)).toBe('227 Entering Passive Mode (198,51,100,2,200,10)');
  });

  it('attaches nothing when the policy asks for no helper', async () => {
    expect(await newExpectations(policy(''), '198.51.100.2')).toBe(0);
    expect(await newExpectations(policy(''), '10.0.1.1')).toBe(0);
  });
});
