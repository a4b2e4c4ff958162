// Would a ruleset lock the admin out: a new SSH connection the way the current one came in,
// evaluated through the ruleset's input chain (guard.ts decides when to ask).
import { type Packet, evaluate } from '../explain/evaluate.js';
import type { Ruleset } from '../nft/ruleset.js';
import { parseHostAddress } from '../policy/addr.js';
import type { SshConnection } from './guard.js';

/** Why `ruleset` would lock this SSH connection out, or undefined when a new login would still pass. */
export function lockoutReason(ruleset: Ruleset, conn: SshConnection, iifname: string): string | undefined {
  const family = parseHostAddress(conn.client).ok && conn.client.includes(':') ? 6 : 4;
  const packet: Packet = {
    family, iifname, saddr: conn.client, daddr: conn.server, proto: 'tcp', sport: conn.clientPort, dport: conn.serverPort, ct: { state: 'new' },
  };
  const e = evaluate(ruleset, 'input', packet);
  if (e.verdict === 'accept') return undefined;
  const why = e.decidedBy ? `${e.decidedBy.what} (${e.decidedBy.file}:${e.decidedBy.line}, ${e.decidedBy.id})` : 'the input chain\'s default';
  return `this policy would ${e.verdict} new SSH connections from ${conn.client} to ${conn.server} port ${conn.serverPort} on ${iifname}, the way this session came in: ${why}`;
}
