// udp-count: counts the UDP datagrams that reach a port over a fixed window. Prints "ready" once
// bound, waits for the first datagram (at most WAIT_MS), lets WARMUP_MS pass uncounted, then
// counts for WINDOW_MS and prints {"packets":N,"ms":T}. Batched with recvmmsg. When nothing
// arrives for 250 ms the sender has stopped (its packet cap): the window ends at the last
// datagram and T says how long it really was.
// usage: udp-count PORT WAIT_MS WARMUP_MS WINDOW_MS CPU
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 256
#define SLOT 64

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s PORT WAIT_MS WARMUP_MS WINDOW_MS CPU\n", argv[0]);
    return 2;
  }
  int port = atoi(argv[1]);
  double wait = atof(argv[2]), warmup = atof(argv[3]), window = atof(argv[4]);
  int cpu = atoi(argv[5]);
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    perror("udp-count: socket");
    return 1;
  }
  int rcvbuf = 64 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
  struct timeval tv = {.tv_sec = 0, .tv_usec = 20000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {htonl(INADDR_ANY)}};
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    perror("udp-count: bind");
    return 1;
  }
  static char bufs[BATCH][SLOT];
  static struct iovec iov[BATCH];
  static struct mmsghdr msgs[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = bufs[i];
    iov[i].iov_len = SLOT;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  printf("ready\n");
  fflush(stdout);

  double t0 = now_ms(), first = -1;
  while (first < 0) {
    int r = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, 0);
    if (r > 0) first = now_ms();
    else if (now_ms() - t0 > wait) {
      printf("{\"packets\":0,\"ms\":0,\"error\":\"nothing arrived in %.0f ms\"}\n", wait);
      return 0;
    }
  }
  double start = first + warmup, end = start + window;
  long long count = 0;
  double t, last = first;
  while ((t = now_ms()) < end) {
    int r = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, 0);
    double at = now_ms();
    if (r > 0) {
      if (at >= start) count += r;
      last = at;
    } else if (at - last > 250) {
      break;
    }
  }
  double ms = (last < end ? last : end) - start;
  printf("{\"packets\":%lld,\"ms\":%.1f}\n", count, ms > 0 ? ms : 0);
  return 0;
}
