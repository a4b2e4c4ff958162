// A throwaway network namespace guestwall creates for itself, to let the running nft normalise
// a compiled ruleset (load it there, list it back) so it can be compared with the live one.
// Always deleted afterwards, whatever happens.
import { randomBytes } from 'node:crypto';
import { ApplyError } from './errors.js';
import { type System, realSystem } from './system.js';

export async function withScratchNamespace<T>(host: System, fn: (scratch: System) => Promise<T>, enter: (netns: string) => System = realSystem): Promise<T> {
  const name = `guestwall-scratch-${randomBytes(4).toString('hex')}`;
  const add = await host.run('ip', ['netns', 'add', name]);
  if (add.code !== 0) throw new ApplyError(`cannot create a scratch network namespace: ${add.stderr.trim()}`, 'guestwall diff needs root and iproute2', 2);
  try {
    return await fn(enter(name));
  } finally {
    await host.run('ip', ['netns', 'del', name]);
  }
}
