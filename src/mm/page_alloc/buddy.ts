/**
 * The buddy allocator proper (mm/page_alloc.c): splitting on allocation, merging on free.
 */

import { FPI_TO_TAIL } from '../internal.ts';
import type { MM } from '../mm.ts';
import {
  MAX_PAGE_ORDER,
  MIGRATE_TYPES,
  migratetype_is_mergeable,
  pageblock_nr_pages,
  pageblock_order,
  type Zone,
} from '../mmzone.ts';
import { PG_buddy } from '../page-flags.ts';
import { get_pfnblock_migratetype, set_pageblock_migratetype } from '../pageblock.ts';
import { __add_to_free_list, __del_page_from_free_list, account_freepages } from './freelist.ts';

/**
 * kernel: mm/page_alloc.c expand()
 * Split a block of order `high` down to `low`, keeping the lowest part for the caller and putting
 * each upper half at the head of its order's list: splitting the order-3 block at pfn 8 for an
 * order-0 request frees pfn 12 (order 2), pfn 10 (order 1) and pfn 9 (order 0).
 * Returns the number of pages put back on free lists.
 */
export function expand(mm: MM, zone: Zone, pfn: number, low: number, high: number, mt: number): number {
  let size = 1 << high;
  let nr_added = 0;
  while (high > low) {
    high--;
    size >>= 1;
    __add_to_free_list(mm, pfn + size, zone, high, mt, false);
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
  for (let cur = order; cur <= MAX_PAGE_ORDER; cur++) {
    const list = base + cur * MIGRATE_TYPES;
    if (count[list] === 0) continue;
    const pfn = f.list_first(list);
    page_del_and_expand(mm, zone, pfn, order, cur, mt);
    return pfn;
  }
  return -1;
}

/**
 * page_is_buddy() through find_buddy_page_pfn(): the buddy of (pfn, order) if it is a free block of
 * exactly that order in the same zone, else -1.
 */
export function find_buddy_page_pfn(mm: MM, pfn: number, order: number): number {
  const buddy = pfn ^ (1 << order);
  if (buddy >= mm.frames.nr_frames) return -1;
  if ((mm.frames.flags[buddy] & PG_buddy) === 0 || mm.frames.order[buddy] !== order) return -1;
  if (
    order >= pageblock_order &&
    mm.pb_zone[buddy >>> pageblock_order] !== mm.pb_zone[pfn >>> pageblock_order]
  ) {
    return -1;
  }
  return buddy;
}

/**
 * kernel: mm/page_alloc.c buddy_merge_likely()
 * If the block one order up (pfn & buddy) has a free buddy, the freed block is likely to merge
 * soon, so it goes to the tail where it stays free longer.
 */
export function buddy_merge_likely(mm: MM, pfn: number, buddy: number, order: number): boolean {
  if (order >= MAX_PAGE_ORDER - 1) return false;
  const higher = buddy & pfn;
  return find_buddy_page_pfn(mm, higher, order + 1) >= 0;
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
 * kernel: mm/page_alloc.c __free_one_page()
 * Merge the freed block with its free buddies up to MAX_PAGE_ORDER. Below pageblock order buddies
 * share a pageblock and merge freely; at or above it two blocks merge only if their types match
 * or both are mergeable (UNMOVABLE/MOVABLE/RECLAIMABLE), and the buddy's pageblocks then take
 * the freed block's type. So ISOLATE, CMA and HIGHATOMIC blocks never merge with other types.
 */
export function __free_one_page(
  mm: MM,
  pfn: number,
  zone: Zone,
  order: number,
  mt: number,
  fpi: number,
): void {
  account_freepages(zone, 1 << order, mt);
  while (order < MAX_PAGE_ORDER) {
    const buddy = find_buddy_page_pfn(mm, pfn, order);
    if (buddy < 0) break;
    let buddy_mt = mt;
    if (order >= pageblock_order) {
      buddy_mt = get_pfnblock_migratetype(mm, buddy);
      if (buddy_mt !== mt && (!migratetype_is_mergeable(mt) || !migratetype_is_mergeable(buddy_mt))) break;
    }
    __del_page_from_free_list(mm, buddy, zone, order, buddy_mt);
    if (buddy_mt !== mt) change_pageblock_range(mm, buddy, order, mt);
    pfn &= buddy;
    order++;
  }
  const to_tail = (fpi & FPI_TO_TAIL) !== 0 || buddy_merge_likely(mm, pfn, pfn ^ (1 << order), order);
  __add_to_free_list(mm, pfn, zone, order, mt, to_tail);
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
