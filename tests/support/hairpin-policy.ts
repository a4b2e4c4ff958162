// The hairpin lab's policy, shared by the compiler's unit tests (tests/unit/compile/bridge.test.ts)
// and the real-packet test (tests/e2e/bridge-hairpin.test.ts), so that both speak of one ruleset:
// a forward publishes sip's TCP 5061 and UDP 5060 to net and, by hairpin, to every zone, including
// sip's own bridge, where web sits; dmz -> dmz is dropped, dmz -> net accepted.
export const HAIRPIN_POLICY = `
version: 1
host:
  interfaces:
    eth0: { zone: net, addresses: [203.0.113.10/24] }
zones:
  net: {}
  dmz: { networks: [10.0.10.0/24, fd00:10::/64] }
bridges:
  br-dmz: { zone: dmz, addresses: [10.0.10.1/24, fd00:10::1/64] }
guests:
  sip:
    platform: lxc
    interfaces:
      - { mode: bridged, bridge: br-dmz, mac: "02:00:0a:00:0a:0a", addresses: [10.0.10.10, fd00:10::10] }
  web:
    platform: lxc
    interfaces:
      - { mode: bridged, bridge: br-dmz, mac: "02:00:0a:00:0a:0b", addresses: [10.0.10.11, fd00:10::11] }
services:
  voip: { tcp: 5061, udp: 5060 }
policies:
  - { from: dmz, to: net, action: accept }
  - { from: all, to: all, action: drop }
forwards:
  - { from: net, to: sip, service: voip }
`;
