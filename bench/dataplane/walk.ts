// How many rules a packet makes the kernel evaluate, per hook, read off the explain evaluator's
// steps (src/explain/evaluate.ts: one step per rule it evaluated). A count, not a time: it does
// not move with the machine's load, so it shows what a compiler change saves when the timings
// cannot.
//
// A new connection's first packet, routed through the host, meets: the nat chains on prerouting
// (dstnat: its gate, the conntrack helpers and the forwards' lookups) and any filter chains there
// (anti-spoofing, the hairpin mark), the filter chains on forward, the nat chains on postrouting.
// Later packets of the connection skip the nat chains.
import { type Packet, evaluate, evaluateNat, evaluatePrerouting } from '../../src/explain/evaluate.js';
import type { Ruleset } from '../../src/nft/ruleset.js';

export interface Walk {
  prerouting: number;
  forward: number;
  postrouting: number;
  total: number;
}

const ruleSteps = (steps: readonly { rule?: number }[]) => steps.filter((s) => s.rule !== undefined).length;

/** The rules a new connection's first packet (`packet`, ct state new, routed through the host) walks. */
export function newFlowWalk(ruleset: Ruleset, packet: Packet): Walk {
  // Before routing the kernel knows no output device; after dstnat, routing picks the one the
  // caller names (the bench's packets are not port-forwarded: their destination stays).
  const { oifname, ...arriving } = packet;
  const pre = evaluateNat(ruleset, 'prerouting', arriving);
  if (pre.translation) throw new Error(`the walk's packet is translated on prerouting (${pre.translation.kind}): give it the output device of the new destination`);
  const fwd = evaluate(ruleset, 'forward', { ...pre.packet, ...(oifname !== undefined ? { oifname } : {}) });
  if (fwd.verdict !== 'accept') throw new Error(`the walk's packet is not accepted (${fwd.verdict}): ${JSON.stringify(packet)}`);
  const post = evaluateNat(ruleset, 'postrouting', { ...pre.packet, ...(oifname !== undefined ? { oifname } : {}) });
  const w = { prerouting: ruleSteps(pre.steps) + ruleSteps(evaluatePrerouting(ruleset, arriving).steps), forward: ruleSteps(fwd.steps), postrouting: ruleSteps(post.steps) };
  return { ...w, total: w.prerouting + w.forward + w.postrouting };
}
