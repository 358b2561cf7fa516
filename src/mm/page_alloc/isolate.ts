/**
 * The page allocator's side of page isolation (mm/page_alloc.c, CONFIG_MEMORY_ISOLATION): moving
 * a pageblock's free pages to and from the MIGRATE_ISOLATE free lists as its isolate bit is set or
 * cleared, splitting a free buddy larger than a pageblock that the block is only part of, and
 * putting back a block __isolate_free_page() took.
 *
 * The isolate bit (PB_migrate_isolate) sits beside the stored migratetype, so clearing it brings
 * the old type back; while it is set get_pfnblock_migratetype() reports MIGRATE_ISOLATE and every
 * page freed into the block lands on its ISOLATE free lists, outside NR_FREE_PAGES, where no
 * allocation looks.
 */
import { FPI_SKIP_REPORT_NOTIFY, FPI_TO_TAIL } from '../internal.ts';
import type { MM } from '../mm.ts';
import { MAX_PAGE_ORDER, MIGRATE_ISOLATE, pageblock_end_pfn, pageblock_order, type Zone } from '../mmzone.ts';
import { PG_buddy, PGI_alloc } from '../page-flags.ts';
import {
  get_pageblock_isolate,
  get_pageblock_migratetype_raw,
  get_pfnblock_migratetype,
  set_pageblock_isolate,
} from '../pageblock.ts';
import { __free_one_page, split_large_buddy } from './buddy.ts';
import { __move_freepages_block } from './fallback.ts';
import { __del_page_from_free_list, account_freepages } from './freelist.ts';

/** __ffs(): the index of the lowest set bit of a non-zero pfn. */
function __ffs(x: number): number {
  let n = 0;
  while (x % 2 === 0) {
    x /= 2;
    n++;
  }
  return n;
}

/**
 * kernel: mm/page_alloc.c find_large_buddy()
 * The first pfn of a free buddy that straddles `start_pfn` (begins before it and covers it), or
 * `start_pfn` itself when none does. A block holding `start_pfn` that does not begin there has
 * at least order __ffs(start_pfn) + 1, so the search starts one order above that: for pfn 1536
 * (__ffs 9) it looks at pfn 1024 (order 10) only.
 */
export function find_large_buddy(mm: MM, start_pfn: number): number {
  const flags = mm.frames.flags;
  let order = start_pfn ? __ffs(start_pfn) : MAX_PAGE_ORDER;
  let pfn = start_pfn;
  while ((flags[pfn] & PG_buddy) === 0) {
    // Nothing found.
    if (++order > MAX_PAGE_ORDER) return start_pfn;
    pfn -= pfn % 2 ** order; // pfn &= ~0UL << order
  }
  // Found a preceding buddy, but does it straddle?
  if (pfn + 2 ** mm.frames.order[pfn] > start_pfn) return pfn;
  return start_pfn;
}

/** kernel: mm/page_alloc.c toggle_pageblock_isolate() */
function toggle_pageblock_isolate(mm: MM, pfn: number, isolate: boolean): void {
  set_pageblock_isolate(mm, pfn, isolate);
}

/**
 * kernel: mm/page_alloc.c __move_freepages_block_isolate()
 * Set or clear the isolate bit of the pageblock of `pfn` and move its free pages between its
 * type's free lists and the ISOLATE ones. If the block is part of a free buddy larger than a
 * pageblock, that buddy is split into pageblock-sized pieces instead, each freed to the lists of
 * its own block's (new) type: isolating one half of a free order-10 block leaves an order-9 block
 * on the ISOLATE lists and one on its old type's. False if the block already is in that state
 * or straddles a zone boundary.
 */
function __move_freepages_block_isolate(mm: MM, zone: Zone, pfn: number, isolate: boolean): boolean {
  // VM_WARN_ONCE(): silent without CONFIG_DEBUG_VM.
  if (isolate === get_pageblock_isolate(mm, pfn)) return false;
  // prep_move_freepages_block(): the whole block must lie in the zone.
  const start_pfn = pfn - (pfn % (1 << pageblock_order));
  if (!zone.zone_spans_pfn(start_pfn) || !zone.zone_spans_pfn(pageblock_end_pfn(pfn) - 1)) return false;
  // No splits are needed if buddies cannot span several blocks (pageblock_order == MAX_PAGE_ORDER:
  // never on x86-64).
  const buddy_pfn = find_large_buddy(mm, start_pfn);
  const f = mm.frames;
  // We are part of a larger buddy.
  if (f.flags[buddy_pfn] & PG_buddy && f.order[buddy_pfn] > pageblock_order) {
    const order = f.order[buddy_pfn];
    const mt = get_pfnblock_migratetype(mm, buddy_pfn);
    // del_page_from_free_list()
    __del_page_from_free_list(mm, buddy_pfn, zone, order, mt);
    account_freepages(zone, -(2 ** order), mt);
    toggle_pageblock_isolate(mm, pfn, isolate);
    split_large_buddy(mm, zone, buddy_pfn, order, 0);
    return true;
  }
  // The stored type, without the isolate bit (MIGRATETYPE_MASK).
  const raw = get_pageblock_migratetype_raw(mm, pfn);
  const from_mt = isolate ? raw : MIGRATE_ISOLATE;
  const to_mt = isolate ? MIGRATE_ISOLATE : raw;
  __move_freepages_block(mm, zone, start_pfn, from_mt, to_mt);
  toggle_pageblock_isolate(mm, start_pfn, isolate);
  return true;
}

/** kernel: mm/page_alloc.c pageblock_isolate_and_move_free_pages() */
export function pageblock_isolate_and_move_free_pages(mm: MM, zone: Zone, pfn: number): boolean {
  return __move_freepages_block_isolate(mm, zone, pfn, true);
}

/** kernel: mm/page_alloc.c pageblock_unisolate_and_move_free_pages() */
export function pageblock_unisolate_and_move_free_pages(mm: MM, zone: Zone, pfn: number): boolean {
  return __move_freepages_block_isolate(mm, zone, pfn, false);
}

/**
 * kernel: mm/page_alloc.c __putback_isolated_page()
 * Give a block __isolate_free_page() took back to the free lists of type `mt`, at the tail (it
 * merges with its buddies on the way).
 */
export function __putback_isolated_page(mm: MM, zone: Zone, pfn: number, order: number, mt: number): void {
  const f = mm.frames;
  // The model marked the isolated block allocated; it is a free page again.
  f.flags[pfn] &= ~PGI_alloc;
  f.order[pfn] = 0;
  __free_one_page(mm, pfn, zone, order, mt, FPI_SKIP_REPORT_NOTIFY | FPI_TO_TAIL);
}
