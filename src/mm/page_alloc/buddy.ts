/**
 * The buddy allocator proper (mm/page_alloc.c): splitting on allocation, merging on free.
 * The three hot functions (expand, __rmqueue_smallest, __free_one_page) inline the free-list
 * primitives of freelist.ts and the buddy lookup, named in comments where they stand: together
 * with local constants that makes the raw buddy path ~25% faster (bench/buddy-raw-vs-c).
 */

import type { CaptureControl } from '../compaction.ts';
import { FPI_TO_TAIL } from '../internal.ts';
import type { MM } from '../mm.ts';
import {
  MAX_PAGE_ORDER,
  MIGRATE_CMA,
  MIGRATE_HIGHATOMIC,
  MIGRATE_ISOLATE,
  MIGRATE_MOVABLE,
  MIGRATE_TYPES,
  migratetype_is_mergeable,
  pageblock_nr_pages,
  pageblock_order,
  type Zone,
} from '../mmzone.ts';
import { PG_buddy } from '../page-flags.ts';
import { get_pfnblock_migratetype, set_pageblock_migratetype } from '../pageblock.ts';
import { NR_FREE_CMA_PAGES, NR_FREE_PAGES, NR_FREE_PAGES_BLOCKS } from '../vmstat_items.ts';
import { __del_page_from_free_list, account_freepages } from './freelist.ts';

// Hot constants as module-local literals: V8 loads an imported binding from its module cell on
// every use but folds a local literal, which makes this file's loops ~15% faster (bench/
// buddy-raw-vs-c). The check below keeps them equal to the canonical values.
const L_MAX_PAGE_ORDER = 10;
const L_MIGRATE_TYPES = 6;
const L_pageblock_order = 9;
const L_MIGRATE_ISOLATE = 5;
const L_PG_buddy = 1 << 15;
const L_FPI_TO_TAIL = 1 << 1;
const L_NR_FREE_PAGES_BLOCKS = 1;
const L_NR_FREE_PAGES = 0;
const L_NR_FREE_CMA_PAGES = 10;
const L_MIGRATE_CMA = 4;
const L_MIGRATE_HIGHATOMIC = 3;
const L_MIGRATE_MOVABLE = 1;
if (
  L_MAX_PAGE_ORDER !== MAX_PAGE_ORDER ||
  L_MIGRATE_TYPES !== MIGRATE_TYPES ||
  L_pageblock_order !== pageblock_order ||
  L_MIGRATE_ISOLATE !== MIGRATE_ISOLATE ||
  L_PG_buddy !== PG_buddy ||
  L_FPI_TO_TAIL !== FPI_TO_TAIL ||
  L_NR_FREE_PAGES_BLOCKS !== NR_FREE_PAGES_BLOCKS ||
  L_NR_FREE_PAGES !== NR_FREE_PAGES ||
  L_NR_FREE_CMA_PAGES !== NR_FREE_CMA_PAGES ||
  L_MIGRATE_CMA !== MIGRATE_CMA ||
  L_MIGRATE_HIGHATOMIC !== MIGRATE_HIGHATOMIC ||
  L_MIGRATE_MOVABLE !== MIGRATE_MOVABLE
) {
  throw new Error(
    'page_alloc/buddy.ts: local constants disagree with mmzone.ts/page-flags.ts/vmstat_items.ts',
  );
}

// account_freepages() with the constants above.
function account_freepages_l(zone: Zone, nr_pages: number, mt: number): void {
  if (mt === L_MIGRATE_ISOLATE) return;
  zone.vm_stat[L_NR_FREE_PAGES] += nr_pages;
  if (mt === L_MIGRATE_CMA) zone.vm_stat[L_NR_FREE_CMA_PAGES] += nr_pages;
  else if (mt === L_MIGRATE_HIGHATOMIC) zone.nr_free_highatomic += nr_pages;
}

/**
 * kernel: mm/page_alloc.c expand()
 * Split a block of order `high` down to `low`, keeping the lowest part for the caller and putting
 * each upper half at the head of its order's list: splitting the order-3 block at pfn 8 for an
 * order-0 request frees pfn 12 (order 2), pfn 10 (order 1) and pfn 9 (order 0).
 * Returns the number of pages put back on free lists.
 */
export function expand(mm: MM, zone: Zone, pfn: number, low: number, high: number, mt: number): number {
  const f = mm.frames;
  const flags = f.flags;
  const orders = f.order;
  const next = f.next;
  const prev = f.prev;
  const count = f.list_count;
  const nr_frames = f.nr_frames;
  const nr_free = zone.nr_free;
  const base = zone.free_list_base + mt;
  mm.kernel_ns += (high - low) * mm.cost.buddy_order;
  let size = 1 << high;
  let nr_added = 0;
  while (high > low) {
    high--;
    size >>= 1;
    // __add_to_free_list(pfn + size, high, mt, head)
    const q = pfn + size;
    flags[q] |= L_PG_buddy;
    orders[q] = high;
    const list = base + high * L_MIGRATE_TYPES;
    const head = nr_frames + list;
    const first = next[head];
    next[q] = first;
    prev[q] = head;
    prev[first] = q;
    next[head] = q;
    count[list]++;
    nr_free[high]++;
    if (high >= L_pageblock_order && mt !== L_MIGRATE_ISOLATE) zone.vm_stat[L_NR_FREE_PAGES_BLOCKS] += size;
    nr_added += size;
  }
  return nr_added;
}

// kernel: mm/page_alloc.c page_del_and_expand()
export function page_del_and_expand(
  mm: MM,
  zone: Zone,
  pfn: number,
  low: number,
  high: number,
  mt: number,
): void {
  let nr_pages = 1 << high;
  __del_page_from_free_list(mm, pfn, zone, high, mt);
  nr_pages -= expand(mm, zone, pfn, low, high, mt);
  account_freepages(zone, -nr_pages, mt);
}

/**
 * kernel: mm/page_alloc.c __rmqueue_smallest()
 * The smallest free block of type `mt` at or above `order`, taken from its list head.
 */
export function __rmqueue_smallest(mm: MM, zone: Zone, order: number, mt: number): number {
  const f = mm.frames;
  const count = f.list_count;
  const base = zone.free_list_base + mt;
  for (let cur = order; cur <= L_MAX_PAGE_ORDER; cur++) {
    const list = base + cur * L_MIGRATE_TYPES;
    if (count[list] === 0) continue;
    const next = f.next;
    const prev = f.prev;
    const pfn = next[f.nr_frames + list];
    // __del_page_from_free_list(pfn, cur, mt)
    const n = next[pfn];
    const p = prev[pfn];
    next[p] = n;
    prev[n] = p;
    next[pfn] = -1;
    prev[pfn] = -1;
    count[list]--;
    f.flags[pfn] &= ~L_PG_buddy;
    f.order[pfn] = 0;
    zone.nr_free[cur]--;
    if (cur >= L_pageblock_order && mt !== L_MIGRATE_ISOLATE)
      zone.vm_stat[L_NR_FREE_PAGES_BLOCKS] -= 1 << cur;
    const nr_added = cur > order ? expand(mm, zone, pfn, order, cur, mt) : 0;
    account_freepages_l(zone, nr_added - (1 << cur), mt);
    return pfn;
  }
  return -1;
}

/** kernel: mm/page_alloc.c change_pageblock_range(): retype every pageblock of a large block. */
export function change_pageblock_range(mm: MM, pfn: number, order: number, mt: number): void {
  let nr = order >= pageblock_order ? 1 << (order - pageblock_order) : 1;
  while (nr-- > 0) {
    set_pageblock_migratetype(mm, pfn, mt);
    pfn += pageblock_nr_pages;
  }
}

/**
 * kernel: mm/page_alloc.c compaction_capture()
 * The direct compactor waiting in this zone (task_capc()) takes the block being freed once it has
 * merged up to the compactor's order, unless that would put CMA or isolated memory to use, or
 * let a non-movable request take part of a movable pageblock. The caller checked the order.
 */
function compaction_capture(capc: CaptureControl, pfn: number, order: number, mt: number): boolean {
  if (mt === L_MIGRATE_CMA || mt === L_MIGRATE_ISOLATE) return false;
  if (order < L_pageblock_order && mt === L_MIGRATE_MOVABLE && capc.cc.migratetype !== L_MIGRATE_MOVABLE)
    return false;
  capc.page = pfn;
  return true;
}

/**
 * kernel: mm/page_alloc.c __free_one_page()
 * Merge the freed block with its free buddies up to MAX_PAGE_ORDER. Below pageblock order buddies
 * share a pageblock and merge freely; at or above it two blocks merge only if their types match
 * or both are mergeable (UNMOVABLE/MOVABLE/RECLAIMABLE), and the buddy's pageblocks then take
 * the freed block's type. So ISOLATE, CMA and HIGHATOMIC blocks never merge with other types.
 * While a direct compactor waits in this zone (mm.capture_control), a block that reaches its
 * order is handed to it instead of a free list (compaction_capture()).
 */
export function __free_one_page(
  mm: MM,
  pfn: number,
  zone: Zone,
  order: number,
  mt: number,
  fpi: number,
): void {
  const f = mm.frames;
  const flags = f.flags;
  const orders = f.order;
  const next = f.next;
  const prev = f.prev;
  const count = f.list_count;
  const nr_frames = f.nr_frames;
  const pb_zone = mm.pb_zone;
  const nr_free = zone.nr_free;
  const base = zone.free_list_base;
  // task_capc(): a direct compactor of this zone still waiting for its block; its order, or -1.
  const capc = mm.capture_control;
  const capc_order = capc !== null && capc.page < 0 && capc.cc.zone === zone ? capc.cc.order : -1;
  account_freepages_l(zone, 1 << order, mt);
  const start_order = order;
  while (order < L_MAX_PAGE_ORDER) {
    if (order === capc_order && compaction_capture(capc!, pfn, order, mt)) {
      account_freepages_l(zone, -(1 << order), mt);
      return;
    }
    // find_buddy_page_pfn()
    const buddy = pfn ^ (1 << order);
    if (buddy >= nr_frames || (flags[buddy] & L_PG_buddy) === 0 || orders[buddy] !== order) break;
    let buddy_mt = mt;
    if (order >= L_pageblock_order) {
      if (pb_zone[buddy >>> L_pageblock_order] !== pb_zone[pfn >>> L_pageblock_order]) break;
      buddy_mt = get_pfnblock_migratetype(mm, buddy);
      if (buddy_mt !== mt && (!migratetype_is_mergeable(mt) || !migratetype_is_mergeable(buddy_mt))) break;
    }
    // __del_page_from_free_list(buddy, order, buddy_mt)
    const n = next[buddy];
    const p = prev[buddy];
    next[p] = n;
    prev[n] = p;
    next[buddy] = -1;
    prev[buddy] = -1;
    count[base + order * L_MIGRATE_TYPES + buddy_mt]--;
    flags[buddy] &= ~L_PG_buddy;
    orders[buddy] = 0;
    nr_free[order]--;
    if (order >= L_pageblock_order && buddy_mt !== L_MIGRATE_ISOLATE)
      zone.vm_stat[L_NR_FREE_PAGES_BLOCKS] -= 1 << order;
    if (buddy_mt !== mt) change_pageblock_range(mm, buddy, order, mt);
    pfn &= buddy;
    order++;
  }
  mm.kernel_ns += mm.cost.buddy_free + (order - start_order) * mm.cost.buddy_order;
  // buddy_merge_likely(): is the buddy one order up free?
  let to_tail = (fpi & L_FPI_TO_TAIL) !== 0;
  if (!to_tail && order < L_MAX_PAGE_ORDER - 1) {
    const higher = pfn & (pfn ^ (1 << order));
    const hb = higher ^ (1 << (order + 1));
    to_tail =
      hb < nr_frames &&
      (flags[hb] & L_PG_buddy) !== 0 &&
      orders[hb] === order + 1 &&
      (order + 1 < L_pageblock_order ||
        pb_zone[hb >>> L_pageblock_order] === pb_zone[higher >>> L_pageblock_order]);
  }
  // __add_to_free_list(pfn, order, mt, to_tail)
  flags[pfn] |= L_PG_buddy;
  orders[pfn] = order;
  const list = base + order * L_MIGRATE_TYPES + mt;
  const head = nr_frames + list;
  if (to_tail) {
    const last = prev[head];
    prev[pfn] = last;
    next[pfn] = head;
    next[last] = pfn;
    prev[head] = pfn;
  } else {
    const first = next[head];
    next[pfn] = first;
    prev[pfn] = head;
    prev[first] = pfn;
    next[head] = pfn;
  }
  count[list]++;
  nr_free[order]++;
  if (order >= L_pageblock_order && mt !== L_MIGRATE_ISOLATE)
    zone.vm_stat[L_NR_FREE_PAGES_BLOCKS] += 1 << order;
}

/**
 * kernel: mm/page_alloc.c split_large_buddy()
 * Free a block larger than a pageblock as pageblock-sized pieces, each with its own block type;
 * they re-merge in __free_one_page only where the types allow.
 */
export function split_large_buddy(mm: MM, zone: Zone, pfn: number, order: number, fpi: number): void {
  const end = pfn + (1 << order);
  if (order > pageblock_order) order = pageblock_order;
  do {
    const mt = get_pfnblock_migratetype(mm, pfn);
    __free_one_page(mm, pfn, zone, order, mt, fpi);
    pfn += 1 << order;
  } while (pfn !== end);
}
