// The guestwall command line: parse, call, print, exit code. Each command lives in its own file.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { FEATURE_CHOICES, type FeatureChoice } from '../compile/features.js';
import { EXIT, type Io, processIo } from './io.js';

// Each command's module is loaded when that command runs: `check` and `compile` do not wait for
// what `apply` or `preview` need (execa, the TUI).

export const VERSION = '0.1.0';

function portNumber(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('expected a port from 1 to 65535');
  return n;
}

/** For the commands that read a fleet policy (hosts:): which host's part. */
const hostOption = () => new Option('--host <name>', 'for a fleet policy (hosts:): the host to work on (required there); a single-host policy takes its host.name, or any name when it has none');

/** For the commands that compile a ruleset for this host (or its --netns). */
/** For the commands that do not change the host: the kernel-features line only when asked. */
const verboseOption = () => new Option('--verbose', 'also say which kernel features the ruleset is compiled for, and what is weaker without the rest');

const featuresOption = () =>
  new Option('--kernel-features <which>', 'compile for what the kernel can load: auto (ask it; baseline when it cannot be asked), baseline or full')
    .choices(FEATURE_CHOICES)
    .default('auto');

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 86_400) throw new InvalidArgumentError('expected whole seconds from 1 to 86400');
  return n;
}

export async function run(argv: string[], io: Io = processIo): Promise<number> {
  let code: number = EXIT.ok;
  const program = new Command()
    .name('guestwall')
    .description('Firewall and virtual-network configurator for Linux virtualization hosts.\nOne YAML policy -> one atomic nftables ruleset.')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError('(run guestwall --help for usage)');

  program
    .command('check')
    .description('validate policies; every problem as file:line:col, exit 1 on errors')
    .argument('<file...>', 'policy files')
    .option('--json', 'print the diagnostics as JSON')
    .option('--strict', 'fail on warnings too')
    .addOption(new Option('--host <name>', "for a fleet policy (hosts:): check this host's part only (default: every host)"))
    .action(async (files: string[], opts: { json?: boolean; strict?: boolean; host?: string }) => {
      code = (await import('./check.js')).check(io, files, opts);
    });

  program
    .command('compile')
    .description('compile a policy into an nftables ruleset (JSON for nft -j -f, or nft syntax)')
    .argument('<file>', 'policy file')
    .addOption(new Option('--format <format>', 'output format').choices(['json', 'nft']).default('json'))
    .option('--out <dir>', 'write ruleset.json, ruleset.nft, origins.json, network/ (the host network setup) and guests/<guest>/<snippet> to DIR instead of stdout')
    .addOption(featuresOption())
    .addOption(hostOption())
    .addOption(verboseOption())
    .action(async (file: string, opts: { format: 'json' | 'nft'; out?: string; kernelFeatures: FeatureChoice; verbose?: boolean; host?: string }) => {
      code = await (await import('./compile.js')).compileCommand(io, file, opts);
    });

  program
    .command('guest')
    .description("print one guest's snippet: the xl.cfg vif line (Xen), <interface> XML (KVM) or lxc.net.* lines (LXC) with its stable interface names")
    .argument('<file>', 'policy file')
    .argument('<name>', 'the guest, as named under guests:')
    .addOption(new Option('--host <name>', "for a fleet policy: compile on this host (default: the guest's own host:)"))
    .action(async (file: string, name: string, opts: { host?: string }) => {
      code = (await import('./guest.js')).guestCommand(io, file, name, opts);
    });

  const hostOptions = (c: Command) =>
    c
      .option('--netns <name>', 'work inside this network namespace (a lab, or the tests)')
      .option('--state-dir <dir>', 'where guestwall keeps its state', '/var/lib/guestwall')
      .addOption(new Option('--wait <seconds>', 'wait this long for another guestwall to finish').argParser(seconds).default(10));

  hostOptions(
    program
      .command('apply')
      .description('check, then load the compiled ruleset in one transaction, and verify it; then set up the host network (bridges, routed ports, proxy entries, sysctls)')
      .argument('<file>', 'policy file')
      .addOption(new Option('--confirm <seconds>', "roll back by itself unless 'guestwall confirm' runs in time").argParser(seconds))
      .option('--force', 'apply even if the lockout guard objects')
      .option('--no-network', 'only the ruleset: leave bridges, routes, proxy entries and sysctls as they are')
      .addOption(featuresOption())
      .addOption(hostOption()),
  ).action(async (file: string, opts: { netns?: string; stateDir?: string; wait?: number; confirm?: number; force?: boolean; network?: boolean; kernelFeatures: FeatureChoice; host?: string }) => {
    code = await (await import('./apply.js')).applyCommand(io, file, opts);
  });

  program
    .command('doctor')
    .description('check this host for what would keep guestwall from working; one line per finding, with its fix')
    .argument('[file]', 'policy file: also check its interfaces, and what its guests and NAT need')
    .option('--netns <name>', 'check inside this network namespace (a lab, or the tests)')
    .option('--json', 'print the findings as JSON')
    .action(async (file: string | undefined, opts: { netns?: string; json?: boolean }) => {
      code = await (await import('./doctor.js')).doctorCommand(io, file, opts);
    });

  hostOptions(
    program
      .command('diff')
      .description('what applying the policy would change on the live host, rule by rule; exit 1 when anything differs')
      .argument('<file>', 'policy file')
      .addOption(featuresOption())
      .addOption(hostOption())
      .addOption(verboseOption()),
  ).action(async (file: string, opts: { netns?: string; stateDir?: string; kernelFeatures: FeatureChoice; verbose?: boolean; host?: string }) => {
    code = await (await import('./apply.js')).diffCommand(io, file, opts);
  });

  program
    .command('install')
    .description('write the compiled ruleset and a systemd unit that loads it at boot, before the network comes up')
    .argument('<file>', 'policy file')
    .option('--root <dir>', 'install into this directory tree instead of / (tests, image builders)')
    .addOption(featuresOption())
    .addOption(hostOption())
    .action(async (file: string, opts: { root?: string; kernelFeatures: FeatureChoice; host?: string }) => {
      code = await (await import('./install.js')).installCommand(io, file, opts);
    });

  program
    .command('uninstall')
    .description('remove what install wrote (the live ruleset stays as it is)')
    .option('--root <dir>', 'uninstall from this directory tree instead of /')
    .option('--purge', 'also remove the last known good ruleset')
    .action(async (opts: { root?: string; purge?: boolean }) => {
      code = await (await import('./install.js')).uninstallCommand(io, opts);
    });

  hostOptions(program.command('confirm').description('keep what apply --confirm loaded')).action(async (opts: { netns?: string; stateDir?: string }) => {
    code = await (await import('./apply.js')).confirmCommand(io, opts);
  });

  hostOptions(program.command('rollback').description("restore guestwall's tables as they were before the last apply")).action(
    async (opts: { netns?: string; stateDir?: string }) => {
      code = await (await import('./apply.js')).rollbackCommand(io, opts);
    },
  );

  program
    .command('explain')
    .description('why a packet is accepted or dropped (a new connection, or with --state/--reply a later packet, a reply or a related ICMP error): the path of chains and rules, with YAML lines; exit 0 accept, 1 drop/reject')
    .argument('<file>', 'policy file')
    .requiredOption('--from <src>', 'a zone, guest, guest port (gw-asterisk), interface, "host" or an address')
    .requiredOption('--to <dst>', 'a zone, guest, guest port, interface, "host", an address, or a public ADDRESS:PORT of a port forward')
    .option('--src <address>', "the packet's source address (e.g. a spoofed one); default: the sender's own")
    .option('--src-mac <mac>', "the packet's source MAC; default: the one the sending port declares")
    .option('--direct', "to a guest's own address even where a port forward publishes the service to the sender")
    .addOption(new Option('--state <state>', "which packet of the connection: new (its first), established (a later one, after the first was accepted), related (an ICMP error about it); default new, established with --reply").choices(['new', 'established', 'related']))
    .option('--reply', 'the packet goes back from --to to --from (a reply, or with --state related an ICMP error the destination sends)')
    .addOption(new Option('--icmp-error <type>', 'with --state related: which ICMP error (default port-unreachable)').choices(['port-unreachable', 'packet-too-big', 'time-exceeded']))
    .addOption(new Option('--proto <proto>', 'protocol').choices(['tcp', 'udp', 'icmp', 'icmpv6']).default('tcp'))
    .addOption(new Option('--port <port>', 'destination port (tcp, udp)').argParser(portNumber))
    .addOption(new Option('--family <n>', 'IP version when the endpoints do not say').choices(['4', '6']))
    .addOption(new Option('--br-netfilter <on|off>', 'whether the host passes bridged IPv4/IPv6 through the inet hooks too (br_netfilter loaded, bridge-nf-call-iptables=1, as on most hosts with Docker or libvirt); it changes guest-to-guest paths on one bridge').choices(['on', 'off']).default('on'))
    .option('--json', 'print the verdict and the trace as JSON')
    .addOption(hostOption())
    .action(async (file: string, opts: { from: string; to: string; proto: 'tcp' | 'udp' | 'icmp' | 'icmpv6'; port?: number; family?: string; json?: boolean; src?: string; srcMac?: string; direct?: boolean; state?: string; reply?: boolean; icmpError?: string; host?: string; brNetfilter: 'on' | 'off' }) => {
      code = (await import('./explain.js')).explainCommand(io, file, { ...opts, ...(opts.family ? { family: Number(opts.family) as 4 | 6 } : {}), brNetfilter: opts.brNetfilter === 'on' } as never);
    });

  program
    .command('trace')
    .description('follow real packets through the live ruleset for a while: each chain and rule they pass, with the YAML line that wrote it')
    .argument('<file>', 'the policy the live ruleset was applied from')
    .requiredOption('--from <src>', 'a zone, guest, "host" or an address')
    .requiredOption('--to <dst>', 'a zone, guest, "host", an address, or a public ADDRESS:PORT of a port forward')
    .addOption(new Option('--proto <proto>', 'protocol (default: any)').choices(['tcp', 'udp', 'icmp', 'icmpv6']))
    .addOption(new Option('--port <port>', 'destination port').argParser(portNumber))
    .addOption(new Option('--seconds <n>', 'stop after this long').argParser(seconds).default(30))
    .option('--netns <name>', 'trace inside this network namespace (a lab, or the tests)')
    .option('--state-dir <dir>', 'where guestwall keeps its state', '/var/lib/guestwall')
    .addOption(hostOption())
    .action(async (file: string, opts: { from: string; to: string; proto?: 'tcp' | 'udp' | 'icmp' | 'icmpv6'; port?: number; seconds: number; netns?: string; stateDir?: string; host?: string }) => {
      code = await (await import('./trace.js')).traceCommand(io, file, opts);
    });

  program
    .command('matrix')
    .description('the zone-to-zone reachability table for the services the policy names')
    .argument('<file>', 'policy file')
    .addOption(new Option('--family <n>', 'IP version').choices(['4', '6']).default('4'))
    .option('--json', 'print the matrix as JSON')
    .addOption(hostOption())
    .action(async (file: string, opts: { family: string; json?: boolean; host?: string }) => {
      code = (await import('./explain.js')).matrixCommand(io, file, { family: Number(opts.family) as 4 | 6, ...(opts.json ? { json: true } : {}), ...(opts.host !== undefined ? { host: opts.host } : {}) });
    });

  program
    .command('preview')
    .description('browse the policy in the terminal: overview, matrix, rules, problems, what-if, live diff and apply; reloads when the file changes')
    .argument('<file>', 'policy file')
    .option('--netns <name>', 'diff against and apply to this network namespace (a lab, or the tests)')
    .option('--state-dir <dir>', 'where guestwall keeps its state', '/var/lib/guestwall')
    .addOption(new Option('--confirm <seconds>', 'an apply from the preview rolls back by itself unless confirmed within this time').argParser(seconds).default(60))
    .option('--force', 'apply even if the lockout guard objects')
    .addOption(featuresOption())
    .addOption(hostOption())
    .addOption(verboseOption())
    .action(async (file: string, opts: { netns?: string; stateDir?: string; confirm?: number; force?: boolean; kernelFeatures: FeatureChoice; verbose?: boolean; host?: string }) => {
      code = await (await import('./preview.js')).previewCommand(io, file, opts);
    });

  program
    .command('schema')
    .description('print the JSON Schema of the policy language (for editors)')
    .action(async () => {
      code = (await import('./schema.js')).schemaCommand(io);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    throw e;
  }
  return code;
}
