/**
 * Page pins (mm/gup.c try_grab_folio(FOLL_PIN), unpin_user_page(); include/linux/mm.h
 * folio_maybe_dma_pinned()): a pinned page is held for DMA; it cannot be migrated or reclaimed,
 * and it stays allocated after its last mapping or its page-cache entry goes, until unpinned.
 * The kernel counts pins in the page's refcount (GUP_PIN_COUNTING_BIAS); the model keeps a pin
 * count per frame, allocated at the first pin.
 */
import { is_file_page } from './filemap.ts';
import type { MM } from './mm.ts';
import { MIGRATE_CMA, ZONE_MOVABLE } from './mmzone.ts';
import { __free_pages } from './page_alloc/alloc_pages.ts';
import { PG_anon, PGI_alloc } from './page-flags.ts';
import { get_pfnblock_migratetype } from './pageblock.ts';
import { node_stat_index } from './vmstat_items.ts';

const NR_FOLL_PIN_ACQUIRED = node_stat_index('nr_foll_pin_acquired');
const NR_FOLL_PIN_RELEASED = node_stat_index('nr_foll_pin_released');

/** Pins per frame (the model's GUP_PIN_COUNTING_BIAS count), created at the first pin. */
function pincounts(mm: MM): Uint16Array {
  mm.pincount ??= new Uint16Array(mm.frames.nr_frames);
  return mm.pincount;
}

/** kernel: include/linux/mm.h folio_maybe_dma_pinned() (exact here: the model counts pins). */
export function folio_maybe_dma_pinned(mm: MM, pfn: number): boolean {
  return mm.pincount !== null && mm.pincount[pfn] > 0;
}

/**
 * kernel: mm/gup.c try_grab_folio(folio, 1, FOLL_PIN)
 * One more pin on `pfn` (nr_foll_pin_acquired). False when the count would overflow (-ENOMEM in
 * the kernel).
 */
export function try_grab_folio(mm: MM, pfn: number): boolean {
  // The zero page is not counted: it is going nowhere.
  if (pfn === mm.zero_pfn) return true;
  const pins = pincounts(mm);
  if (pins[pfn] === 0xffff) return false;
  pins[pfn]++;
  mm.nodes[mm.page_zone(pfn)!.nid].vm_stat[NR_FOLL_PIN_ACQUIRED]++;
  return true;
}

/**
 * kernel: mm/gup.c unpin_user_page() (gup_put_folio(FOLL_PIN))
 * Drop a pin (nr_foll_pin_released). A page that lost its mapping and its page-cache entry while
 * pinned is freed with its last pin.
 */
export function unpin_folio(mm: MM, pfn: number, cpu: number): void {
  if (pfn === mm.zero_pfn) return;
  const pins = pincounts(mm);
  if (pins[pfn] === 0) throw new Error(`unpin_user_page: pfn ${pfn} is not pinned`);
  pins[pfn]--;
  mm.nodes[mm.page_zone(pfn)!.nid].vm_stat[NR_FOLL_PIN_RELEASED]++;
  if (pins[pfn] === 0 && folio_orphaned(mm, pfn)) __free_pages(mm, pfn, 0, cpu);
}

/** The page belongs to nobody but its pins: no mapping, not anonymous, not cached. */
function folio_orphaned(mm: MM, pfn: number): boolean {
  const f = mm.frames;
  return f.mapping[pfn] === 0 && !(f.flags[pfn] & PG_anon) && !is_file_page(mm, pfn);
}

/**
 * kernel: include/linux/mm.h folio_is_longterm_pinnable()
 * A page may stay pinned for long unless it is in ZONE_MOVABLE or a CMA pageblock: those must
 * stay movable, so FOLL_LONGTERM migrates such pages out first. The zero page always may.
 */
export function folio_is_longterm_pinnable(mm: MM, pfn: number): boolean {
  if (pfn === mm.zero_pfn) return true;
  if (get_pfnblock_migratetype(mm, pfn) === MIGRATE_CMA) return false;
  return mm.page_zone(pfn)!.zone_idx !== ZONE_MOVABLE;
}

/** Pinned frames must be allocated pages (a pin keeps its page from being freed). */
export function gup_check(mm: MM): string[] {
  const pins = mm.pincount;
  if (pins === null) return [];
  const errors: string[] = [];
  const f = mm.frames;
  for (let pfn = 0; pfn < pins.length && errors.length < 50; pfn++) {
    if (pins[pfn] && !(f.flags[pfn] & PGI_alloc))
      errors.push(`pfn ${pfn}: pinned ${pins[pfn]} times but not allocated`);
  }
  return errors;
}
