// HostModel -> the guest-side snippets that put each guest where the policy says: the xl.cfg
// `vif = [...]` line (Xen), the <interface> elements (libvirt/KVM), the lxc.net.N.* lines (LXC).
// Each sets the stable host-side name the firewall matches on. Pure: the template texts come in
// as values (the CLI reads templates/), and the text goes out.
import type { HostAddress } from '../policy/addr.js';
import { contains } from '../policy/addr.js';
import { type BridgeModel, type GuestInterfaceModel, type GuestModel, type HostModel, ROUTED_GATEWAY_V4, ROUTED_GATEWAY_V6 } from '../model/host.js';
import { HOOK_PATHS } from './paths.js';
import { type TemplateValue, fillTemplate } from './template.js';

/** The templates the snippets are made from, by their path under templates/. */
export const SNIPPET_TEMPLATES = [
  'xen/xl.cfg', 'xen/bridged.txt', 'xen/routed.txt',
  'libvirt/libvirt.xml', 'libvirt/bridged.xml', 'libvirt/routed.xml',
  'lxc/lxc.conf', 'lxc/bridged.conf', 'lxc/routed.conf',
] as const;
export type SnippetTemplateName = (typeof SNIPPET_TEMPLATES)[number];
export type SnippetTemplates = Readonly<Record<SnippetTemplateName, string>>;

/** The file each platform's snippet goes to (compile --out writes guests/<guest>/<file>). */
export const SNIPPET_FILE = { xen: 'xl.cfg', kvm: 'libvirt.xml', lxc: 'lxc.conf' } as const satisfies Record<GuestModel['platform'], string>;

export interface GuestSnippet {
  guest: string;
  platform: GuestModel['platform'];
  file: (typeof SNIPPET_FILE)[GuestModel['platform']];
  text: string;
}

export function guestSnippets(model: HostModel, templates: SnippetTemplates): GuestSnippet[] {
  return model.guests.map((g) => guestSnippet(model, g, templates));
}

export function guestSnippet(model: HostModel, guest: GuestModel, templates: SnippetTemplates): GuestSnippet {
  const text = guest.platform === 'xen' ? xenSnippet(model, guest, templates)
    : guest.platform === 'kvm' ? libvirtSnippet(model, guest, templates)
    : lxcSnippet(model, guest, templates);
  return { guest: guest.name, platform: guest.platform, file: SNIPPET_FILE[guest.platform], text };
}

// ---- what every platform says the same way ---------------------------------------------

const v4 = (i: GuestInterfaceModel) => i.addresses.filter((a) => a.family === 4);
const v6 = (i: GuestInterfaceModel) => i.addresses.filter((a) => a.family === 6);
const optional = (v: string | undefined): string[] => (v === undefined ? [] : [v]);
/** Blocks rendered from per-interface templates, one after the other. */
const blocks = (texts: string[]) => texts.map((t) => t.replace(/\n+$/, '')).join('\n');

/**
 * The interface that carries the guest's default route, per family: the first one that has a
 * gateway in it (a routed interface with an address of the family, a bridged one whose bridge
 * has an address in the guest's subnet). A second default route would not come up: LXC stops
 * the container with "File exists".
 */
function defaultRouteIndex(model: HostModel, g: GuestModel, family: 4 | 6): number | undefined {
  return g.interfaces.find((i) => {
    const mine = i.addresses.filter((a) => a.family === family);
    if (i.mode === 'routed') return mine.length > 0;
    const bridge = model.bridges.find((b) => b.name === i.bridge)!;
    return mine.some((a) => onBridge(a, bridge, model).gateway !== undefined);
  })?.index;
}

/** What a routed interface's templates share: its gateways, and what the guest configures inside. */
function routedValues(model: HostModel, g: GuestModel, i: GuestInterfaceModel): Record<string, TemplateValue> {
  const has4 = v4(i).length > 0;
  const has6 = v6(i).length > 0;
  const default4 = defaultRouteIndex(model, g, 4);
  const default6 = defaultRouteIndex(model, g, 6);
  return {
    addresses: i.addresses.map((a) => a.addr).join(', '),
    gateways: [...(has4 ? [ROUTED_GATEWAY_V4] : []), ...(has6 ? [ROUTED_GATEWAY_V6] : [])].join(' and '),
    guestAddresses: i.addresses.map((a) => `${a.addr}/${a.family === 4 ? 32 : 128}`),
    gateway4: has4 && default4 === i.index ? [ROUTED_GATEWAY_V4] : [],
    gateway6: has6 && default6 === i.index ? [ROUTED_GATEWAY_V6] : [],
    otherDefault: [
      ...(has4 && default4 !== i.index ? [`(the IPv4 default route goes through interface ${default4})`] : []),
      ...(has6 && default6 !== i.index ? [`(the IPv6 default route goes through interface ${default6})`] : []),
    ],
    nic: i.mac !== undefined ? `with MAC ${i.mac}` : `number ${i.index}`,
  };
}

// ---- Xen: xl.cfg -------------------------------------------------------------------------

function xenSnippet(model: HostModel, g: GuestModel, t: SnippetTemplates): string {
  const hvm = g.xenType === 'hvm';
  const notes = g.interfaces.map((i) => {
    const common = {
      index: String(i.index), name: i.name,
      hvm: optional(i.emuTap !== undefined ? `HVM: until its PV drivers load, the guest talks through QEMU's tap ${i.emuTap}, a second host-side interface.` : undefined),
      noMac: optional(i.mac === undefined ? 'No MAC in the policy: Xen picks a random 00:16:3e:xx:xx:xx at every start.' : undefined),
    };
    return i.mode === 'bridged'
      ? fillTemplate(t['xen/bridged.txt'], { ...common, bridge: i.bridge })
      : fillTemplate(t['xen/routed.txt'], { ...common, ...routedValues(model, g, i), hook: HOOK_PATHS.xenVif });
  });
  const vifs = g.interfaces.map((i) => `'${vifSpec(i, hvm)}'`).join(', ');
  return fillTemplate(t['xen/xl.cfg'], {
    guest: g.name, type: g.xenType !== undefined ? ` (${g.xenType.toUpperCase()})` : '', policy: model.file,
    notes: blocks(notes), vifs,
  });
}

/** One xl vifspec (xl-network-configuration(5)): comma-separated key=value, in xl's own order. */
function vifSpec(i: GuestInterfaceModel, hvm: boolean): string {
  const keys: [string, string][] = [];
  if (i.mac !== undefined) keys.push(['mac', i.mac]);
  if (i.mode === 'bridged') keys.push(['bridge', i.bridge]);
  if (hvm) keys.push(['type', 'ioemu']);
  keys.push(['vifname', i.name]);
  if (i.mode === 'routed') {
    keys.push(['script', HOOK_PATHS.xenVif]);
    // vif-common.sh reads ip= as a space-separated list; the hook routes each address to the vif.
    keys.push(['ip', i.addresses.map((a) => a.addr).join(' ')]);
  }
  return keys.map(([k, v]) => `${k}=${v}`).join(',');
}

// ---- KVM: libvirt domain XML ---------------------------------------------------------------

function libvirtSnippet(model: HostModel, g: GuestModel, t: SnippetTemplates): string {
  const interfaces = g.interfaces.map((i) => {
    const common = { index: String(i.index), name: xml(i.name), mac: optional(i.mac) };
    if (i.mode === 'bridged') return fillTemplate(t['libvirt/bridged.xml'], { ...common, bridge: xml(i.bridge) });
    // A tap of type='ethernet' with the hook as <script>/<downscript> (libvirt runs it with the
    // tap's name as its only argument), rather than libvirt's own <source><ip/><route/></source>:
    // <route> needs a gateway, so it cannot route a guest's /32 and /128 to the tap itself, and
    // libvirt does no proxy ARP/NDP. The hook is the same one Xen's routed vifs use.
    return fillTemplate(t['libvirt/routed.xml'], {
      ...common, ...routedValues(model, g, i), portUp: xml(HOOK_PATHS.portUp), portDown: xml(HOOK_PATHS.portDown),
    });
  });
  return fillTemplate(t['libvirt/libvirt.xml'], { guest: xml(g.name), policy: xml(model.file), interfaces: blocks(interfaces) });
}

/**
 * Text for an XML attribute or comment. Interface names may hold any of these (the kernel takes
 * them); `--` is written as a character reference, which an attribute reads back as `--` and
 * which keeps a comment well-formed.
 */
function xml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;').replace(/--/g, '-&#45;');
}

// ---- LXC: lxc.net.N.* --------------------------------------------------------------------

function lxcSnippet(model: HostModel, g: GuestModel, t: SnippetTemplates): string {
  const interfaces = g.interfaces.map((i) => {
    const common = { index: String(i.index), name: i.name, mac: optional(i.mac) };
    const carries = (family: 4 | 6) => defaultRouteIndex(model, g, family) === i.index;
    if (i.mode === 'routed') {
      return fillTemplate(t['lxc/routed.conf'], {
        ...common,
        ipv4: v4(i).map((a) => `${a.addr}/32`), gateway4: carries(4) ? [ROUTED_GATEWAY_V4] : [],
        ipv6: v6(i).map((a) => `${a.addr}/128`), gateway6: carries(6) ? [ROUTED_GATEWAY_V6] : [],
        ipv6Note: optional(v6(i).length ? 'For the IPv6 gateway LXC needs net.ipv6.conf.all.forwarding=1 on the host (guestwall install sets it).' : undefined),
      });
    }
    const bridge = model.bridges.find((b) => b.name === i.bridge)!;
    const on = (list: HostAddress[]) => list.map((a) => onBridge(a, bridge, model));
    const ipv4 = on(v4(i));
    const ipv6 = on(v6(i));
    return fillTemplate(t['lxc/bridged.conf'], {
      ...common, bridge: i.bridge,
      ipv4: ipv4.map((a) => a.address), gateway4: optional(carries(4) ? ipv4.find((a) => a.gateway)?.gateway : undefined),
      ipv6: ipv6.map((a) => a.address), gateway6: optional(carries(6) ? ipv6.find((a) => a.gateway)?.gateway : undefined),
    });
  });
  return fillTemplate(t['lxc/lxc.conf'], {
    guest: g.name, policy: model.file, interfaces: blocks(interfaces),
    unprivileged: g.lxcUnprivileged
      ? [`WARNING: the policy says '${g.name}' is started by a non-root user, so its host-side names`,
        `(${g.interfaces.map((i) => i.name).join(', ')}) will not be these, and the firewall will not match it.`]
      : [],
  });
}

/**
 * A bridged guest address as the container configures it: with the prefix of the bridge's own
 * address in that subnet, and that address as the gateway; without one, the prefix of the
 * zone's network that holds it, or the address as written.
 */
function onBridge(a: HostAddress, bridge: BridgeModel, model: HostModel): { address: string; gateway?: string } {
  const own = bridge.addresses.find((b) => b.family === a.family && contains(b.network, a.value, a.family));
  if (own) return { address: `${a.addr}/${own.len}`, gateway: own.addr };
  const zone = model.zones.find((z) => z.name === bridge.zone);
  const net = zone?.networks.find((n) => contains(n, a.value, a.family));
  return { address: `${a.addr}/${net?.len ?? a.len}` };
}
