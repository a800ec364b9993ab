/*
 * Baseline for bench/core.ts: the same rewrite (IPv4/IPv6 destination set,
 * RFC 1624 update of the IPv4 header and the TCP/UDP checksum) as a plain C
 * loop over packets laid out like the WASM core's slots. It is a yardstick
 * for the core's speed, not a second implementation: no extension headers,
 * fragments or other protocols, because the benchmark's packets have none.
 *
 * usage: rewrite-loop FILE ITERATIONS
 * FILE: repeated [u16 little-endian length][bytes]; prints ns per packet.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOT 2048
#define MAXPKT 4096

static uint8_t slots[MAXPKT][SLOT];
static uint32_t lens[MAXPKT], results[MAXPKT];
static uint64_t rule_packets, rule_bytes;
static const uint8_t vip4[4] = {203, 0, 113, 10};
static const uint8_t vip6[16] = {0x20, 0x01, 0x0d, 0xb8, 0x02, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};

static inline uint32_t fold(uint64_t a) {
  a = (a & 0xffffffff) + (a >> 32);
  a = (a & 0xffff) + (a >> 16);
  a = (a & 0xffff) + (a >> 16);
  return (uint32_t)((a & 0xffff) + (a >> 16));
}
static inline void update(uint8_t *field, uint32_t delta) {
  uint16_t hc;
  memcpy(&hc, field, 2);
  uint32_t x = (uint16_t)~hc + delta;
  x = (x & 0xffff) + (x >> 16);
  uint16_t r = (uint16_t)~x;
  if (r == 0) r = 0xffff;
  memcpy(field, &r, 2);
}
static inline uint64_t negsum(const uint8_t *p, int n) {
  uint64_t s = 0;
  for (int i = 0; i < n; i += 4) { uint32_t w; memcpy(&w, p + i, 4); s += (uint32_t)~w; }
  return s;
}
static inline uint64_t sum(const uint8_t *p, int n) {
  uint64_t s = 0;
  for (int i = 0; i < n; i += 4) { uint32_t w; memcpy(&w, p + i, 4); s += w; }
  return s;
}

static void l4(uint8_t *th, uint32_t l4len, int proto, uint32_t delta, uint32_t *res) {
  if (proto == 6) {
    if (l4len < 18) { *res = 3; return; }
    update(th + 16, delta);
  } else if (proto == 17) {
    if (l4len < 8) { *res = 3; return; }
    if (th[6] | th[7]) update(th + 6, delta);
  }
}

static void run(int n) {
  const uint64_t s4 = sum(vip4, 4), s6 = sum(vip6, 16);
  for (int i = 0; i < n; i++) {
    uint8_t *p = slots[i];
    uint32_t len = lens[i], res = 1;
    int version = p[0] >> 4;
    if (version == 4) {
      uint32_t ihl = (p[0] & 15) * 4, tot = (p[2] << 8) | p[3];
      if (len < 20 || ihl < 20 || tot < ihl || tot > len) { results[i] = 2; continue; }
      if ((p[1] >> 2) != 1) { results[i] = 0; continue; }
      uint32_t d = fold(negsum(p + 16, 4) + s4);
      if (!(((p[6] << 8) | p[7]) & 0x1fff)) l4(p + ihl, tot - ihl, p[9], d, &res);
      if (res == 3) { results[i] = 3; continue; }
      memcpy(p + 16, vip4, 4);
      update(p + 10, d);
      rule_bytes += tot;
    } else if (version == 6) {
      uint32_t end = 40 + ((p[4] << 8) | p[5]);
      if (len < 40 || end > len) { results[i] = 2; continue; }
      if ((((p[0] & 15) << 2) | (p[1] >> 6)) != 1) { results[i] = 0; continue; }
      uint32_t d = fold(negsum(p + 24, 16) + s6);
      l4(p + 40, end - 40, p[6], d, &res);
      if (res == 3) { results[i] = 3; continue; }
      memcpy(p + 24, vip6, 16);
      rule_bytes += end;
    } else { results[i] = 2; continue; }
    rule_packets++;
    results[i] = res;
  }
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: %s FILE ITERATIONS\n", argv[0]); return 2; }
  FILE *f = fopen(argv[1], "rb");
  if (!f) { perror(argv[1]); return 1; }
  int n = 0;
  uint16_t l;
  while (n < MAXPKT && fread(&l, 2, 1, f) == 1) {
    if (l > SLOT || fread(slots[n], 1, l, f) != l) { fprintf(stderr, "bad packet file\n"); return 1; }
    lens[n++] = l;
  }
  fclose(f);
  long iterations = atol(argv[2]);
  for (long k = 0; k < iterations / 10; k++) run(n);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long k = 0; k < iterations; k++) { run(n); __asm__ volatile("" ::: "memory"); }
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
  if (rule_packets == 0) { fprintf(stderr, "nothing was rewritten\n"); return 1; }
  printf("%.3f\n", ns / iterations / n);
  return 0;
}
