// What kernel tests need: whether they can run here, and throwaway network namespaces that are
// always deleted. Nothing is ever loaded into the machine's own namespace.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';

/** Why kernel tests cannot run here (a one-line reason), or undefined when they can. */
export function kernelTestUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  const onPath = (cmd: string) => (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, cmd)));
  for (const cmd of ['nft', 'ip']) if (!onPath(cmd)) return `needs ${cmd} on PATH`;
  return undefined;
}

/** A fresh namespace name with a prefix the test owns. */
export function namespaceName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export async function addNamespace(name: string): Promise<void> {
  await execa('ip', ['netns', 'add', name]);
}

export async function deleteNamespace(name: string): Promise<void> {
  await execa('ip', ['netns', 'del', name], { reject: false });
}
