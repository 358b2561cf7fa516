/**
 * The LRU lists (include/linux/mm_inline.h, mm/swap.c): per node, inactive and active lists of
 * anonymous and file pages and the unevictable list, linked through the frame table's lru links.
 * Reclaim walks them from the tail. New anonymous and file pages start inactive (since 5.9).
 * Pages move between lists by (de)activation, MADV_FREE (lazyfree anonymous pages sit on the file
 * list) and mlock (the unevictable list). The kernel batches these moves per CPU; here they are
 * immediate.
 */
import type { MM } from './mm.ts';
import {
  PG_active,
  PG_anon,
  PG_head,
  PG_lru,
  PG_mlocked,
  PG_referenced,
  PG_swapbacked,
  PG_swapcache,
  PG_unevictable,
} from './page-flags.ts';
import { NR_MLOCK, NR_ZONE_INACTIVE_ANON, vm_event_index } from './vmstat_items.ts';

/** folio_nr_pages() (huge_memory.ts has the same; lru.ts sits below it). */
function folio_nr_pages(mm: MM, pfn: number): number {
  return mm.frames.flags[pfn] & PG_head ? 1 << mm.frames.order[pfn] : 1;
}

// enum lru_list, in the order of the node stats nr_inactive_anon .. nr_unevictable.
export const LRU_INACTIVE_ANON = 0;
export const LRU_ACTIVE_ANON = 1;
export const LRU_INACTIVE_FILE = 2;
export const LRU_ACTIVE_FILE = 3;
export const LRU_UNEVICTABLE = 4;
export const NR_LRU_LISTS = 5;

/**
 * folio_lru_list(): the list a page belongs on, from its flags. As folio_is_file_lru(), only
 * PG_swapbacked decides anon or file: a lazyfree anonymous page (MADV_FREE) is on a file list.
 */
export function folio_lru_list(flags: number): number {
  if (flags & PG_unevictable) return LRU_UNEVICTABLE;
  const base = flags & PG_swapbacked ? LRU_INACTIVE_ANON : LRU_INACTIVE_FILE;
  return flags & PG_active ? base + 1 : base;
}

/**
 * kernel: include/linux/mm_inline.h lruvec_add_folio()
 * Put a folio (its head) at the head of its node's list and count its pages (node and zone
 * stats): a THP counts 512 (folio_nr_pages()).
 */
export function lruvec_add_folio(mm: MM, pfn: number): void {
  const f = mm.frames;
  const lru = folio_lru_list(f.flags[pfn]);
  const zone = mm.page_zone(pfn)!;
  const node = mm.nodes[zone.nid];
  const nr = folio_nr_pages(mm, pfn);
  f.flags[pfn] |= PG_lru;
  f.list_add(pfn, node.lru_base + lru);
  node.vm_stat[lru] += nr;
  zone.vm_stat[NR_ZONE_INACTIVE_ANON + lru] += nr;
}

/** kernel: include/linux/mm_inline.h lruvec_del_folio() */
export function lruvec_del_folio(mm: MM, pfn: number): void {
  const f = mm.frames;
  const lru = folio_lru_list(f.flags[pfn]);
  const zone = mm.page_zone(pfn)!;
  const node = mm.nodes[zone.nid];
  const nr = folio_nr_pages(mm, pfn);
  f.list_del(pfn, node.lru_base + lru);
  f.flags[pfn] &= ~PG_lru;
  node.vm_stat[lru] -= nr;
  zone.vm_stat[NR_ZONE_INACTIVE_ANON + lru] -= nr;
}

const PGACTIVATE = vm_event_index('pgactivate');
const PGDEACTIVATE = vm_event_index('pgdeactivate');
const PGLAZYFREE = vm_event_index('pglazyfree');
const UNEVICTABLE_PGCULLED = vm_event_index('unevictable_pgs_culled');
const UNEVICTABLE_PGRESCUED = vm_event_index('unevictable_pgs_rescued');
const UNEVICTABLE_PGMLOCKED = vm_event_index('unevictable_pgs_mlocked');
const UNEVICTABLE_PGMUNLOCKED = vm_event_index('unevictable_pgs_munlocked');
const UNEVICTABLE_PGSTRANDED = vm_event_index('unevictable_pgs_stranded');

/** Move a page on the LRU to the list its flags name after setting `set` and clearing `clear`. */
function lru_move(mm: MM, pfn: number, set: number, clear: number): void {
  lruvec_del_folio(mm, pfn);
  mm.frames.flags[pfn] = (mm.frames.flags[pfn] & ~clear) | set;
  lruvec_add_folio(mm, pfn);
}

/**
 * kernel: mm/swap.c lru_activate()
 * An inactive evictable page moves to the head of its active list; counts pgactivate. Returns
 * whether it moved.
 */
export function lru_activate(mm: MM, pfn: number): boolean {
  const fl = mm.frames.flags[pfn];
  if (!(fl & PG_lru) || fl & (PG_active | PG_unevictable)) return false;
  lru_move(mm, pfn, PG_active, 0);
  mm.vm_events[PGACTIVATE]++;
  return true;
}

/**
 * kernel: mm/swap.c lru_deactivate() (folio_deactivate(), MADV_COLD)
 * An active evictable page moves to the head of its inactive list, losing PG_referenced; counts
 * pgdeactivate. Inactive and unevictable pages stay. Returns whether it moved.
 */
export function lru_deactivate(mm: MM, pfn: number): boolean {
  const fl = mm.frames.flags[pfn];
  if (!(fl & PG_lru) || fl & PG_unevictable || !(fl & PG_active)) return false;
  lru_move(mm, pfn, 0, PG_active | PG_referenced);
  mm.vm_events[PGDEACTIVATE]++;
  return true;
}

/**
 * kernel: mm/swap.c folio_mark_lazyfree() + lru_lazyfree() (MADV_FREE)
 * A swap-backed anonymous page becomes lazily freeable: PG_swapbacked, PG_active and
 * PG_referenced are cleared, which puts it on the inactive file list, where reclaim may discard
 * it while it stays clean. Counts pglazyfree. Returns whether it moved.
 */
export function lru_lazyfree(mm: MM, pfn: number): boolean {
  const fl = mm.frames.flags[pfn];
  if (!(fl & PG_lru) || !(fl & PG_anon) || !(fl & PG_swapbacked) || fl & (PG_unevictable | PG_swapcache))
    return false;
  lru_move(mm, pfn, 0, PG_swapbacked | PG_active | PG_referenced);
  mm.vm_events[PGLAZYFREE]++;
  return true;
}

/**
 * kernel: mm/mlock.c mlock_new_folio()
 * A new page faulted into a VM_LOCKED VMA: PG_mlocked (NR_MLOCK, unevictable_pgs_mlocked) and
 * straight onto the unevictable list (unevictable_pgs_culled). Replaces lruvec_add_folio().
 */
export function mlock_new_folio(mm: MM, pfn: number): void {
  const nr = folio_nr_pages(mm, pfn);
  mm.frames.flags[pfn] |= PG_mlocked | PG_unevictable;
  mm.page_zone(pfn)!.vm_stat[NR_MLOCK] += nr;
  mm.vm_events[UNEVICTABLE_PGMLOCKED] += nr;
  lruvec_add_folio(mm, pfn);
  mm.vm_events[UNEVICTABLE_PGCULLED] += nr;
}

/**
 * kernel: mm/mlock.c mlock_folio() + __mlock_folio()
 * A mapped page gains an mlock: PG_mlocked if it lacked it (NR_MLOCK, unevictable_pgs_mlocked),
 * and onto the unevictable list if it is not there (unevictable_pgs_culled). A page another
 * VM_LOCKED VMA already locks only gains a mlock_count in the kernel; nothing changes here.
 */
export function mlock_folio(mm: MM, pfn: number): void {
  const f = mm.frames;
  const nr = folio_nr_pages(mm, pfn);
  if (!(f.flags[pfn] & PG_mlocked)) {
    f.flags[pfn] |= PG_mlocked;
    mm.page_zone(pfn)!.vm_stat[NR_MLOCK] += nr;
    mm.vm_events[UNEVICTABLE_PGMLOCKED] += nr;
  }
  const fl = f.flags[pfn];
  if (!(fl & PG_lru) || fl & PG_unevictable) return;
  lru_move(mm, pfn, PG_unevictable, PG_active);
  mm.vm_events[UNEVICTABLE_PGCULLED] += nr;
}

/**
 * kernel: mm/mlock.c munlock_folio() + __munlock_folio()
 * The page's last mlock went away (the caller checked that no other VM_LOCKED VMA maps it, the
 * kernel's mlock_count reaching 0): PG_mlocked is cleared (NR_MLOCK, unevictable_pgs_munlocked)
 * and the page returns to its evictable list (unevictable_pgs_rescued).
 */
export function munlock_folio(mm: MM, pfn: number): void {
  const f = mm.frames;
  const isolated = (f.flags[pfn] & PG_lru) !== 0;
  const nr = folio_nr_pages(mm, pfn);
  if (f.flags[pfn] & PG_mlocked) {
    f.flags[pfn] &= ~PG_mlocked;
    mm.page_zone(pfn)!.vm_stat[NR_MLOCK] -= nr;
    if (isolated || !(f.flags[pfn] & PG_unevictable)) mm.vm_events[UNEVICTABLE_PGMUNLOCKED] += nr;
    else mm.vm_events[UNEVICTABLE_PGSTRANDED] += nr;
  }
  if (isolated && f.flags[pfn] & PG_unevictable) {
    lru_move(mm, pfn, 0, PG_unevictable);
    mm.vm_events[UNEVICTABLE_PGRESCUED] += nr;
  }
}
