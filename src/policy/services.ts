// The built-in service catalogue. A policy may add its own under `services:` (and may not
// redefine these). Ports follow IANA and each project's documentation.
import type { ServiceDef } from './schema.js';

export const BUILTIN_SERVICES: Readonly<Record<string, ServiceDef>> = {
  ssh: { description: 'OpenSSH', tcp: 22 },
  http: { description: 'HTTP', tcp: 80 },
  https: { description: 'HTTPS and HTTP/3 (QUIC)', tcp: 443, udp: 443 },
  dns: { description: 'DNS', udp: 53, tcp: 53 },
  dhcp: { description: 'DHCPv4 server and client', udp: ['67-68'] },
  dhcpv6: { description: 'DHCPv6 server and client', udp: ['546-547'] },
  ntp: { description: 'NTP', udp: 123 },
  smtp: { description: 'SMTP', tcp: 25 },
  submission: { description: 'SMTP submission (STARTTLS and implicit TLS)', tcp: [587, 465] },
  imap: { description: 'IMAP', tcp: 143 },
  imaps: { description: 'IMAP over TLS', tcp: 993 },
  pop3s: { description: 'POP3 over TLS', tcp: 995 },
  sip: { description: 'SIP signalling (UDP, TCP) and SIP over TLS', udp: 5060, tcp: [5060, 5061] },
  rtp: { description: "RTP media, Asterisk's default range (rtp.conf rtpstart/rtpend)", udp: '10000-20000' },
  iax: { description: 'IAX2 (Asterisk inter-server)', udp: 4569 },
  mumble: { description: 'Mumble server (murmur)', tcp: 64738, udp: 64738 },
  teamspeak: { description: 'TeamSpeak 3 voice, file transfer and query', udp: 9987, tcp: [30033, 10011] },
  minecraft: { description: 'Minecraft Java Edition', tcp: 25565 },
  'minecraft-bedrock': { description: 'Minecraft Bedrock Edition', udp: 19132 },
  ftp: { description: 'FTP control (data needs the ftp helper)', tcp: 21 },
  rdp: { description: 'Remote Desktop', tcp: 3389, udp: 3389 },
  vnc: { description: 'VNC consoles', tcp: '5900-5999' },
  wireguard: { description: 'WireGuard (default port)', udp: 51820 },
  openvpn: { description: 'OpenVPN', udp: 1194 },
  syslog: { description: 'syslog', udp: 514 },
  snmp: { description: 'SNMP', udp: 161 },
  ping: { description: 'ICMP and ICMPv6 echo', icmp: ['echo-request'], icmpv6: ['echo-request'] },
};

/** ICMP type names nft accepts, for validating user services. */
export const ICMP_TYPES = [
  'echo-reply', 'destination-unreachable', 'source-quench', 'redirect', 'echo-request', 'router-advertisement',
  'router-solicitation', 'time-exceeded', 'parameter-problem', 'timestamp-request', 'timestamp-reply',
  'info-request', 'info-reply', 'address-mask-request', 'address-mask-reply',
] as const;

export const ICMPV6_TYPES = [
  'destination-unreachable', 'packet-too-big', 'time-exceeded', 'parameter-problem', 'echo-request', 'echo-reply',
  'mld-listener-query', 'mld-listener-report', 'mld-listener-done', 'nd-router-solicit', 'nd-router-advert',
  'nd-neighbor-solicit', 'nd-neighbor-advert', 'nd-redirect', 'router-renumbering', 'ind-neighbor-solicit',
  'ind-neighbor-advert', 'mld2-listener-report',
] as const;
