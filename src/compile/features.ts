// What the running kernel can do in the bridge family. Stock distribution kernels ship these as
// modules; some kernels (our test machines among them) are built without them, and a ruleset that
// uses a missing one fails to load as a whole. The compiler takes this as input (it is pure);
// src/apply probes the real kernel (doctor's kernelFeatures) and the CLI passes the answer in.

export interface KernelFeatures {
  /** nf_conntrack_bridge: `ct state` in bridge-family chains (kernel >= 5.3). */
  bridgeConntrack: boolean;
  /** nft_meta_bridge: `meta ibrname` / `obrname` in bridge-family chains. */
  bridgeMeta: boolean;
  /** nft_reject_bridge: `reject` in bridge prerouting/input. */
  bridgeReject: boolean;
}

/** What every kernel with nf_tables bridge support can load: the default when nobody asked the kernel. */
export const BASELINE_FEATURES: KernelFeatures = { bridgeConntrack: false, bridgeMeta: false, bridgeReject: false };

/** A stock distribution kernel with every module available. */
export const FULL_FEATURES: KernelFeatures = { bridgeConntrack: true, bridgeMeta: true, bridgeReject: true };

/** What each missing feature costs (guestwall keys bridge rules on ports, so bridge names cost nothing). */
export const WEAKER_WITHOUT: Record<keyof KernelFeatures, string | undefined> = {
  bridgeConntrack: 'guest-to-guest filtering on a bridge is stateless (replies pass by their look, not by connection)',
  bridgeMeta: undefined,
  bridgeReject: "'reject' between bridge ports is a silent drop",
};

/** One line: which features a ruleset was compiled for, how that was decided, and what is weaker. */
export function featuresLine(f: KernelFeatures, how: string): string {
  const keys = Object.keys(WEAKER_WITHOUT) as (keyof KernelFeatures)[];
  const label = keys.every((k) => f[k]) ? 'full' : keys.every((k) => !f[k]) ? 'baseline' : keys.filter((k) => f[k]).join('+');
  const weaker = keys.filter((k) => !f[k]).flatMap((k) => WEAKER_WITHOUT[k] ?? []);
  return `guestwall: kernel features: ${label} (${how})${weaker.length ? `; weaker without the rest: ${weaker.join('; ')}` : ''}`;
}

/** `--kernel-features`: ask the kernel the ruleset is for, or name a set. */
export type FeatureChoice = 'auto' | 'baseline' | 'full';
export const FEATURE_CHOICES: FeatureChoice[] = ['auto', 'baseline', 'full'];
