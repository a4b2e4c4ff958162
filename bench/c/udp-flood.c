// udp-flood: every packet a new UDP connection. Sends IPv4/UDP datagrams from rotating source
// ports and addresses (a raw socket with IP_HDRINCL, batched with sendmmsg) until a time or a
// packet cap is reached, then prints {"sent":N,"ms":T} on stdout.
// usage: udp-flood DST_IP DST_PORT SRC_BASE_IP SRC_ADDRS DURATION_MS MAX_PACKETS CPU
// Source tuples: addresses SRC_BASE_IP .. +SRC_ADDRS-1, ports 1024..65535, the port turning
// fastest, so no tuple repeats before SRC_ADDRS * 64512 packets.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64
#define PAYLOAD 18

struct pkt {
  struct iphdr ip;
  struct udphdr udp;
  char payload[PAYLOAD];
} __attribute__((packed));

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* CPU time of this process: its sendmmsg calls and, when the kernel charges softirq work to the
 * task that raised it (no IRQ time accounting), the forwarding of its packets on this CPU. */
static double cpu_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set); /* best effort: the caller may have fewer CPUs */
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: %s DST_IP DST_PORT SRC_BASE_IP SRC_ADDRS DURATION_MS MAX_PACKETS CPU\n", argv[0]);
    return 2;
  }
  struct in_addr dst, base;
  if (inet_pton(AF_INET, argv[1], &dst) != 1 || inet_pton(AF_INET, argv[3], &base) != 1) {
    fprintf(stderr, "udp-flood: bad address\n");
    return 2;
  }
  int dport = atoi(argv[2]);
  uint32_t addrs = (uint32_t)strtoul(argv[4], 0, 10);
  double duration = atof(argv[5]);
  long long max = atoll(argv[6]);
  pin(atoi(argv[7]));
  if (addrs == 0 || dport <= 0 || dport > 65535 || duration <= 0 || max <= 0) {
    fprintf(stderr, "udp-flood: bad arguments\n");
    return 2;
  }

  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW); /* IPPROTO_RAW implies IP_HDRINCL */
  if (fd < 0) {
    perror("udp-flood: socket");
    return 1;
  }
  int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);

  static struct pkt pkts[BATCH];
  static struct iovec iov[BATCH];
  static struct mmsghdr msgs[BATCH];
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst};
  for (int i = 0; i < BATCH; i++) {
    struct pkt *p = &pkts[i];
    memset(p, 0, sizeof *p);
    p->ip.version = 4;
    p->ip.ihl = 5;
    p->ip.ttl = 64;
    p->ip.protocol = IPPROTO_UDP;
    p->ip.tot_len = htons(sizeof *p);
    p->ip.daddr = dst.s_addr; /* the kernel fills in id and checksum */
    p->udp.dest = htons(dport);
    p->udp.len = htons(sizeof p->udp + PAYLOAD);
    p->udp.check = 0; /* optional in IPv4 */
    memcpy(p->payload, "guestwall-bench-0", PAYLOAD - 1);
    iov[i].iov_base = p;
    iov[i].iov_len = sizeof *p;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &to;
    msgs[i].msg_hdr.msg_namelen = sizeof to;
  }

  uint32_t hbase = ntohl(base.s_addr), a = 0, port = 1024;
  long long sent = 0;
  int errors = 0;
  double start = now_ms(), end = start + duration, cpu0 = cpu_ms();
  while (sent < max) {
    int n = BATCH;
    if (max - sent < n) n = (int)(max - sent);
    for (int i = 0; i < n; i++) {
      pkts[i].ip.saddr = htonl(hbase + a);
      pkts[i].udp.source = htons((uint16_t)port);
      if (++port > 65535) {
        port = 1024;
        if (++a == addrs) a = 0;
      }
    }
    int r = sendmmsg(fd, msgs, n, 0);
    if (r < 0) {
      if (errno == ENOBUFS || errno == EAGAIN || errno == EPERM) { /* queue full, or a ruleset dropped it locally */
        if (++errors > 1000000) break;
        continue;
      }
      perror("udp-flood: sendmmsg");
      return 1;
    }
    sent += r;
    if ((sent & 0x3ff) < (unsigned)r && now_ms() >= end) break;
  }
  printf("{\"sent\":%lld,\"ms\":%.1f,\"cpuMs\":%.3f,\"errors\":%d}\n", sent, now_ms() - start, cpu_ms() - cpu0, errors);
  return 0;
}
