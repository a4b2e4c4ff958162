// /init of the test guest's initramfs (busybox sh). It loads the virtio NIC modules, configures
// eth0 from the kernel command line, listens on the TCP ports it is given, and runs the probe
// agent on the second serial port (ttyS1, a unix socket on the host; the kernel console is ttyS0):
//
//   kernel command line  gw.ip=A/L[,A/L]  gw.gw=V4GW  gw.ip6=A/L[,...]  gw.gw6=V6GW  gw.listen=P[,P]
//   host -> guest        "<id> <sh command>\n"      run it (eval), then
//   guest -> host        "RES <id> <exit code> <output, newlines as |>"
//                        "GOT tcp <port> <local addr:port> <peer addr:port>"  for each accepted connection
//                        "FAIL <step>"                                         a setup step that failed
//                        "READY"                                               once listening
//
// The host (./guest.ts) sends shell commands rather than a vocabulary of probes: the guest has
// busybox's nc, ping, tftp and ip, which is all a probe needs.
/** The NIC driver and what it needs, in load order (CONFIG_VIRTIO* are modules in Debian's kernel). */
export const VIRTIO_NET_MODULES = ['virtio_ring', 'virtio', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio_pci', 'failover', 'net_failover', 'virtio_net'] as const;

export const GUEST_INIT = String.raw`#!/bin/sh
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in ${VIRTIO_NET_MODULES.join(' ')}; do insmod /lib/modules/$m.ko || echo "gw-init: insmod $m failed"; done
arg() { for a in $(cat /proc/cmdline); do case "$a" in "$1="*) echo "${'${a#*=}'}" | tr , ' ';; esac; done; }
hostname "$(arg gw.name)"
# A step that fails is reported before READY, and the host refuses the guest.
must() { "$@" || echo "FAIL $*" >> /tmp/gw-failed; }
must ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
must sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.eth0.accept_dad=0
must ip link set eth0 up
for a in $(arg gw.ip); do must ip address add "$a" dev eth0; done
for g in $(arg gw.gw); do must ip route add default via "$g" dev eth0 onlink; done
for a in $(arg gw.ip6); do must ip -6 address add "$a" dev eth0; done
for g in $(arg gw.gw6); do must ip -6 route add default via "$g" dev eth0; done

cat > /bin/gw-accept <<'EOF'
#!/bin/sh
# One accepted connection on port $1 (nc -e): report who came in, and greet them. The client may
# have half-closed already (CLOSE_WAIT); one that reset it is gone, so clients hold on until GOT.
c=$(netstat -tn | awk -v p=":$1" '$6 != "TIME_WAIT" && substr($4, length($4) - length(p) + 1) == p { print $4, $5; exit }')
echo "GOT tcp $1 $c" > /dev/ttyS1
echo "hello from $(hostname)"
EOF
chmod 755 /bin/gw-accept
for p in $(arg gw.listen); do
  printf '#!/bin/sh\nexec /bin/gw-accept %s\n' "$p" > /bin/gw-accept-$p
  chmod 755 /bin/gw-accept-$p
  nc -ll -p "$p" -e /bin/gw-accept-$p &
done

stty -F /dev/ttyS1 raw -echo
exec 3<>/dev/ttyS1
[ -e /tmp/gw-failed ] && cat /tmp/gw-failed >&3
echo READY >&3
while IFS= read -r line <&3; do
  id=${'${line%% *}'}
  cmd=${'${line#* }'}
  out=$(eval "$cmd" 2>&1 </dev/null)
  rc=$?
  echo "RES $id $rc $(echo "$out" | tr '\n' '|' | head -c 400)" >&3
done
poweroff -f
`;
