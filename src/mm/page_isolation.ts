/**
 * Page isolation (mm/page_isolation.c, Linux 6.18): mark pageblocks MIGRATE_ISOLATE so that no
 * allocation can take their free pages, and every page freed in them stays free, until the
 * caller (alloc_contig_range, CMA, memory offlining) has emptied and taken the range or gives up.
 *
 * Isolation works on whole pageblocks, [pageblock_start_pfn(start), pageblock_align(end)). A
 * block is isolated only if nothing in it (its part of the range) looks unmovable
 * (has_unmovable_pages: reserved memory, slab, page tables and other kernel pages, non-LRU
 * compound pages); the check is racy by design in the kernel, and migration may still fail
 * later (pinned pages, for one). The two boundary pageblocks are isolated first and checked for
 * a compound page straddling the boundary (isolate_single_pageblock); a free buddy larger than a
 * pageblock is split by the isolation itself (__move_freepages_block_isolate), so isolated and
 * non-isolated blocks never share a free buddy.
 *
 * The pageblock's own type stays stored under the isolate bit, so undoing the isolation
 * (unset_migratetype_isolate) restores it and moves the block's free pages back to that type's
 * free lists, at the tail; a free pageblock-sized buddy whose buddy is free and not isolated is
 * taken and freed again so that it merges.
 */
import { __isolate_free_page } from './compaction.ts';
import { hugepage_migration_supported } from './hstate.ts';
import type { MM } from './mm.ts';
import {
  MAX_FOLIO_ORDER,
  MAX_ORDER_NR_PAGES,
  MAX_PAGE_ORDER,
  MIGRATE_CMA,
  MIGRATE_ISOLATE,
  pageblock_end_pfn,
  pageblock_nr_pages,
  pageblock_order,
  pageblock_start_pfn,
  ZONE_MOVABLE,
} from './mmzone.ts';
import {
  __putback_isolated_page,
  pageblock_isolate_and_move_free_pages,
  pageblock_unisolate_and_move_free_pages,
} from './page_alloc/isolate.ts';
import {
  PG_buddy,
  PG_head,
  PG_hugetlb,
  PG_lru,
  PG_movable_ops,
  PG_reserved,
  PG_tail,
  PGI_alloc,
  PGI_nopage,
} from './page-flags.ts';
import {
  get_pageblock_migratetype_raw,
  get_pfnblock_migratetype,
  set_pageblock_isolate,
} from './pageblock.ts';

const EBUSY = -16;

/**
 * enum pb_isolate_mode (include/linux/page-isolation.h): why a range is isolated.
 * MEM_OFFLINE isolates memory to offline it (poisoned and offline pages count as free, and an
 * unmovable page is dumped to the log); CMA_ALLOC lets CMA pageblocks be isolated; OTHER is
 * everything else (alloc_contig_pages, virtio-mem).
 */
export const PB_ISOLATE_MODE_MEM_OFFLINE = 0;
export const PB_ISOLATE_MODE_CMA_ALLOC = 1;
export const PB_ISOLATE_MODE_OTHER = 2;

/** is_migrate_isolate_page() */
export function is_migrate_isolate_page(mm: MM, pfn: number): boolean {
  return get_pfnblock_migratetype(mm, pfn) === MIGRATE_ISOLATE;
}

/**
 * compound_head(): the head of the compound page `pfn` belongs to, or `pfn` itself. The model
 * marks tails with PG_tail but keeps no pointer to the head: the head is the nearest aligned
 * PG_head whose order covers `pfn` (compound pages are naturally aligned, up to MAX_FOLIO_ORDER).
 */
export function compound_head(mm: MM, pfn: number): number {
  const f = mm.frames;
  if (!(f.flags[pfn] & PG_tail)) return pfn;
  for (let o = 1; o <= MAX_FOLIO_ORDER; o++) {
    const h = pfn - (pfn % 2 ** o);
    if (f.flags[h] & PG_head && f.order[h] >= o) return h;
  }
  return pfn;
}

/** compound_nr() of a head (1 for a page that is not compound). */
function compound_nr(mm: MM, head: number): number {
  return mm.frames.flags[head] & PG_head ? 2 ** mm.frames.order[head] : 1;
}

/**
 * pfn_to_online_page() != NULL: the pfn has a struct page in online memory. The model's frames
 * exist for every pfn below nr_frames; its memory sections are online where they hold RAM.
 */
function pfn_to_online_page(mm: MM, pfn: number): boolean {
  return pfn >= 0 && pfn < mm.frames.nr_frames && mm.pfn_online(pfn);
}

/**
 * kernel: mm/page_isolation.c __first_valid_page()
 * The first pfn of [pfn, pfn + nr_pages) with an online struct page, or -1.
 */
function __first_valid_page(mm: MM, pfn: number, nr_pages: number): number {
  for (let i = 0; i < nr_pages; i++) if (pfn_to_online_page(mm, pfn + i)) return pfn + i;
  return -1;
}

/**
 * kernel: mm/page_isolation.c has_unmovable_pages()
 * The first pfn of [start_pfn, end_pfn), a range inside one pageblock, that looks unmovable, or
 * -1. A CMA pageblock is unmovable as a whole unless isolating for CMA. Otherwise, page by page:
 * PageReserved (memblock, the kernel image, holes: the model's PGI_nopage frames) is unmovable,
 * even in ZONE_MOVABLE, where nothing else is checked; a compound page is movable if it is
 * hugetlb (x86-64 migrates both hugetlb sizes) or on the LRU (a THP), and is stepped over whole;
 * a page with no references (free, on a pcp list, or a tail of a non-compound block) is movable,
 * a free buddy stepped over whole; an LRU page or one with movable_ops is movable; anything
 * else (slab, page tables, vmalloc and driver pages, pinned pages that lost their mappings) is
 * unmovable. Poisoned and offline pages (movable when offlining) do not exist in the model.
 */
export function has_unmovable_pages(mm: MM, start_pfn: number, end_pfn: number, mode: number): number {
  const f = mm.frames;
  const flags = f.flags;
  const zone = mm.page_zone(start_pfn)!;
  if (get_pfnblock_migratetype(mm, start_pfn) === MIGRATE_CMA) {
    // CMA allocations (alloc_contig_range) really need to isolate CMA pageblocks even when they
    // are not movable in fact, so consider them movable here.
    if (mode === PB_ISOLATE_MODE_CMA_ALLOC) return -1;
    return start_pfn;
  }
  const scan = mm.cost.migrate_scan_pfn;
  for (let pfn = start_pfn; pfn < end_pfn; pfn++) {
    mm.kernel_ns += scan;
    const fl = flags[pfn];
    // Bootmem allocations and memory holes are PG_reserved and unmovable, even in ZONE_MOVABLE.
    if (fl & (PG_reserved | PGI_nopage)) return pfn;
    // In a movable zone, with reserved pages ruled out, the rest should be movable.
    if (zone.zone_idx === ZONE_MOVABLE) continue;
    // PageHuge() || PageTransCompound(): hugetlb pages are movable off the LRU; THPs are on it.
    // Tails are not looked at one by one: migration handles the folio as a whole.
    if (fl & (PG_head | PG_tail)) {
      const head = compound_head(mm, pfn);
      if (flags[head] & PG_hugetlb) {
        // size_to_hstate(folio_size()): the page may be freed meanwhile, so not folio_hstate().
        const h = mm.hugetlb.hstates.find((x) => x.order === f.order[head]);
        if (h && !hugepage_migration_supported(h)) return pfn;
      } else if (!(flags[head] & PG_lru)) {
        return pfn;
      }
      const skip_pages = compound_nr(mm, head) - (pfn - head);
      pfn += skip_pages - 1;
      continue;
    }
    // !page_ref_count(): only an allocated block's head holds references; free, pcp and
    // non-compound tail pages have none.
    if (!(fl & PGI_alloc)) {
      if (fl & PG_buddy) pfn += 2 ** f.order[pfn] - 1;
      continue;
    }
    if (fl & (PG_lru | PG_movable_ops)) continue;
    // Slab, page tables, other kernel allocations: memory offlining does not shrink slabs.
    return pfn;
  }
  return -1;
}

/**
 * kernel: mm/page_isolation.c set_migratetype_isolate()
 * Isolate the pageblock of `pfn` unless it already is (someone else's isolation: -EBUSY) or its
 * part of [start_pfn, end_pfn) holds an unmovable page (-EBUSY; dumped to the log when
 * offlining): its free pages move to the ISOLATE lists and nr_isolate_pageblock counts it.
 */
export function set_migratetype_isolate(
  mm: MM,
  pfn: number,
  mode: number,
  start_pfn: number,
  end_pfn: number,
): number {
  const zone = mm.page_zone(pfn)!;
  // PageUnaccepted(): no unaccepted memory in the model (not a confidential VM).
  // The caller meant to set the isolation; someone else raced and set it first.
  if (is_migrate_isolate_page(mm, pfn)) return EBUSY;
  mm.kernel_ns += mm.cost.zone_lock;
  // Only the intersection of the range and the pageblock needs checking.
  const check_unmovable_start = Math.max(pfn, start_pfn);
  const check_unmovable_end = Math.min(pageblock_end_pfn(pfn), end_pfn);
  const unmovable = has_unmovable_pages(mm, check_unmovable_start, check_unmovable_end, mode);
  if (unmovable < 0) {
    if (!pageblock_isolate_and_move_free_pages(mm, zone, pfn)) return EBUSY;
    zone.nr_isolate_pageblock++;
    return 0;
  }
  if (mode === PB_ISOLATE_MODE_MEM_OFFLINE) {
    // dump_page(unmovable, "unmovable page"), shortened to the pfn, the flags and the reason.
    mm.klog.push(`page: pfn:0x${unmovable.toString(16)} flags: 0x${mm.frames.flags[unmovable].toString(16)}`);
    mm.klog.push('page dumped because: unmovable page');
  }
  return EBUSY;
}

/**
 * kernel: mm/page_isolation.c unset_migratetype_isolate()
 * End the isolation of the pageblock of `pfn` (nothing if it is not isolated): its free pages go
 * back to its own type's lists, at the tail. A free pageblock-sized buddy at the block's start
 * whose buddy is free and not isolated could not merge while isolated: it is taken off the
 * lists and freed again (__isolate_free_page, __putback_isolated_page) so that it merges.
 */
export function unset_migratetype_isolate(mm: MM, pfn: number): void {
  const zone = mm.page_zone(pfn)!;
  const f = mm.frames;
  let isolated_page = false;
  let order = 0;
  if (!is_migrate_isolate_page(mm, pfn)) return;
  if (f.flags[pfn] & PG_buddy) {
    order = f.order[pfn];
    if (order >= pageblock_order && order < MAX_PAGE_ORDER) {
      // find_buddy_page_pfn(): a free buddy of the same order in the same zone.
      const buddy = pfn ^ (1 << order);
      if (
        buddy < f.nr_frames &&
        f.flags[buddy] & PG_buddy &&
        f.order[buddy] === order &&
        mm.page_zone(buddy) === zone &&
        !is_migrate_isolate_page(mm, buddy)
      ) {
        // Isolating a free page in an isolated pageblock always works: no watermarks apply.
        isolated_page = __isolate_free_page(mm, zone, pfn, order) !== 0;
      }
    }
  }
  // Without a taken buddy the free pages just move back (to the tail, so that just onlined
  // memory is not used at once).
  if (!isolated_page) {
    pageblock_unisolate_and_move_free_pages(mm, zone, pfn);
  } else {
    set_pageblock_isolate(mm, pfn, false);
    __putback_isolated_page(mm, zone, pfn, order, get_pageblock_migratetype_raw(mm, pfn));
  }
  zone.nr_isolate_pageblock--;
}

/**
 * kernel: mm/page_isolation.c isolate_single_pageblock()
 * Isolate the pageblock before (`isolate_before`) or at the pageblock-aligned `boundary_pfn`,
 * unless `skip_isolation` (the caller already did: the range is one pageblock), checking the
 * whole pageblock for unmovable pages; then scan from the MAX_ORDER_NR_PAGES-aligned start (at
 * most the zone start) up to the boundary for a page straddling it. A free buddy cannot straddle
 * (isolating split it); an in-use compound page that straddles and is not hugetlb fails the
 * isolation (-EBUSY, the block's isolation undone): it is expected never to exceed a pageblock.
 */
function isolate_single_pageblock(
  mm: MM,
  boundary_pfn: number,
  mode: number,
  isolate_before: boolean,
  skip_isolation: boolean,
): number {
  const f = mm.frames;
  const isolate_pageblock = isolate_before ? boundary_pfn - pageblock_nr_pages : boundary_pfn;
  // Scan from the MAX_ORDER_NR_PAGES-aligned start, so that no bigger-than-pageblock page is
  // isolated in part; all pageblocks to isolate are in one zone.
  const zone = mm.page_zone(isolate_pageblock)!;
  const start_pfn = Math.max(
    isolate_pageblock - (isolate_pageblock % MAX_ORDER_NR_PAGES),
    zone.zone_start_pfn,
  );
  if (!skip_isolation) {
    const ret = set_migratetype_isolate(
      mm,
      isolate_pageblock,
      mode,
      isolate_pageblock,
      isolate_pageblock + pageblock_nr_pages,
    );
    if (ret) return ret;
  }
  // Bail out early when the block cannot share a page with the other side of the boundary.
  if (isolate_before) {
    if (!pfn_to_online_page(mm, boundary_pfn)) return 0;
  } else if (!pfn_to_online_page(mm, boundary_pfn - 1)) {
    return 0;
  }
  for (let pfn = start_pfn; pfn < boundary_pfn; ) {
    const page = __first_valid_page(mm, pfn, boundary_pfn - pfn);
    if (page < 0) break; // VM_BUG_ON(!page)
    pfn = page;
    const fl = f.flags[pfn];
    if (fl & PG_buddy) {
      // pageblock_isolate_and_move_free_pages() split any buddy crossing the boundary.
      pfn += 2 ** f.order[pfn];
      continue;
    }
    // A compound page straddling the block: gigantic pages are freed as order-0 chunks and LRU
    // pages do not exceed pageblock_order, so anything else fails.
    if (fl & (PG_head | PG_tail)) {
      const head = compound_head(mm, pfn);
      const nr_pages = compound_nr(mm, head);
      if (head + nr_pages <= boundary_pfn || f.flags[head] & PG_hugetlb) {
        pfn = head + nr_pages;
        continue;
      }
      // failed: restore the original migratetype.
      if (!skip_isolation) unset_migratetype_isolate(mm, isolate_pageblock);
      return EBUSY;
    }
    pfn++;
  }
  return 0;
}

/**
 * kernel: mm/page_isolation.c start_isolate_page_range()
 * Isolate every pageblock of [pageblock_start_pfn(start_pfn), pageblock_align(end_pfn)): first
 * the first and the last (which may share pages with their neighbours, and are checked for
 * unmovable pages as whole pageblocks), then those between (checked within the range). Any
 * failure, including a block someone else isolated (which keeps overlapping isolations apart),
 * undoes what was done and returns -EBUSY. Pages may still be freed to pcp lists in the
 * isolated blocks; the caller drains them.
 */
export function start_isolate_page_range(mm: MM, start_pfn: number, end_pfn: number, mode: number): number {
  const isolate_start = pageblock_start_pfn(start_pfn);
  const isolate_end = pageblock_align(end_pfn);
  let skip_isolation = false;
  let ret = isolate_single_pageblock(mm, isolate_start, mode, false, skip_isolation);
  if (ret) return ret;
  if (isolate_start === isolate_end - pageblock_nr_pages) skip_isolation = true;
  ret = isolate_single_pageblock(mm, isolate_end, mode, true, skip_isolation);
  if (ret) {
    unset_migratetype_isolate(mm, isolate_start);
    return ret;
  }
  // The blocks at the beginning and the end are isolated already.
  for (
    let pfn = isolate_start + pageblock_nr_pages;
    pfn < isolate_end - pageblock_nr_pages;
    pfn += pageblock_nr_pages
  ) {
    const page = __first_valid_page(mm, pfn, pageblock_nr_pages);
    if (page >= 0 && set_migratetype_isolate(mm, page, mode, start_pfn, end_pfn)) {
      undo_isolate_page_range(mm, isolate_start, pfn);
      unset_migratetype_isolate(mm, isolate_end - pageblock_nr_pages);
      return EBUSY;
    }
  }
  return 0;
}

/**
 * kernel: mm/page_isolation.c undo_isolate_page_range()
 * End the isolation of every isolated pageblock of [pageblock_start_pfn(start_pfn),
 * pageblock_align(end_pfn)), whoever isolated it.
 */
export function undo_isolate_page_range(mm: MM, start_pfn: number, end_pfn: number): void {
  const isolate_start = pageblock_start_pfn(start_pfn);
  const isolate_end = pageblock_align(end_pfn);
  for (let pfn = isolate_start; pfn < isolate_end; pfn += pageblock_nr_pages) {
    const page = __first_valid_page(mm, pfn, pageblock_nr_pages);
    if (page < 0 || !is_migrate_isolate_page(mm, page)) continue;
    unset_migratetype_isolate(mm, page);
  }
}

/**
 * kernel: mm/page_isolation.c __test_page_isolated_in_pageblock()
 * Walk [pfn, end_pfn) over free buddies (which, in isolated pageblocks, are on the ISOLATE
 * lists); returns where the walk stopped: end_pfn or beyond if everything was free. (Poisoned
 * and offline pages, free for MEM_OFFLINE, do not exist in the model.)
 */
function __test_page_isolated_in_pageblock(mm: MM, pfn: number, end_pfn: number, _mode: number): number {
  const f = mm.frames;
  const scan = mm.cost.free_scan_pfn;
  while (pfn < end_pfn) {
    mm.kernel_ns += scan;
    if (f.flags[pfn] & PG_buddy) pfn += 2 ** f.order[pfn];
    else break;
  }
  return pfn;
}

/**
 * kernel: mm/page_isolation.c test_pages_isolated()
 * 0 if every pageblock of [start_pfn, end_pfn) is isolated and every page in it free (in the
 * buddy allocator: pages on pcp lists are not), else -EBUSY. The pageblocks are checked at
 * start_pfn and every pageblock_nr_pages after it, as the kernel does. The range must not span
 * zones. Reports through the test_pages_isolated tracepoint.
 */
export function test_pages_isolated(mm: MM, start_pfn: number, end_pfn: number, mode: number): number {
  // wait_for_freed_hugetlb_folios(): hugetlb frees are not deferred in the model.
  let pfn: number;
  let ret: number;
  // pageblock_nr_pages != MAX_ORDER_NR_PAGES, so free chunks are not aligned to pageblocks:
  // check the migratetypes first.
  for (pfn = start_pfn; pfn < end_pfn; pfn += pageblock_nr_pages) {
    const page = __first_valid_page(mm, pfn, pageblock_nr_pages);
    if (page >= 0 && !is_migrate_isolate_page(mm, page)) break;
  }
  const page = __first_valid_page(mm, start_pfn, end_pfn - start_pfn);
  if (pfn < end_pfn || page < 0) {
    ret = EBUSY;
  } else {
    // Check all pages are free or marked as isolated (under the zone lock).
    pfn = __test_page_isolated_in_pageblock(mm, start_pfn, end_pfn, mode);
    ret = pfn < end_pfn ? EBUSY : 0;
  }
  const tp = mm.trace.test_pages_isolated;
  if (tp !== null) tp(start_pfn, end_pfn, pfn);
  return ret;
}

/** pageblock_align(): round up to a pageblock boundary. */
export function pageblock_align(pfn: number): number {
  return pfn + ((pageblock_nr_pages - (pfn % pageblock_nr_pages)) % pageblock_nr_pages);
}
