// The test guest every libvirt/QEMU test boots: Debian's own kernel (from the linux-image package
// apt offers, fetched with `apt-get download` and unpacked, never installed) and an initramfs of
// busybox-static, the virtio NIC modules of that same kernel, and an init (./guest-init.ts) that
// configures the NIC from the kernel command line and runs the probe agent. Built once and
// cached under node_modules/.cache/guestwall-vm/<key>/ (a fresh clone builds it in ~10 s); the
// key covers the kernel package, busybox and the init text, so a change to any rebuilds.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { GUEST_INIT, VIRTIO_NET_MODULES } from './guest-init.js';

export interface GuestImage {
  kernel: string;
  initrd: string;
  /** The kernel package it came from ("linux-image-6.1.0-57-amd64 6.1.192-3"). */
  from: string;
}

export const CACHE_DIR = resolve('node_modules/.cache/guestwall-vm');
const BUSYBOX = '/bin/busybox';

/** Why the guest image cannot be built here, or undefined. */
export async function imageUnavailable(): Promise<string | undefined> {
  if (!existsSync(BUSYBOX)) return 'busybox is not installed (Debian package busybox-static)';
  for (const cmd of ['apt-cache', 'apt-get', 'dpkg-deb', 'cpio']) {
    const r = await execa('sh', ['-c', 'command -v "$1"', 'sh', cmd], { reject: false });
    if (r.exitCode !== 0) return `needs ${cmd} on PATH to build the guest image`;
  }
  return undefined;
}

/** The kernel package `linux-image-amd64` depends on now (its ABI changes with every upload). */
async function kernelPackage(): Promise<{ name: string; version: string }> {
  const deps = (await execa('apt-cache', ['depends', 'linux-image-amd64'])).stdout;
  const name = /Depends:\s+(linux-image-[0-9][^\s]*-amd64)/.exec(deps)?.[1];
  if (name === undefined) throw new Error(`apt-cache depends linux-image-amd64 names no kernel package (apt-get update?):\n${deps}`);
  const policy = (await execa('apt-cache', ['policy', name])).stdout;
  const version = /Candidate:\s+(\S+)/.exec(policy)?.[1];
  if (version === undefined || version === '(none)') throw new Error(`apt has no candidate for ${name}:\n${policy}`);
  return { name, version };
}

/** The cached image, built first when missing. Safe against a parallel builder: the last rename wins, both are whole. */
export async function guestImage(): Promise<GuestImage> {
  const pkg = await kernelPackage();
  const busybox = createHash('sha256').update(await readFile(BUSYBOX)).digest('hex');
  const key = createHash('sha256').update(`${pkg.name} ${pkg.version}\n${busybox}\n${GUEST_INIT}`).digest('hex').slice(0, 16);
  const dir = join(CACHE_DIR, key);
  const image = { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.cpio'), from: `${pkg.name} ${pkg.version}` };
  if (existsSync(image.kernel) && existsSync(image.initrd)) return image;

  await mkdir(CACHE_DIR, { recursive: true });
  const work = await mkdtemp(join(CACHE_DIR, 'build-'));
  try {
    // apt drops to _apt for downloads unless it cannot; either way the .deb lands in cwd.
    await chmod(work, 0o755);
    await execa('apt-get', ['download', '-q', `${pkg.name}=${pkg.version}`], { cwd: work });
    const deb = (await readdir(work)).find((f) => f.endsWith('.deb'));
    if (deb === undefined) throw new Error(`apt-get download ${pkg.name} left no .deb in ${work}`);
    const unpacked = join(work, 'pkg');
    await mkdir(unpacked);
    // Only the kernel and the NIC modules: the whole package unpacks to ~400 MB.
    await execa('dpkg-deb', ['--fsys-tarfile', join(work, deb)], { buffer: false }).pipe('tar', ['-x', '-C', unpacked, '--wildcards',
      './boot/vmlinuz-*', './lib/modules/*/kernel/drivers/virtio/*', './lib/modules/*/kernel/drivers/net/*failover*',
      './lib/modules/*/kernel/drivers/net/virtio_net*', './lib/modules/*/kernel/net/core/failover*']);
    const vmlinuz = (await readdir(join(unpacked, 'boot'))).find((f) => f.startsWith('vmlinuz-'));
    if (vmlinuz === undefined) throw new Error(`${deb} holds no boot/vmlinuz-*`);
    const release = vmlinuz.slice('vmlinuz-'.length);
    const kmod = join(unpacked, 'lib/modules', release, 'kernel');

    const root = join(work, 'root');
    for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', 'lib/modules']) await mkdir(join(root, d), { recursive: true });
    await copyFile(BUSYBOX, join(root, 'bin/busybox'));
    await symlink('busybox', join(root, 'bin/sh'));
    const found = await findFiles(kmod);
    for (const m of VIRTIO_NET_MODULES) {
      const file = found.find((f) => f.endsWith(`/${m}.ko`) || f.endsWith(`/${m}.ko.xz`));
      if (file === undefined) throw new Error(`${deb} has no module ${m} (looked under ${kmod})`);
      if (file.endsWith('.xz')) {
        await writeFile(join(root, 'lib/modules', `${m}.ko`), (await execa('xz', ['-dc', file], { encoding: 'buffer' })).stdout);
      } else await copyFile(file, join(root, 'lib/modules', `${m}.ko`));
    }
    await writeFile(join(root, 'init'), GUEST_INIT, { mode: 0o755 });
    const list = (await execa('find', ['.'], { cwd: root })).stdout;
    const cpio = await execa('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0'], { cwd: root, input: `${list}\n`, encoding: 'buffer' });

    const out = await mkdtemp(join(CACHE_DIR, 'new-'));
    await copyFile(join(unpacked, 'boot', vmlinuz), join(out, 'vmlinuz'));
    await writeFile(join(out, 'initrd.cpio'), cpio.stdout);
    await writeFile(join(out, 'FROM'), `${image.from}\n${VIRTIO_NET_MODULES.join(' ')}\n`);
    await rename(out, dir).catch(async (e: NodeJS.ErrnoException) => {
      // Another test file built the same key first.
      if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
      await rm(out, { recursive: true, force: true });
    });
    // Images of an older kernel or init are of no more use.
    for (const old of await readdir(CACHE_DIR)) {
      if (/^[0-9a-f]{16}$/.test(old) && old !== key) await rm(join(CACHE_DIR, old), { recursive: true, force: true });
    }
    return image;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function findFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await findFiles(p)));
    else out.push(p);
  }
  return out;
}
