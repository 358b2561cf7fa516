/*
 * Fragment physical memory on the real kernel, for scripts/fidelity/compaction-real.sh (see
 * docs/fidelity.md): a private anonymous mapping of N MiB is touched page by page (one movable
 * order-0 page per 4 KiB, THP disabled), then all but 1 page of every K is given back with
 * MADV_DONTNEED. What stays is a comb of single movable pages, one every K*4 KiB of virtual memory
 * (and, since a fresh mapping is mostly laid out in physical order, roughly every K pages of
 * physical memory), which keeps every pageblock it lands in from ever being a free 2 MiB block
 * until compaction moves it away.
 *
 * The program then waits for commands on stdin, one per line, and answers each on stdout with one
 * line of JSON:
 *   map    where the kept pages are now (read from /proc/self/pagemap, which shows PFNs to root):
 *          {"kept":…,"present":…,"moved":… (PFN differs from the one after fragmenting),
 *           "dma":…,"dma32":…,"normal":… (pages per zone by PFN),"pageblocks":… (distinct 2 MiB
 *           pageblocks holding kept pages),"min_pfn":…,"max_pfn":…}
 *   exit   unmap and exit (so does EOF on stdin).
 * Before waiting it prints {"event":"touched",…} with the placement of the whole mapping (how
 * many pageblocks it covers wholly) and {"event":"ready",…} with the placement of the kept pages.
 *
 * Usage: fragment MiB K        (MiB <= 4096; K >= 1; K = 1 keeps every page)
 * Build: gcc -O2 -Wall -o bench/out/fidelity/fragment bench/c/fragment.c
 * Must run as root (PFNs in pagemap); never leaves anything behind after exit.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define PFN_MASK ((1ULL << 55) - 1)
#define PM_PRESENT (1ULL << 63)
#define DMA_END_PFN 0x1000UL      /* 16 MiB */
#define DMA32_END_PFN 0x100000UL  /* 4 GiB */
#define PAGEBLOCK_SHIFT 9         /* 512 pages, 2 MiB */

static unsigned long npages, every;
static char *base;
static uint64_t *pm;       /* pagemap entries of the whole mapping */
static uint64_t *first;    /* PFN of each kept page right after fragmenting */
static int pmfd;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void read_pagemap(void) {
  size_t want = npages * sizeof(uint64_t);
  off_t off = (off_t)((uintptr_t)base / PAGE) * (off_t)sizeof(uint64_t);
  size_t got = 0;
  while (got < want) {
    ssize_t n = pread(pmfd, (char *)pm + got, want - got, off + (off_t)got);
    if (n <= 0) {
      perror("pread pagemap");
      exit(1);
    }
    got += (size_t)n;
  }
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Distinct pageblocks among `n` PFNs (sorted in place). */
static unsigned long distinct_blocks(uint64_t *pfns, unsigned long n) {
  qsort(pfns, n, sizeof(uint64_t), cmp_u64);
  unsigned long d = 0;
  uint64_t last = UINT64_MAX;
  for (unsigned long i = 0; i < n; i++) {
    uint64_t b = pfns[i] >> PAGEBLOCK_SHIFT;
    if (b != last) d++, last = b;
  }
  return d;
}

/* Placement of the pages i with i % stride == 0; `moved` compares with first[] when set. */
static void report(const char *event, unsigned long stride, int compare) {
  read_pagemap();
  unsigned long n = 0, present = 0, moved = 0, z[3] = {0, 0, 0};
  uint64_t lo = UINT64_MAX, hi = 0;
  uint64_t *pfns = malloc((npages / stride + 1) * sizeof(uint64_t));
  for (unsigned long i = 0; i < npages; i += stride, n++) {
    uint64_t e = pm[i];
    if (!(e & PM_PRESENT)) continue;
    uint64_t pfn = e & PFN_MASK;
    if (compare && first[i / stride] != pfn) moved++;
    if (!compare && stride == every) first[i / stride] = pfn;
    pfns[present++] = pfn;
    z[pfn < DMA_END_PFN ? 0 : pfn < DMA32_END_PFN ? 1 : 2]++;
    if (pfn < lo) lo = pfn;
    if (pfn > hi) hi = pfn;
  }
  /* Pageblocks wholly covered by the mapping (only meaningful for stride 1). */
  unsigned long whole = 0;
  if (stride == 1) {
    qsort(pfns, present, sizeof(uint64_t), cmp_u64);
    unsigned long run = 0;
    for (unsigned long i = 0; i < present; i++) {
      if (i && pfns[i] == pfns[i - 1] + 1 && (pfns[i] & 511)) run++;
      else run = 1;
      if ((pfns[i] & 511) == 511 && run == 512) whole++;
    }
  }
  unsigned long blocks = distinct_blocks(pfns, present);
  printf("{\"event\":\"%s\",\"t\":%.3f,\"kept\":%lu,\"present\":%lu,\"moved\":%lu,\"dma\":%lu,"
         "\"dma32\":%lu,\"normal\":%lu,\"pageblocks\":%lu,\"whole_pageblocks\":%lu,"
         "\"min_pfn\":%llu,\"max_pfn\":%llu}\n",
         event, now_s(), n, present, moved, z[0], z[1], z[2], blocks, whole,
         (unsigned long long)(present ? lo : 0), (unsigned long long)hi);
  fflush(stdout);
  free(pfns);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: fragment MiB K\n");
    return 2;
  }
  unsigned long mib = strtoul(argv[1], NULL, 10);
  every = strtoul(argv[2], NULL, 10);
  if (mib == 0 || mib > 4096 || every == 0) {
    fprintf(stderr, "fragment: need 0 < MiB <= 4096 and K >= 1\n");
    return 2;
  }
  npages = mib * (1UL << 20) / PAGE;
  /* No THP: every page must be an order-0 page, as in the model's run. */
  prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
  base = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  madvise(base, npages * PAGE, MADV_NOHUGEPAGE);
  pm = malloc(npages * sizeof(uint64_t));
  first = malloc((npages / every + 1) * sizeof(uint64_t));
  pmfd = open("/proc/self/pagemap", O_RDONLY);
  if (!pm || !first || pmfd < 0) {
    perror("setup");
    return 1;
  }

  double t0 = now_s();
  for (unsigned long i = 0; i < npages; i++) base[i * PAGE] = (char)i;
  double t1 = now_s();
  report("touched", 1, 0);
  fprintf(stderr, "fragment: touched %lu pages in %.3f s\n", npages, t1 - t0);

  /* Keep page i iff i % every == 0: drop the every-1 pages after each kept one in one call. */
  if (every > 1) {
    for (unsigned long i = 0; i < npages; i += every) {
      unsigned long n = every - 1;
      if (i + 1 + n > npages) n = npages - i - 1;
      if (n && madvise(base + (i + 1) * PAGE, n * PAGE, MADV_DONTNEED)) {
        perror("madvise");
        return 1;
      }
    }
  }
  fprintf(stderr, "fragment: kept 1 page of every %lu (%.3f s)\n", every, now_s() - t1);
  report("ready", every, 0);

  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (!strncmp(line, "map", 3)) report("map", every, 1);
    else if (!strncmp(line, "exit", 4)) break;
  }
  munmap(base, npages * PAGE);
  return 0;
}
