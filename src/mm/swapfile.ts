/**
 * Swap (mm/swapfile.c, mm/swap_state.c): an optional swap device — our machines have none, so
 * the default is none — whose slots hold anonymous pages reclaim wrote out. Each slot has a
 * count (swap_map) of the swap PTEs that refer to it, plus SWAP_HAS_CACHE while a page for it
 * sits in the swap cache: a page being written out, or read back in and still clean, so that
 * reclaiming it again needs no new write.
 *
 * Slots are allocated next-fit from a cursor, as the kernel's cluster allocator does within a
 * device (without its per-CPU clusters); the first slot is the swap header. The device
 * reads and writes synchronously (as zram or a ramdisk would; pswpin/pswpout count the I/O).
 * tmpfs pages are not swapped (shmem_writeout is not modelled): they stay in memory.
 */
import { lruvec_del_folio } from './lru.ts';
import type { MM } from './mm.ts';
import { __free_pages } from './page_alloc/alloc_pages.ts';
import {
  PG_active,
  PG_anon,
  PG_dirty,
  PG_lru,
  PG_referenced,
  PG_swapbacked,
  PG_swapcache,
  PG_workingset,
} from './page-flags.ts';
import { node_stat_index, vm_event_index } from './vmstat_items.ts';

/**
 * swap_map bit: a page for the slot is in the swap cache. The kernel's map is a byte per slot
 * (SWAP_HAS_CACHE 0x40, counts up to SWAP_MAP_MAX 0x3e, then swap-count continuation pages);
 * the model's is 32 bits wide, which counts as far as continuation does.
 */
export const SWAP_HAS_CACHE = 1 << 30;

const NR_SWAPCACHE = node_stat_index('nr_swapcached');
const PSWPIN = vm_event_index('pswpin');
const PSWPOUT = vm_event_index('pswpout');
const PGPGIN = vm_event_index('pgpgin');
const PGPGOUT = vm_event_index('pgpgout');

/** struct swap_info_struct: the swap device. */
export class SwapInfo {
  /** Per slot: PTE references, plus SWAP_HAS_CACHE. */
  readonly swap_map: Uint32Array;
  /** Slots in use (swap_map nonzero). */
  inuse_pages = 0;
  /** Where the next slot search starts. */
  private cursor = 1;
  /** The swap cache: slot → pfn, and pfn → slot (folio->swap). */
  readonly cache = new Map<number, number>();
  readonly slot_of = new Map<number, number>();

  constructor(
    /** Pages of the device, the header page included. */
    readonly pages: number,
    readonly name = '/swapfile',
    readonly prio = -2,
  ) {
    this.swap_map = new Uint32Array(pages);
  }

  /** Usable slots (the header is not). */
  get total(): number {
    return this.pages - 1;
  }

  /** get_nr_swap_pages(): free slots. */
  get free(): number {
    return this.total - this.inuse_pages;
  }

  /** A free slot, claimed with `count`, or -1 if the device is full (scan_swap_map_slots). */
  alloc_slot(count: number): number {
    if (!this.free) return -1;
    for (let n = 0; n < this.total; n++) {
      const slot = this.cursor;
      this.cursor = this.cursor + 1 >= this.pages ? 1 : this.cursor + 1;
      if (this.swap_map[slot] === 0) {
        this.swap_map[slot] = count;
        this.inuse_pages++;
        return slot;
      }
    }
    return -1;
  }

  /** Lower a slot's map by `drop` (references or SWAP_HAS_CACHE); free it at 0. */
  put(slot: number, drop: number): void {
    const v = this.swap_map[slot] - drop;
    if (v < 0) throw new Error(`swap slot ${slot}: map ${this.swap_map[slot]} cannot drop ${drop}`);
    this.swap_map[slot] = v;
    if (v === 0) this.inuse_pages--;
  }
}

/** total_swap_pages: usable swap slots (0 without a device). */
export function total_swap_pages(mm: MM): number {
  return mm.swap?.total ?? 0;
}

/** get_nr_swap_pages(): free swap slots. */
export function get_nr_swap_pages(mm: MM): number {
  return mm.swap?.free ?? 0;
}

/**
 * kernel: mm/swap_state.c folio_alloc_swap() + add_to_swap_cache()
 * Give the anonymous page `pfn` a swap slot and put it in the swap cache, dirty (it must be
 * written). False if there is no device or it is full.
 */
export function folio_alloc_swap(mm: MM, pfn: number): boolean {
  const si = mm.swap;
  if (!si) return false;
  const slot = si.alloc_slot(SWAP_HAS_CACHE);
  if (slot < 0) return false;
  add_to_swap_cache(mm, pfn, slot);
  mm.frames.flags[pfn] |= PG_dirty;
  return true;
}

/**
 * kernel: mm/swap_state.c add_to_swap_cache(): `pfn` caches swap slot `slot` (in use), which
 * gains SWAP_HAS_CACHE.
 */
export function add_to_swap_cache(mm: MM, pfn: number, slot: number): void {
  const si = mm.swap!;
  si.swap_map[slot] |= SWAP_HAS_CACHE;
  si.cache.set(slot, pfn);
  si.slot_of.set(pfn, slot);
  mm.frames.flags[pfn] |= PG_swapcache;
  mm.nodes[mm.page_zone(pfn)!.nid].vm_stat[NR_SWAPCACHE]++;
}

/**
 * kernel: mm/swap_state.c delete_from_swap_cache() / folio_free_swap()
 * The page leaves the swap cache; its slot loses SWAP_HAS_CACHE (and is freed if no PTE refers
 * to it any more).
 */
export function delete_from_swap_cache(mm: MM, pfn: number): void {
  const si = mm.swap!;
  const slot = si.slot_of.get(pfn)!;
  si.cache.delete(slot);
  si.slot_of.delete(pfn);
  mm.frames.flags[pfn] &= ~PG_swapcache;
  mm.nodes[mm.page_zone(pfn)!.nid].vm_stat[NR_SWAPCACHE]--;
  si.put(slot, SWAP_HAS_CACHE);
}

/** The swap slot of a page in the swap cache. */
export function folio_swap_slot(mm: MM, pfn: number): number {
  return mm.swap!.slot_of.get(pfn)!;
}

/** kernel: mm/swapfile.c swap_duplicate(): one more swap PTE refers to `slot`. */
export function swap_duplicate(mm: MM, slot: number): void {
  const si = mm.swap!;
  if (si.swap_map[slot] === 0) si.inuse_pages++;
  si.swap_map[slot]++;
}

/**
 * kernel: mm/vmscan.c pageout() → swap_writeout()
 * Write a dirty swap-cache page to its slot (pswpout); the page is clean afterwards.
 */
export function swap_writeout(mm: MM, pfn: number): void {
  mm.frames.flags[pfn] &= ~PG_dirty;
  mm.vm_events[PSWPOUT]++;
  mm.vm_events[PGPGOUT] += 8;
}

/** Count a swap-in read (pswpin, pgpgin). */
export function swap_read_folio(mm: MM): void {
  mm.vm_events[PSWPIN]++;
  mm.vm_events[PGPGIN] += 8;
}

/**
 * kernel: mm/swapfile.c free_swap_and_cache()
 * A swap PTE referring to `slot` went away (zap, MADV_FREE). When only the swap cache still
 * holds the slot and its page is mapped nowhere, the page is freed too
 * (__try_to_reclaim_swap).
 */
export function free_swap_and_cache(mm: MM, slot: number, cpu: number): void {
  const si = mm.swap!;
  si.put(slot, 1);
  if (si.swap_map[slot] !== SWAP_HAS_CACHE) return;
  const pfn = si.cache.get(slot)!;
  if (mm.frames.mapcount[pfn] > 0) return;
  delete_from_swap_cache(mm, pfn);
  free_unmapped_anon(mm, pfn, cpu);
}

/** The last reference to an unmapped anonymous page went: off the LRU and freed. */
export function free_unmapped_anon(mm: MM, pfn: number, cpu: number): void {
  const f = mm.frames;
  if (f.flags[pfn] & PG_lru) lruvec_del_folio(mm, pfn);
  f.flags[pfn] &= ~(PG_anon | PG_swapbacked | PG_dirty | PG_active | PG_referenced | PG_workingset);
  f.mapping[pfn] = 0;
  f.index[pfn] = 0;
  __free_pages(mm, pfn, 0, cpu);
}

/**
 * The swap device's invariants: every slot's count equals the swap PTEs `ptes` counted for it
 * plus SWAP_HAS_CACHE for a cached page; the swap cache maps agree with each other, with
 * PG_swapcache and with nr_swapcached; inuse_pages counts the used slots.
 */
export function swap_check(mm: MM, ptes: Int32Array | null): string[] {
  const si = mm.swap;
  if (!si) return [];
  const errors: string[] = [];
  const report = (msg: string): void => {
    if (errors.length < 50) errors.push(msg);
  };
  let inuse = 0;
  for (let slot = 1; slot < si.pages; slot++) {
    const v = si.swap_map[slot];
    if (v) inuse++;
    const cached = si.cache.has(slot);
    if (((v & SWAP_HAS_CACHE) !== 0) !== cached)
      report(`swap slot ${slot}: SWAP_HAS_CACHE disagrees with the cache`);
    if (ptes && (v & ~SWAP_HAS_CACHE) !== ptes[slot])
      report(`swap slot ${slot}: count ${v & ~SWAP_HAS_CACHE} but ${ptes[slot]} swap PTEs`);
  }
  if (si.swap_map[0]) report('swap header slot is in use');
  if (inuse !== si.inuse_pages) report(`swap inuse_pages ${si.inuse_pages} but ${inuse} slots used`);
  let swapcached = 0;
  for (const node of mm.nodes) swapcached += node.vm_stat[NR_SWAPCACHE];
  if (swapcached !== si.cache.size) report(`nr_swapcached ${swapcached} but ${si.cache.size} cached pages`);
  for (const [slot, pfn] of si.cache) {
    const fl = mm.frames.flags[pfn];
    if (si.slot_of.get(pfn) !== slot || !(fl & PG_swapcache) || !(fl & PG_anon))
      report(`swap cache: page ${pfn} for slot ${slot} is not a swap-cached anonymous page`);
  }
  return errors;
}
