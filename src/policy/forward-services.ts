// A port forward publishes TCP and UDP ports (DNAT keyed on the port): a service without ports,
// such as ping, cannot be forwarded, and the ICMP part of a service that has ports is not.
// Said at the service's place in the forward, instead of compiling nothing for it in silence.
import { type DocPath, type Finding, error, warning } from './diagnostics.js';
import { portRanges } from './ports.js';
import type { Policy } from './schema.js';
import { BUILTIN_SERVICES } from './services.js';

export function checkForwardServices(p: Policy, report: (f: Finding) => void): void {
  const services = { ...BUILTIN_SERVICES, ...(p.services ?? {}) };
  (p.forwards ?? []).forEach((f, i) => {
    if (f.service === undefined) return;
    const names = Array.isArray(f.service) ? f.service : [f.service];
    names.forEach((name, j) => {
      const def = services[name];
      if (def === undefined) return; // unknown-service is reported elsewhere
      const path: DocPath = Array.isArray(f.service) ? ['forwards', i, 'service', j] : ['forwards', i, 'service'];
      const hasPorts = portRanges(def.tcp).length + portRanges(def.udp).length > 0;
      const icmp = [...(def.icmp ?? []), ...(def.icmpv6 ?? [])].length > 0;
      if (!hasPorts) {
        report(error('forward-without-ports', path,
          `forward ${i + 1} names service '${name}', which has no TCP or UDP ports: a port forward publishes ports, so nothing would be forwarded for it`,
          icmp
            ? `remove '${name}' from the forward; ICMP to the public address is answered by the host, so accept it with a rule (e.g. { from: ${String(f.from)}, to: host, service: ${name}, action: accept }), or to reach the guest itself use a rule to: ${String(f.to)}`
            : `remove '${name}' from the forward, or give the service tcp: or udp: ports`));
      } else if (icmp) {
        report(warning('forward-icmp-ignored', path,
          `forward ${i + 1}: service '${name}' also names ICMP types, which a port forward does not carry; only its ports are forwarded`,
          `accept the ICMP part with a rule (to: host for the public address, or to: ${String(f.to)} for the guest's own address)`));
      }
    });
  });
}
