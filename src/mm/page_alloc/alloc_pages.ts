/**
 * The page allocator's entry points (mm/page_alloc.c): __alloc_pages() and __free_pages(), and
 * the boot-time free of memblock memory.
 */
import { __GFP_MOVABLE, __GFP_THISNODE, gfp_migratetype, gfp_zone } from '../gfp.ts';
import { ALLOC_WMARK_LOW, FPI_NONE, FPI_TO_TAIL } from '../internal.ts';
import type { MM } from '../mm.ts';
import { MAX_PAGE_ORDER, MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_PCPTYPES, type Zone } from '../mmzone.ts';
import {
  PAGE_FLAGS_CHECK_AT_FREE,
  PAGE_FLAGS_CLEAR_AT_FREE,
  PG_head,
  PG_tail,
  PGI_alloc,
} from '../page-flags.ts';
import { get_pfnblock_migratetype } from '../pageblock.ts';
import { PGFREE } from '../vmstat_items.ts';
import { split_large_buddy } from './buddy.ts';
import { AllocContext } from './context.ts';
import { free_frozen_page_commit, mod_zone_stat_diff, pcp_allowed_order } from './pcp.ts';
import { alloc_flags_nofragment, get_page_from_freelist, gfp_to_alloc_flags_cma } from './rmqueue.ts';
import { __alloc_pages_slowpath } from './slowpath.ts';

/** Contexts by nesting depth, so an allocation made from inside another reuses no live context. */
const contexts: AllocContext[] = [];
let depth = 0;

/**
 * kernel: mm/page_alloc.c prepare_alloc_pages()
 * The zonelist of the preferred node (this node only for __GFP_THISNODE), the highest usable
 * zone, the migratetype, and the first zone of the list that the request may use.
 */
function prepare_alloc_pages(mm: MM, gfp: number, nid: number, cpu: number, ac: AllocContext): boolean {
  ac.highest_zoneidx = gfp_zone(gfp);
  if (ac.highest_zoneidx < 0) throw new RangeError(`invalid GFP zone modifiers in 0x${gfp.toString(16)}`);
  const node = mm.nodes[nid];
  ac.zonelist = gfp & __GFP_THISNODE ? node.zonelist_nofallback : node.zonelist_fallback;
  ac.migratetype = gfp_migratetype(gfp);
  ac.cpu = cpu;
  ac.preferred_zone = null;
  for (let i = 0; i < ac.zonelist.length; i++) {
    const zone = mm.zones[ac.zonelist[i]];
    if (zone.zone_idx <= ac.highest_zoneidx) {
      ac.preferred_index = i;
      ac.preferred_zone = zone;
      break;
    }
  }
  return true;
}

/**
 * kernel: mm/page_alloc.c __alloc_frozen_pages_noprof()
 * The fast path at the low watermark with ALLOC_NOFRAGMENT where it applies, then the slow path.
 * Returns the first pfn of a 2^order block, or -1. A block of an order the pcp lists do not hold
 * comes straight off the buddy lists, changing the zone's free-page counters on `cpu`.
 */
export function __alloc_pages(mm: MM, gfp: number, order: number, nid: number, cpu: number): number {
  if (order > MAX_PAGE_ORDER || order < 0) return -1;
  // current_gfp_context(): a task pinning for the long term allocates nothing movable.
  if (mm.pf_memalloc_pin) gfp &= ~__GFP_MOVABLE;
  if (depth === contexts.length) contexts.push(new AllocContext());
  const ac = contexts[depth++];
  try {
    prepare_alloc_pages(mm, gfp, nid, cpu, ac);
    let alloc_flags = gfp_to_alloc_flags_cma(mm, gfp, ALLOC_WMARK_LOW);
    alloc_flags |= alloc_flags_nofragment(mm, ac.preferred_zone, gfp);
    let pfn = get_page_from_freelist(mm, gfp, order, alloc_flags, ac);
    if (pfn < 0) pfn = __alloc_pages_slowpath(mm, gfp, order, ac);
    if (pfn >= 0) {
      if (!pcp_allowed_order(mm, order)) mod_zone_stat_diff(mm.page_zone(pfn)!, cpu);
      const tp = mm.trace.mm_page_alloc;
      if (tp !== null) tp(pfn, order, gfp, ac.migratetype);
    }
    return pfn;
  } finally {
    depth--;
  }
}

/** Throws unless `pfn` heads an allocated block of exactly `order` (the kernel's bad_page()). */
function check_free_page(mm: MM, pfn: number, order: number): void {
  const f = mm.frames;
  if (!Number.isInteger(pfn) || pfn < 0 || pfn >= f.nr_frames)
    throw new RangeError(`free_pages: pfn ${pfn} out of range`);
  if ((f.flags[pfn] & PGI_alloc) === 0) throw new Error(`BUG: Bad page state: pfn ${pfn} is not allocated`);
  if (f.order[pfn] !== order)
    throw new Error(
      `BUG: Bad page state: pfn ${pfn} was allocated at order ${f.order[pfn]}, freed at order ${order}`,
    );
  if (f.flags[pfn] & PAGE_FLAGS_CHECK_AT_FREE)
    throw new Error(`BUG: Bad page state: pfn ${pfn} flags 0x${f.flags[pfn].toString(16)} at free`);
}

/** kernel: mm/page_alloc.c free_pages_prepare(): clear allocation and compound state. */
function free_pages_prepare(mm: MM, pfn: number, order: number): void {
  const f = mm.frames;
  if (f.flags[pfn] & PG_head) {
    const end = pfn + (1 << order);
    for (let p = pfn + 1; p < end; p++) f.flags[p] &= ~PG_tail;
    mm.kernel_ns += ((1 << order) - 1) * mm.cost.compound_tail; // free_tail_page_prepare()
  }
  // page->flags &= ~PAGE_FLAGS_CHECK_AT_PREP: no state outlives the page's use.
  f.flags[pfn] &= ~(PGI_alloc | PG_head | PAGE_FLAGS_CLEAR_AT_FREE);
  f.order[pfn] = 0;
  const tp = mm.trace.mm_page_free;
  if (tp !== null) tp(pfn, order);
}

/** kernel: mm/page_alloc.c free_one_page(): straight to the buddy lists. */
export function free_one_page(mm: MM, zone: Zone, pfn: number, order: number, fpi: number): void {
  mm.kernel_ns += mm.cost.zone_lock;
  split_large_buddy(mm, zone, pfn, order, fpi);
  mm.vm_events[PGFREE] += 1 << order;
}

/**
 * kernel: mm/page_alloc.c __free_frozen_pages()
 * Orders the pcp lists hold go to this CPU's list (HIGHATOMIC and CMA blocks ride on the MOVABLE
 * list; pages of isolated pageblocks bypass the pcp); others go straight to the buddy, changing
 * the zone's counters on `cpu`.
 */
export function __free_pages(mm: MM, pfn: number, order: number, cpu: number, fpi = FPI_NONE): void {
  check_free_page(mm, pfn, order);
  free_pages_prepare(mm, pfn, order);
  const zone = mm.page_zone(pfn)!;
  if (!pcp_allowed_order(mm, order)) {
    free_one_page(mm, zone, pfn, order, fpi);
    mod_zone_stat_diff(zone, cpu);
    return;
  }
  let mt = get_pfnblock_migratetype(mm, pfn);
  if (mt >= MIGRATE_PCPTYPES) {
    if (mt === MIGRATE_ISOLATE) {
      // No counter changes: isolated pages are not counted free.
      free_one_page(mm, zone, pfn, order, fpi);
      return;
    }
    mt = MIGRATE_MOVABLE;
  }
  free_frozen_page_commit(mm, zone, cpu, pfn, mt, order);
}

/**
 * kernel: mm/page_alloc.c __free_pages_core()
 * Boot and hot-add: give a range the buddy allocator has never seen to it, at the tail of the free
 * lists, counting the pages as managed by their zone. (The kernel also clears PageReserved on
 * each page; the model never set it on RAM it frees.)
 */
export function __free_pages_core(mm: MM, pfn: number, order: number): void {
  const zone = mm.page_zone(pfn)!;
  const nr = 1 << order;
  zone.managed_pages += nr;
  mm.totalram_pages += nr;
  free_one_page(mm, zone, pfn, order, FPI_TO_TAIL);
}

/**
 * kernel: mm/memblock.c __free_pages_memory() (and deferred_free_pages()): give [start, end) to
 * the buddy allocator in the largest naturally aligned blocks, never across a zone boundary.
 */
export function __free_pages_memory(mm: MM, start: number, end: number): void {
  while (start < end) {
    let order = start ? Math.min(MAX_PAGE_ORDER, 31 - Math.clz32(start & -start)) : MAX_PAGE_ORDER;
    while (start + (1 << order) > end) order--;
    // Never free across a zone boundary: the kernel's ranges are split per zone the same way.
    const zone = mm.page_zone(start);
    if (zone && start + (1 << order) > zone.zone_end_pfn) {
      __free_pages_memory(mm, start, zone.zone_end_pfn);
      start = zone.zone_end_pfn;
      continue;
    }
    __free_pages_core(mm, start, order);
    start += 1 << order;
  }
}
