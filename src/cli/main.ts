// The guestwall command line: parse, call, print, exit code. Each command lives in its own file.
import { Command, CommanderError, Option } from 'commander';
import { check } from './check.js';
import { compileCommand } from './compile.js';
import { EXIT, type Io, processIo } from './io.js';
import { schemaCommand } from './schema.js';

export const VERSION = '0.1.0';

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
    .action((files: string[], opts: { json?: boolean; strict?: boolean }) => {
      code = check(io, files, opts);
    });

  program
    .command('compile')
    .description('compile a policy into an nftables ruleset (JSON for nft -j -f, or nft syntax)')
    .argument('<file>', 'policy file')
    .addOption(new Option('--format <format>', 'output format').choices(['json', 'nft']).default('json'))
    .option('--out <dir>', 'write ruleset.json, ruleset.nft and origins.json to DIR instead of stdout')
    .action((file: string, opts: { format: 'json' | 'nft'; out?: string }) => {
      code = compileCommand(io, file, opts);
    });

  program
    .command('schema')
    .description('print the JSON Schema of the policy language (for editors)')
    .action(() => {
      code = schemaCommand(io);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    throw e;
  }
  return code;
}
