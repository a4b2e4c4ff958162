// guestwall doctor: what on this host (or network namespace) would keep the policy from working,
// one finding per problem with its fix. Each check reads through the System and reports; none
// throws for what it finds and none changes anything (the kernel probes use `nft -c`, whose batch
// the kernel aborts). Coexistence comes first: a drop in any table wins over an accept in ours.
import { createHash } from 'node:crypto';
import { TABLE } from '../compile/index.js';
import { BASELINE_FEATURES, type KernelFeatures } from '../compile/features.js';
import type { HostModel } from '../model/host.js';
import type { Family, NftablesDocument, Stmt } from '../nft/types.js';
import { jsonStmt } from '../nft/json.js';
import { ApplyError } from './errors.js';
import { listRuleset, nftMessage, type NftListing } from './nft.js';
import { readProcSys, sysctlName } from './proc-sys.js';
import type { System } from './system.js';

export type FindingStatus = 'ok' | 'warn' | 'fail' | 'info';

/** What doctor says about one thing on the host; `id` is stable for --json users. */
export interface HostFinding {
  id: string;
  status: FindingStatus;
  message: string;
  /** What to do about it, in one line. */
  fix?: string;
}

const finding = (id: string, status: FindingStatus, message: string, fix?: string): HostFinding => ({ id, status, message, ...(fix ? { fix } : {}) });

/** Every check, in the order a user should read them. */
export async function doctor(sys: System, model?: HostModel): Promise<HostFinding[]> {
  if (sys.netns !== undefined) {
    const enter = await sys.run('true', []);
    if (enter.code !== 0) {
      return [finding('netns', 'fail', `cannot enter network namespace ${sys.netns}: ${enter.stderr.trim() || `exit ${enter.code}`}`,
        `list them with 'ip netns list'; create one with 'ip netns add ${sys.netns}'`)];
    }
  }
  const nft = await nftFindings(sys);
  const nftWorks = nft.every((f) => f.status !== 'fail');
  const sysctls = await readProcSys(sys, sysctlPaths(model));
  return [
    ...nft,
    ...(nftWorks ? await kernelFeatureFindings(sys, model) : []),
    ...(nftWorks ? await foreignDropFindings(sys, model) : []),
    ...(await nftablesServiceFindings(sys)),
    ...brNetfilterFindings(sysctls, model),
    ...forwardingFindings(sys, sysctls, model),
    ...rpFilterFindings(sys, sysctls, model),
    ...(model ? await interfaceFindings(sys, model) : []),
  ];
}

/** A command as the user should type it: inside the namespace doctor looked at. */
function shell(sys: System, command: string): string {
  return sys.netns !== undefined ? `ip netns exec ${sys.netns} ${command}` : command;
}

function needsRoot(sys: System, id: string, what: string): HostFinding {
  return finding(id, 'info', `${what} not checked: nft needs root to talk to the kernel`, `run ${shell(sys, 'guestwall doctor')} as root (sudo)`);
}

// ---- nft ----------------------------------------------------------------------------------

/** The version guestwall is tested with (Debian 12); older ones lack parts of the JSON it emits. */
const NFT_TESTED = [1, 0, 6];

async function nftFindings(sys: System): Promise<HostFinding[]> {
  const r = await sys.run('nft', ['--version']);
  if (r.code !== 0) {
    return [finding('nft', 'fail', `nft is not installed or cannot run (${r.stderr.trim() || `exit ${r.code}`}); guestwall loads its rules with it`,
      'install nftables (Debian: apt-get install nftables)')];
  }
  const version = /v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(r.stdout);
  if (!version) return [finding('nft', 'warn', `nft runs but its version is unclear: ${r.stdout.trim()}`)];
  const parts = [1, 2, 3].map((i) => Number(version[i] ?? 0));
  const text = parts.join('.');
  const older = (parts.map((n, i) => n - NFT_TESTED[i]!).find((d) => d !== 0) ?? 0) < 0;
  if (older) return [finding('nft', 'warn', `nft ${text} is older than ${NFT_TESTED.join('.')}, the oldest version guestwall is tested with`, 'upgrade nftables (Debian 12 ships 1.0.6)')];
  return [finding('nft', 'ok', `nft ${text}`)];
}

// ---- kernel features ----------------------------------------------------------------------

export type KernelFeature = 'bridge-conntrack' | 'bridge-meta' | 'bridge-reject' | 'inet-nat';

export interface FeatureProbe {
  /** Whether the running kernel takes it; undefined when the probe could not tell (no root, no nft). */
  available: boolean | undefined;
  /** nft's words when the answer is no or unknown. */
  detail?: string;
}

const PROBE_TABLE = 'guestwall_probe';

type ProbeChain = { type: 'filter' | 'nat'; hook: 'forward' | 'prerouting' | 'postrouting'; prio: number };

/** The base chain and rule that need each feature, and nothing else. */
function probeRule(feature: KernelFeature): [ProbeChain, Stmt[]] {
  const forward: ProbeChain = { type: 'filter', hook: 'forward', prio: 0 };
  switch (feature) {
    case 'bridge-conntrack':
      return [forward, [{ match: { op: 'in', left: { ct: { key: 'state' } }, right: ['established', 'related'] } }, { accept: null }]];
    case 'bridge-meta':
      return [forward, [{ match: { op: '==', left: { meta: { key: 'ibrname' } }, right: 'gw-probe0' } }, { accept: null }]];
    case 'bridge-reject':
      return [{ type: 'filter', hook: 'prerouting', prio: 0 }, [{ match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 9 } }, { reject: null }]];
    case 'inet-nat':
      return [{ type: 'nat', hook: 'postrouting', prio: 100 }, [{ match: { op: '==', left: { meta: { key: 'oifname' } }, right: 'gw-probe0' } }, { masquerade: null }]];
  }
}

/** The smallest batch that needs a feature: one table, one base chain, one rule. */
function probeDocument(feature: KernelFeature): NftablesDocument {
  const family: Family = feature === 'inet-nat' ? 'inet' : 'bridge';
  const [base, expr] = probeRule(feature);
  const chain = { family, table: PROBE_TABLE, name: 'probe' };
  return {
    nftables: [
      { add: { table: { family, name: PROBE_TABLE } } },
      { add: { chain: { ...chain, ...base, policy: 'accept' } } },
      { add: { rule: { family, table: PROBE_TABLE, chain: 'probe', expr: expr.map(jsonStmt) } } },
    ],
  };
}

/**
 * What the running kernel supports of what guestwall may emit, asked with `nft -c` (the batch
 * reaches the kernel, which aborts it: nothing changes). For the compiler, and for doctor.
 */
export async function kernelFeatures(sys: System): Promise<Record<KernelFeature, FeatureProbe>> {
  // Side by side, each document on nft's command line: no temporary file to write and fsync, and
  // four probes take about the time of one (they ran one after another before, 4 x 90 ms).
  const features = ['bridge-conntrack', 'bridge-meta', 'bridge-reject', 'inet-nat'] as const;
  const answers = await Promise.all(features.map((f) => sys.run('nft', ['-c', '-j', JSON.stringify(probeDocument(f))])));
  const out = {} as Record<KernelFeature, FeatureProbe>;
  features.forEach((feature, i) => {
    const r = answers[i]!;
    if (r.code === 0) out[feature] = { available: true };
    // A missing module or expression: EPROTO (no bridge conntrack), EOPNOTSUPP, ENOENT (no such expression).
    else if (/Could not process rule: (Protocol error|Operation not supported|No such file or directory)/.test(r.stderr)) out[feature] = { available: false, detail: nftMessage(r) };
    else out[feature] = { available: undefined, detail: nftMessage(r) };
  });
  return out;
}

/**
 * The features to compile for, asked of the kernel the ruleset will load into (`sys`, which may
 * be bound to a network namespace). Without root nothing can be asked: the baseline every kernel
 * has, and `asked` says why.
 */
export async function compilerFeatures(sys: System): Promise<{ features: KernelFeatures; how: string }> {
  if (!sys.isRoot()) return { features: BASELINE_FEATURES, how: 'not root, so the kernel could not be asked; the baseline every kernel loads' };
  const p = await kernelFeatures(sys);
  const unknown = (['bridge-conntrack', 'bridge-meta', 'bridge-reject'] as const).filter((f) => p[f].available === undefined);
  const where = sys.netns ? ` in network namespace ${sys.netns}` : '';
  return {
    features: { bridgeConntrack: p['bridge-conntrack'].available === true, bridgeMeta: p['bridge-meta'].available === true, bridgeReject: p['bridge-reject'].available === true },
    how: unknown.length ? `probed with nft -c${where}; could not tell ${unknown.join(', ')}, so taken as missing` : `probed with nft -c${where}`,
  };
}

/**
 * compilerFeatures, remembered in `cacheFile` for as long as the kernel's answer cannot change:
 * the same boot (boot_id) and the same loaded modules (/proc/modules; a kernel without modules
 * has none). Four `nft -c` runs saved on each apply; a `modprobe` or a reboot probes again. Only a
 * clear answer for every feature is kept, and a cache that cannot be read is simply probed anew.
 */
export async function cachedCompilerFeatures(sys: System, cacheFile: string): Promise<{ features: KernelFeatures; how: string }> {
  const bootId = sys.isRoot() ? (await sys.readFile('/proc/sys/kernel/random/boot_id').catch(() => undefined))?.trim() : undefined;
  if (!bootId) return compilerFeatures(sys);
  const modules = ((await sys.readFile('/proc/modules').catch(() => undefined)) ?? '').split('\n').map((l) => l.split(' ')[0]).filter(Boolean).sort();
  const key = createHash('sha256').update(`${bootId}\n${sys.netns ?? ''}\n${modules.join(' ')}`).digest('hex');
  let kept: { key?: unknown; features?: KernelFeatures; how?: unknown } | undefined;
  try {
    kept = JSON.parse((await sys.readFile(cacheFile)) ?? 'null') as typeof kept;
  } catch {
    kept = undefined; // unreadable or damaged: probe again
  }
  const f = kept?.features;
  if (kept?.key === key && typeof kept.how === 'string' && f && [f.bridgeConntrack, f.bridgeMeta, f.bridgeReject].every((b) => typeof b === 'boolean')) {
    return { features: { bridgeConntrack: f.bridgeConntrack, bridgeMeta: f.bridgeMeta, bridgeReject: f.bridgeReject }, how: `${kept.how}, earlier in this boot` };
  }
  const fresh = await compilerFeatures(sys);
  if (!fresh.how.includes('could not tell')) await sys.writeFile(cacheFile, `${JSON.stringify({ key, ...fresh })}\n`, 0o600, false).catch(() => {});
  return fresh;
}

interface FeatureText {
  name: string;
  missing: string;
  fix: string;
}

const FEATURES: Record<KernelFeature, FeatureText> = {
  'bridge-conntrack': {
    name: 'connection tracking in the bridge family (nf_conntrack_bridge)',
    missing: 'guest-to-guest filtering on a bridge is stateless: no ct state established/related, so replies need rules of their own',
    fix: 'modprobe nf_conntrack_bridge (kernel 5.3 or later built with CONFIG_NF_CONNTRACK_BRIDGE)',
  },
  'bridge-meta': {
    name: 'bridge names in bridge-family rules (meta ibrname/obrname, nft_meta_bridge)',
    missing: 'bridge rules can match the ports a frame uses but not which bridge it crosses',
    fix: 'modprobe nft_meta_bridge (CONFIG_NFT_BRIDGE_META)',
  },
  'bridge-reject': {
    name: 'reject in the bridge family (nft_reject_bridge)',
    missing: "'reject' between guests on a bridge can only be a silent drop: senders wait for a timeout instead of an immediate refusal",
    fix: 'modprobe nft_reject_bridge (CONFIG_NFT_REJECT_BRIDGE)',
  },
  'inet-nat': {
    name: 'NAT in the inet family (nft_chain_nat, nft_masq)',
    missing: 'masquerade and port forwards cannot be loaded',
    fix: 'modprobe nft_chain_nat nft_masq (kernel 5.2 or later)',
  },
};

async function kernelFeatureFindings(sys: System, model: HostModel | undefined): Promise<HostFinding[]> {
  if (!sys.isRoot()) return [needsRoot(sys, 'kernel-features', 'kernel features (nf_conntrack_bridge, nft_meta_bridge, bridge reject, NAT)')];
  const usesNat = model !== undefined && (model.forwards.length > 0 || model.sourceNat.length > 0);
  const hasBridges = model === undefined || model.bridges.length > 0;
  const probes = await kernelFeatures(sys);
  return (Object.keys(FEATURES) as KernelFeature[]).map((f) => {
    const { name, missing, fix } = FEATURES[f];
    const p = probes[f];
    if (p.available === true) return finding(`kernel-${f}`, 'ok', `kernel has ${name}`);
    if (p.available === undefined) return finding(`kernel-${f}`, 'info', `could not tell whether the kernel has ${name}: ${p.detail}`);
    const status: FindingStatus = f === 'inet-nat' ? (usesNat ? 'fail' : 'warn') : hasBridges ? 'warn' : 'info';
    return finding(`kernel-${f}`, status, `kernel lacks ${name}: ${missing}`, fix);
  });
}

// ---- other tables -------------------------------------------------------------------------

type Obj = Record<string, unknown>;

interface BaseChain {
  family: string;
  table: string;
  name: string;
  hook: string;
  prio: unknown;
  policy: string;
}

/** The hooks guest and host traffic that guestwall accepts passes through before it is delivered. */
const WATCHED_HOOKS = ['prerouting', 'input', 'forward'];

function isDropVerdict(e: Obj): boolean {
  if ('drop' in e || 'reject' in e) return true;
  const xt = e.xt as Obj | null | undefined; // iptables-nft targets
  return xt !== null && typeof xt === 'object' && xt.type === 'target' && (xt.name === 'DROP' || xt.name === 'REJECT');
}

/**
 * Base chains of other tables in the hooks guestwall uses that drop by policy or by rule. Only
 * the base chain's own rules are read: drops in chains it jumps to are conditional on the jump.
 */
async function foreignDropFindings(sys: System, model: HostModel | undefined): Promise<HostFinding[]> {
  if (!sys.isRoot()) return [needsRoot(sys, 'other-tables', "other tables' drop policies")];
  let listing: NftListing;
  try {
    listing = await listRuleset(sys);
  } catch (e) {
    if (e instanceof ApplyError || e instanceof SyntaxError) return [finding('other-tables', 'info', `other tables not checked: ${e.message}`)];
    throw e;
  }
  const items = listing.nftables;
  const chains: BaseChain[] = items
    .map((i) => i.chain as Obj | undefined)
    .filter((c): c is Obj => c !== undefined && typeof c.hook === 'string' && c.table !== TABLE && c.family !== 'netdev' && WATCHED_HOOKS.includes(c.hook))
    .map((c) => ({ family: String(c.family), table: String(c.table), name: String(c.name), hook: String(c.hook), prio: c.prio, policy: String(c.policy ?? 'accept') }));
  const rules = items.map((i) => i.rule as Obj | undefined).filter((r): r is Obj => r !== undefined);
  const chainNames = new Set(items.map((i) => i.chain as Obj | undefined).filter((c) => c !== undefined).map((c) => `${c.family} ${c.table} ${c.name}`));
  const ifaces = model ? guestwallInterfaces(model) : [];

  const out: HostFinding[] = [];
  for (const c of chains) {
    const own = rules.filter((r) => r.family === c.family && r.table === c.table && r.chain === c.name).map((r) => (r.expr as Obj[] | undefined) ?? []);
    const dropping = own.filter((expr) => expr.some(isDropVerdict));
    // "counter drop" or "log drop" drops everything that reaches it, like a drop policy.
    const unconditional = dropping.filter((expr) => expr.every((e) => isDropVerdict(e) || 'counter' in e || 'log' in e));
    const where = `table ${c.family} ${c.table}, chain ${c.name} (hook ${c.hook}, priority ${typeof c.prio === 'object' ? JSON.stringify(c.prio) : String(c.prio)})`;
    const fix = acceptFix(sys, c, ifaces, chainNames.has(`${c.family} ${c.table} DOCKER-USER`));
    if (c.policy === 'drop' || unconditional.length > 0) {
      const how = c.policy === 'drop' ? 'has policy drop' : 'drops everything its earlier rules do not accept';
      out.push(finding('other-table-drop', 'warn', `${where} ${how}: a drop in any table wins over guestwall's accept, so ${c.hook === 'forward' ? 'guest traffic' : c.hook === 'input' ? 'traffic to the host' : 'traffic'} that guestwall accepts is still dropped there unless this chain accepts it too`, fix));
    } else if (dropping.length > 0) {
      out.push(finding('other-table-drop', 'info', `${where} has ${dropping.length} rule${dropping.length === 1 ? '' : 's'} that drop or reject: make sure they do not match traffic guestwall accepts`, fix));
    }
  }
  if (out.length === 0) out.push(finding('other-table-drop', 'ok', `no other table drops traffic in the ${WATCHED_HOOKS.join(', ')} hooks`));
  return out;
}

/** Interfaces whose forwarded traffic guestwall decides about: bridges and routed guest interfaces. */
function guestwallInterfaces(model: HostModel): string[] {
  return [...model.bridges.map((b) => b.name), ...model.guests.flatMap((g) => g.interfaces).filter((i) => i.mode === 'routed').map((i) => i.name)];
}

/** How to let guestwall's traffic through somebody else's chain, in the words of its owner. */
function acceptFix(sys: System, c: BaseChain, ifaces: string[], docker: boolean): string {
  if (c.hook !== 'forward') {
    return `accept there what guestwall's policy accepts for the host, or remove the drop (${c.hook} runs in every table, whatever guestwall decides)`;
  }
  const first = ifaces[0] ?? '<bridge>';
  const each = ifaces.length > 1 ? `, and the same for ${ifaces.slice(1).join(', ')}` : ifaces.length === 0 ? ', for each bridge and routed guest interface' : '';
  const ipt = c.family === 'ip6' ? 'ip6tables' : 'iptables';
  const iptables = (chain: string) => `${shell(sys, `${ipt} -I ${chain} -i ${first} -j ACCEPT`)}; ${shell(sys, `${ipt} -I ${chain} -o ${first} -j ACCEPT`)}${each}`;
  if (docker) return `accept guestwall's interfaces in DOCKER-USER, which Docker keeps across restarts: ${iptables('DOCKER-USER')}`;
  if ((c.family === 'ip' || c.family === 'ip6') && c.name === c.name.toUpperCase()) return `this chain belongs to iptables: ${iptables(c.name)}`;
  const set = ifaces.length > 0 ? `{ ${ifaces.map((i) => `"${i}"`).join(', ')} }` : '"<bridge>"';
  return `let guestwall's interfaces through: ${shell(sys, `nft 'insert rule ${c.family} ${c.table} ${c.name} iifname ${set} accept'`)}, the same with oifname, or remove the drop`;
}

// ---- Debian's nftables.service ------------------------------------------------------------

const UNIT_PATHS = ['/etc/systemd/system/nftables.service', '/lib/systemd/system/nftables.service', '/usr/lib/systemd/system/nftables.service'];

async function nftablesServiceFindings(sys: System): Promise<HostFinding[]> {
  const id = 'nftables-service';
  const enabled = await sys.run('systemctl', ['is-enabled', 'nftables.service']);
  if (enabled.code === 127) return [finding(id, 'info', 'systemctl not found: nftables.service not checked')];
  let unit: string | undefined;
  for (const p of UNIT_PATHS) unit ??= await sys.readFile(p);
  const state = enabled.stdout.trim();
  if (unit === undefined && !/^(enabled|disabled|static|masked|alias|indirect|generated|transient|linked)/.test(state)) {
    return [finding(id, 'ok', 'nftables.service is not installed')];
  }
  // The unit says which file it loads; Debian's loads /etc/nftables.conf.
  const conf = /^ExecStart=\S*nft\b.*\s-f\s+(\S+)/m.exec(unit ?? '')?.[1] ?? '/etc/nftables.conf';
  const flushes = /^\s*flush\s+ruleset\b/m.test((await sys.readFile(conf)) ?? '');
  const stopFlushes = /^ExecStop=.*\bflush\s+ruleset\b/m.test(unit ?? '');
  const isEnabled = /^enabled/.test(state);
  // The service loads the host's own namespace, not the one doctor looks at.
  const scope = sys.netns !== undefined ? ` (this concerns the host's own namespace, not ${sys.netns})` : '';
  const serious = (s: FindingStatus): FindingStatus => (sys.netns !== undefined ? 'info' : s);

  if (isEnabled && flushes) {
    return [finding(id, serious('warn'), `nftables.service is enabled and ${conf} runs 'flush ruleset': every reload wipes every table, guestwall's too${scope}`,
      `remove 'flush ruleset' from ${conf} (delete only the tables it defines), or: systemctl disable nftables.service`)];
  }
  if (flushes) {
    return [finding(id, 'info', `nftables.service is ${state || 'not enabled'}, but ${conf} runs 'flush ruleset': loading it (systemctl start nftables, nft -f ${conf}) wipes guestwall's tables${scope}`,
      `remove 'flush ruleset' from ${conf}`)];
  }
  if (isEnabled && stopFlushes) {
    return [finding(id, 'info', `nftables.service is enabled; ${conf} does not flush the ruleset, but 'systemctl stop nftables' does (its ExecStop), guestwall's tables included${scope}`)];
  }
  return [finding(id, 'ok', `nftables.service is ${state || 'not enabled'} and ${conf} does not flush the ruleset`)];
}

// ---- sysctls ------------------------------------------------------------------------------

/** Paths under /proc/sys. */
const BRIDGE_NF = ['net/bridge/bridge-nf-call-iptables', 'net/bridge/bridge-nf-call-ip6tables'];
const IP_FORWARD = 'net/ipv4/ip_forward';
const IP6_FORWARD = 'net/ipv6/conf/all/forwarding';
const rpFilter = (iface: string) => `net/ipv4/conf/${iface}/rp_filter`;

function sysctlPaths(model: HostModel | undefined): string[] {
  return [...BRIDGE_NF, IP_FORWARD, IP6_FORWARD, rpFilter('all'), ...(model ? policyInterfaces(model).map(rpFilter) : [])];
}

function persist(...settings: string[]): string {
  return `and put ${settings.join(', ')} in /etc/sysctl.d/60-guestwall.conf so ${settings.length > 1 ? 'they survive' : 'it survives'} a reboot`;
}

/** With br_netfilter, bridged frames also pass the ip/ip6/inet hooks, with the bridge as both interfaces. */
function brNetfilterFindings(values: Map<string, string>, model: HostModel | undefined): HostFinding[] {
  const id = 'br-netfilter';
  const calls = BRIDGE_NF.filter((p) => values.has(p));
  // Its sysctls exist only while it is loaded, also when it is built into the kernel (no /proc/modules entry).
  if (calls.length === 0) return [finding(id, 'ok', 'br_netfilter is not loaded: bridged guest traffic passes only the bridge-family hooks')];
  const on = calls.filter((p) => values.get(p) === '1');
  if (on.length === 0) return [finding(id, 'ok', 'br_netfilter is loaded but bridge-nf-call-iptables and -ip6tables are 0: bridged traffic stays out of the inet hooks')];
  // guestwall's rules hold either way and it leaves these sysctls alone (Docker and Kubernetes
  // need them on), so this is what changes, not something to turn off.
  const hairpin = model === undefined || model.forwards.some((f) => f.hairpin);
  return [finding(id, 'info',
    `br_netfilter is loaded with ${on.map((p) => `${sysctlName(p)}=1`).join(' and ')}: bridged guest traffic also passes the inet forward hook with the bridge as both input and output interface, so other tables' forward drops (Docker's) apply to frames between guests on one bridge too${hairpin ? ", and a hairpin client on the forward target's own bridge is bridged to it after DNAT, so the guest sees the client's own address (not masqueraded)" : ''}; guestwall's filtering holds either way`)];
}

function routesGuests(model: HostModel | undefined): boolean {
  return model !== undefined && (model.guests.length > 0 || model.bridges.length > 0);
}

function forwardingFindings(sys: System, values: Map<string, string>, model: HostModel | undefined): HostFinding[] {
  const routed = routesGuests(model);
  const out: HostFinding[] = [];
  for (const [path, id, label] of [[IP_FORWARD, 'ip-forward', 'IPv4'], [IP6_FORWARD, 'ipv6-forward', 'IPv6']] as const) {
    const v = values.get(path);
    const key = sysctlName(path);
    if (v === undefined) out.push(finding(id, 'info', label === 'IPv6' ? `IPv6 is disabled here (no ${key})` : `${key} cannot be read here`));
    else if (v === '1') out.push(finding(id, 'ok', `${label} forwarding is on (${key}=1)`));
    else {
      const ra = label === 'IPv6' ? '; an uplink configured by router advertisements then needs accept_ra=2' : '';
      out.push(finding(id, routed ? 'fail' : 'info',
        routed ? `${label} forwarding is off (${key}=${v}): the host does not route for its guests and bridges` : `${label} forwarding is off (${key}=${v}); guests behind this host would need it on`,
        `${shell(sys, `sysctl -w ${key}=1`)} ${persist(`${key}=1`)}${ra}`));
    }
  }
  return out;
}

/** Host interfaces, bridges and routed guest interfaces: the ones whose rp_filter sees guest traffic. */
function policyInterfaces(model: HostModel): string[] {
  return [...model.hostInterfaces.map((i) => i.name), ...guestwallInterfaces(model)];
}

function rpFilterFindings(sys: System, values: Map<string, string>, model: HostModel | undefined): HostFinding[] {
  const id = 'rp-filter';
  const all = values.get(rpFilter('all'));
  if (all === undefined) return [finding(id, 'info', 'net.ipv4.conf.all.rp_filter cannot be read here')];
  // The kernel uses the larger of conf/all and conf/<interface>: strict in "all" is strict everywhere.
  const allStrict = all === '1';
  const strictIfs = allStrict || !model ? [] : policyInterfaces(model).filter((i) => values.get(rpFilter(i)) === '1');
  if (!allStrict && strictIfs.length === 0) {
    return [finding(id, 'ok', `rp_filter is not strict (net.ipv4.conf.all.rp_filter=${all}${model ? ", nor on the policy's interfaces" : ''})`)];
  }
  const where = allStrict ? 'on every interface (net.ipv4.conf.all.rp_filter=1)' : `on ${strictIfs.join(', ')}`;
  const routedGuests = model?.guests.some((g) => g.interfaces.some((i) => i.mode === 'routed')) ?? false;
  if (!routedGuests) return [finding(id, 'info', `rp_filter is strict (1) ${where}; fine without routed guests`)];
  const keys = (allStrict ? ['all'] : strictIfs).map((i) => `${sysctlName(rpFilter(i))}=2`);
  return [finding(id, 'warn',
    `rp_filter is strict (1) ${where}: packets from a routed guest are dropped silently unless the route back to their source leaves through the same interface (a guest that routes other networks, an address without a host route)`,
    `${shell(sys, `sysctl -w ${keys.join(' ')}`)} (loose) and let guestwall's fib anti-spoofing make the strict check, visibly in the ruleset; ${persist(...keys)}`)];
}

// ---- interfaces ---------------------------------------------------------------------------

interface Link {
  name: string;
  kind?: string;
  master?: string;
}

async function links(sys: System): Promise<Link[] | string> {
  const r = await sys.run('ip', ['-j', '-d', 'link', 'show']);
  if (r.code !== 0) return r.stderr.trim() || `ip exited with ${r.code}`;
  try {
    return (JSON.parse(r.stdout) as Obj[]).map((l) => ({
      name: String(l.ifname),
      ...(typeof (l.linkinfo as Obj | undefined)?.info_kind === 'string' ? { kind: String((l.linkinfo as Obj).info_kind) } : {}),
      ...(typeof l.master === 'string' ? { master: l.master } : {}),
    }));
  } catch {
    return 'ip -j printed something other than JSON';
  }
}

function listed(names: string[], max = 6): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

/** The policy's interfaces against the ones that exist: host interfaces and bridges must, guests may be down. */
async function interfaceFindings(sys: System, model: HostModel): Promise<HostFinding[]> {
  const found = await links(sys);
  if (typeof found === 'string') return [finding('interfaces', 'info', `interfaces not checked: ${found}`)];
  const byName = new Map(found.map((l) => [l.name, l]));
  const at = (loc: { file: string; line: number }) => `${loc.file}:${loc.line}`;
  const out: HostFinding[] = [];
  const present: string[] = [];

  for (const i of model.hostInterfaces) {
    if (byName.has(i.name)) present.push(i.name);
    else out.push(finding('interface-missing', 'warn', `host interface ${i.name} (zone ${i.zone}, ${at(i.src.loc)}) does not exist: rules for it match nothing`, `check the name against 'ip link', or fix it in ${at(i.src.loc)}`));
  }
  for (const b of model.bridges) {
    const l = byName.get(b.name);
    if (!l) {
      out.push(finding('interface-missing', 'warn', `bridge ${b.name} (zone ${b.zone}, ${at(b.src.loc)}) does not exist`, `create it (${shell(sys, `ip link add ${b.name} type bridge`)}, or a systemd-networkd .netdev), or fix the name`));
      continue;
    }
    if (l.kind !== 'bridge') {
      out.push(finding('interface-not-bridge', 'warn', `${b.name} exists but is ${l.kind ? `a ${l.kind}` : 'a plain device'}, not a bridge (${at(b.src.loc)})`, 'rename one of them, or declare it under host.interfaces'));
      continue;
    }
    present.push(b.name);
    for (const port of b.ports) {
      const p = byName.get(port);
      if (!p) out.push(finding('interface-missing', 'warn', `port ${port} of bridge ${b.name} does not exist`, `check the name against 'ip link', or fix it in ${at(b.src.loc)}`));
      else if (p.master !== b.name) out.push(finding('bridge-port', 'warn', `${port} is not a port of ${b.name} (${p.master ? `it is in ${p.master}` : 'it is in no bridge'})`, shell(sys, `ip link set ${port} master ${b.name}`)));
    }
  }
  if (present.length > 0) out.push(finding('interfaces', 'ok', `host interfaces and bridges present: ${listed(present)}`));

  const guestIfs = model.guests.flatMap((g) => g.interfaces);
  const down = guestIfs.filter((i) => !byName.has(i.name));
  const up = guestIfs.filter((i) => byName.has(i.name));
  for (const i of up) {
    const master = byName.get(i.name)!.master;
    if (i.mode === 'bridged' && master !== i.bridge) {
      out.push(finding('guest-interface-bridge', 'warn', `guest ${i.guest}'s interface ${i.name} should be a port of ${i.bridge} but ${master ? `is in ${master}` : 'is in no bridge'}`,
        `fix the guest's configuration (its bridge=, <source bridge>, lxc.net.N.link), or ${shell(sys, `ip link set ${i.name} master ${i.bridge}`)}`));
    } else if (i.mode === 'routed' && master !== undefined) {
      out.push(finding('guest-interface-bridge', 'warn', `guest ${i.guest}'s interface ${i.name} is routed in the policy but is a port of ${master}`, `fix the guest's configuration, or ${shell(sys, `ip link set ${i.name} nomaster`)}`));
    }
  }
  if (up.length > 0) out.push(finding('guest-interfaces', 'ok', `guest interfaces present: ${listed(up.map((i) => i.name))}`));
  if (down.length > 0) out.push(finding('guest-interfaces', 'info', `guest interfaces not present: ${listed(down.map((i) => `${i.name} (${i.guest})`))}; fine while those guests are down`));
  return out;
}
