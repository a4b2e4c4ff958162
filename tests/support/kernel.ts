// What kernel tests need: whether they can run here, and throwaway network namespaces that are
// always deleted. Nothing is ever loaded into the machine's own namespace.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { onTestFinished } from 'vitest';

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

/**
 * The namespaces of one test, deleted when the test is over, also when vitest's timeout ended it
 * while its body still runs: vitest fails a timed-out test and moves on without waiting for the
 * body, so the body's own `finally` may never be reached (the worker exits at the end of the
 * file). `testNamespaces` registers `close` with onTestFinished, which vitest runs after a
 * timeout too. After `close` nothing new is made, and a creation still under way when `close`
 * comes is waited for, then deleted (deleting first would miss it). Names carry the pid of the
 * run that made them, so a later run can delete what a run killed outright left (sweepDeadRuns).
 */
export class TestNamespaces {
  /** Name -> its `ip netns add`, settled or not. */
  readonly #made = new Map<string, Promise<unknown>>();
  #closed = false;
  /** `ops`: how a namespace is made and deleted (`ip netns`; a test of this class passes slower ones). */
  constructor(readonly prefix: string, private readonly ops = { add: addNamespace, delete: deleteNamespace }) {}

  async add(): Promise<string> {
    if (this.#closed) throw new Error(`the test is over: no new namespace ${this.prefix}-*`);
    const name = namespaceName(`${this.prefix}-${process.pid}`);
    const made = this.ops.add(name);
    this.#made.set(name, made.catch(() => undefined));
    await made;
    return name;
  }

  /** One of this test's namespaces, and the test still running: only then may a test run commands in it. */
  has(name: string): boolean {
    return !this.#closed && this.#made.has(name);
  }

  get closed(): boolean {
    return this.#closed;
  }

  async delete(name: string): Promise<void> {
    const made = this.#made.get(name);
    if (made === undefined) return;
    this.#made.delete(name);
    await made;
    await this.ops.delete(name);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const name of [...this.#made.keys()]) await this.delete(name);
  }
}

/** A TestNamespaces for the running test, closed when the test is over however it ends. */
export function testNamespaces(prefix: string): TestNamespaces {
  const pool = new TestNamespaces(prefix);
  onTestFinished(() => pool.close());
  return pool;
}

/** The namespaces `prefix-<pid>-*` that runs no longer alive made (killed outright: no hook ran), deleted; their names. */
export async function sweepDeadRuns(prefix: string): Promise<string[]> {
  const { stdout } = await execa('ip', ['netns', 'list']);
  const dead: string[] = [];
  for (const line of stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const pid = new RegExp(`^${prefix}-(\\d+)-[0-9a-f]{8}$`).exec(name)?.[1];
    if (pid !== undefined && !alive(Number(pid))) dead.push(name);
  }
  for (const name of dead) await deleteNamespace(name);
  return dead;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: alive, somebody else's.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
