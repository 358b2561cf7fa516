/**
 * Migratetype fallback (mm/page_alloc.c, 6.15+ shape): when a request's own free lists are empty,
 * __rmqueue() first tries CMA (for ALLOC_CMA), then *claims* a block of another type (converting
 * the whole pageblock), and only then *steals* a single block without converting its pageblock,
 * which leaves a mixed pageblock behind. ALLOC_NOFRAGMENT limits claims to whole free pageblocks
 * and forbids steals. Also the highatomic reserve and watermark boosting that fallbacks trigger.
 */
import { ALLOC_CMA, ALLOC_KSWAPD, ALLOC_NOFRAGMENT } from '../internal.ts';
import type { MM } from '../mm.ts';
import {
  MAX_PAGE_ORDER,
  MIGRATE_CMA,
  MIGRATE_HIGHATOMIC,
  MIGRATE_MOVABLE,
  MIGRATE_PCPTYPES,
  MIGRATE_RECLAIMABLE,
  MIGRATE_TYPES,
  MIGRATE_UNMOVABLE,
  migratetype_is_mergeable,
  NR_PAGE_ORDERS,
  pageblock_end_pfn,
  pageblock_nr_pages,
  pageblock_order,
  pageblock_start_pfn,
  WMARK_HIGH,
  ZONE_BOOSTED_WATERMARK,
  type Zone,
} from '../mmzone.ts';
import { PG_buddy, PG_lru, PG_movable_ops } from '../page-flags.ts';
import { get_pfnblock_migratetype, set_pageblock_migratetype } from '../pageblock.ts';
import { NR_FREE_CMA_PAGES, NR_FREE_PAGES } from '../vmstat_items.ts';
import { __rmqueue_smallest, change_pageblock_range, expand, page_del_and_expand } from './buddy.ts';
import {
  __del_page_from_free_list,
  account_freepages,
  get_page_from_free_area,
  move_to_free_list,
} from './freelist.ts';

/** fallbacks[]: which other types a request may take free blocks from, in order. */
export const fallbacks: ReadonlyArray<readonly [number, number]> = [
  [MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE], // UNMOVABLE
  [MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE], // MOVABLE
  [MIGRATE_UNMOVABLE, MIGRATE_MOVABLE], // RECLAIMABLE
];

/** enum rmqueue_mode: where rmqueue_bulk() last found pages, to skip fruitless searches. */
export const RMQUEUE_NORMAL = 0;
export const RMQUEUE_CMA = 1;
export const RMQUEUE_CLAIM = 2;
export const RMQUEUE_STEAL = 3;

/**
 * kernel: mm/page_alloc.c should_try_claim_block()
 * Claim for any block of pageblock_order/2 (order 4) or more, and for every unmovable or
 * reclaimable request; small movable requests only steal, since movable pages do not fragment
 * memory for long.
 */
export function should_try_claim_block(mm: MM, order: number, start_mt: number): boolean {
  return (
    order >= pageblock_order ||
    order >= pageblock_order >> 1 ||
    start_mt === MIGRATE_RECLAIMABLE ||
    start_mt === MIGRATE_UNMOVABLE ||
    mm.page_group_by_mobility_disabled
  );
}

const FALLBACK_NOCLAIM = -2;
const FALLBACK_EMPTY = -1;

/**
 * kernel: mm/page_alloc.c find_suitable_fallback()
 * The first type in fallbacks[mt] with a free block at `order`; -1 if none; -2 if `claimable`
 * and the order is too small to claim.
 */
export function find_suitable_fallback(
  mm: MM,
  zone: Zone,
  order: number,
  mt: number,
  claimable: boolean,
): number {
  if (claimable && !should_try_claim_block(mm, order, mt)) return FALLBACK_NOCLAIM;
  if (zone.nr_free[order] === 0) return FALLBACK_EMPTY;
  const count = mm.frames.list_count;
  const base = zone.free_list_base + order * MIGRATE_TYPES;
  const fb = fallbacks[mt];
  for (let i = 0; i < MIGRATE_PCPTYPES - 1; i++) {
    if (count[base + fb[i]] !== 0) return fb[i];
  }
  return FALLBACK_EMPTY;
}

/**
 * kernel: mm/page_alloc.c boost_watermark()
 * Raise the zone's watermark boost by a pageblock, up to watermark_boost_factor of the high
 * watermark, so kswapd reclaims before more fallbacks mix pageblocks.
 */
export function boost_watermark(mm: MM, zone: Zone): boolean {
  const factor = mm.sysctl.watermark_boost_factor;
  if (!factor) return false;
  if (pageblock_nr_pages * 4 > zone.managed_pages) return false;
  let max_boost = Math.floor((zone._watermark[WMARK_HIGH] * factor) / 10000);
  if (!max_boost) return false;
  max_boost = Math.max(pageblock_nr_pages, max_boost);
  zone.watermark_boost = Math.min(zone.watermark_boost + pageblock_nr_pages, max_boost);
  return true;
}

/** Result slots of prep_move_freepages_block(), reused to avoid allocating. */
const prep = { start_pfn: 0, free_pages: 0, movable_pages: 0 };

/**
 * kernel: mm/page_alloc.c prep_move_freepages_block()
 * False if the pageblock straddles the zone boundary. Otherwise counts the block's free pages
 * and the pages that look movable (on an LRU or with movable_ops) into `prep`.
 */
function prep_move_freepages_block(mm: MM, zone: Zone, pfn: number, count: boolean): boolean {
  const start = pageblock_start_pfn(pfn);
  const end = pageblock_end_pfn(pfn);
  if (!zone.zone_spans_pfn(start) || !zone.zone_spans_pfn(end - 1)) return false;
  prep.start_pfn = start;
  if (!count) return true;
  const flags = mm.frames.flags;
  const order = mm.frames.order;
  let free = 0;
  let movable = 0;
  for (let p = start; p < end; ) {
    const f = flags[p];
    if (f & PG_buddy) {
      const nr = 1 << order[p];
      free += nr;
      p += nr;
      continue;
    }
    if (f & (PG_lru | PG_movable_ops)) movable++;
    p++;
  }
  prep.free_pages = free;
  prep.movable_pages = movable;
  return true;
}

/** kernel: mm/page_alloc.c __move_freepages_block(): move a pageblock's free blocks to new_mt. */
export function __move_freepages_block(
  mm: MM,
  zone: Zone,
  start_pfn: number,
  old_mt: number,
  new_mt: number,
): number {
  const flags = mm.frames.flags;
  const orders = mm.frames.order;
  const end = start_pfn + pageblock_nr_pages;
  let moved = 0;
  for (let p = start_pfn; p < end; ) {
    if ((flags[p] & PG_buddy) === 0) {
      p++;
      continue;
    }
    const order = orders[p];
    move_to_free_list(mm, p, zone, order, old_mt, new_mt);
    p += 1 << order;
    moved += 1 << order;
  }
  return moved;
}

/**
 * kernel: mm/page_alloc.c move_freepages_block()
 * Retype the pageblock of `pfn` and move its free blocks along; -1 if it straddles zones.
 */
export function move_freepages_block(
  mm: MM,
  zone: Zone,
  pfn: number,
  old_mt: number,
  new_mt: number,
): number {
  if (!prep_move_freepages_block(mm, zone, pfn, false)) return -1;
  const start = prep.start_pfn;
  const moved = __move_freepages_block(mm, zone, start, old_mt, new_mt);
  set_pageblock_migratetype(mm, start, new_mt);
  return moved;
}

/**
 * kernel: mm/page_alloc.c try_to_claim_block()
 * A free block of order >= pageblock_order is taken over whole. A smaller one boosts the
 * watermark, then converts its pageblock only if at least half of the block (256 pages) is free
 * or already "alike": for a movable request the movable pages; for an unmovable or reclaimable
 * request falling back into a MOVABLE block, everything neither free nor movable; between
 * UNMOVABLE and RECLAIMABLE nothing, since the two cannot be told apart.
 */
export function try_to_claim_block(
  mm: MM,
  zone: Zone,
  pfn: number,
  current_order: number,
  order: number,
  start_mt: number,
  block_mt: number,
  alloc_flags: number,
): number {
  if (current_order >= pageblock_order) {
    __del_page_from_free_list(mm, pfn, zone, current_order, block_mt);
    change_pageblock_range(mm, pfn, current_order, start_mt);
    const nr_added = expand(mm, zone, pfn, order, current_order, start_mt);
    // The whole block left block_mt's count; what expand() put back counts for start_mt.
    account_freepages(zone, -(1 << current_order), block_mt);
    account_freepages(zone, nr_added, start_mt);
    return pfn;
  }
  if (boost_watermark(mm, zone) && alloc_flags & ALLOC_KSWAPD) zone.flags |= ZONE_BOOSTED_WATERMARK;
  if (!prep_move_freepages_block(mm, zone, pfn, true)) return -1;
  const free_pages = prep.free_pages;
  const movable_pages = prep.movable_pages;
  let alike: number;
  if (start_mt === MIGRATE_MOVABLE) alike = movable_pages;
  else if (block_mt === MIGRATE_MOVABLE) alike = pageblock_nr_pages - (free_pages + movable_pages);
  else alike = 0;
  if (free_pages + alike >= 1 << (pageblock_order - 1) || mm.page_group_by_mobility_disabled) {
    const start = prep.start_pfn;
    __move_freepages_block(mm, zone, start, block_mt, start_mt);
    set_pageblock_migratetype(mm, start, start_mt);
    return __rmqueue_smallest(mm, zone, order, start_mt);
  }
  return -1;
}

/**
 * kernel: mm/page_alloc.c __rmqueue_claim()
 * Look for the largest free block of a fallback type and try to claim its pageblock. Under
 * ALLOC_NOFRAGMENT only whole free pageblocks qualify.
 */
export function __rmqueue_claim(
  mm: MM,
  zone: Zone,
  order: number,
  start_mt: number,
  alloc_flags: number,
): number {
  let min_order = order;
  if (order < pageblock_order && alloc_flags & ALLOC_NOFRAGMENT) min_order = pageblock_order;
  for (let cur = MAX_PAGE_ORDER; cur >= min_order; cur--) {
    const fallback_mt = find_suitable_fallback(mm, zone, cur, start_mt, true);
    if (fallback_mt === FALLBACK_EMPTY) continue;
    if (fallback_mt === FALLBACK_NOCLAIM) break;
    const head = get_page_from_free_area(mm, zone, cur, fallback_mt);
    const pfn = try_to_claim_block(mm, zone, head, cur, order, start_mt, fallback_mt, alloc_flags);
    if (pfn >= 0) {
      const tp = mm.trace.mm_page_alloc_extfrag;
      if (tp !== null) tp(pfn, order, cur, start_mt, fallback_mt, true);
      return pfn;
    }
  }
  return -1;
}

/**
 * kernel: mm/page_alloc.c __rmqueue_steal()
 * Take the smallest free block of a fallback type without converting its pageblock; the
 * remainder stays on the old type's lists.
 */
export function __rmqueue_steal(mm: MM, zone: Zone, order: number, start_mt: number): number {
  for (let cur = order; cur < NR_PAGE_ORDERS; cur++) {
    const fallback_mt = find_suitable_fallback(mm, zone, cur, start_mt, false);
    if (fallback_mt === FALLBACK_EMPTY) continue;
    const pfn = get_page_from_free_area(mm, zone, cur, fallback_mt);
    page_del_and_expand(mm, zone, pfn, order, cur, fallback_mt);
    const tp = mm.trace.mm_page_alloc_extfrag;
    if (tp !== null) tp(pfn, order, cur, start_mt, fallback_mt, false);
    return pfn;
  }
  return -1;
}

/** kernel: mm/page_alloc.c __rmqueue_cma_fallback() */
export function __rmqueue_cma_fallback(mm: MM, zone: Zone, order: number): number {
  return __rmqueue_smallest(mm, zone, order, MIGRATE_CMA);
}

/** The rmqueue_mode that __rmqueue() leaves for the next call of the same rmqueue_bulk(). */
export const rmqueue_state = { mode: RMQUEUE_NORMAL };

/**
 * kernel: mm/page_alloc.c __rmqueue()
 * Own type first, then CMA, claim and steal, in increasing order of fragmentation risk.
 * `rmqueue_state.mode` carries where pages were found between calls of one rmqueue_bulk(); set
 * it to RMQUEUE_NORMAL before a new request.
 */
export function __rmqueue(mm: MM, zone: Zone, order: number, mt: number, alloc_flags: number): number {
  let pfn: number;
  if (
    mm.config.CMA &&
    alloc_flags & ALLOC_CMA &&
    zone.vm_stat[NR_FREE_CMA_PAGES] > Math.floor(zone.vm_stat[NR_FREE_PAGES] / 2)
  ) {
    pfn = __rmqueue_cma_fallback(mm, zone, order);
    if (pfn >= 0) return pfn;
  }
  const mode = rmqueue_state.mode;
  if (mode <= RMQUEUE_NORMAL) {
    pfn = __rmqueue_smallest(mm, zone, order, mt);
    if (pfn >= 0) return pfn;
  }
  if (mode <= RMQUEUE_CMA && alloc_flags & ALLOC_CMA) {
    pfn = __rmqueue_cma_fallback(mm, zone, order);
    if (pfn >= 0) {
      rmqueue_state.mode = RMQUEUE_CMA;
      return pfn;
    }
  }
  if (mode <= RMQUEUE_CLAIM) {
    pfn = __rmqueue_claim(mm, zone, order, mt, alloc_flags);
    if (pfn >= 0) {
      rmqueue_state.mode = RMQUEUE_NORMAL;
      return pfn;
    }
  }
  if ((alloc_flags & ALLOC_NOFRAGMENT) === 0) {
    pfn = __rmqueue_steal(mm, zone, order, mt);
    if (pfn >= 0) {
      rmqueue_state.mode = RMQUEUE_STEAL;
      return pfn;
    }
  }
  return -1;
}

/**
 * kernel: mm/page_alloc.c reserve_highatomic_pageblock()
 * After a high-order atomic allocation, set its pageblock aside as HIGHATOMIC, up to about 1% of
 * the zone (ALIGN(managed / 100, pageblock_nr_pages)).
 */
export function reserve_highatomic_pageblock(mm: MM, pfn: number, order: number, zone: Zone): void {
  const hundredth = Math.floor(zone.managed_pages / 100);
  if (hundredth < pageblock_nr_pages) return;
  const max_managed = Math.ceil(hundredth / pageblock_nr_pages) * pageblock_nr_pages;
  if (zone.nr_reserved_highatomic >= max_managed) return;
  const mt = get_pfnblock_migratetype(mm, pfn);
  if (!migratetype_is_mergeable(mt)) return;
  if (order < pageblock_order) {
    if (move_freepages_block(mm, zone, pfn, mt, MIGRATE_HIGHATOMIC) === -1) return;
    zone.nr_reserved_highatomic += pageblock_nr_pages;
  } else {
    change_pageblock_range(mm, pfn, order, MIGRATE_HIGHATOMIC);
    zone.nr_reserved_highatomic += 1 << order;
  }
}

/**
 * kernel: mm/page_alloc.c unreserve_highatomic_pageblock()
 * Give one HIGHATOMIC pageblock back to `mt` in the first zone that has one; unless `force`,
 * keep each zone's last reserved pageblock. Returns whether a block was released.
 */
export function unreserve_highatomic_pageblock(
  mm: MM,
  zonelist: readonly number[],
  highest_zoneidx: number,
  mt: number,
  force: boolean,
): boolean {
  for (const zid of zonelist) {
    const zone = mm.zones[zid];
    if (zone.zone_idx > highest_zoneidx) continue;
    if (!force && zone.nr_reserved_highatomic <= pageblock_nr_pages) continue;
    for (let order = 0; order < NR_PAGE_ORDERS; order++) {
      const pfn = get_page_from_free_area(mm, zone, order, MIGRATE_HIGHATOMIC);
      if (pfn < 0) continue;
      const size = Math.max(pageblock_nr_pages, 1 << order);
      zone.nr_reserved_highatomic -= Math.min(size, zone.nr_reserved_highatomic);
      let ret: number;
      if (order < pageblock_order) {
        ret = move_freepages_block(mm, zone, pfn, MIGRATE_HIGHATOMIC, mt);
      } else {
        move_to_free_list(mm, pfn, zone, order, MIGRATE_HIGHATOMIC, mt);
        change_pageblock_range(mm, pfn, order, mt);
        ret = 1;
      }
      if (ret > 0) return true;
    }
  }
  return false;
}
