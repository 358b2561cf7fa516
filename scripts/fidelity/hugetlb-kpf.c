/*
 * hugetlb-kpf.c — where the hugetlb pool pages are, for scripts/fidelity/hugetlb-real.sh (see
 * docs/fidelity.md, "nr_hugepages on the real kernel and in the model").
 *
 * Reads /proc/kpageflags over [START, END) (PFNs) and prints, per 128 MiB section (32768 pages,
 * counted from START, which must be section aligned), how many pages have KPF_HUGE (hugetlb pool
 * pages, heads and tails) and how many KPF_BUDDY (free pages on the buddy lists; every page of a
 * free block has it), in two lines:
 *   huge <start-pfn-hex> <n0> <n1> ...
 *   buddy <start-pfn-hex> <n0> <n1> ...
 * scripts/fidelity/hugetlb-model.ts prints the same lines from the model's /proc/kpageflags.
 *
 * The caller must pass only initialised memory: under deferred_init=lazy the struct pages above
 * zone Normal's grown part are not initialised and must not be read (real-kernel-notes §4). The
 * script passes [0x100000, 0x100000 + managed rounded down to a section).
 *
 * Usage: hugetlb-kpf START END        (root; PFNs in decimal or 0x hex)
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SECTION 32768UL
#define KPF_BUDDY 10
#define KPF_HUGE 17
#define CHUNK 65536UL

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: hugetlb-kpf START END\n");
    return 2;
  }
  unsigned long start = strtoul(argv[1], NULL, 0), end = strtoul(argv[2], NULL, 0);
  if (start % SECTION || end <= start || (end - start) % SECTION) {
    fprintf(stderr, "hugetlb-kpf: START and END must be section aligned, START < END\n");
    return 2;
  }
  unsigned long nsec = (end - start) / SECTION;
  unsigned long *huge = calloc(nsec, sizeof(unsigned long));
  unsigned long *buddy = calloc(nsec, sizeof(unsigned long));
  uint64_t *buf = malloc(CHUNK * sizeof(uint64_t));
  int fd = open("/proc/kpageflags", O_RDONLY);
  if (!huge || !buddy || !buf || fd < 0) {
    perror("hugetlb-kpf: setup");
    return 1;
  }
  for (unsigned long pfn = start; pfn < end; pfn += CHUNK) {
    unsigned long n = end - pfn < CHUNK ? end - pfn : CHUNK;
    size_t want = n * sizeof(uint64_t), got = 0;
    while (got < want) {
      ssize_t r = pread(fd, (char *)buf + got, want - got, (off_t)(pfn * sizeof(uint64_t) + got));
      if (r <= 0) {
        perror("hugetlb-kpf: pread");
        return 1;
      }
      got += (size_t)r;
    }
    for (unsigned long i = 0; i < n; i++) {
      unsigned long s = (pfn + i - start) / SECTION;
      if (buf[i] >> KPF_HUGE & 1) huge[s]++;
      if (buf[i] >> KPF_BUDDY & 1) buddy[s]++;
    }
  }
  printf("huge 0x%lx", start);
  for (unsigned long s = 0; s < nsec; s++) printf(" %lu", huge[s]);
  printf("\nbuddy 0x%lx", start);
  for (unsigned long s = 0; s < nsec; s++) printf(" %lu", buddy[s]);
  printf("\n");
  return 0;
}
