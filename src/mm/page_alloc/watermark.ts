/**
 * Watermarks, lowmem reserves and the watermark checks (mm/page_alloc.c).
 */
import {
  ALLOC_CMA,
  ALLOC_HIGHATOMIC,
  ALLOC_MIN_RESERVE,
  ALLOC_NON_BLOCK,
  ALLOC_OOM,
  ALLOC_RESERVES,
  ALLOC_WMARK_MASK,
} from '../internal.ts';
import type { MM } from '../mm.ts';
import {
  MAX_NR_ZONES,
  MIGRATE_CMA,
  MIGRATE_HIGHATOMIC,
  MIGRATE_PCPTYPES,
  MIGRATE_TYPES,
  MIGRATE_UNMOVABLE,
  NR_PAGE_ORDERS,
  pageblock_nr_pages,
  WMARK_HIGH,
  WMARK_LOW,
  WMARK_MIN,
  WMARK_PROMO,
  ZONE_MOVABLE,
  ZONE_NORMAL,
  type Zone,
} from '../mmzone.ts';
import { NR_FREE_CMA_PAGES, NR_FREE_PAGES } from '../vmstat_items.ts';
import { zone_set_pageset_high_and_batch } from './pcp.ts';

const SWAP_CLUSTER_MAX = 32;

function int_sqrt(x: number): number {
  return Math.floor(Math.sqrt(x));
}

/**
 * kernel: mm/page_alloc.c nr_free_zone_pages()
 * Managed pages above the high watermark in the zones an allocation allowed up to zone_idx may use.
 */
export function nr_free_zone_pages(mm: MM, max_zone_idx: number): number {
  let sum = 0;
  for (const zid of mm.nodes[0].zonelist_fallback) {
    const zone = mm.zones[zid];
    if (zone.zone_idx > max_zone_idx) continue;
    const high = zone.high_wmark_pages();
    if (zone.managed_pages > high) sum += zone.managed_pages - high;
  }
  return sum;
}

/**
 * kernel: mm/page_alloc.c calculate_min_free_kbytes()
 * sqrt(16 * lowmem KiB), clamped to [128, 262144]: 16 GiB gives 16384 KiB. A value the user wrote
 * stays unless the formula gives more.
 */
export function calculate_min_free_kbytes(mm: MM): void {
  const lowmem_kbytes = nr_free_zone_pages(mm, ZONE_NORMAL) * 4;
  const computed = int_sqrt(lowmem_kbytes * 16);
  if (computed > mm.sysctl.user_min_free_kbytes) {
    mm.sysctl.min_free_kbytes = Math.max(128, Math.min(computed, 262144));
  }
}

/**
 * kernel: mm/khugepaged.c set_recommended_min_free_kbytes()
 * With THP enabled, keep enough free for fallbacks to find free pageblocks: per populated zone up
 * to Normal, 2 pageblocks plus MIGRATE_PCPTYPES^2 pageblocks, at most 5% of RAM. With three
 * zones that is 512 * 3 * 11 pages = 67584 KiB, what a 24 GiB machine shows.
 */
export function set_recommended_min_free_kbytes(mm: MM): void {
  let nr_zones = 0;
  for (const zone of mm.zones) {
    if (!zone.populated_zone() || zone.zone_idx > ZONE_NORMAL) continue;
    nr_zones++;
  }
  let recommended = pageblock_nr_pages * nr_zones * 2;
  recommended += pageblock_nr_pages * nr_zones * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES;
  recommended = Math.min(recommended, Math.floor(nr_free_zone_pages(mm, ZONE_NORMAL) / 20));
  recommended *= 4;
  if (recommended > mm.sysctl.min_free_kbytes) mm.sysctl.min_free_kbytes = recommended;
}

/**
 * kernel: mm/page_alloc.c __setup_per_zone_wmarks()
 * min_free_kbytes is shared among the lowmem zones by managed size; each zone's low and high
 * marks sit a gap above min, the gap being max(min/4, managed * watermark_scale_factor / 10000).
 * Movable (and highmem) zones get a small min of managed/1024 clamped to [32, 128].
 */
export function __setup_per_zone_wmarks(mm: MM): void {
  const pages_min = mm.sysctl.min_free_kbytes >> 2;
  let lowmem_pages = 0;
  for (const zone of mm.zones) if (zone.zone_idx !== ZONE_MOVABLE) lowmem_pages += zone.managed_pages;
  for (const zone of mm.zones) {
    let tmp = lowmem_pages ? Math.floor((pages_min * zone.managed_pages) / lowmem_pages) : 0;
    if (zone.zone_idx === ZONE_MOVABLE) {
      zone._watermark[WMARK_MIN] = Math.max(
        SWAP_CLUSTER_MAX,
        Math.min(Math.floor(zone.managed_pages / 1024), 128),
      );
    } else {
      zone._watermark[WMARK_MIN] = tmp;
    }
    tmp = Math.max(tmp >> 2, Math.floor((zone.managed_pages * mm.sysctl.watermark_scale_factor) / 10000));
    zone.watermark_boost = 0;
    zone._watermark[WMARK_LOW] = zone._watermark[WMARK_MIN] + tmp;
    zone._watermark[WMARK_HIGH] = zone._watermark[WMARK_LOW] + tmp;
    zone._watermark[WMARK_PROMO] = zone._watermark[WMARK_HIGH] + tmp;
  }
  calculate_totalreserve_pages(mm);
}

/** kernel: mm/page_alloc.c setup_per_zone_wmarks(): the marks, then the pcp sizes that follow them. */
export function setup_per_zone_wmarks(mm: MM): void {
  __setup_per_zone_wmarks(mm);
  for (const zone of mm.zones) zone_set_pageset_high_and_batch(mm, zone);
}

/**
 * kernel: mm/page_alloc.c setup_per_zone_lowmem_reserve()
 * Zone i keeps (managed pages of zones i+1..j) / lowmem_reserve_ratio[i] free against allocations
 * that could have used zone j: with DMA32 at 772915 pages and ratio 256, DMA reserves 3019 pages
 * against DMA32-capable requests.
 */
export function setup_per_zone_lowmem_reserve(mm: MM): void {
  for (const node of mm.nodes) {
    for (let i = 0; i < MAX_NR_ZONES - 1; i++) {
      const zone = node.node_zones[i];
      const ratio = mm.sysctl.lowmem_reserve_ratio[i];
      const clear = !ratio || !zone.managed_pages;
      let managed = 0;
      for (let j = i + 1; j < MAX_NR_ZONES; j++) {
        managed += node.node_zones[j].managed_pages;
        zone.lowmem_reserve[j] = clear ? 0 : Math.floor(managed / ratio);
      }
    }
  }
  calculate_totalreserve_pages(mm);
}

/** kernel: mm/page_alloc.c calculate_totalreserve_pages() */
export function calculate_totalreserve_pages(mm: MM): void {
  let total = 0;
  for (const zone of mm.zones) {
    let max = 0;
    for (let j = zone.zone_idx; j < MAX_NR_ZONES; j++) max = Math.max(max, zone.lowmem_reserve[j]);
    max += zone.high_wmark_pages();
    total += Math.min(max, zone.managed_pages);
  }
  mm.totalreserve_pages = total;
}

/**
 * build_all_zonelists() decides whether grouping by mobility is worth it: not when the pages above
 * the high watermarks are fewer than pageblock_nr_pages * MIGRATE_TYPES (a tiny machine).
 */
export function update_mobility_grouping(mm: MM): void {
  const vm_total_pages = nr_free_zone_pages(mm, ZONE_MOVABLE);
  // MIGRATE_TYPES is one fewer in a kernel without CONFIG_CMA.
  mm.page_group_by_mobility_disabled =
    vm_total_pages < pageblock_nr_pages * (mm.config.CMA ? MIGRATE_TYPES : MIGRATE_TYPES - 1);
}

/** kernel: mm/page_alloc.c __zone_watermark_unusable_free() */
export function __zone_watermark_unusable_free(zone: Zone, order: number, alloc_flags: number): number {
  let unusable = (1 << order) - 1;
  if ((alloc_flags & ALLOC_RESERVES) === 0) unusable += zone.nr_free_highatomic;
  if ((alloc_flags & ALLOC_CMA) === 0) unusable += zone.vm_stat[NR_FREE_CMA_PAGES];
  return unusable;
}

/**
 * kernel: mm/page_alloc.c __zone_watermark_ok()
 * Free pages (less what this caller may not use) must exceed the mark plus the lowmem reserve,
 * and for order > 0 some list the caller may use must hold a block of at least that order.
 * __GFP_HIGH callers may dip to 1/2 of min, atomic ones to 3/8, OOM victims further.
 */
export function __zone_watermark_ok(
  mm: MM,
  zone: Zone,
  order: number,
  mark: number,
  highest_zoneidx: number,
  alloc_flags: number,
  free_pages: number,
): boolean {
  let min = mark;
  free_pages -= __zone_watermark_unusable_free(zone, order, alloc_flags);
  if (alloc_flags & ALLOC_RESERVES) {
    if (alloc_flags & ALLOC_MIN_RESERVE) {
      min -= Math.floor(min / 2);
      if (alloc_flags & ALLOC_NON_BLOCK) min -= Math.floor(min / 4);
    }
    if (alloc_flags & ALLOC_OOM) min -= Math.floor(min / 2);
  }
  if (free_pages <= min + zone.lowmem_reserve[highest_zoneidx]) return false;
  if (!order) return true;
  const count = mm.frames.list_count;
  for (let o = order; o < NR_PAGE_ORDERS; o++) {
    if (!zone.nr_free[o]) continue;
    const base = zone.free_list_base + o * MIGRATE_TYPES;
    for (let mt = MIGRATE_UNMOVABLE; mt < MIGRATE_PCPTYPES; mt++) if (count[base + mt]) return true;
    if (alloc_flags & ALLOC_CMA && count[base + MIGRATE_CMA]) return true;
    if (alloc_flags & (ALLOC_HIGHATOMIC | ALLOC_OOM) && count[base + MIGRATE_HIGHATOMIC]) return true;
  }
  return false;
}

/** kernel: mm/page_alloc.c zone_watermark_ok() */
export function zone_watermark_ok(
  mm: MM,
  zone: Zone,
  order: number,
  mark: number,
  highest_zoneidx: number,
  alloc_flags: number,
): boolean {
  return __zone_watermark_ok(
    mm,
    zone,
    order,
    mark,
    highest_zoneidx,
    alloc_flags,
    zone.vm_stat[NR_FREE_PAGES],
  );
}

/**
 * kernel: mm/page_alloc.c zone_watermark_fast()
 * An order-0 shortcut, the full check, and for order-0 __GFP_HIGH requests at the min mark a
 * second try that ignores the boost (boosting must not push atomic allocations into failure).
 */
export function zone_watermark_fast(
  mm: MM,
  zone: Zone,
  order: number,
  mark: number,
  highest_zoneidx: number,
  alloc_flags: number,
): boolean {
  const free_pages = zone.vm_stat[NR_FREE_PAGES];
  if (!order) {
    const reserved = __zone_watermark_unusable_free(zone, 0, alloc_flags);
    const usable = free_pages - Math.min(free_pages, reserved);
    if (usable > mark + zone.lowmem_reserve[highest_zoneidx]) return true;
  }
  if (__zone_watermark_ok(mm, zone, order, mark, highest_zoneidx, alloc_flags, free_pages)) return true;
  if (
    !order &&
    alloc_flags & ALLOC_MIN_RESERVE &&
    zone.watermark_boost &&
    (alloc_flags & ALLOC_WMARK_MASK) === WMARK_MIN
  ) {
    return __zone_watermark_ok(
      mm,
      zone,
      order,
      zone._watermark[WMARK_MIN],
      highest_zoneidx,
      alloc_flags,
      free_pages,
    );
  }
  return false;
}
