// systemd unit names (systemd.unit(5)): a device unit for an interface is
// sys-subsystem-net-devices-<escaped>.device, escaped as systemd-escape does: every byte other
// than ASCII letters, digits, ':' and '_' (and '.' not in first place) as \xNN, byte by byte in
// UTF-8. Unit names have at most 255 bytes.
import type { GrammarProblem } from './problem.js';

export const UNIT_NAME_MAX = 255;

export function systemdEscape(name: string): string {
  let out = '';
  const bytes = Buffer.from(name, 'utf8');
  bytes.forEach((b, i) => {
    const c = String.fromCharCode(b);
    out += b < 0x80 && (/[A-Za-z0-9:_]/.test(c) || (c === '.' && i > 0)) ? c : `\\x${b.toString(16).padStart(2, '0')}`;
  });
  return out;
}

export function deviceUnitName(ifname: string): string {
  return `sys-subsystem-net-devices-${systemdEscape(ifname)}.device`;
}

export function deviceUnitProblem(ifname: string): GrammarProblem | undefined {
  const unit = deviceUnitName(ifname);
  return unit.length > UNIT_NAME_MAX ? { message: `would need a systemd unit name of ${unit.length} bytes; systemd allows ${UNIT_NAME_MAX}`, hint: 'use a shorter name' } : undefined;
}
