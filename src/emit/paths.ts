// Where guestwall's generated files live on the host. The guest snippets name the hooks, the
// network setup writes them, `install` puts them there: one list, so the three agree.

/** The directory of installed hooks: small POSIX sh scripts (ip, sysctl; no Node), generated per host. */
export const HOOKS_DIR = '/etc/guestwall/hooks';

export const HOOK_PATHS = {
  /** `port-up IFNAME`: configure a routed guest interface's host side (gateway, routes, proxy ARP/NDP). */
  portUp: `${HOOKS_DIR}/port-up`,
  /** `port-down IFNAME`: undo what port-up did for that interface. */
  portDown: `${HOOKS_DIR}/port-down`,
  /** Xen vif hotplug script for routed vifs (xl.cfg `script=`): vif-route without iptables or ifconfig. */
  xenVif: `${HOOKS_DIR}/xen-vif`,
} as const;
