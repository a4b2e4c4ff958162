// guestwall guest FILE NAME: the snippet that puts one guest where the policy says (xl.cfg vif
// line, libvirt <interface> elements or lxc.net.* lines), on stdout.
import { readSnippetTemplates } from '../apply/templates.js';
import { type SnippetTemplates, guestSnippet } from '../emit/snippets.js';
import { compilePolicyText } from '../compile/pipeline.js';
import { EXIT, type Io, readPolicy } from './io.js';
import { compiledPolicy } from './policy-file.js';

/** The snippet templates of this installation, or why they cannot be read (a broken install). */
export function snippetTemplates(io: Io): SnippetTemplates | { error: string } {
  try {
    return readSnippetTemplates((path) => io.readFile(path));
  } catch (e) {
    const path = (e as { path?: string }).path;
    return { error: `guestwall: cannot read the guest snippet templates${path ? ` (${path})` : ''}: ${(e as Error).message}; reinstall guestwall` };
  }
}

/** Exit 0 with the snippet, 1 when the policy has errors, 2 for an unknown guest or unreadable files. */
export function guestCommand(io: Io, file: string, name: string, opts: { host?: string } = {}): number {
  // A guest of a fleet policy: its snippet as its own host compiles it, unless --host says another.
  let host = opts.host;
  if (host === undefined) {
    const read = readPolicy(io, file);
    if (!('error' in read)) host = compilePolicyText(file, read.text).fleet?.homes[name] || undefined;
  }
  // Errors only: the snippet is asked for often, and check and apply say the warnings.
  const loaded = compiledPolicy(io, file, 'no snippet written', false, undefined, host);
  if ('exit' in loaded) return loaded.exit;
  const guest = loaded.model.guests.find((g) => g.name === name);
  if (!guest) {
    const known = loaded.model.guests.map((g) => g.name);
    io.err(`guestwall: ${file} has no guest '${name}'; ${known.length ? `its guests: ${known.join(', ')}` : 'it declares no guests'}`);
    return EXIT.usage;
  }
  const templates = snippetTemplates(io);
  if ('error' in templates) {
    io.err(templates.error);
    return EXIT.usage;
  }
  io.out(guestSnippet(loaded.model, guest, templates).text);
  return EXIT.ok;
}
