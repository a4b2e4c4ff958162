// The lockout guard: when guestwall runs over SSH, refuse a ruleset that would stop the admin
// from opening a new SSH connection the way the current one came in. The current session
// itself survives any ruleset (established connections pass first); the next login would not,
// and with it the way to fix the mistake.
import type { Ruleset } from '../nft/ruleset.js';
import { parseHostAddress } from '../policy/addr.js';
import type { System } from './system.js';

export interface SshConnection {
  client: string;
  clientPort: number;
  server: string;
  serverPort: number;
}

/** SSH_CONNECTION is "client-ip client-port server-ip server-port" (sshd sets it for the session). */
export function parseSshConnection(text: string | undefined): SshConnection | undefined {
  const [client, cport, server, sport] = (text ?? '').trim().split(/\s+/);
  if (!client || !server || !parseHostAddress(client).ok || !parseHostAddress(server).ok) return undefined;
  const clientPort = Number(cport);
  const serverPort = Number(sport);
  if (!Number.isInteger(clientPort) || !Number.isInteger(serverPort)) return undefined;
  return { client: client.replace(/^::ffff:(?=\d)/, ''), clientPort, server: server.replace(/^::ffff:(?=\d)/, ''), serverPort };
}

/** The interface that holds `addr` in the System's namespace, from `ip -j addr`. */
export async function interfaceOf(sys: System, addr: string): Promise<string | undefined> {
  const r = await sys.run('ip', ['-j', 'addr', 'show']);
  if (r.code !== 0) return undefined;
  const want = parseHostAddress(addr);
  if (!want.ok) return undefined;
  const links = JSON.parse(r.stdout) as { ifname: string; addr_info?: { local: string }[] }[];
  return links.find((l) => (l.addr_info ?? []).some((a) => {
    const have = parseHostAddress(a.local);
    return have.ok && have.value.value === want.value.value && have.value.family === want.value.family;
  }))?.ifname;
}

/** The guard for this session, or undefined when not over SSH (or when told to --force). */
export async function sshGuard(sys: System): Promise<((ruleset: Ruleset) => string | undefined) | undefined> {
  const conn = parseSshConnection(sys.env('SSH_CONNECTION'));
  if (!conn) return undefined;
  const iif = await interfaceOf(sys, conn.server);
  // The server address is not in this namespace (e.g. --netns while logged in to the host): nothing to guard.
  if (iif === undefined) return undefined;
  // explain's evaluator (~50 KB with nft's printer) loads only for a session to guard: most
  // applies have none, and each module costs every start its compile (issue 17).
  const { lockoutReason } = await import('./lockout.js');
  return (ruleset) => lockoutReason(ruleset, conn, iif);
}
