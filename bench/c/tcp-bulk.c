// tcp-bulk: one TCP stream, as fast as it goes. The receiver counts the bytes of a fixed window.
// usage: tcp-bulk recv PORT WAIT_MS WARMUP_MS WINDOW_MS CPU
//          prints "ready" once listening, then {"bytes":N,"ms":T} and closes the connection
//        tcp-bulk send DST_IP PORT DURATION_MS MAX_BYTES CPU
//          writes until the time or byte cap, or until the receiver closes; prints {"sent":N,"ms":T}
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (256 << 10)

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);
}

static char buf[BUF];

static int receiver(int port, double wait, double warmup, double window) {
  int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {htonl(INADDR_ANY)}};
  if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(ls, 1) < 0) {
    perror("tcp-bulk: listen");
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  struct pollfd p = {.fd = ls, .events = POLLIN};
  if (poll(&p, 1, (int)wait) <= 0) {
    printf("{\"bytes\":0,\"ms\":0,\"error\":\"no connection in %.0f ms\"}\n", wait);
    return 0;
  }
  int s = accept(ls, 0, 0);
  if (s < 0) {
    perror("tcp-bulk: accept");
    return 1;
  }
  struct timeval tv = {.tv_sec = 0, .tv_usec = 20000};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  double start = now_ms() + warmup, end = start + window, t;
  long long bytes = 0;
  while ((t = now_ms()) < end) {
    ssize_t r = read(s, buf, BUF);
    if (r == 0) break;
    if (r > 0 && now_ms() >= start) bytes += r;
  }
  double ms = (t < end ? t : end) - start;
  printf("{\"bytes\":%lld,\"ms\":%.1f}\n", bytes, ms > 0 ? ms : 0);
  close(s);
  return 0;
}

static int sender(const char *ip, int port, double duration, long long max) {
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1) {
    fprintf(stderr, "tcp-bulk: bad address %s\n", ip);
    return 2;
  }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) {
    perror("tcp-bulk: connect");
    return 1;
  }
  struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  memset(buf, 'g', BUF);
  double t0 = now_ms(), end = t0 + duration;
  long long sent = 0;
  while (sent < max && now_ms() < end) {
    long long n = max - sent < BUF ? max - sent : BUF;
    ssize_t r = write(s, buf, (size_t)n);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r <= 0) break; /* the receiver closed: its window is over */
    sent += r;
  }
  printf("{\"sent\":%lld,\"ms\":%.1f}\n", sent, now_ms() - t0);
  close(s);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 7 && strcmp(argv[1], "recv") == 0) {
    pin(atoi(argv[6]));
    return receiver(atoi(argv[2]), atof(argv[3]), atof(argv[4]), atof(argv[5]));
  }
  if (argc == 7 && strcmp(argv[1], "send") == 0) {
    pin(atoi(argv[6]));
    return sender(argv[2], atoi(argv[3]), atof(argv[4]), atoll(argv[5]));
  }
  fprintf(stderr, "usage: %s recv PORT WAIT_MS WARMUP_MS WINDOW_MS CPU | send DST_IP PORT DURATION_MS MAX_BYTES CPU\n", argv[0]);
  return 2;
}
