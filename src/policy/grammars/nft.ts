// nftables (libnftables-json(5), nft(8)): interface names are strings compared by `iifname`.
// In nft's JSON a string that starts with '@' is a set reference ("@wan" is the set wan), a
// trailing '*' is a wildcard, and the text syntax cannot quote '"' or '\'.
import { type GrammarProblem, PORTABLE_HINT, shown } from './problem.js';

export function nftStringProblem(value: string): GrammarProblem | undefined {
  if (value.startsWith('@')) return { message: "starts with '@', which nftables reads as a reference to a named set", hint: PORTABLE_HINT };
  if (value.endsWith('*')) return { message: "ends with '*', which nftables reads as a wildcard over every interface starting with the rest", hint: PORTABLE_HINT };
  const bad = /["\\\p{Cc}]/u.exec(value)?.[0];
  if (bad !== undefined) return { message: `contains ${shown(bad)}, which nftables cannot quote`, hint: PORTABLE_HINT };
  return undefined;
}
