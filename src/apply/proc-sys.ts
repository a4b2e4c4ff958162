// Values under /proc/sys: the one way guestwall reads kernel settings (apply's network step,
// its restore, doctor). /proc/sys/net shows the network namespace of the process that reads it,
// so in its own namespace guestwall reads the files; for --netns (commands wrapped in `ip netns
// exec`) a command reads them there: one grep for up to 500 files, "path:value" for each it can
// read and nothing for missing ones. Reading the files starts no process: each start is a fork
// of node, 5-10 ms of an apply's own time (issue 17), where a read costs microseconds.
import type { System } from './system.js';

/** "net.ipv4.conf.eth0/100.rp_filter" (sysctl(8)'s name) -> "net/ipv4/conf/eth0.100/rp_filter" (its path under /proc/sys). */
export function procSysPath(name: string): string {
  return name.split('.').map((part) => part.replace(/\//g, '.')).join('/');
}

/** "net/ipv4/conf/eth0.100/rp_filter" -> "net.ipv4.conf.eth0/100.rp_filter", as sysctl(8) writes it. */
export function sysctlName(path: string): string {
  return path.split('/').map((part) => part.replace(/\./g, '/')).join('.');
}

/** The values (trimmed) of the files at `paths` under /proc/sys that exist and can be read, by path. */
export async function readProcSys(sys: System, paths: readonly string[]): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  if (sys.netns === undefined) {
    // A file that cannot be read (gone, or write-only) is left out, as grep -s leaves it out.
    const texts = await Promise.all(paths.map((p) => sys.readFile(`/proc/sys/${p}`).catch(() => undefined)));
    paths.forEach((p, i) => {
      const text = texts[i];
      if (text !== undefined && text.trim() !== '') values.set(p, text.trim());
    });
    return values;
  }
  const unique = [...new Set(paths)];
  for (let i = 0; i < unique.length; i += 500) {
    const r = await sys.run('grep', ['-s', '-H', '.', ...unique.slice(i, i + 500).map((p) => `/proc/sys/${p}`)]);
    for (const line of r.stdout.split('\n')) {
      const at = line.indexOf(':');
      if (line.startsWith('/proc/sys/') && at > 0) values.set(line.slice('/proc/sys/'.length, at), line.slice(at + 1).trim());
    }
  }
  return values;
}
