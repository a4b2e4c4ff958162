// libvirt's domain schema (domaincommon.rng, basictypes.rng): `<target dev>` is a deviceName,
// [a-zA-Z0-9_\.\-\\:/]+, and `<source bridge>` is [a-zA-Z0-9_\.\-\\:/ ]*. A value outside them
// is escaped into valid XML but `virt-xml-validate` and `virsh define` refuse the domain.
import { type GrammarProblem, PORTABLE_HINT, shown } from './problem.js';

export const LIBVIRT_DEVICE_NAME = /^[a-zA-Z0-9_.\-\\:/]+$/;
export const LIBVIRT_BRIDGE_NAME = /^[a-zA-Z0-9_.\-\\:/ ]*$/;

export function libvirtProblem(value: string, attribute: 'target dev' | 'source bridge'): GrammarProblem | undefined {
  const pattern = attribute === 'target dev' ? LIBVIRT_DEVICE_NAME : LIBVIRT_BRIDGE_NAME;
  if (pattern.test(value)) return undefined;
  const bad = [...value].find((c) => !pattern.test(c)) ?? '';
  return { message: `contains ${shown(bad)}, which libvirt's domain schema refuses in <${attribute}='...'>`, hint: PORTABLE_HINT };
}
