/*
 * The C yardstick for bench/buddy-raw.bench.ts: the same raw buddy loop, on the same data layout,
 * from the same state, replaying the same operation tape, so "TS / C" measures what the model's
 * TypeScript costs over plain C for identical work.
 *
 * Mirrors, function for function, src/mm/frames.ts (list ops on circular sentinel lists),
 * src/mm/page_alloc/freelist.ts (__add_to_free_list, __del_page_from_free_list,
 * account_freepages), src/mm/page_alloc/buddy.ts (expand, page_del_and_expand,
 * __rmqueue_smallest, find_buddy_page_pfn, buddy_merge_likely, change_pageblock_range,
 * __free_one_page) and src/mm/pageblock.ts. State is a struct-of-arrays frame table (flags u32,
 * next/prev i32 with one sentinel slot per list after the last frame, list_count i32, order u8),
 * one flags byte and one zone id (u16) per pageblock.
 *
 * Input: the dump written by bench/lib/buddy-workload.ts dump() (layout documented there).
 * Usage: buddy <dump> [passes]. Pass 1 is the check pass: its checksum and the zone's free page
 * count must equal the TypeScript run's. The remaining passes are timed one by one.
 * Output: one line of JSON {"checksum":…,"free_pages":…,"ns":[per-pass nanoseconds…]}.
 *
 * Build: gcc -O2 -o bench/out/buddy bench/c/buddy.c (bench/buddy-raw-vs-c.bench.ts does this).
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DUMP_MAGIC 0x5742434d
#define DUMP_VERSION 1

#define MAX_PAGE_ORDER 10
#define NR_PAGE_ORDERS (MAX_PAGE_ORDER + 1)
#define pageblock_order 9
#define MIGRATE_UNMOVABLE 0
#define MIGRATE_MOVABLE 1
#define MIGRATE_PCPTYPES 3
#define MIGRATE_HIGHATOMIC 3
#define MIGRATE_CMA 4
#define MIGRATE_ISOLATE 5
#define MIGRATE_TYPES 6
#define PG_buddy (1u << 15)
#define PB_migratetype_mask 0x07
#define PB_migrate_isolate 0x10
#define FPI_NONE 0
#define FPI_TO_TAIL (1 << 1)
#define FRAMES_HEADER_BYTES 16

/* The frame table and the pageblock arrays (struct mm in the model). */
struct mm {
  int32_t nr_frames;
  int32_t nr_lists;
  uint32_t *flags;
  int32_t *next;
  int32_t *prev;
  int32_t *list_count;
  uint8_t *order;
  uint8_t *pb_flags;
  uint16_t *pb_zone;
  int page_group_by_mobility_disabled;
};

/* The zone fields the buddy code touches. */
struct zone {
  int32_t free_list_base;
  long nr_free[NR_PAGE_ORDERS];
  long nr_free_pages;        /* vm_stat[NR_FREE_PAGES] */
  long nr_free_cma_pages;    /* vm_stat[NR_FREE_CMA_PAGES] */
  long nr_free_pages_blocks; /* vm_stat[NR_FREE_PAGES_BLOCKS] */
  long nr_free_highatomic;
};

/* frames.ts list_add(): insert at the head, right after the sentinel. */
static inline void list_add(struct mm *mm, int32_t pfn, int32_t list) {
  int32_t head = mm->nr_frames + list;
  int32_t first = mm->next[head];
  mm->next[pfn] = first;
  mm->prev[pfn] = head;
  mm->prev[first] = pfn;
  mm->next[head] = pfn;
  mm->list_count[list]++;
}

/* frames.ts list_add_tail(): insert at the tail, right before the sentinel. */
static inline void list_add_tail(struct mm *mm, int32_t pfn, int32_t list) {
  int32_t head = mm->nr_frames + list;
  int32_t last = mm->prev[head];
  mm->prev[pfn] = last;
  mm->next[pfn] = head;
  mm->next[last] = pfn;
  mm->prev[head] = pfn;
  mm->list_count[list]++;
}

/* frames.ts list_del() */
static inline void list_del(struct mm *mm, int32_t pfn, int32_t list) {
  int32_t n = mm->next[pfn];
  int32_t p = mm->prev[pfn];
  mm->next[p] = n;
  mm->prev[n] = p;
  mm->next[pfn] = -1;
  mm->prev[pfn] = -1;
  mm->list_count[list]--;
}

/* frames.ts list_first() */
static inline int32_t list_first(struct mm *mm, int32_t list) {
  int32_t head = mm->nr_frames + list;
  int32_t first = mm->next[head];
  return first == head ? -1 : first;
}

static inline int migratetype_is_mergeable(int mt) { return mt < MIGRATE_PCPTYPES; }

/* pageblock.ts get_pfnblock_migratetype() */
static inline int get_pfnblock_migratetype(struct mm *mm, int32_t pfn) {
  uint8_t f = mm->pb_flags[(uint32_t)pfn >> pageblock_order];
  return (f & PB_migrate_isolate) ? MIGRATE_ISOLATE : (f & PB_migratetype_mask);
}

/* pageblock.ts set_pageblock_migratetype() */
static inline void set_pageblock_migratetype(struct mm *mm, int32_t pfn, int mt) {
  if (mt == MIGRATE_ISOLATE) return;
  if (mm->page_group_by_mobility_disabled && mt < 3) mt = 0;
  uint32_t i = (uint32_t)pfn >> pageblock_order;
  mm->pb_flags[i] = (uint8_t)((mm->pb_flags[i] & ~(PB_migratetype_mask | PB_migrate_isolate)) | mt);
}

/* freelist.ts account_freepages() */
static inline void account_freepages(struct zone *zone, long nr_pages, int mt) {
  if (mt == MIGRATE_ISOLATE) return;
  zone->nr_free_pages += nr_pages;
  if (mt == MIGRATE_CMA) zone->nr_free_cma_pages += nr_pages;
  else if (mt == MIGRATE_HIGHATOMIC) zone->nr_free_highatomic += nr_pages;
}

/* freelist.ts __add_to_free_list() + set_buddy_order() */
static inline void __add_to_free_list(struct mm *mm, int32_t pfn, struct zone *zone, int order, int mt,
                                      int tail) {
  mm->flags[pfn] |= PG_buddy;
  mm->order[pfn] = (uint8_t)order;
  int32_t list = zone->free_list_base + order * MIGRATE_TYPES + mt;
  if (tail) list_add_tail(mm, pfn, list);
  else list_add(mm, pfn, list);
  zone->nr_free[order]++;
  if (order >= pageblock_order && mt != MIGRATE_ISOLATE) zone->nr_free_pages_blocks += 1L << order;
}

/* freelist.ts __del_page_from_free_list() */
static inline void __del_page_from_free_list(struct mm *mm, int32_t pfn, struct zone *zone, int order,
                                             int mt) {
  list_del(mm, pfn, zone->free_list_base + order * MIGRATE_TYPES + mt);
  mm->flags[pfn] &= ~PG_buddy;
  mm->order[pfn] = 0;
  zone->nr_free[order]--;
  if (order >= pageblock_order && mt != MIGRATE_ISOLATE) zone->nr_free_pages_blocks -= 1L << order;
}

/* buddy.ts expand() */
static inline long expand(struct mm *mm, struct zone *zone, int32_t pfn, int low, int high, int mt) {
  long size = 1L << high;
  long nr_added = 0;
  while (high > low) {
    high--;
    size >>= 1;
    __add_to_free_list(mm, (int32_t)(pfn + size), zone, high, mt, 0);
    nr_added += size;
  }
  return nr_added;
}

/* buddy.ts page_del_and_expand() */
static inline void page_del_and_expand(struct mm *mm, struct zone *zone, int32_t pfn, int low, int high,
                                       int mt) {
  long nr_pages = 1L << high;
  __del_page_from_free_list(mm, pfn, zone, high, mt);
  nr_pages -= expand(mm, zone, pfn, low, high, mt);
  account_freepages(zone, -nr_pages, mt);
}

/* buddy.ts __rmqueue_smallest() */
static int32_t __rmqueue_smallest(struct mm *mm, struct zone *zone, int order, int mt) {
  int32_t base = zone->free_list_base + mt;
  for (int cur = order; cur <= MAX_PAGE_ORDER; cur++) {
    int32_t list = base + cur * MIGRATE_TYPES;
    if (mm->list_count[list] == 0) continue;
    int32_t pfn = list_first(mm, list);
    page_del_and_expand(mm, zone, pfn, order, cur, mt);
    return pfn;
  }
  return -1;
}

/* buddy.ts find_buddy_page_pfn() */
static inline int32_t find_buddy_page_pfn(struct mm *mm, int32_t pfn, int order) {
  int32_t buddy = pfn ^ (1 << order);
  if (buddy >= mm->nr_frames) return -1;
  if ((mm->flags[buddy] & PG_buddy) == 0 || mm->order[buddy] != order) return -1;
  if (order >= pageblock_order &&
      mm->pb_zone[(uint32_t)buddy >> pageblock_order] != mm->pb_zone[(uint32_t)pfn >> pageblock_order])
    return -1;
  return buddy;
}

/* buddy.ts buddy_merge_likely() */
static inline int buddy_merge_likely(struct mm *mm, int32_t pfn, int32_t buddy, int order) {
  if (order >= MAX_PAGE_ORDER - 1) return 0;
  int32_t higher = buddy & pfn;
  return find_buddy_page_pfn(mm, higher, order + 1) >= 0;
}

/* buddy.ts change_pageblock_range() */
static void change_pageblock_range(struct mm *mm, int32_t pfn, int order, int mt) {
  int nr = order >= pageblock_order ? 1 << (order - pageblock_order) : 1;
  while (nr-- > 0) {
    set_pageblock_migratetype(mm, pfn, mt);
    pfn += 1 << pageblock_order;
  }
}

/* buddy.ts __free_one_page() */
static void __free_one_page(struct mm *mm, int32_t pfn, struct zone *zone, int order, int mt, int fpi) {
  account_freepages(zone, 1L << order, mt);
  while (order < MAX_PAGE_ORDER) {
    int32_t buddy = find_buddy_page_pfn(mm, pfn, order);
    if (buddy < 0) break;
    int buddy_mt = mt;
    if (order >= pageblock_order) {
      buddy_mt = get_pfnblock_migratetype(mm, buddy);
      if (buddy_mt != mt && (!migratetype_is_mergeable(mt) || !migratetype_is_mergeable(buddy_mt))) break;
    }
    __del_page_from_free_list(mm, buddy, zone, order, buddy_mt);
    if (buddy_mt != mt) change_pageblock_range(mm, buddy, order, mt);
    pfn &= buddy;
    order++;
  }
  int to_tail = (fpi & FPI_TO_TAIL) != 0 || buddy_merge_likely(mm, pfn, pfn ^ (1 << order), order);
  __add_to_free_list(mm, pfn, zone, order, mt, to_tail);
}

/* The workload: the same loop as BuddyWorkload.pass() in bench/lib/buddy-workload.ts. */
struct workload {
  int32_t live_slots;
  int32_t ops;
  int32_t *live;
  uint8_t *live_order;
  int32_t *tape_slot;
  uint8_t *tape_order;
};

static uint32_t pass(struct mm *mm, struct zone *zone, struct workload *w) {
  uint32_t sum = 0;
  for (int32_t i = 0; i < w->ops; i++) {
    int32_t s = w->tape_slot[i];
    int32_t pfn = w->live[s];
    __free_one_page(mm, pfn, zone, w->live_order[s], get_pfnblock_migratetype(mm, pfn), FPI_NONE);
    int order = w->tape_order[i];
    int32_t got = __rmqueue_smallest(mm, zone, order, MIGRATE_MOVABLE);
    if (got < 0) {
      fprintf(stderr, "buddy: order-%d allocation failed at op %d\n", order, i);
      exit(2);
    }
    w->live[s] = got;
    w->live_order[s] = (uint8_t)order;
    sum = sum * 31u + (uint32_t)got;
  }
  return sum;
}

/* Copy the next `bytes` of the dump into a fresh, suitably aligned allocation. */
static void *take(const uint8_t *buf, size_t size, size_t *off, size_t bytes) {
  if (*off + bytes > size) {
    fprintf(stderr, "buddy: dump truncated\n");
    exit(1);
  }
  void *p = malloc(bytes ? bytes : 1);
  if (!p) {
    fprintf(stderr, "buddy: out of memory\n");
    exit(1);
  }
  memcpy(p, buf + *off, bytes);
  *off += bytes;
  return p;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: buddy <dump> [passes]\n");
    return 1;
  }
  int passes = argc > 2 ? atoi(argv[2]) : 15;
  if (passes < 1) passes = 1;

  FILE *fp = fopen(argv[1], "rb");
  if (!fp) {
    perror(argv[1]);
    return 1;
  }
  fseek(fp, 0, SEEK_END);
  size_t size = (size_t)ftell(fp);
  fseek(fp, 0, SEEK_SET);
  uint8_t *buf = malloc(size);
  if (!buf || fread(buf, 1, size, fp) != size) {
    fprintf(stderr, "buddy: cannot read %s\n", argv[1]);
    return 1;
  }
  fclose(fp);

  size_t off = 0;
  int32_t *hdr = take(buf, size, &off, 16 * sizeof(int32_t));
  if (hdr[0] != DUMP_MAGIC || hdr[1] != DUMP_VERSION) {
    fprintf(stderr, "buddy: %s is not a version-%d buddy workload dump\n", argv[1], DUMP_VERSION);
    return 1;
  }
  struct mm mm = {0};
  struct zone zone = {0};
  struct workload w = {0};
  mm.nr_frames = hdr[2];
  mm.nr_lists = hdr[3];
  int32_t nr_pageblocks = hdr[4];
  zone.free_list_base = hdr[5];
  w.live_slots = hdr[6];
  w.ops = hdr[7];
  mm.page_group_by_mobility_disabled = hdr[8];
  size_t frame_bytes = (size_t)hdr[9];

  double *counters = take(buf, size, &off, (NR_PAGE_ORDERS + 4) * sizeof(double));
  for (int o = 0; o < NR_PAGE_ORDERS; o++) zone.nr_free[o] = (long)counters[o];
  zone.nr_free_pages = (long)counters[NR_PAGE_ORDERS];
  zone.nr_free_cma_pages = (long)counters[NR_PAGE_ORDERS + 1];
  zone.nr_free_pages_blocks = (long)counters[NR_PAGE_ORDERS + 2];
  zone.nr_free_highatomic = (long)counters[NR_PAGE_ORDERS + 3];

  /* The FrameTable buffer, with the offsets src/mm/frames.ts computes. */
  uint8_t *frames = take(buf, size, &off, frame_bytes);
  size_t slots = (size_t)mm.nr_frames + (size_t)mm.nr_lists;
  /* index (f64), flags, mapping, mapcount (the owner fields the C loop does not use), then the
     list links, the list counts and the orders. */
  size_t index_off = FRAMES_HEADER_BYTES;
  size_t flags_off = index_off + (size_t)mm.nr_frames * 8;
  size_t next_off = flags_off + (size_t)mm.nr_frames * 12;
  size_t prev_off = next_off + slots * 4;
  size_t count_off = prev_off + slots * 4;
  size_t order_off = count_off + (size_t)mm.nr_lists * 4;
  if (order_off + (size_t)mm.nr_frames != frame_bytes) {
    fprintf(stderr, "buddy: frame table size mismatch\n");
    return 1;
  }
  mm.flags = (uint32_t *)(frames + flags_off);
  mm.next = (int32_t *)(frames + next_off);
  mm.prev = (int32_t *)(frames + prev_off);
  mm.list_count = (int32_t *)(frames + count_off);
  mm.order = frames + order_off;
  mm.pb_flags = take(buf, size, &off, (size_t)nr_pageblocks);
  mm.pb_zone = take(buf, size, &off, (size_t)nr_pageblocks * 2);
  w.live = take(buf, size, &off, (size_t)w.live_slots * 4);
  w.live_order = take(buf, size, &off, (size_t)w.live_slots);
  w.tape_slot = take(buf, size, &off, (size_t)w.ops * 4);
  w.tape_order = take(buf, size, &off, (size_t)w.ops);
  if (off != size) {
    fprintf(stderr, "buddy: %zu trailing bytes in dump\n", size - off);
    return 1;
  }
  free(buf);

  uint32_t checksum = pass(&mm, &zone, &w);
  long free_pages = zone.nr_free_pages;
  printf("{\"checksum\":%u,\"free_pages\":%ld,\"ops_per_pass\":%d,\"ns\":[", checksum, free_pages, w.ops);
  uint32_t sink = 0; /* every pass's checksum stays observable */
  for (int p = 0; p < passes; p++) {
    double t0 = now_ns();
    sink ^= pass(&mm, &zone, &w);
    double t1 = now_ns();
    printf("%s%.0f", p ? "," : "", t1 - t0);
  }
  printf("],\"sink\":%u}\n", sink);
  return 0;
}
