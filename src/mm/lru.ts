/**
 * The LRU lists (include/linux/mm_inline.h, mm/swap.c): per node, inactive and active lists of
 * anonymous and file pages and the unevictable list, linked through the frame table's lru links.
 * Reclaim walks them from the tail. New anonymous and file pages start inactive (since 5.9).
 */
import type { MM } from './mm.ts';
import { PG_active, PG_anon, PG_lru, PG_swapbacked, PG_unevictable } from './page-flags.ts';
import { NR_ZONE_INACTIVE_ANON } from './vmstat_items.ts';

// enum lru_list, in the order of the node stats nr_inactive_anon .. nr_unevictable.
export const LRU_INACTIVE_ANON = 0;
export const LRU_ACTIVE_ANON = 1;
export const LRU_INACTIVE_FILE = 2;
export const LRU_ACTIVE_FILE = 3;
export const LRU_UNEVICTABLE = 4;
export const NR_LRU_LISTS = 5;

/** folio_lru_list(): the list a page belongs on, from its flags. */
export function folio_lru_list(flags: number): number {
  if (flags & PG_unevictable) return LRU_UNEVICTABLE;
  const base = flags & PG_swapbacked || flags & PG_anon ? LRU_INACTIVE_ANON : LRU_INACTIVE_FILE;
  return flags & PG_active ? base + 1 : base;
}

/**
 * kernel: include/linux/mm_inline.h lruvec_add_folio()
 * Put an order-0 page at the head of its node's list and count it (node and zone stats).
 */
export function lruvec_add_folio(mm: MM, pfn: number): void {
  const f = mm.frames;
  const lru = folio_lru_list(f.flags[pfn]);
  const zone = mm.page_zone(pfn)!;
  const node = mm.nodes[zone.nid];
  f.flags[pfn] |= PG_lru;
  f.list_add(pfn, node.lru_base + lru);
  node.vm_stat[lru]++;
  zone.vm_stat[NR_ZONE_INACTIVE_ANON + lru]++;
}

/** kernel: include/linux/mm_inline.h lruvec_del_folio() */
export function lruvec_del_folio(mm: MM, pfn: number): void {
  const f = mm.frames;
  const lru = folio_lru_list(f.flags[pfn]);
  const zone = mm.page_zone(pfn)!;
  const node = mm.nodes[zone.nid];
  f.list_del(pfn, node.lru_base + lru);
  f.flags[pfn] &= ~PG_lru;
  node.vm_stat[lru]--;
  zone.vm_stat[NR_ZONE_INACTIVE_ANON + lru]--;
}
