/**
 * Free-list primitives of mm/page_alloc.c. A free block of order o is a naturally aligned run of
 * 2^o frames; its head carries PG_buddy and its order, and sits on
 * zone->free_area[o].free_list[mt] where mt is the type of the head's pageblock (freelist
 * hygiene, 6.10+). Counters: NR_FREE_PAGES for every type but ISOLATE, NR_FREE_CMA_PAGES for CMA,
 * nr_free_highatomic for HIGHATOMIC, NR_FREE_PAGES_BLOCKS for non-isolated blocks of order >=
 * pageblock_order, free_area[o].nr_free for every block.
 */
import type { MM } from '../mm.ts';
import {
  MIGRATE_CMA,
  MIGRATE_HIGHATOMIC,
  MIGRATE_ISOLATE,
  MIGRATE_TYPES,
  pageblock_order,
  type Zone,
} from '../mmzone.ts';
import { PG_buddy } from '../page-flags.ts';
import { NR_FREE_CMA_PAGES, NR_FREE_PAGES, NR_FREE_PAGES_BLOCKS } from '../vmstat_items.ts';

// kernel: mm/page_alloc.c account_freepages()
export function account_freepages(zone: Zone, nr_pages: number, mt: number): void {
  if (mt === MIGRATE_ISOLATE) return;
  zone.vm_stat[NR_FREE_PAGES] += nr_pages;
  if (mt === MIGRATE_CMA) zone.vm_stat[NR_FREE_CMA_PAGES] += nr_pages;
  else if (mt === MIGRATE_HIGHATOMIC) zone.nr_free_highatomic += nr_pages;
}

// kernel: mm/page_alloc.c __del_page_from_free_list() (clears PageBuddy and the order)
export function __del_page_from_free_list(mm: MM, pfn: number, zone: Zone, order: number, mt: number): void {
  const f = mm.frames;
  f.list_del(pfn, zone.free_list_base + order * MIGRATE_TYPES + mt);
  f.flags[pfn] &= ~PG_buddy;
  f.order[pfn] = 0;
  zone.nr_free[order]--;
  if (order >= pageblock_order && mt !== MIGRATE_ISOLATE) zone.vm_stat[NR_FREE_PAGES_BLOCKS] -= 1 << order;
}

// kernel: mm/page_alloc.c move_to_free_list(): to the tail of the new type's list
export function move_to_free_list(
  mm: MM,
  pfn: number,
  zone: Zone,
  order: number,
  old_mt: number,
  new_mt: number,
): void {
  const f = mm.frames;
  const nr_pages = 1 << order;
  f.list_del(pfn, zone.free_list_base + order * MIGRATE_TYPES + old_mt);
  f.list_add_tail(pfn, zone.free_list_base + order * MIGRATE_TYPES + new_mt);
  account_freepages(zone, -nr_pages, old_mt);
  account_freepages(zone, nr_pages, new_mt);
  if (order >= pageblock_order && (old_mt === MIGRATE_ISOLATE) !== (new_mt === MIGRATE_ISOLATE)) {
    zone.vm_stat[NR_FREE_PAGES_BLOCKS] += old_mt === MIGRATE_ISOLATE ? nr_pages : -nr_pages;
  }
}

/** get_page_from_free_area(): the head of free_area[order].free_list[mt], or -1. */
export function get_page_from_free_area(mm: MM, zone: Zone, order: number, mt: number): number {
  return mm.frames.list_first(zone.free_list_base + order * MIGRATE_TYPES + mt);
}

/** free_area_empty() */
export function free_area_empty(mm: MM, zone: Zone, order: number, mt: number): boolean {
  return mm.frames.list_count[zone.free_list_base + order * MIGRATE_TYPES + mt] === 0;
}

/** Free blocks on free_area[order].free_list[mt]. */
export function free_list_count(mm: MM, zone: Zone, order: number, mt: number): number {
  return mm.frames.list_count[zone.free_list_base + order * MIGRATE_TYPES + mt];
}
