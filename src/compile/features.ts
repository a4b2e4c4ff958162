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
