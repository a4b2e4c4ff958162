// A real libvirt daemon for one test, inside a network namespace the test made, never in the
// machine's own: `ip netns exec NS unshare -m` gives it a private mount namespace in which /etc
// and /var are overlays (writes land in the test's directory: its qemu.conf, the libvirt-qemu
// user it wants, guestwall's hooks under /etc/guestwall/hooks where the snippets name them,
// its state under /var/lib/libvirt) and /run is the test's own directory (its socket, pid files).
// So two test files, or two machines' worth of tests, each have their own /run/libvirt and
// cannot collide, and nothing of it outlives the test on the machine.
//
// No systemd, no D-Bus, no virtlogd (stdio_handler = "file"), no security driver; QEMU runs as
// root with TCG (domain type='qemu': nested KVM is unusable on these machines).
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { GuestImage } from './image.js';

const onPath = (cmd: string) => (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, cmd)));

/** Why a libvirt daemon cannot run here (a one-line reason naming the Debian package), or undefined. */
export function libvirtUnavailable(): string | undefined {
  const need: [string, string][] = [['libvirtd', 'libvirt-daemon'], ['virsh', 'libvirt-clients'], ['qemu-system-x86_64', 'qemu-system-x86'], ['unshare', 'util-linux'], ['nsenter', 'util-linux']];
  for (const [cmd, pkg] of need) if (!onPath(cmd)) return `needs ${cmd} (Debian package ${pkg})`;
  if (!existsSync('/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so')) return 'needs libvirt\'s QEMU driver (Debian package libvirt-daemon-driver-qemu)';
  return undefined;
}

const QEMU_CONF = `# Written by the guestwall test suite for a throwaway libvirtd.
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
stdio_handler = "file"
`;

// libvirt logs each command it runs (the hooks among them) at debug level from util.command.
const LIBVIRTD_CONF = (log: string) => `# Written by the guestwall test suite for a throwaway libvirtd.
log_filters = "1:util.command"
log_outputs = "1:file:${log}"
`;

// Runs in the daemon's new mount namespace, inside the test's network namespace.
const START = String.raw`set -eu
D=$1 HOOKS=$2
mount -t overlay gw-etc -o lowerdir=/etc,upperdir=$D/etc,workdir=$D/etc.work /etc
mount -t overlay gw-var -o lowerdir=/var,upperdir=$D/var,workdir=$D/var.work /var
mount --bind $D/run /run
mkdir -p /run/libvirt /var/log/libvirt /var/lib/libvirt /var/cache/libvirt /etc/libvirt /etc/guestwall/hooks
getent group kvm >/dev/null || groupadd -r kvm
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
getent passwd libvirt-qemu >/dev/null || useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
cp $D/qemu.conf $D/libvirtd.conf /etc/libvirt/
if [ -n "$HOOKS" ]; then cp "$HOOKS"/* /etc/guestwall/hooks/ && chmod 755 /etc/guestwall/hooks/*; fi
exec libvirtd -d -p $D/run/gw-libvirtd.pid -f /etc/libvirt/libvirtd.conf
`;

export interface Libvirt {
  ns: string;
  /** The daemon's directory: run/ (its /run), etc/ and var/ (its overlay upper dirs), libvirtd.log. */
  dir: string;
  pid: number;
  /** virsh against this daemon (in its mount namespace); fails loudly. */
  virsh(args: string[]): Promise<string>;
  /** Commands the daemon ran, from its log ("/etc/guestwall/hooks/port-up gw-mail"). */
  commandsRun(): Promise<string[]>;
  /** Destroy every domain, stop QEMU and the daemon (by pid), remove the directory; safe twice. */
  stop(): Promise<void>;
}

const live = new Set<Libvirt>();
export async function stopAllLibvirts(): Promise<void> {
  for (const l of [...live]) await l.stop();
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (alive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  return !alive(pid);
}

/** Start libvirtd inside network namespace `ns`, with guestwall's hooks (a directory of them) installed where the snippets name them. */
export async function startLibvirt(ns: string, hooksDir: string | undefined): Promise<Libvirt> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-libvirt-'));
  for (const d of ['etc', 'etc.work', 'var', 'var.work', 'run']) await mkdir(join(dir, d));
  const log = join(dir, 'libvirtd.log');
  await writeFile(join(dir, 'qemu.conf'), QEMU_CONF);
  await writeFile(join(dir, 'libvirtd.conf'), LIBVIRTD_CONF(log));
  const r = await execa('ip', ['netns', 'exec', ns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', START, 'start', dir, hooksDir ?? ''], { reject: false });
  const pidText = await readFile(join(dir, 'run', 'gw-libvirtd.pid'), 'utf8').catch(() => '');
  const pid = Number(pidText.trim());
  if (r.exitCode !== 0 || !Number.isInteger(pid) || pid <= 0) {
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw new Error(`libvirtd did not start in ${ns} (exit ${r.exitCode}):\n${r.stderr}`);
  }
  let stopped = false;
  const virshRaw = (args: string[]) => execa('nsenter', ['-t', String(pid), '-m', '--', 'virsh', '-q', '-c', 'qemu:///system', ...args], { reject: false });
  const l: Libvirt = {
    ns, dir, pid,
    async virsh(args) {
      const v = await virshRaw(args);
      if (v.exitCode !== 0) throw new Error(`virsh ${args.join(' ')} (libvirtd in ${ns}) failed: ${v.stderr}`);
      return v.stdout;
    },
    async commandsRun() {
      const text = await readFile(log, 'utf8').catch(() => '');
      return [...text.matchAll(/About to run (.*)$/gm)].map((m) => m[1]!.replace(/^(\S+=\S*\s+)*/, '').trim());
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      live.delete(l);
      if (alive(pid)) {
        const names = (await virshRaw(['list', '--name'])).stdout.split('\n').map((s) => s.trim()).filter((s) => s !== '');
        for (const n of names) await virshRaw(['destroy', n]);
      }
      // QEMU processes this daemon started and did not end (their pid files are in our /run).
      const pids = join(dir, 'run', 'libvirt', 'qemu');
      for (const f of existsSync(pids) ? await readdir(pids) : []) {
        if (!f.endsWith('.pid')) continue;
        const q = Number((await readFile(join(pids, f), 'utf8').catch(() => '')).trim());
        if (q > 0 && alive(q)) {
          process.kill(q, 'SIGKILL');
          await waitGone(q, 5_000);
        }
      }
      if (alive(pid)) {
        process.kill(pid, 'SIGTERM');
        if (!(await waitGone(pid, 10_000))) process.kill(pid, 'SIGKILL');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  live.add(l);
  return l;
}

export interface DomainSpec {
  name: string;
  image: GuestImage;
  /** Kernel command line after console=ttyS0 (the guest init's gw.* arguments). */
  cmdline: string;
  /** <interface> elements, inserted verbatim (guestwall's snippet). */
  interfaces: string;
  /** The kernel console (ttyS0) goes to this file. */
  consoleLog: string;
  /** The probe agent's serial port (ttyS1): a unix socket QEMU listens on. */
  agentSocket: string;
  memoryMiB?: number;
}

/** A TCG domain that boots the test guest's kernel and initramfs directly, no disk. */
export function domainXml(d: DomainSpec): string {
  return `<domain type='qemu'>
  <name>${d.name}</name>
  <memory unit='MiB'>${d.memoryMiB ?? 192}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${d.image.kernel}</kernel>
    <initrd>${d.image.initrd}</initrd>
    <cmdline>console=ttyS0 loglevel=4 panic=-1 ${d.cmdline}</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
${d.interfaces.replace(/^/gm, '    ')}
    <serial type='file'><source path='${d.consoleLog}'/><target port='0'/></serial>
    <serial type='unix'><source mode='bind' path='${d.agentSocket}'/><target port='1'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}
