// C source of `labtool`: the traffic programs the daemon's lab tests and
// benchmarks need and Node is too slow for (a UDP flood beyond the
// rewriter's capacity, a counting sink, echo servers and round-trip probes,
// and the soak's numbered datagrams with a sink that records each one).
// Compiled on first use by lab-tool.ts; kept as text so that tsc carries it
// into dist/ with everything else.
export const LABTOOL_SOURCE = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32
#define MAX_FLOWS 256
#define MAX_PAYLOAD 1472
#define SINK_BATCH 256

static _Noreturn void die(const char *what) { perror(what); exit(2); }

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void resolve(const char *host, const char *port, int socktype, struct sockaddr_storage *out, socklen_t *len) {
  struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = socktype };
  struct addrinfo *res;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) { fprintf(stderr, "%s port %s: %s\n", host, port, gai_strerror(rc)); exit(2); }
  memcpy(out, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
}

static int bound(const char *host, const char *port, int socktype) {
  struct sockaddr_storage a; socklen_t len;
  resolve(host, port, socktype, &a, &len);
  int fd = socket(a.ss_family, socktype, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int big = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  if (bind(fd, (struct sockaddr *)&a, len) < 0) die("bind");
  if (socktype == SOCK_STREAM && listen(fd, 16) < 0) die("listen");
  return fd;
}

static int connected(const char *host, const char *port, int socktype) {
  struct sockaddr_storage a; socklen_t len;
  resolve(host, port, socktype, &a, &len);
  int fd = socket(a.ss_family, socktype, 0);
  if (fd < 0) die("socket");
  if (connect(fd, (struct sockaddr *)&a, len) < 0) die("connect");
  if (socktype == SOCK_STREAM) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

/* flood HOST PORT SIZE SECONDS RATE FLOWS: RATE 0 = as fast as possible. */
static int flood(char **a) {
  const char *host = a[0], *port = a[1];
  int size = atoi(a[2]), flows = atoi(a[5]);
  double seconds = atof(a[3]), rate = atof(a[4]);
  if (size < 0 || size > MAX_PAYLOAD || flows < 1 || flows > MAX_FLOWS) { fprintf(stderr, "flood: bad size or flows\n"); return 2; }
  int fds[MAX_FLOWS];
  for (int i = 0; i < flows; i++) fds[i] = connected(host, port, SOCK_DGRAM);
  static char payload[MAX_PAYLOAD];
  memset(payload, 'l', sizeof payload);
  struct iovec iov = { payload, (size_t)size };
  struct mmsghdr msgs[BATCH];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) { msgs[i].msg_hdr.msg_iov = &iov; msgs[i].msg_hdr.msg_iovlen = 1; }
  uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9);
  uint64_t sent = 0, errors = 0, t;
  double interval_ns = rate > 0 ? 1e9 * BATCH / rate : 0;
  uint64_t batches = 0;
  while ((t = now_ns()) < end) {
    if (interval_ns > 0) {
      uint64_t due = start + (uint64_t)(interval_ns * (double)batches);
      if (due > t) {
        struct timespec ts = { (time_t)(due / 1000000000ull), (long)(due % 1000000000ull) };
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        continue;
      }
    }
    int n = sendmmsg(fds[batches % (uint64_t)flows], msgs, BATCH, 0);
    if (n < 0) errors++;
    else sent += (uint64_t)n;
    batches++;
  }
  double took = (double)(now_ns() - start) / 1e9;
  printf("{\"sent\":%llu,\"errors\":%llu,\"seconds\":%.6f}\n", (unsigned long long)sent, (unsigned long long)errors, took);
  return 0;
}

/* sink HOST PORT: counts datagrams; answers each "count" line on stdin with the total. */
static int sink(char **a) {
  int fd = bound(a[0], a[1], SOCK_DGRAM);
  static char bufs[SINK_BATCH][64];
  struct iovec iov[SINK_BATCH];
  struct mmsghdr msgs[SINK_BATCH];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < SINK_BATCH; i++) {
    iov[i].iov_base = bufs[i]; iov[i].iov_len = sizeof bufs[i];
    msgs[i].msg_hdr.msg_iov = &iov[i]; msgs[i].msg_hdr.msg_iovlen = 1;
  }
  unsigned long long count = 0;
  printf("ready\n");
  fflush(stdout);
  struct pollfd p[2] = { { fd, POLLIN, 0 }, { 0, POLLIN, 0 } };
  char line[64];
  for (;;) {
    if (poll(p, 2, -1) < 0 && errno != EINTR) die("poll");
    if (p[0].revents & POLLIN) {
      int n = recvmmsg(fd, msgs, SINK_BATCH, MSG_DONTWAIT, NULL);
      if (n > 0) count += (unsigned long long)n;
    }
    if (p[1].revents & (POLLIN | POLLHUP)) {
      if (!fgets(line, sizeof line, stdin)) return 0;
      printf("%llu\n", count);
      fflush(stdout);
    }
  }
}

/* udp-echo HOST PORT: runs until killed. */
static _Noreturn void udp_echo(char **a) {
  int fd = bound(a[0], a[1], SOCK_DGRAM);
  printf("ready\n");
  fflush(stdout);
  char buf[2048];
  for (;;) {
    struct sockaddr_storage from; socklen_t len = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
    if (n < 0) { if (errno == EINTR) continue; die("recvfrom"); }
    sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
  }
}

/* tcp-echo HOST PORT: one connection at a time, until killed. */
static _Noreturn void tcp_echo(char **a) {
  int lfd = bound(a[0], a[1], SOCK_STREAM);
  printf("ready\n");
  fflush(stdout);
  char buf[65536];
  for (;;) {
    int c = accept(lfd, NULL, NULL);
    if (c < 0) { if (errno == EINTR) continue; die("accept"); }
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ssize_t n;
    while ((n = read(c, buf, sizeof buf)) > 0) {
      for (ssize_t off = 0; off < n;) {
        ssize_t w = write(c, buf + off, (size_t)(n - off));
        if (w <= 0) break;
        off += w;
      }
    }
    close(c);
  }
}

static int read_full(int fd, char *buf, size_t n) {
  for (size_t off = 0; off < n;) {
    ssize_t r = read(fd, buf + off, n - off);
    if (r <= 0) return -1;
    off += (size_t)r;
  }
  return 0;
}

/* rtt udp|tcp HOST PORT COUNT SIZE: one line of round-trip times in ns; lost
   UDP requests (no answer in 1 s) are counted, not timed. */
static int rtt(char **a) {
  int tcp = strcmp(a[0], "tcp") == 0;
  int fd = connected(a[1], a[2], tcp ? SOCK_STREAM : SOCK_DGRAM);
  int count = atoi(a[3]), size = atoi(a[4]);
  if (size < 1 || size > MAX_PAYLOAD) { fprintf(stderr, "rtt: bad size\n"); return 2; }
  if (!tcp) {
    struct timeval tv = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  char out[MAX_PAYLOAD], in[MAX_PAYLOAD + 1];
  memset(out, 'r', sizeof out);
  int lost = 0;
  printf("{\"ns\":[");
  for (int i = 0, first = 1; i < count; i++) {
    uint64_t t0 = now_ns();
    if (write(fd, out, (size_t)size) != size) die("write");
    if (tcp) { if (read_full(fd, in, (size_t)size) < 0) die("read"); }
    else if (read(fd, in, sizeof in) != size) { lost++; continue; }
    printf(first ? "%llu" : ",%llu", (unsigned long long)(now_ns() - t0));
    first = 0;
  }
  printf("],\"lost\":%d}\n", lost);
  return 0;
}

/* Numbered datagrams (seqsend/seqsink). Datagram n carries SEQ_MAGIC, the
   index of the address it was sent to, n, its send time, and SEQ_PATTERN
   bytes derived from n: the sink tells a delivered datagram from a damaged,
   misdirected or foreign one. Times are CLOCK_MONOTONIC, which every process
   of the host (all network namespaces) shares. */
#define SEQ_MAGIC 0x4c33534bu
#define SEQ_SIZE 64
#define SEQ_HEADER 24
#define SEQ_MAX_DESTS 16
#define SEQ_BAD_LENGTH 1
#define SEQ_BAD_MAGIC 2
#define SEQ_MISDIRECTED 4
#define SEQ_BAD_PATTERN 8

static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static void seq_pattern(uint64_t seq, unsigned char *out) {
  uint64_t x = seq;
  for (int i = SEQ_HEADER; i < SEQ_SIZE; i += 8) {
    x = splitmix64(x);
    memcpy(out + i, &x, 8);
  }
}

/* A line (or EOF) on stdin: the caller says stop. */
static int stdin_says_stop(int timeout_ms) {
  struct pollfd p = { 0, POLLIN, 0 };
  return poll(&p, 1, timeout_ms) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

/* seqsend PORT RATE OUTFILE HOST...: datagram n goes to HOST[n % count], due
   at start + n / RATE (late ones go at once, in order); its send time, or 0
   if sendto failed, is appended to OUTFILE as 8 bytes. Runs until a line or
   EOF on stdin, then prints {sent, errors, seconds}. Unconnected sockets: an
   ICMP error for one datagram (port unreachable while the daemon is down)
   must not fail the next send. */
static int seqsend(int argc, char **a) {
  const char *port = a[0];
  double rate = atof(a[1]);
  int dests = argc - 3;
  if (rate <= 0 || dests < 1 || dests > SEQ_MAX_DESTS) { fprintf(stderr, "seqsend: bad rate or addresses\n"); return 2; }
  FILE *out = fopen(a[2], "wb");
  if (!out) die("seqsend: output file");
  struct sockaddr_storage to[SEQ_MAX_DESTS]; socklen_t tolen[SEQ_MAX_DESTS];
  int fd[SEQ_MAX_DESTS];
  for (int i = 0; i < dests; i++) {
    resolve(a[3 + i], port, SOCK_DGRAM, &to[i], &tolen[i]);
    fd[i] = socket(to[i].ss_family, SOCK_DGRAM, 0);
    if (fd[i] < 0) die("socket");
  }
  unsigned char msg[SEQ_SIZE];
  uint64_t start = now_ns(), n = 0, errors = 0;
  double interval_ns = 1e9 / rate;
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    uint64_t t = now_ns();
    for (; start + (uint64_t)(interval_ns * (double)n) <= t; n++) {
      uint32_t magic = SEQ_MAGIC, dest = (uint32_t)(n % (uint64_t)dests);
      uint64_t sent_at = now_ns();
      memcpy(msg, &magic, 4);
      memcpy(msg + 4, &dest, 4);
      memcpy(msg + 8, &n, 8);
      memcpy(msg + 16, &sent_at, 8);
      seq_pattern(n, msg);
      if (sendto(fd[dest], msg, sizeof msg, 0, (struct sockaddr *)&to[dest], tolen[dest]) != (ssize_t)sizeof msg) {
        errors++;
        sent_at = 0;
      }
      fwrite(&sent_at, 8, 1, out);
    }
    if (stdin_says_stop(0)) break;
    uint64_t due = start + (uint64_t)(interval_ns * (double)n);
    struct timespec ts = { (time_t)(due / 1000000000ull), (long)(due % 1000000000ull) };
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
  }
  if (fclose(out) != 0) die("seqsend: output file");
  printf("{\"sent\":%llu,\"errors\":%llu,\"seconds\":%.6f}\n", (unsigned long long)(n - errors), (unsigned long long)errors, (double)(now_ns() - start) / 1e9);
  return 0;
}

/* One received datagram in seqsink's OUTFILE (16 bytes, host order). */
struct seq_record { uint32_t seq; uint16_t dest; uint16_t flags; uint64_t at; };

/* seqsink PORT OUTFILE HOST...: a UDP socket on each HOST:PORT; every
   datagram is appended to OUTFILE as a seq_record (dest = the index of the
   socket it arrived on, flags = what was wrong with it). Runs until a line
   or EOF on stdin, then reads what is still queued and prints {received,
   damaged}. */
static int seqsink(int argc, char **a) {
  int dests = argc - 2;
  if (dests < 1 || dests > SEQ_MAX_DESTS) { fprintf(stderr, "seqsink: 1-%d addresses\n", SEQ_MAX_DESTS); return 2; }
  FILE *out = fopen(a[1], "wb");
  if (!out) die("seqsink: output file");
  struct pollfd p[SEQ_MAX_DESTS + 1];
  for (int i = 0; i < dests; i++) p[i] = (struct pollfd){ bound(a[2 + i], a[0], SOCK_DGRAM), POLLIN, 0 };
  p[dests] = (struct pollfd){ 0, POLLIN, 0 };
  static unsigned char bufs[SINK_BATCH][SEQ_SIZE + 1];
  struct iovec iov[SINK_BATCH];
  struct mmsghdr msgs[SINK_BATCH];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < SINK_BATCH; i++) {
    iov[i].iov_base = bufs[i]; iov[i].iov_len = sizeof bufs[i];
    msgs[i].msg_hdr.msg_iov = &iov[i]; msgs[i].msg_hdr.msg_iovlen = 1;
  }
  unsigned long long received = 0, damaged = 0;
  unsigned char want[SEQ_SIZE];
  printf("ready\n");
  fflush(stdout);
  for (int stopping = 0;;) {
    if (!stopping && poll(p, (nfds_t)dests + 1, -1) < 0 && errno != EINTR) die("poll");
    if (!stopping && (p[dests].revents & (POLLIN | POLLHUP | POLLERR))) stopping = 1;
    int got = 0;
    for (int i = 0; i < dests; i++) {
      if (!stopping && !(p[i].revents & POLLIN)) continue;
      int n = recvmmsg(p[i].fd, msgs, SINK_BATCH, MSG_DONTWAIT, NULL);
      if (n <= 0) continue;
      got += n;
      uint64_t at = now_ns();
      for (int k = 0; k < n; k++) {
        unsigned char *b = bufs[k];
        struct seq_record r = { 0, (uint16_t)i, 0, at };
        uint32_t magic = 0, dest = 0;
        uint64_t seq = 0;
        if (msgs[k].msg_len != SEQ_SIZE) r.flags |= SEQ_BAD_LENGTH;
        if (msgs[k].msg_len >= SEQ_HEADER) {
          memcpy(&magic, b, 4);
          memcpy(&dest, b + 4, 4);
          memcpy(&seq, b + 8, 8);
        }
        if (magic != SEQ_MAGIC) r.flags |= SEQ_BAD_MAGIC;
        if (dest != (uint32_t)i) r.flags |= SEQ_MISDIRECTED;
        if (!(r.flags & SEQ_BAD_LENGTH)) {
          seq_pattern(seq, want);
          if (memcmp(b + SEQ_HEADER, want + SEQ_HEADER, SEQ_SIZE - SEQ_HEADER) != 0) r.flags |= SEQ_BAD_PATTERN;
        }
        r.seq = (uint32_t)seq;
        if (r.flags) damaged++;
        fwrite(&r, sizeof r, 1, out);
      }
    }
    received += (unsigned long long)got;
    if (stopping && got == 0) break;
  }
  if (fclose(out) != 0) die("seqsink: output file");
  printf("{\"received\":%llu,\"damaged\":%llu}\n", received, damaged);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  if (argc >= 8 && strcmp(argv[1], "flood") == 0) return flood(argv + 2);
  if (argc >= 4 && strcmp(argv[1], "sink") == 0) return sink(argv + 2);
  if (argc >= 4 && strcmp(argv[1], "udp-echo") == 0) udp_echo(argv + 2);
  if (argc >= 4 && strcmp(argv[1], "tcp-echo") == 0) tcp_echo(argv + 2);
  if (argc >= 7 && strcmp(argv[1], "rtt") == 0) return rtt(argv + 2);
  if (argc >= 6 && strcmp(argv[1], "seqsend") == 0) return seqsend(argc - 2, argv + 2);
  if (argc >= 5 && strcmp(argv[1], "seqsink") == 0) return seqsink(argc - 2, argv + 2);
  fprintf(stderr, "usage: labtool flood HOST PORT SIZE SECONDS RATE FLOWS | sink HOST PORT | udp-echo HOST PORT | tcp-echo HOST PORT | rtt udp|tcp HOST PORT COUNT SIZE | seqsend PORT RATE OUTFILE HOST... | seqsink PORT OUTFILE HOST...\n");
  return 2;
}
`;
