/*
 * The real kernel's anonymous fault path, for bench/fault-vs-kernel.bench.ts: the machine this runs
 * on does what the model's Process.touch() and mmap(MAP_POPULATE) simulate, and this program
 * times it and counts the faults the kernel charged to it.
 *
 * Three modes, each on a fresh private anonymous mapping of N MiB:
 *   write     store one byte per 4 KiB page: one demand fault per page (do_anonymous_page
 *             allocates and zeroes a movable page);
 *   read      load one byte per page of never-written memory: one fault per page, which maps the
 *             shared zero page (no allocation);
 *   populate  mmap(MAP_POPULATE): the kernel faults every page in itself (mm_populate → GUP →
 *             handle_mm_fault), which it also charges as minor faults (mm_account_fault() counts
 *             min_flt even when regs is NULL), with no exception per page.
 * Time is CLOCK_MONOTONIC around the touching loop (write, read) or around the mmap call
 * (populate); faults are getrusage(RUSAGE_SELF) ru_minflt before and after. munmap is timed
 * separately and is not part of the fault time. Every mode runs once untimed first (the warm-up:
 * its time is reported as "first_ns", since in a VM whose host backs guest memory lazily the first
 * touch of a guest-physical page costs far more), then `runs` timed runs; the medians are reported.
 * Where the guest reports free memory to its host (/sys/module/page_reporting), the KiB reported
 * during a mode's runs are given too: pages reported between runs come back host-cold.
 *
 * Transparent huge pages must not turn 512 faults into one: the process sets PR_SET_THP_DISABLE
 * (which also covers MAP_POPULATE, populated before any madvise could run) and the write and read
 * regions are madvise(MADV_NOHUGEPAGE)d before the first touch. The value of
 * /sys/kernel/mm/transparent_hugepage/enabled is reported.
 *
 * Usage: fault [MiB=256] [runs=5] [write|read|populate ...] (all three modes by default).
 * Output: one line of JSON per mode:
 *   {"mode":…,"mib":…,"pages":…,"runs":…,"thp":…,"faults":[…],"ns":[…],"munmap_ns":[…],
 *    "first_ns":…,"first_faults":…,"median_ns":…,"median_faults":…,"median_munmap_ns":…,
 *    "ns_per_fault":…,"reported_kib":… (-1 without page reporting),"sink":…}
 *
 * Build: gcc -O2 -o bench/out/fault bench/c/fault.c (bench/fault-vs-kernel.bench.ts does this).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS 64

enum mode { WRITE, READ, POPULATE };
static const char *const mode_names[] = {"write", "read", "populate"};

static long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static long minflt(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

static void die(const char *what) {
  fprintf(stderr, "fault: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* The THP setting, e.g. "always [madvise] never", or "unavailable". */
static void thp_enabled(char *buf, size_t size) {
  snprintf(buf, size, "unavailable");
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (!f) return;
  if (fgets(buf, (int)size, f)) buf[strcspn(buf, "\n")] = '\0';
  fclose(f);
}

/*
 * KiB of free guest memory reported to the host so far (free page reporting, e.g. virtio-balloon
 * in a Firecracker VM): the host then drops those pages, and the guest's next touch of them costs
 * a host fault on top of the guest's. -1 without page reporting.
 */
static long reported_kib(void) {
  long v = -1;
  FILE *f = fopen("/sys/module/page_reporting/parameters/reported_kib", "r");
  if (!f) return -1;
  if (fscanf(f, "%ld", &v) != 1) v = -1;
  fclose(f);
  return v;
}

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

static long median(const long *v, int n) {
  long s[MAX_RUNS];
  memcpy(s, v, (size_t)n * sizeof(long));
  qsort(s, (size_t)n, sizeof(long), cmp_long);
  return s[(n - 1) / 2];
}

static volatile unsigned long sink; /* keeps the read loop's loads */

/* One run: map, fault in, unmap. Stores the fault time, the faults and the munmap time. */
static void run(enum mode mode, size_t len, long page, long *ns, long *faults, long *unmap_ns) {
  int flags = MAP_PRIVATE | MAP_ANONYMOUS;
  long t0, f0, t1, f1;
  char *p;
  if (mode == POPULATE) {
    f0 = minflt();
    t0 = now_ns();
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags | MAP_POPULATE, -1, 0);
    t1 = now_ns();
    f1 = minflt();
    if (p == MAP_FAILED) die("mmap(MAP_POPULATE)");
  } else {
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED) die("mmap");
    if (madvise(p, len, MADV_NOHUGEPAGE)) die("madvise(MADV_NOHUGEPAGE)");
    if (mode == WRITE) {
      f0 = minflt();
      t0 = now_ns();
      for (size_t off = 0; off < len; off += (size_t)page) ((volatile char *)p)[off] = 1;
      t1 = now_ns();
      f1 = minflt();
    } else {
      unsigned long sum = 0;
      f0 = minflt();
      t0 = now_ns();
      for (size_t off = 0; off < len; off += (size_t)page) sum += ((volatile char *)p)[off];
      t1 = now_ns();
      f1 = minflt();
      sink += sum;
    }
  }
  long u0 = now_ns();
  if (munmap(p, len)) die("munmap");
  *unmap_ns = now_ns() - u0;
  *ns = t1 - t0;
  *faults = f1 - f0;
}

int main(int argc, char **argv) {
  long mib = argc > 1 ? atol(argv[1]) : 256;
  int runs = argc > 2 ? atoi(argv[2]) : 5;
  if (mib < 1 || mib > 4096 || runs < 1 || runs > MAX_RUNS) {
    fprintf(stderr, "usage: fault [MiB 1..4096, default 256] [runs 1..%d, default 5] [write|read|populate ...]\n",
            MAX_RUNS);
    return 1;
  }
  int want[3] = {argc <= 3, argc <= 3, argc <= 3};
  for (int i = 3; i < argc; i++) {
    int found = 0;
    for (int m = 0; m < 3; m++)
      if (strcmp(argv[i], mode_names[m]) == 0) want[m] = found = 1;
    if (!found) {
      fprintf(stderr, "fault: unknown mode %s (write, read, populate)\n", argv[i]);
      return 1;
    }
  }
  long page = sysconf(_SC_PAGESIZE);
  size_t len = (size_t)mib << 20;
  long pages = (long)(len / (size_t)page);
  char thp[128];
  thp_enabled(thp, sizeof thp);
  if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)) die("prctl(PR_SET_THP_DISABLE)");
  /* Fault in what the timed window uses (vDSO clock, getrusage) before any counting. */
  (void)now_ns();
  (void)minflt();

  for (int m = 0; m < 3; m++) {
    if (!want[m]) continue;
    long ns[MAX_RUNS], faults[MAX_RUNS], unmap[MAX_RUNS];
    long first_ns, first_faults, first_unmap;
    long rep0 = reported_kib();
    run((enum mode)m, len, page, &first_ns, &first_faults, &first_unmap);
    for (int r = 0; r < runs; r++) run((enum mode)m, len, page, &ns[r], &faults[r], &unmap[r]);
    long rep1 = reported_kib();
    long med_ns = median(ns, runs), med_faults = median(faults, runs);
    printf("{\"mode\":\"%s\",\"mib\":%ld,\"page_size\":%ld,\"pages\":%ld,\"runs\":%d,\"thp\":\"%s\",\"faults\":[",
           mode_names[m], mib, page, pages, runs, thp);
    for (int r = 0; r < runs; r++) printf("%s%ld", r ? "," : "", faults[r]);
    printf("],\"ns\":[");
    for (int r = 0; r < runs; r++) printf("%s%ld", r ? "," : "", ns[r]);
    printf("],\"munmap_ns\":[");
    for (int r = 0; r < runs; r++) printf("%s%ld", r ? "," : "", unmap[r]);
    printf("],\"first_ns\":%ld,\"first_faults\":%ld,\"median_ns\":%ld,\"median_faults\":%ld,"
           "\"median_munmap_ns\":%ld,\"ns_per_fault\":%.1f,\"reported_kib\":%ld,\"sink\":%lu}\n",
           first_ns, first_faults, med_ns, med_faults, median(unmap, runs),
           med_faults > 0 ? (double)med_ns / (double)med_faults : 0.0,
           rep0 >= 0 && rep1 >= 0 ? rep1 - rep0 : -1, sink);
    fflush(stdout);
  }
  return 0;
}
