// fragment: fragments a QEMU guest's physical memory in one of a few shapes, then holds it.
//
// Runs as PID 1's child in the fidelity initramfs (see init), built with `gcc -static -O2`.
// It sizes itself from /proc/meminfo, builds the shape, prints one line
//   FRAGMENT shape=... seed=... anon_kib=... cache_kib=... pipe_kib=... sock_kib=... files=...
// creates the --ready file, and then pause()s so that everything it holds stays held while the
// init script snapshots /proc and writes nr_hugepages. It never frees on its own.
//
// Shapes (sizes are fractions of "budget" = MemFree - --reserve-mib (96) at start, capped at
// --budget-mib M when given: the host runs of fidelity/host/ use a few GiB of a large machine):
//   anon-holes  anonymous memory, MADV_NOHUGEPAGE, every page written, then every other 4 KiB page
//               freed (with --seed N>0: each page freed with probability 1/2 from a seeded PRNG),
//               so every 2 MiB block is about half used by movable pages.
//   page-cache  files of a read-only ext4 on a virtio disk (--dir) read in 64 KiB chunks round-
//               robin so their pages interleave, then POSIX_FADV_DONTNEED on every other file.
//               ext4 page cache is what a real machine's file load is: movable (mapping gfp
//               GFP_HIGHUSER_MOVABLE), on the file LRU, clean, so reclaim can drop it. tmpfs/ramfs
//               pages (the initramfs root) would be unreclaimable without swap, and a raw block
//               device's cache is GFP_USER (unmovable), so neither stands for page cache.
//   unmovable   anonymous filler over the budget with 1 page in 3 freed; then kernel memory into
//               what is free: full pipes (order-0 GFP_HIGHUSER pages, unmovable), unix socket
//               pairs with queued data (slab and page frags), and many empty tmpfs files
//               (dentry/inode slab); then the filler is unmapped. What remains is kernel memory
//               placed by the kernel's fallback rules (claimed blocks and single-page steals).
//   mixed       all of the above interleaved in 8 rounds (anon 45%, page cache 35%, pipes 8%,
//               sockets and files), then every other anon page, every other file and every other
//               pipe freed.
// Deterministic in what it asks for: the same shape, seed and meminfo give the same sequence of
// system calls. Where the pages land is the kernel's business (pcp lists, kernel threads).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096UL
#define MIB (1024UL * 1024UL)
#define CHUNK (64 * 1024UL)

static uint64_t rng_state;
static uint64_t rng(void) { // xorshift64*: fixed sequence per seed
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1DULL;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fragment: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static unsigned long meminfo_kib(const char *key) {
  FILE *f = fopen("/proc/meminfo", "r");
  if (!f) die("/proc/meminfo: %s", strerror(errno));
  char line[256];
  size_t n = strlen(key);
  unsigned long v = 0;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, key, n) && line[n] == ':') {
      v = strtoul(line + n + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

static unsigned long seed;
static const char *data_dir = "/mnt/data";
static const char *small_dir = "/tmp"; // where the tmpfs small files go: a tmpfs in the guest
static unsigned long anon_kib, cache_kib, pipe_kib, sock_kib, nfiles;

// ---- anonymous memory ----------------------------------------------------------------------
struct anon { char *base; size_t len; };

static struct anon anon_map(size_t len) {
  len &= ~(PAGE - 1);
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap %zu: %s", len, strerror(errno));
  // THP is "always" in Debian's kernel: 4 KiB pages are the point here.
  madvise(p, len, MADV_NOHUGEPAGE);
  for (size_t off = 0; off < len; off += PAGE) p[off] = (char)(off >> 12 | 1);
  anon_kib += len / 1024;
  return (struct anon){p, len};
}

// Free pages of a mapping: every `every`-th page (those with index % every == 0) when seed is 0,
// else each page with probability 1/every.
static void anon_holes(struct anon a, unsigned every) {
  size_t pages = a.len / PAGE;
  for (size_t i = 0; i < pages; i++) {
    int hole = seed ? rng() % every == 0 : i % every == 0;
    if (hole) {
      if (madvise(a.base + i * PAGE, PAGE, MADV_DONTNEED)) die("madvise: %s", strerror(errno));
      anon_kib -= PAGE / 1024;
    }
  }
}

// ---- page cache ----------------------------------------------------------------------------
struct cache { int fd[256]; off_t off[256]; off_t size[256]; int n; };

static void cache_open(struct cache *c) {
  c->n = 0;
  for (int i = 0; i < 256; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/f%03d", data_dir, i);
    int fd = open(path, O_RDONLY);
    if (fd < 0) break;
    struct stat st;
    fstat(fd, &st);
    posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM); // read exactly the chunk: no readahead batches
    c->fd[c->n] = fd;
    c->off[c->n] = 0;
    c->size[c->n] = st.st_size;
    c->n++;
  }
  if (c->n == 0) die("no files %s/f000...: is the data disk mounted?", data_dir);
}

// Reads about `bytes` more of the files, one 64 KiB chunk from each file in turn.
static void cache_read(struct cache *c, size_t bytes) {
  static char buf[CHUNK];
  size_t done = 0;
  int progress = 1;
  while (done < bytes && progress) {
    progress = 0;
    for (int i = 0; i < c->n && done < bytes; i++) {
      if (c->off[i] >= c->size[i]) continue;
      ssize_t r = pread(c->fd[i], buf, CHUNK, c->off[i]);
      if (r < 0) die("read f%03d: %s", i, strerror(errno));
      if (r == 0) { c->off[i] = c->size[i]; continue; }
      c->off[i] += r;
      done += r;
      cache_kib += r / 1024;
      progress = 1;
    }
  }
  if (done < bytes) fprintf(stderr, "fragment: data files hold only %zu of %zu KiB asked\n", done / 1024, bytes / 1024);
}

static void cache_drop_every_other(struct cache *c) {
  for (int i = 1; i < c->n; i += 2) {
    posix_fadvise(c->fd[i], 0, 0, POSIX_FADV_DONTNEED);
    cache_kib -= c->off[i] / 1024;
  }
}

// ---- kernel memory -------------------------------------------------------------------------
#define MAXPIPES 65536
static int pipes[MAXPIPES][2];
static int npipes;

// Fills pipes with `bytes` of data in total; each 4 KiB write takes one unmovable page.
static void pipes_fill(size_t bytes) {
  static char buf[PAGE];
  memset(buf, 'p', sizeof buf);
  size_t done = 0;
  while (done < bytes) {
    if (npipes == MAXPIPES) die("too many pipes");
    int *p = pipes[npipes];
    if (pipe2(p, O_NONBLOCK)) die("pipe2 (%d open): %s", npipes, strerror(errno));
    npipes++;
    while (done < bytes) {
      ssize_t w = write(p[1], buf, sizeof buf);
      if (w < 0) { if (errno == EAGAIN) break; die("pipe write: %s", strerror(errno)); }
      done += w;
      pipe_kib += w / 1024;
    }
  }
}

static void pipes_close_every_other(void) {
  for (int i = 1; i < npipes; i += 2) {
    int queued = 0;
    if (ioctl(pipes[i][0], FIONREAD, &queued) == 0) pipe_kib -= queued / 1024;
    close(pipes[i][0]);
    close(pipes[i][1]);
    pipes[i][0] = pipes[i][1] = -1;
  }
}

// Unix stream socket pairs with data queued on the receiver until the sender's buffer is full.
static void sockets_fill(int pairs) {
  static char buf[16384];
  memset(buf, 's', sizeof buf);
  for (int i = 0; i < pairs; i++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv)) die("socketpair: %s", strerror(errno));
    for (;;) {
      ssize_t w = write(sv[0], buf, sizeof buf);
      if (w < 0) { if (errno == EAGAIN) break; die("socket write: %s", strerror(errno)); }
      sock_kib += w / 1024;
    }
  }
}

// Empty tmpfs files: a dentry and a shmem inode each (slab), no data page (that would be
// movable shmem, and unreclaimable without swap).
static void small_files(const char *dir, int n) {
  mkdir(dir, 0755);
  for (int i = 0; i < n; i++) {
    char path[256];
    snprintf(path, sizeof path, "%s/s%06d", dir, i);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) die("%s: %s", path, strerror(errno));
    close(fd);
    nfiles++;
  }
}

// ---- shapes --------------------------------------------------------------------------------
static void shape_anon_holes(size_t budget) {
  struct anon a = anon_map(budget);
  anon_holes(a, 2);
}

static void shape_page_cache(size_t budget) {
  static struct cache c;
  cache_open(&c);
  cache_read(&c, budget);
  cache_drop_every_other(&c);
}

static void shape_unmovable(size_t budget) {
  struct anon filler = anon_map(budget);
  anon_holes(filler, 3);
  // Free memory is now the --reserve-mib in whole pageblocks plus a third of the budget in
  // single-page holes. The kernel's fallback takes the largest free block first and claims whole
  // pageblocks for unmovable allocations; once those are gone it steals from the holes. Each
  // steal boosts the watermarks (watermark_boost_factor, up to 1.5x high: min ~170 MiB on
  // 1 GiB) and wakes kswapd/kcompactd, so the kernel memory asked for stays well below the free
  // memory: budget/8 of pipes (~105 MiB on 1 GiB), ~13 MiB of sockets, ~19 MiB of slab. On the
  // 6.1 guest this leaves ~100 unmovable pageblocks of ~500 (docs/fidelity-qemu.md).
  pipes_fill(budget / 8);
  sockets_fill(64);
  char dir[512];
  snprintf(dir, sizeof dir, "%s/small", small_dir);
  small_files(dir, 20000);
  munmap(filler.base, filler.len);
  anon_kib = 0;
}

static void shape_mixed(size_t budget) {
  static struct cache c;
  cache_open(&c);
  struct anon a[8];
  for (int r = 0; r < 8; r++) {
    a[r] = anon_map(budget * 45 / 100 / 8);
    cache_read(&c, budget * 35 / 100 / 8);
    pipes_fill(budget * 8 / 100 / 8);
    sockets_fill(8);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/small%d", small_dir, r);
    small_files(dir, 2000);
  }
  for (int r = 0; r < 8; r++) anon_holes(a[r], 2);
  cache_drop_every_other(&c);
  pipes_close_every_other();
}

static void usage(void) {
  fprintf(stderr,
          "usage: fragment anon-holes|page-cache|unmovable|mixed [--seed N] [--reserve-mib M]\n"
          "                [--budget-mib M] [--dir DATA_DIR] [--small-dir TMPFS_DIR] [--ready FILE]\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  const char *shape = argv[1];
  const char *ready = NULL;
  // Headroom above the kernel's high watermark (THP raises min_free_kbytes to ~45 MiB on a
  // 1 GiB guest) for the kernel memory the shapes add and for the snapshot's own tools.
  unsigned long reserve_mib = 96;
  unsigned long budget_cap_mib = 0; // 0: no cap (the guest)
  for (int i = 2; i < argc; i++) {
    if (i + 1 >= argc) usage();
    if (!strcmp(argv[i], "--seed")) seed = strtoul(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--reserve-mib")) reserve_mib = strtoul(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--budget-mib")) budget_cap_mib = strtoul(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--dir")) data_dir = argv[++i];
    else if (!strcmp(argv[i], "--small-dir")) small_dir = argv[++i];
    else if (!strcmp(argv[i], "--ready")) ready = argv[++i];
    else usage();
  }
  rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;

  // Pipes and sockets take two descriptors each: lift the 1024 default (we are root).
  struct rlimit rl = {1 << 20, 1 << 20};
  setrlimit(RLIMIT_NOFILE, &rl);

  unsigned long free_kib = meminfo_kib("MemFree");
  if (free_kib / 1024 <= reserve_mib + 16) die("only %lu MiB free, reserve is %lu MiB", free_kib / 1024, reserve_mib);
  size_t budget = (free_kib / 1024 - reserve_mib) * MIB;
  if (budget_cap_mib && budget > budget_cap_mib * MIB) budget = budget_cap_mib * MIB;

  if (!strcmp(shape, "anon-holes")) shape_anon_holes(budget);
  else if (!strcmp(shape, "page-cache")) shape_page_cache(budget);
  else if (!strcmp(shape, "unmovable")) shape_unmovable(budget);
  else if (!strcmp(shape, "mixed")) shape_mixed(budget);
  else usage();

  printf("FRAGMENT shape=%s seed=%lu budget_kib=%zu anon_kib=%lu cache_kib=%lu pipe_kib=%lu sock_kib=%lu files=%lu pipes=%d\n",
         shape, seed, budget / 1024, anon_kib, cache_kib, pipe_kib, sock_kib, nfiles, npipes);
  fflush(stdout);
  if (ready) {
    int fd = open(ready, O_CREAT | O_WRONLY, 0644);
    if (fd < 0) die("%s: %s", ready, strerror(errno));
    close(fd);
  }
  for (;;) pause();
}
