// A fleet of hosts for the Ansible tests: each host a network namespace and a private mount
// namespace with its own sshd, /etc/guestwall and /var/lib/guestwall (bind mounts of folders in
// the test's temp dir; /etc, /var/lib and /run are overlays on tmpfs there, so nothing of the
// machine changes), and a controller namespace whose bridge connects them. SSH keys are made per
// run in the temp dir; the machine's own sshd and /root/.ssh are never used.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type ResultPromise, execa } from 'execa';
import { addNamespace, deleteNamespace, namespaceName } from './kernel.js';

export interface LabHost {
  name: string;
  ns: string;
  addr: string;
  /** Bound to /etc/guestwall and /var/lib/guestwall inside the host. */
  etc: string;
  state: string;
}

export interface FleetLab {
  dir: string;
  ctl: string;
  hosts: LabHost[];
  /** ansible-playbook in the controller namespace, with the lab's inventory plus `vars`. */
  playbook(playbook: string, vars: Record<string, unknown>, hostVars?: Record<string, Record<string, unknown>>): Promise<{ code: number; output: string }>;
  /** A command inside a host (its network and mount namespaces). */
  inHost(host: LabHost, argv: string[]): Promise<string>;
  cleanup(): Promise<void>;
}

/** Why the Ansible tests cannot run here, or undefined. */
export async function fleetLabUnavailable(): Promise<string | undefined> {
  for (const [cmd, pkg] of [['ansible-playbook', 'ansible-core'], ['/usr/sbin/sshd', 'openssh-server'], ['ssh-keygen', 'openssh-client']] as const) {
    const r = await execa('sh', ['-c', 'command -v "$1"', 'sh', cmd], { reject: false });
    if (r.exitCode !== 0) return `needs ${cmd} (Debian package ${pkg})`;
  }
  return undefined;
}

const REPO = resolve('.');

export async function startFleetLab(names: string[], subnet = '10.77.0'): Promise<FleetLab> {
  const dir = mkdtempSync(join(tmpdir(), 'guestwall-fleet-'));
  const ctl = namespaceName('gwctl');
  const hosts: LabHost[] = names.map((name, i) => ({
    name, ns: namespaceName(`gw${name}`), addr: `${subnet}.${11 + i}`, etc: join(dir, name, 'etc'), state: join(dir, name, 'state'),
  }));
  const sshds: ResultPromise[] = [];
  const made: string[] = [];
  const lab: FleetLab = {
    dir, ctl, hosts,
    async playbook(playbook, vars, hostVars = {}) {
      const inventory = {
        guestwall: {
          hosts: Object.fromEntries(hosts.map((h) => [h.name, { ansible_host: h.addr, ...(hostVars[h.name] ?? {}) }])),
          vars: {
            ansible_user: 'root', ansible_ssh_private_key_file: join(dir, 'id'), ansible_python_interpreter: '/usr/bin/python3',
            ansible_remote_tmp: join(dir, 'remote-tmp'),
            guestwall_command: ['node', join(REPO, 'bin/guestwall.js')], guestwall_controller_command: ['node', join(REPO, 'bin/guestwall.js')],
            ...vars,
          },
        },
      };
      writeFileSync(join(dir, 'inventory.json'), JSON.stringify(inventory));
      const r = await execa('ip', ['netns', 'exec', ctl, 'ansible-playbook', '-i', join(dir, 'inventory.json'), playbook], {
        reject: false, all: true, cwd: REPO,
        env: {
          HOME: join(dir, 'home'), ANSIBLE_CONFIG: join(dir, 'ansible.cfg'), ANSIBLE_HOME: join(dir, 'ansible'), ANSIBLE_LOCAL_TEMP: join(dir, 'ansible', 'tmp'),
          ANSIBLE_SSH_CONTROL_PATH_DIR: join(dir, 'ansible', 'cp'), ANSIBLE_HOST_KEY_CHECKING: 'False', ANSIBLE_NOCOLOR: '1', ANSIBLE_RETRY_FILES_ENABLED: 'False', ANSIBLE_PIPELINING: 'True',
          ANSIBLE_SSH_ARGS: '-F /dev/null -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o IdentitiesOnly=yes',
        },
      });
      return { code: r.exitCode ?? -1, output: r.all ?? '' };
    },
    async inHost(h, argv) {
      return (await execa('ip', ['netns', 'exec', h.ns, ...argv])).stdout;
    },
    async cleanup() {
      // Everything still running in the namespaces was started by this lab (sshd, apply's confirm timers): end it by pid.
      for (const ns of made) {
        const pids = (await execa('ip', ['netns', 'pids', ns], { reject: false })).stdout.split('\n').filter(Boolean);
        for (const pid of pids) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // gone already
          }
        }
      }
      for (const p of sshds) await p.catch(() => undefined);
      for (const ns of made) await deleteNamespace(ns);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    for (const d of ['home', 'ansible/tmp', 'ansible/cp', 'remote-tmp']) mkdirSync(join(dir, d), { recursive: true });
    writeFileSync(join(dir, 'ansible.cfg'), '[defaults]\n');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'guestwall-test', '-f', join(dir, 'id')]);
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'hostkey')]);
    await execa('cp', [join(dir, 'id.pub'), join(dir, 'authorized_keys')]);

    await addNamespace(ctl);
    made.push(ctl);
    const ipc = (...a: string[]) => execa('ip', ['-n', ctl, ...a]);
    await ipc('link', 'set', 'lo', 'up');
    await ipc('link', 'add', 'br0', 'type', 'bridge');
    await ipc('addr', 'add', `${subnet}.1/24`, 'dev', 'br0');
    await ipc('link', 'set', 'br0', 'up');
    for (const [i, h] of hosts.entries()) {
      await addNamespace(h.ns);
      made.push(h.ns);
      const peer = `vh${i}`;
      await execa('ip', ['link', 'add', 'eth0', 'netns', h.ns, 'type', 'veth', 'peer', 'name', peer, 'netns', ctl]);
      await ipc('link', 'set', peer, 'master', 'br0');
      await ipc('link', 'set', peer, 'up');
      await execa('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
      await execa('ip', ['-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', 'eth0']);
      await execa('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
      const hd = join(dir, h.name);
      for (const d of ['etc', 'state', 'ov']) mkdirSync(join(hd, d), { recursive: true });
      writeFileSync(join(hd, 'sshd_config'), [
        `ListenAddress ${h.addr}`, 'Port 22', `HostKey ${join(dir, 'hostkey')}`, `PidFile ${join(hd, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`, 'PermitRootLogin prohibit-password', 'PasswordAuthentication no',
        'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no', 'Subsystem sftp internal-sftp', '',
      ].join('\n'));
      const ov = join(hd, 'ov');
      const overlay = (what: string, tag: string) =>
        `mkdir -p ${ov}/${tag}-up ${ov}/${tag}-wk && mount -t overlay overlay -o lowerdir=${what},upperdir=${ov}/${tag}-up,workdir=${ov}/${tag}-wk ${what}`;
      const script = [
        `mount -t tmpfs tmpfs ${ov}`,
        overlay('/etc', 'etc'), overlay('/var/lib', 'lib'), overlay('/run', 'run'),
        'mkdir -p /etc/guestwall /var/lib/guestwall /run/sshd',
        `mount --bind ${h.etc} /etc/guestwall`, `mount --bind ${h.state} /var/lib/guestwall`,
        `exec /usr/sbin/sshd -D -e -f ${join(hd, 'sshd_config')}`,
      ].join(' && ');
      const p = execa('ip', ['netns', 'exec', h.ns, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script], { reject: false, stdio: 'ignore' });
      sshds.push(p);
    }
    // sshd is up when it listens.
    for (const h of hosts) {
      for (let i = 0; ; i++) {
        const ss = await execa('ip', ['netns', 'exec', h.ns, 'ss', '-Hltn', 'sport', '=', ':22'], { reject: false });
        if (ss.stdout.includes(':22')) break;
        if (i > 100) throw new Error(`sshd in ${h.name} did not start`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // inHost must see the host's own mounts: run it through the sshd's mount namespace.
    lab.inHost = async (h, argv) => {
      const pid = (await execa('ip', ['netns', 'pids', h.ns])).stdout.split('\n').filter(Boolean)[0]!;
      return (await execa('nsenter', ['-t', pid, '-m', '-n', ...argv])).stdout;
    };
  } catch (e) {
    await lab.cleanup();
    throw e;
  }
  return lab;
}
