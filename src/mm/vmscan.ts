/**
 * Reclaim (mm/vmscan.c, Linux 6.18 without MGLRU, as on our machines): direct reclaim from the
 * allocation slow path and kswapd, one per node, woken when a zone falls below its low watermark
 * (or its watermark is boosted) and reclaiming until the node's eligible zones are balanced.
 *
 * Each pass over a node (shrink_node) scans its LRU lists from the tail, a share of each list
 * set by the priority (get_scan_count), ages the active lists when the inactive ones run low
 * (shrink_active_list), and frees what shrink_folio_list allows: clean unmapped page cache,
 * mapped pages after unmapping them through the rmap, clean lazyfree anonymous pages. Dirty
 * file pages are left to the flusher (6.18 no longer writes file pages from reclaim), pages
 * under writeback are marked for reclaim when their write ends, referenced pages get another
 * trip. Then the slab shrinkers. Anonymous pages need swap: without a swap device (our
 * machines have none) get_scan_count() scans the file lists only; with one, anon and file are
 * balanced by swappiness and the recent cost of reclaiming each (lru_note_cost), and anonymous
 * pages are written to swap (swapfile.ts) and unmapped to swap entries.
 *
 * For costly orders reclaim defers to compaction (compaction_ready, should_continue_reclaim).
 *
 * Not modelled: workingset shadow entries and refault detection (workingset_* stay 0), memcg,
 * NUMA demotion, and reclaim throttling waits.
 */

import { compaction_suitable, reset_isolation_suitable, wakeup_kcompactd } from './compaction.ts';
import { run_kthread } from './cost.ts';
import { type AddressSpace, filemap_remove_folio, is_file_page } from './filemap.ts';
import { __GFP_DIRECT_RECLAIM, __GFP_FS, __GFP_IO, GFP_KERNEL } from './gfp.ts';
import { folio_maybe_dma_pinned } from './gup.ts';
import {
  LRU_ACTIVE_ANON,
  LRU_ACTIVE_FILE,
  LRU_INACTIVE_ANON,
  LRU_INACTIVE_FILE,
  lruvec_add_folio,
  lruvec_del_folio,
} from './lru.ts';
import type { MM } from './mm.ts';
import {
  MAX_NR_ZONES,
  PAGE_ALLOC_COSTLY_ORDER,
  type PglistData,
  pageblock_order,
  ZONE_RECLAIM_ACTIVE,
  type Zone,
} from './mmzone.ts';
import type { AllocContext } from './page_alloc/context.ts';
import { zone_watermark_ok } from './page_alloc/watermark.ts';
import {
  PG_active,
  PG_anon,
  PG_dirty,
  PG_locked,
  PG_lru,
  PG_mlocked,
  PG_reclaim,
  PG_referenced,
  PG_swapbacked,
  PG_swapcache,
  PG_unevictable,
  PG_workingset,
  PG_writeback,
} from './page-flags.ts';
import { wakeup_flusher_threads } from './page-writeback.ts';
import { RMAP_VM_EXEC, RMAP_VM_LOCKED } from './rmap.ts';
import { DEF_PRIORITY, shrink_slab } from './shrinker.ts';
import {
  delete_from_swap_cache,
  folio_alloc_swap,
  free_unmapped_anon,
  get_nr_swap_pages,
  swap_writeout,
  total_swap_pages,
} from './swapfile.ts';
import { NR_ZONE_INACTIVE_ANON, node_stat_index, vm_event_index } from './vmstat_items.ts';
import type { Work } from './workqueue.ts';

export const SWAP_CLUSTER_MAX = 32;
/** kswapd gives a node up after this many runs that reclaimed nothing (MAX_RECLAIM_RETRIES). */
export const MAX_RECLAIM_RETRIES = 16;

const ALLOCSTALL_DMA = vm_event_index('allocstall_dma');
const PGSKIP_DMA = vm_event_index('pgskip_dma');
const PAGEOUTRUN = vm_event_index('pageoutrun');
const PGREFILL = vm_event_index('pgrefill');
const PGSCAN_KSWAPD = vm_event_index('pgscan_kswapd');
const PGSCAN_DIRECT = vm_event_index('pgscan_direct');
const PGSTEAL_KSWAPD = vm_event_index('pgsteal_kswapd');
const PGSTEAL_DIRECT = vm_event_index('pgsteal_direct');
const PGSCAN_ANON = vm_event_index('pgscan_anon');
const PGSTEAL_ANON = vm_event_index('pgsteal_anon');
const PGACTIVATE = vm_event_index('pgactivate');
const PGDEACTIVATE = vm_event_index('pgdeactivate');
const PGLAZYFREED = vm_event_index('pglazyfreed');
const UNEVICTABLE_PGCULLED = vm_event_index('unevictable_pgs_culled');
const KSWAPD_LOW_WMARK_HIT_QUICKLY = vm_event_index('kswapd_low_wmark_hit_quickly');
const KSWAPD_HIGH_WMARK_HIT_QUICKLY = vm_event_index('kswapd_high_wmark_hit_quickly');
const NR_ISOLATED_ANON = node_stat_index('nr_isolated_anon');
const NR_VMSCAN_IMMEDIATE = node_stat_index('nr_vmscan_immediate_reclaim');
const NR_LRU_BASE = node_stat_index('nr_inactive_anon');

/** pgdat->flags bits set by kswapd (enum pgdat_flags). */
export const PGDAT_DIRTY = 1 << 0;
export const PGDAT_WRITEBACK = 1 << 1;

/** Per-node kswapd state (pgdat->kswapd_order, kswapd_highest_zoneidx). */
export class KswapdState {
  order = 0;
  highest_zoneidx = MAX_NR_ZONES;
  /** A run is queued on the clock. */
  queued = false;
  /** enum pgdat_flags */
  pgdat_flags = 0;
  /** kswapd naps until then after balancing a node (kswapd_try_to_sleep). */
  nap_until = -1;
  /** lruvec->anon_cost / file_cost: the recent cost of reclaiming each (lru_note_cost). */
  anon_cost = 0;
  file_cost = 0;
  /** CPU time kswapd has used, ns (cost.ts). */
  cpu_ns = 0;
}

const DEACTIVATE_ANON = 1;
const DEACTIVATE_FILE = 2;

/** struct scan_control: one reclaim invocation's parameters and running totals. */
export class ScanControl {
  nr_to_reclaim = SWAP_CLUSTER_MAX;
  gfp_mask = GFP_KERNEL;
  order = 0;
  priority = DEF_PRIORITY;
  reclaim_idx = MAX_NR_ZONES - 1;
  may_writepage = true;
  may_unmap = true;
  may_swap = true;
  /** current_is_kswapd() */
  kswapd = false;
  may_deactivate = 0;
  force_deactivate = false;
  skipped_deactivate = false;
  cache_trim_mode = false;
  cache_trim_mode_failed = false;
  no_cache_trim_mode = false;
  nr_scanned = 0;
  nr_reclaimed = 0;
  /** compaction_ready: a costly request's zone can be compacted now; reclaim stops. */
  compaction_ready = false;
  /** file_is_tiny: the file cache is too small to reclaim from; go for anon (prepare_scan_control). */
  file_is_tiny = false;
  /** sc->nr: this shrink_node pass's writeback picture. */
  nr_dirty = 0;
  nr_unqueued_dirty = 0;
  nr_congested = 0;
  nr_writeback = 0;
  nr_immediate = 0;
  nr_taken = 0;
  nr_file_taken = 0;
}

/** Per-call tallies of shrink_folio_list (struct reclaim_stat). */
class ReclaimStat {
  nr_dirty = 0;
  nr_unqueued_dirty = 0;
  nr_congested = 0;
  nr_writeback = 0;
  nr_immediate = 0;
  nr_activate = 0;
  nr_pageout = 0;
  /** try_to_unmap() queued a TLB flush (current->tlb_ubc), done once for the whole list. */
  flush_pending = false;
  reset(): void {
    this.nr_dirty = this.nr_unqueued_dirty = this.nr_congested = 0;
    this.nr_writeback = this.nr_immediate = this.nr_activate = this.nr_pageout = 0;
    this.flush_pending = false;
  }
}

// Scratch state reused by every pass: reclaim allocates nothing per page.
const isolated = new Int32Array(SWAP_CLUSTER_MAX);
const stat = new ReclaimStat();
const refs = { vm_flags: 0 };

/**
 * kernel: mm/vmscan.c zone_reclaimable_pages()
 * File LRU pages, plus anonymous ones only when there is swap to put them (there is none).
 */
export function zone_reclaimable_pages(mm: MM, zone: Zone): number {
  let nr =
    zone.vm_stat[NR_ZONE_INACTIVE_ANON + LRU_INACTIVE_FILE] +
    zone.vm_stat[NR_ZONE_INACTIVE_ANON + LRU_ACTIVE_FILE];
  if (get_nr_swap_pages(mm) > 0)
    nr +=
      zone.vm_stat[NR_ZONE_INACTIVE_ANON + LRU_INACTIVE_ANON] +
      zone.vm_stat[NR_ZONE_INACTIVE_ANON + LRU_ACTIVE_ANON];
  return nr;
}

/** can_reclaim_anon_pages() (root reclaim, no demotion): there is free swap. */
function can_reclaim_anon_pages(mm: MM): boolean {
  return get_nr_swap_pages(mm) > 0;
}

/**
 * kernel: mm/vmscan.c lru_note_cost()
 * Reclaiming cost `nr_io` writes and `nr_rotated` pages sent round again on the anon or file
 * side; both costs halve once they outgrow a quarter of the LRU pages, so recent cost counts
 * most.
 */
function lru_note_cost(mm: MM, node: PglistData, file: boolean, nr_io: number, nr_rotated: number): void {
  const k = mm.kswapd[node.node_id];
  const cost = nr_io * SWAP_CLUSTER_MAX + nr_rotated;
  if (!cost) return;
  if (file) k.file_cost += cost;
  else k.anon_cost += cost;
  const lrusize =
    node.vm_stat[NR_LRU_BASE + LRU_INACTIVE_ANON] +
    node.vm_stat[NR_LRU_BASE + LRU_ACTIVE_ANON] +
    node.vm_stat[NR_LRU_BASE + LRU_INACTIVE_FILE] +
    node.vm_stat[NR_LRU_BASE + LRU_ACTIVE_FILE];
  if (k.file_cost + k.anon_cost > lrusize / 4) {
    k.file_cost = Math.floor(k.file_cost / 2);
    k.anon_cost = Math.floor(k.anon_cost / 2);
  }
}

/** kernel: mm/vmscan.c lruvec_lru_size(): pages of `lru` in the node's zones up to zone_idx. */
function lruvec_lru_size(node: PglistData, lru: number, zone_idx: number): number {
  let size = 0;
  for (const zone of node.node_zones) {
    if (zone.zone_idx > zone_idx) break;
    size += zone.vm_stat[NR_ZONE_INACTIVE_ANON + lru];
  }
  return size;
}

/** kernel: mm/vmscan.c inactive_is_low(): the inactive list is small against the active one. */
function inactive_is_low(node: PglistData, inactive_lru: number): boolean {
  const inactive = node.vm_stat[NR_LRU_BASE + inactive_lru];
  const active = node.vm_stat[NR_LRU_BASE + inactive_lru + 1];
  const gb = Math.floor((inactive + active) / 262144);
  const inactive_ratio = gb ? Math.floor(Math.sqrt(10 * gb)) : 1;
  return inactive * inactive_ratio < active;
}

/** folio_evictable(): not mlocked and not in an unevictable mapping. */
function folio_evictable(mm: MM, pfn: number): boolean {
  if (mm.frames.flags[pfn] & PG_mlocked) return false;
  return !(is_file_page(mm, pfn) && mapping_of(mm, pfn).unevictable);
}

function mapping_of(mm: MM, pfn: number): AddressSpace {
  return mm.page_cache.of(mm.frames.mapping[pfn]);
}

/**
 * kernel: mm/vmscan.c isolate_lru_folios()
 * Take up to `nr_to_scan` pages from the tail of `lru` into `isolated` (off the LRU, PG_lru
 * cleared). Pages of zones above sc.reclaim_idx are set aside (pgskip_*) and put back at the
 * head, up to SWAP_CLUSTER_MAX_SKIPPED of them; they count as scanned (total_scan) but not
 * toward `nr_to_scan`. Returns [taken, scanned] packed as taken * 2^16 + scanned.
 */
function isolate_lru_folios(
  mm: MM,
  node: PglistData,
  nr_to_scan: number,
  sc: ScanControl,
  lru: number,
): number {
  const f = mm.frames;
  const list = node.lru_base + lru;
  let taken = 0;
  let scan = 0;
  let total_scan = 0;
  let nr_skipped = 0;
  while (scan < nr_to_scan && f.list_count[list] > 0) {
    const pfn = f.list_last(list);
    total_scan++;
    const zone_idx = mm.page_zone(pfn)!.zone_idx;
    if (nr_skipped < SWAP_CLUSTER_MAX_SKIPPED && zone_idx > sc.reclaim_idx) {
      // Aside onto folios_skipped (still counted on the LRU), spliced back at the end.
      f.list_del(pfn, list);
      skipped[nr_skipped++] = pfn;
      mm.vm_events[PGSKIP_DMA + zone_idx]++;
      continue;
    }
    scan++;
    if (!sc.may_unmap && f.mapcount[pfn] > 0) {
      f.list_del(pfn, list);
      f.list_add(pfn, list);
      continue;
    }
    lruvec_del_folio(mm, pfn);
    isolated[taken++] = pfn;
  }
  // list_splice(&folios_skipped, src): the last skipped ends up at the head.
  for (let i = 0; i < nr_skipped; i++) f.list_add(skipped[i], list);
  return taken * 65536 + total_scan;
}

// kernel: SWAP_CLUSTER_MAX_SKIPPED (SWAP_CLUSTER_MAX << 10)
const SWAP_CLUSTER_MAX_SKIPPED = SWAP_CLUSTER_MAX << 10;
const skipped = new Int32Array(SWAP_CLUSTER_MAX_SKIPPED);

/** move_folios_to_lru() for one page: back on its list (unevictable if it became so). */
function putback_lru(mm: MM, pfn: number): void {
  const f = mm.frames;
  if (!folio_evictable(mm, pfn)) {
    f.flags[pfn] = (f.flags[pfn] & ~PG_active) | PG_unevictable;
    mm.vm_events[UNEVICTABLE_PGCULLED]++;
  }
  lruvec_add_folio(mm, pfn);
}

const FOLIOREF_RECLAIM = 0;
const FOLIOREF_RECLAIM_CLEAN = 1;
const FOLIOREF_KEEP = 2;
const FOLIOREF_ACTIVATE = 3;

/** kernel: mm/vmscan.c folio_check_references() */
function folio_check_references(mm: MM, pfn: number): number {
  const f = mm.frames;
  const referenced_ptes = f.mapcount[pfn] > 0 ? mm.rmap.folio_referenced(pfn, refs) : 0;
  if (f.mapcount[pfn] === 0) refs.vm_flags = 0;
  if (refs.vm_flags & RMAP_VM_LOCKED) return FOLIOREF_ACTIVATE;
  const referenced_folio = (f.flags[pfn] & PG_referenced) !== 0;
  f.flags[pfn] &= ~PG_referenced;
  const file = !(f.flags[pfn] & PG_swapbacked);
  if (referenced_ptes) {
    f.flags[pfn] |= PG_referenced;
    if (referenced_folio || referenced_ptes > 1) return FOLIOREF_ACTIVATE;
    if (refs.vm_flags & RMAP_VM_EXEC && file) return FOLIOREF_ACTIVATE;
    return FOLIOREF_KEEP;
  }
  if (referenced_folio && file) return FOLIOREF_RECLAIM_CLEAN;
  return FOLIOREF_RECLAIM;
}

const KEEP = 0;
const ACTIVATE = 1;
const FREED = 2;

/**
 * kernel: mm/vmscan.c shrink_folio_list() for one isolated order-0 page: free it, or say whether
 * it goes back active or as it was.
 */
function shrink_folio(
  mm: MM,
  node: PglistData,
  pfn: number,
  sc: ScanControl,
  cpu: number,
  ignore_references = false,
): number {
  const f = mm.frames;
  sc.nr_scanned++;
  mm.kernel_ns += mm.cost.shrink_folio;
  // folio_trylock() failed: a fault or read holds the page.
  if (f.flags[pfn] & PG_locked) return KEEP;
  if (!folio_evictable(mm, pfn)) return ACTIVATE;
  if (!sc.may_unmap && f.mapcount[pfn] > 0) return KEEP;
  const fl = f.flags[pfn];
  const file_lru = !(fl & PG_swapbacked);
  // folio_check_dirty_writeback(): only file pages (not lazyfree anon) count as dirty here.
  const counted = file_lru && !(fl & PG_anon);
  const dirty = counted && (fl & PG_dirty) !== 0;
  const writeback = (fl & PG_writeback) !== 0;
  if (dirty || writeback) stat.nr_dirty++;
  if (dirty && !writeback) stat.nr_unqueued_dirty++;
  if (writeback && fl & PG_reclaim) stat.nr_congested++;
  if (writeback) {
    // Case 1 (kswapd sees pages it marked come round again while the node is flagged as in
    // writeback): count them immediate. Case 2: mark for reclaim when the write ends.
    const k = mm.kswapd[node.node_id];
    if (sc.kswapd && fl & PG_reclaim && k.pgdat_flags & PGDAT_WRITEBACK) stat.nr_immediate++;
    else {
      f.flags[pfn] |= PG_reclaim;
      stat.nr_writeback++;
    }
    return ACTIVATE;
  }
  const references = ignore_references ? FOLIOREF_RECLAIM : folio_check_references(mm, pfn);
  if (references === FOLIOREF_ACTIVATE) return ACTIVATE;
  if (references === FOLIOREF_KEEP) return KEEP;
  if (fl & PG_anon && fl & PG_swapbacked && !(fl & PG_swapcache)) {
    // add_to_swap(): a slot for the page; without one (no device, or full) it stays.
    if (!(sc.gfp_mask & __GFP_IO) || folio_maybe_dma_pinned(mm, pfn)) return KEEP;
    if (!folio_alloc_swap(mm, pfn)) return ACTIVATE;
  }
  if (f.mapcount[pfn] > 0) {
    stat.flush_pending = true;
    if (!mm.rmap.try_to_unmap(pfn) || f.mapcount[pfn] > 0) return ACTIVATE;
  }
  // Held for DMA: unmapped, but it cannot be freed.
  if (folio_maybe_dma_pinned(mm, pfn)) return ACTIVATE;
  if (f.flags[pfn] & PG_dirty) {
    if (
      file_lru &&
      (!sc.kswapd || !(f.flags[pfn] & PG_reclaim) || !(mm.kswapd[node.node_id].pgdat_flags & PGDAT_DIRTY))
    ) {
      node.vm_stat[NR_VMSCAN_IMMEDIATE]++;
      f.flags[pfn] |= PG_reclaim;
      return ACTIVATE;
    }
    if (references === FOLIOREF_RECLAIM_CLEAN) return KEEP;
    // may_enter_fs(): __GFP_FS, or a swap-cache page with __GFP_IO.
    const swapcache = (f.flags[pfn] & PG_swapcache) !== 0;
    if (!(sc.gfp_mask & __GFP_FS) && !(swapcache && sc.gfp_mask & __GFP_IO)) return KEEP;
    if (!sc.may_writepage) return KEEP;
    // pageout(): 6.18 writes only swap-cache and shmem pages from reclaim; a dirty file page
    // goes back to the flusher, and shmem writeout (to swap) is not modelled (PAGE_ACTIVATE).
    if (!swapcache) return ACTIVATE;
    swap_writeout(mm, pfn);
    stat.nr_pageout++;
  }
  if (f.flags[pfn] & PG_swapcache) {
    // __remove_mapping() of a clean swap-cache page: its slot keeps the data.
    delete_from_swap_cache(mm, pfn);
    f.flags[pfn] &= ~PG_reclaim;
    free_unmapped_anon(mm, pfn, cpu);
    return FREED;
  }
  if (f.flags[pfn] & PG_anon) {
    // A clean lazyfree page (MADV_FREE, not written since): discard it.
    mm.vm_events[PGLAZYFREED]++;
    free_unmapped_anon(mm, pfn, cpu);
    return FREED;
  }
  if (!is_file_page(mm, pfn)) return KEEP;
  // __remove_mapping(): out of the page cache, then freed.
  f.flags[pfn] &= ~PG_reclaim;
  filemap_remove_folio(mm, mapping_of(mm, pfn), pfn, cpu);
  return FREED;
}

/**
 * kernel: mm/vmscan.c shrink_inactive_list()
 * Isolate up to `nr_to_scan` pages from the tail of an inactive list and reclaim what can be.
 */
function shrink_inactive_list(
  mm: MM,
  node: PglistData,
  nr_to_scan: number,
  sc: ScanControl,
  lru: number,
): number {
  const file = lru === LRU_INACTIVE_FILE ? 1 : 0;
  const packed = isolate_lru_folios(mm, node, nr_to_scan, sc, lru);
  const nr_taken = Math.floor(packed / 65536);
  const nr_scanned = packed % 65536;
  node.vm_stat[NR_ISOLATED_ANON + file] += nr_taken;
  mm.kernel_ns += nr_scanned * mm.cost.isolate_page;
  mm.vm_events[sc.kswapd ? PGSCAN_KSWAPD : PGSCAN_DIRECT] += nr_scanned;
  mm.vm_events[PGSCAN_ANON + file] += nr_scanned;
  if (nr_taken === 0) return 0;
  stat.reset();
  const f = mm.frames;
  const cpu = 0;
  let nr_reclaimed = 0;
  for (let i = 0; i < nr_taken; i++) {
    const pfn = isolated[i];
    const r = shrink_folio(mm, node, pfn, sc, cpu);
    if (r === FREED) {
      nr_reclaimed++;
      continue;
    }
    if (r === ACTIVATE && !(f.flags[pfn] & PG_mlocked)) {
      f.flags[pfn] |= PG_active;
      stat.nr_activate++;
    }
    putback_lru(mm, pfn);
  }
  if (stat.flush_pending) mm.kernel_ns += mm.cost.ipi; // try_to_unmap_flush()
  mm.vm_events[PGACTIVATE] += stat.nr_activate;
  node.vm_stat[NR_ISOLATED_ANON + file] -= nr_taken;
  mm.vm_events[sc.kswapd ? PGSTEAL_KSWAPD : PGSTEAL_DIRECT] += nr_reclaimed;
  mm.vm_events[PGSTEAL_ANON + file] += nr_reclaimed;
  lru_note_cost(mm, node, file === 1, stat.nr_pageout, nr_scanned - nr_reclaimed);
  // Every isolated page was dirty and not queued: the flusher is behind; kick it.
  if (stat.nr_unqueued_dirty === nr_taken) wakeup_flusher_threads(mm);
  sc.nr_dirty += stat.nr_dirty;
  sc.nr_congested += stat.nr_congested;
  sc.nr_unqueued_dirty += stat.nr_unqueued_dirty;
  sc.nr_writeback += stat.nr_writeback;
  sc.nr_immediate += stat.nr_immediate;
  sc.nr_taken += nr_taken;
  if (file) sc.nr_file_taken += nr_taken;
  return nr_reclaimed;
}

/**
 * kernel: mm/vmscan.c reclaim_pages() → reclaim_folio_list()
 * Reclaim the given LRU pages now, whatever their references (MADV_PAGEOUT): each is isolated
 * and goes through shrink_folio_list(); those that cannot go are put back, active. Returns the
 * pages freed.
 */
export function reclaim_pages(mm: MM, pfns: readonly number[], cpu: number): number {
  const sc = new ScanControl();
  stat.reset();
  const f = mm.frames;
  let reclaimed = 0;
  for (const pfn of pfns) {
    if (!(f.flags[pfn] & PG_lru)) continue;
    const node = mm.nodes[mm.page_zone(pfn)!.nid];
    const file = f.flags[pfn] & PG_swapbacked ? 0 : 1;
    lruvec_del_folio(mm, pfn);
    f.flags[pfn] &= ~PG_active;
    node.vm_stat[NR_ISOLATED_ANON + file]++;
    const r = shrink_folio(mm, node, pfn, sc, cpu, true);
    node.vm_stat[NR_ISOLATED_ANON + file]--;
    if (r === FREED) {
      reclaimed++;
      continue;
    }
    if (r === ACTIVATE && !(f.flags[pfn] & PG_mlocked)) {
      f.flags[pfn] |= PG_active;
      mm.vm_events[PGACTIVATE]++;
    }
    putback_lru(mm, pfn);
  }
  if (stat.flush_pending) mm.kernel_ns += mm.cost.ipi; // try_to_unmap_flush()
  return reclaimed;
}

/**
 * kernel: mm/vmscan.c shrink_active_list()
 * Age an active list: move pages from its tail to the inactive list (PG_workingset), except
 * referenced pages of executable file mappings, which get another trip round the active list.
 */
function shrink_active_list(
  mm: MM,
  node: PglistData,
  nr_to_scan: number,
  sc: ScanControl,
  lru: number,
): void {
  const file = lru === LRU_ACTIVE_FILE ? 1 : 0;
  const packed = isolate_lru_folios(mm, node, nr_to_scan, sc, lru);
  const nr_taken = Math.floor(packed / 65536);
  const nr_scanned = packed % 65536;
  node.vm_stat[NR_ISOLATED_ANON + file] += nr_taken;
  mm.kernel_ns += nr_scanned * mm.cost.isolate_page;
  mm.vm_events[PGREFILL] += nr_scanned;
  const f = mm.frames;
  let nr_deactivate = 0;
  let nr_rotated = 0;
  for (let i = 0; i < nr_taken; i++) {
    const pfn = isolated[i];
    if (!folio_evictable(mm, pfn)) {
      putback_lru(mm, pfn);
      continue;
    }
    if (f.mapcount[pfn] > 0 && mm.rmap.folio_referenced(pfn, refs) !== 0) {
      if (refs.vm_flags & RMAP_VM_EXEC && !(f.flags[pfn] & PG_swapbacked)) {
        nr_rotated++;
        putback_lru(mm, pfn);
        continue;
      }
    }
    f.flags[pfn] = (f.flags[pfn] & ~PG_active) | PG_workingset;
    putback_lru(mm, pfn);
    // move_folios_to_lru() counts what reached an evictable list.
    if (!(f.flags[pfn] & PG_unevictable)) nr_deactivate++;
  }
  mm.vm_events[PGDEACTIVATE] += nr_deactivate;
  node.vm_stat[NR_ISOLATED_ANON + file] -= nr_taken;
  lru_note_cost(mm, node, file === 1, 0, nr_rotated);
}

/** kernel: mm/vmscan.c shrink_list() */
function shrink_list(mm: MM, node: PglistData, lru: number, nr_to_scan: number, sc: ScanControl): number {
  if (lru === LRU_ACTIVE_ANON || lru === LRU_ACTIVE_FILE) {
    if (sc.may_deactivate & (lru === LRU_ACTIVE_FILE ? DEACTIVATE_FILE : DEACTIVATE_ANON))
      shrink_active_list(mm, node, nr_to_scan, sc, lru);
    else sc.skipped_deactivate = true;
    return 0;
  }
  return shrink_inactive_list(mm, node, nr_to_scan, sc, lru);
}

/**
 * kernel: mm/vmscan.c prepare_scan_control()
 * Deactivate a list's active pages only while its inactive list is low (no refault data);
 * cache_trim_mode when there is plenty of inactive file cache to trim.
 */
function prepare_scan_control(node: PglistData, sc: ScanControl): void {
  if (!sc.force_deactivate) {
    sc.may_deactivate = 0;
    if (inactive_is_low(node, LRU_INACTIVE_ANON)) sc.may_deactivate |= DEACTIVATE_ANON;
    if (inactive_is_low(node, LRU_INACTIVE_FILE)) sc.may_deactivate |= DEACTIVATE_FILE;
  } else sc.may_deactivate = DEACTIVATE_ANON | DEACTIVATE_FILE;
  const file = node.vm_stat[NR_LRU_BASE + LRU_INACTIVE_FILE];
  sc.cache_trim_mode =
    Math.floor(file / 2 ** sc.priority) > 0 &&
    !(sc.may_deactivate & DEACTIVATE_FILE) &&
    !sc.no_cache_trim_mode;
  // file_is_tiny: free pages and the file cache together are below the high watermarks.
  let free = 0;
  let total_high_wmark = 0;
  for (const zone of node.node_zones) {
    free += zone.vm_stat[0];
    if (zone.managed_pages) total_high_wmark += zone.high_wmark_pages();
  }
  const all_file =
    node.vm_stat[NR_LRU_BASE + LRU_INACTIVE_FILE] + node.vm_stat[NR_LRU_BASE + LRU_ACTIVE_FILE];
  const anon = node.vm_stat[NR_LRU_BASE + LRU_INACTIVE_ANON];
  sc.file_is_tiny =
    all_file + free <= total_high_wmark &&
    !(sc.may_deactivate & DEACTIVATE_ANON) &&
    Math.floor(anon / 2 ** sc.priority) > 0;
}

// Scratch for get_scan_count / shrink_lruvec (indexed by lru).
const nr = new Float64Array(4);
const targets = new Float64Array(4);

const SCAN_EQUAL = 0;
const SCAN_FRACT = 1;
const SCAN_ANON = 2;
const SCAN_FILE = 3;
/** MAX_SWAPPINESS */
const MAX_SWAPPINESS = 200;

/**
 * kernel: mm/vmscan.c get_scan_count() (root reclaim)
 * How many pages of each evictable list to scan: its size >> priority, split between anon and
 * file. Without free swap only file is scanned (SCAN_FILE); at priority 0 both equally; with a
 * tiny file cache only anon; in cache-trim mode only file; else in proportion to swappiness and
 * the inverse of each side's recent reclaim cost (calculate_pressure_balance()).
 */
function get_scan_count(mm: MM, node: PglistData, sc: ScanControl): void {
  const swappiness = mm.reclaim.swappiness;
  let balance: number;
  let ap = 0;
  let fp = 0;
  if (!sc.may_swap || !can_reclaim_anon_pages(mm)) balance = SCAN_FILE;
  else if (!sc.priority && swappiness) balance = SCAN_EQUAL;
  else if (sc.file_is_tiny) balance = SCAN_ANON;
  else if (sc.cache_trim_mode) balance = SCAN_FILE;
  else {
    balance = SCAN_FRACT;
    const k = mm.kswapd[node.node_id];
    let total_cost = k.anon_cost + k.file_cost;
    const anon_cost = total_cost + k.anon_cost;
    const file_cost = total_cost + k.file_cost;
    total_cost = anon_cost + file_cost;
    ap = Math.floor((swappiness * (total_cost + 1)) / (anon_cost + 1));
    fp = Math.floor(((MAX_SWAPPINESS - swappiness) * (total_cost + 1)) / (file_cost + 1));
  }
  for (let lru = 0; lru < 4; lru++) {
    const file = lru >= LRU_INACTIVE_FILE;
    let scan = Math.floor(lruvec_lru_size(node, lru, sc.reclaim_idx) / 2 ** sc.priority);
    if (balance === SCAN_FRACT) scan = Math.floor((scan * (file ? fp : ap)) / (ap + fp || 1));
    else if (balance === SCAN_FILE || balance === SCAN_ANON) {
      if ((balance === SCAN_FILE) !== file) scan = 0;
    }
    nr[lru] = scan;
  }
}

/**
 * kernel: mm/vmscan.c shrink_lruvec()
 * Scan the lists in SWAP_CLUSTER_MAX batches until the targets are met; once enough is
 * reclaimed (kswapd, or direct reclaim below DEF_PRIORITY) scale the rest of the scan down.
 */
function shrink_lruvec(mm: MM, node: PglistData, sc: ScanControl): void {
  get_scan_count(mm, node, sc);
  targets.set(nr);
  const proportional_reclaim = !sc.kswapd && sc.priority === DEF_PRIORITY;
  let nr_reclaimed = 0;
  while (nr[LRU_INACTIVE_ANON] || nr[LRU_ACTIVE_FILE] || nr[LRU_INACTIVE_FILE]) {
    for (let lru = 0; lru < 4; lru++) {
      if (!nr[lru]) continue;
      const nr_to_scan = Math.min(nr[lru], SWAP_CLUSTER_MAX);
      nr[lru] -= nr_to_scan;
      nr_reclaimed += shrink_list(mm, node, lru, nr_to_scan, sc);
    }
    if (nr_reclaimed < sc.nr_to_reclaim || proportional_reclaim) continue;
    const nr_file = nr[LRU_INACTIVE_FILE] + nr[LRU_ACTIVE_FILE];
    const nr_anon = nr[LRU_INACTIVE_ANON] + nr[LRU_ACTIVE_ANON];
    if (!nr_file || !nr_anon) break;
    let lru: number;
    let percentage: number;
    if (nr_file > nr_anon) {
      lru = LRU_INACTIVE_ANON;
      percentage = Math.floor((nr_anon * 100) / (targets[LRU_INACTIVE_ANON] + targets[LRU_ACTIVE_ANON] + 1));
    } else {
      lru = LRU_INACTIVE_FILE;
      percentage = Math.floor((nr_file * 100) / (targets[LRU_INACTIVE_FILE] + targets[LRU_ACTIVE_FILE] + 1));
    }
    nr[lru] = 0;
    nr[lru + 1] = 0;
    lru = lru === LRU_INACTIVE_FILE ? LRU_INACTIVE_ANON : LRU_INACTIVE_FILE;
    for (const l of [lru, lru + 1]) {
      const scanned = targets[l] - nr[l];
      nr[l] = Math.floor((targets[l] * (100 - percentage)) / 100);
      nr[l] -= Math.min(nr[l], scanned);
    }
  }
  sc.nr_reclaimed += nr_reclaimed;
  // Keep the anon active/inactive balance while there is swap to age into (can_age_anon_pages).
  if (total_swap_pages(mm) > 0 && inactive_is_low(node, LRU_INACTIVE_ANON))
    shrink_active_list(mm, node, SWAP_CLUSTER_MAX, sc, LRU_ACTIVE_ANON);
}

/**
 * kernel: mm/vmscan.c shrink_node()
 * One reclaim pass over a node at sc.priority: its LRU lists, then the slab shrinkers (whose
 * freed pages count as reclaimed, flush_reclaim_state). kswapd notes a node whose scanned pages
 * are all under writeback (PGDAT_WRITEBACK) or all dirty and unqueued (PGDAT_DIRTY). Returns
 * the pages this pass freed.
 */
export function shrink_node(mm: MM, node: PglistData, sc: ScanControl): number {
  const start = sc.nr_reclaimed;
  let reclaimable = false;
  let node_reclaimed: number;
  do {
    sc.nr_dirty = sc.nr_unqueued_dirty = sc.nr_congested = 0;
    sc.nr_writeback = sc.nr_immediate = sc.nr_taken = sc.nr_file_taken = 0;
    const before = sc.nr_reclaimed;
    prepare_scan_control(node, sc);
    shrink_lruvec(mm, node, sc);
    const slab_before = mm.slab.reclaimed_pages;
    shrink_slab(mm, sc.gfp_mask, node.node_id, sc.priority);
    sc.nr_reclaimed += mm.slab.reclaimed_pages - slab_before;
    node_reclaimed = sc.nr_reclaimed - before;
    if (node_reclaimed) reclaimable = true;
    if (sc.kswapd) {
      const k = mm.kswapd[node.node_id];
      if (sc.nr_writeback && sc.nr_writeback === sc.nr_taken) k.pgdat_flags |= PGDAT_WRITEBACK;
      if (sc.nr_unqueued_dirty && sc.nr_unqueued_dirty === sc.nr_file_taken) k.pgdat_flags |= PGDAT_DIRTY;
    }
  } while (should_continue_reclaim(mm, node, node_reclaimed, sc));
  // Any reclaim that frees something, direct or kswapd's own, revives a kswapd that gave up.
  if (reclaimable) node.kswapd_failures = 0;
  else if (sc.cache_trim_mode) sc.cache_trim_mode_failed = true;
  return sc.nr_reclaimed - start;
}

/**
 * kernel: mm/vmscan.c in_reclaim_compaction(): reclaim for a high-order request that compaction
 * will finish (costly orders, or any order once the priority has dropped below DEF_PRIORITY - 2).
 */
function in_reclaim_compaction(sc: ScanControl): boolean {
  return sc.order > 0 && (sc.order > PAGE_ALLOC_COSTLY_ORDER || sc.priority < DEF_PRIORITY - 2);
}

/**
 * kernel: mm/vmscan.c should_continue_reclaim()
 * For reclaim on behalf of compaction: go on while the last pass freed something, no zone could
 * serve the order or be compacted yet, and the inactive lists still hold more than compaction's
 * gap (2 << order pages).
 */
function should_continue_reclaim(mm: MM, node: PglistData, nr_reclaimed: number, sc: ScanControl): boolean {
  if (!in_reclaim_compaction(sc) || !nr_reclaimed) return false;
  for (const zone of node.node_zones) {
    if (zone.zone_idx > sc.reclaim_idx || !zone.managed_pages) continue;
    const watermark = zone.min_wmark_pages();
    if (zone_watermark_ok(mm, zone, sc.order, watermark, sc.reclaim_idx, 0)) return false;
    if (compaction_suitable(mm, zone, sc.order, watermark, sc.reclaim_idx)) return false;
  }
  let inactive = node.vm_stat[NR_LRU_BASE + LRU_INACTIVE_FILE];
  if (can_reclaim_anon_pages(mm)) inactive += node.vm_stat[NR_LRU_BASE + LRU_INACTIVE_ANON];
  return inactive > 2 << sc.order;
}

/**
 * kernel: mm/vmscan.c compaction_ready()
 * A costly request need not reclaim in `zone` any more: the order is already there, or there is
 * enough free memory above the high watermark for compaction to work with.
 */
function compaction_ready(mm: MM, zone: Zone, sc: ScanControl): boolean {
  if (!(sc.gfp_mask & __GFP_IO)) return false; // gfp_compaction_allowed()
  if (zone_watermark_ok(mm, zone, sc.order, zone.min_wmark_pages(), sc.reclaim_idx, 0)) return true;
  return compaction_suitable(mm, zone, sc.order, zone.high_wmark_pages(), sc.reclaim_idx);
}

/**
 * kernel: mm/vmscan.c try_to_free_pages() / do_try_to_free_pages()
 * Direct reclaim: from DEF_PRIORITY down, shrink each node of the allocation's zonelist (zones
 * up to highest_zoneidx) until SWAP_CLUSTER_MAX pages are freed. With nothing freed it tries
 * once more (the memcg full walk), then once forcing deactivation if active lists were left
 * unaged. Each pass counts allocstall against the highest zone the request may use. Returns the
 * pages reclaimed.
 */
export function try_to_free_pages(mm: MM, order: number, gfp: number, ac: AllocContext): number {
  const sc = new ScanControl();
  sc.gfp_mask = gfp;
  sc.order = order;
  sc.reclaim_idx = ac.highest_zoneidx;
  sc.may_writepage = !mm.dirty.laptop_mode;
  sc.may_swap = true;
  let memcg_full_walk = false;
  for (;;) {
    // retry: each pass counts an allocstall against the highest zone the request may use.
    mm.vm_events[ALLOCSTALL_DMA + Math.min(sc.reclaim_idx, MAX_NR_ZONES - 1)]++;
    for (sc.priority = DEF_PRIORITY; sc.priority >= 0; sc.priority--) {
      sc.nr_scanned = 0;
      shrink_zones(mm, ac, sc);
      if (sc.nr_reclaimed >= sc.nr_to_reclaim || sc.compaction_ready) break;
      if (sc.priority < DEF_PRIORITY - 2) sc.may_writepage = true;
    }
    if (sc.nr_reclaimed) return sc.nr_reclaimed;
    // Compaction can go ahead: the slow path's "progress" (do_try_to_free_pages returns 1).
    if (sc.compaction_ready) return 1;
    // One more full pass (memcg_full_walk: every cgroup; the model has only the root).
    if (!memcg_full_walk) {
      memcg_full_walk = true;
      continue;
    }
    if (sc.skipped_deactivate) {
      sc.force_deactivate = true;
      sc.skipped_deactivate = false;
      continue;
    }
    return 0;
  }
}

/**
 * kernel: mm/vmscan.c shrink_zones()
 * Shrink each node of the zonelist once, over its zones up to reclaim_idx; for a costly order a
 * zone where compaction is ready is left to compaction instead (sc.compaction_ready).
 */
function shrink_zones(mm: MM, ac: AllocContext, sc: ScanControl): void {
  let last = -1;
  for (const zid of ac.zonelist) {
    const zone = mm.zones[zid];
    if (zone.zone_idx > sc.reclaim_idx) continue;
    if (sc.order > PAGE_ALLOC_COSTLY_ORDER && compaction_ready(mm, zone, sc)) {
      sc.compaction_ready = true;
      continue;
    }
    if (zone.nid === last) continue;
    last = zone.nid;
    shrink_node(mm, mm.nodes[zone.nid], sc);
  }
}

/**
 * kernel: mm/vmscan.c pgdat_balanced()
 * Some managed zone up to `highest_zoneidx` passes its high watermark (boost included) at
 * `order`.
 */
export function pgdat_balanced(mm: MM, node: PglistData, order: number, highest_zoneidx: number): boolean {
  let managed = false;
  for (const zone of node.node_zones) {
    if (zone.zone_idx > highest_zoneidx || !zone.managed_pages) continue;
    managed = true;
    if (zone_watermark_ok(mm, zone, order, zone.high_wmark_pages(), highest_zoneidx, 0)) return true;
  }
  // A node with no managed zone in range is balanced: there is nothing to reclaim for.
  return !managed;
}

/**
 * kernel: mm/vmscan.c wakeup_kswapd()
 * Record the order and zone the allocation needed and queue a kswapd run, unless the node is
 * already balanced and unboosted, or kswapd has given up on it (then direct reclaim must do; a
 * caller that cannot reclaim directly wakes kcompactd instead, in case free memory is only too
 * fragmented).
 */
export function wakeup_kswapd(mm: MM, zone: Zone, gfp: number, order: number, highest_zoneidx: number): void {
  if (!zone.managed_pages) return;
  const node = mm.nodes[zone.nid];
  const k = mm.kswapd[zone.nid];
  if (k.highest_zoneidx === MAX_NR_ZONES || k.highest_zoneidx < highest_zoneidx)
    k.highest_zoneidx = highest_zoneidx;
  if (k.order < order) k.order = order;
  // Already awake (!waitqueue_active): it will see the new order and zone.
  if (k.queued) return;
  // Hopeless node, or balanced and unboosted: nothing for kswapd. Free memory may still be too
  // fragmented for the order: kcompactd decides (compaction_suitable) and defers if it fails.
  if (
    node.kswapd_failures >= MAX_RECLAIM_RETRIES ||
    (pgdat_balanced(mm, node, order, highest_zoneidx) && !pgdat_watermark_boosted(node, highest_zoneidx))
  ) {
    if (!(gfp & __GFP_DIRECT_RECLAIM)) wakeup_kcompactd(mm, node, order, highest_zoneidx);
    return;
  }
  if (mm.now() < k.nap_until) mm.vm_events[KSWAPD_LOW_WMARK_HIT_QUICKLY]++;
  k.nap_until = -1;
  k.queued = true;
  mm.defer(0, new KswapdRun(mm, zone.nid));
}

/** A kswapd run queued for node `nid` (a wake-up, or a rerun it could not sleep after). */
class KswapdRun implements Work {
  constructor(
    readonly mm: MM,
    readonly nid: number,
  ) {}

  run(): void {
    kswapd(this.mm, this.nid);
  }
}

/** The end of kswapd's 100 ms nap (kswapd_try_to_sleep()'s schedule_timeout()). */
class KswapdNapEnd implements Work {
  constructor(
    readonly mm: MM,
    readonly nid: number,
    readonly until: number,
    readonly reclaim_order: number,
    readonly highest_zoneidx: number,
  ) {}

  run(): void {
    const { mm, nid, reclaim_order, highest_zoneidx } = this;
    const k = mm.kswapd[nid];
    // Woken during the nap (a new run was queued): nothing more to decide here.
    if (k.nap_until !== this.until || k.queued) return;
    k.nap_until = -1;
    if (!prepare_kswapd_sleep(mm, mm.nodes[nid], reclaim_order, highest_zoneidx))
      kswapd_rerun(mm, nid, reclaim_order, highest_zoneidx);
  }
}

/** kernel: mm/vmscan.c pgdat_watermark_boosted(): a managed zone up to highest_zoneidx is boosted. */
function pgdat_watermark_boosted(node: PglistData, highest_zoneidx: number): boolean {
  for (const zone of node.node_zones) {
    if (zone.zone_idx > highest_zoneidx || !zone.managed_pages) continue;
    if (zone.watermark_boost) return true;
  }
  return false;
}

/** kernel: mm/vmscan.c wake_all_kswapds(): every node of the allocation's zonelist. */
export function wake_all_kswapds(mm: MM, order: number, gfp: number, ac: AllocContext): void {
  // The nodes already woken, as a bitmask (kernel: last_pgdat; nodes ≤ 64 in the model).
  let seen = 0n;
  for (let i = ac.preferred_index; i < ac.zonelist.length; i++) {
    const zone = mm.zones[ac.zonelist[i]];
    const bit = 1n << BigInt(zone.nid);
    if (zone.zone_idx > ac.highest_zoneidx || seen & bit) continue;
    seen |= bit;
    wakeup_kswapd(mm, zone, gfp, order, ac.highest_zoneidx);
  }
}

/** kernel: mm/vmscan.c update_reclaim_active(): ZONE_RECLAIM_ACTIVE on the zones kswapd balances. */
function update_reclaim_active(node: PglistData, highest_zoneidx: number, active: boolean): void {
  for (const zone of node.node_zones) {
    if (zone.zone_idx > highest_zoneidx || !zone.managed_pages) continue;
    if (active) zone.flags |= ZONE_RECLAIM_ACTIVE;
    else zone.flags &= ~ZONE_RECLAIM_ACTIVE;
  }
}

/**
 * kernel: mm/vmscan.c kswapd_shrink_node()
 * Aim to reclaim each eligible zone's high watermark; a high-order request that reclaimed
 * compact_gap(order) pages falls back to order 0 (compaction takes over). Returns whether the
 * pass met its target (then the priority need not rise).
 */
function kswapd_shrink_node(mm: MM, node: PglistData, sc: ScanControl): boolean {
  const before = sc.nr_reclaimed;
  sc.nr_to_reclaim = 0;
  for (const zone of node.node_zones) {
    if (zone.zone_idx > sc.reclaim_idx || !zone.managed_pages) continue;
    sc.nr_to_reclaim += Math.max(zone.high_wmark_pages(), SWAP_CLUSTER_MAX);
  }
  shrink_node(mm, node, sc);
  if (sc.order && sc.nr_reclaimed >= 2 << sc.order) sc.order = 0;
  return Math.max(sc.nr_scanned, sc.nr_reclaimed - before) >= sc.nr_to_reclaim;
}

/**
 * kernel: mm/vmscan.c kswapd() → balance_pgdat()
 * Reclaim at rising priority until the node is balanced for the recorded order and zone. A
 * boosted watermark (fragmentation events) asks for nr_boost_reclaim pages even when balanced,
 * reclaimed without writeback or swap and without raising the priority past DEF_PRIORITY - 2;
 * the recorded boosts are then cleared. A run that frees nothing counts a failure. Its CPU time
 * goes to the node's kswapd.
 */
export function kswapd(mm: MM, nid: number): void {
  run_kthread(mm, mm.kswapd[nid], () => balance_pgdat(mm, nid));
}

function balance_pgdat(mm: MM, nid: number): void {
  const k = mm.kswapd[nid];
  const node = mm.nodes[nid];
  k.queued = false;
  const order = k.order;
  const highest = k.highest_zoneidx === MAX_NR_ZONES ? MAX_NR_ZONES - 1 : k.highest_zoneidx;
  k.order = 0;
  k.highest_zoneidx = MAX_NR_ZONES;
  node.kswapd_running = true;
  mm.vm_events[PAGEOUTRUN]++;
  const zone_boosts = new Array<number>(MAX_NR_ZONES).fill(0);
  let nr_boost_reclaim = 0;
  for (const zone of node.node_zones) {
    if (zone.zone_idx > highest || !zone.managed_pages) continue;
    nr_boost_reclaim += zone.watermark_boost;
    zone_boosts[zone.zone_idx] = zone.watermark_boost;
  }
  const boosted = nr_boost_reclaim > 0;
  const sc = new ScanControl();
  sc.kswapd = true;
  sc.order = order;
  sc.gfp_mask = GFP_KERNEL;
  restart: for (;;) {
    update_reclaim_active(node, highest, true);
    sc.priority = DEF_PRIORITY;
    do {
      const reclaimed_before = sc.nr_reclaimed;
      let raise_priority = true;
      sc.reclaim_idx = highest;
      const balanced = pgdat_balanced(mm, node, sc.order, highest);
      if (!balanced && nr_boost_reclaim) {
        nr_boost_reclaim = 0;
        continue restart;
      }
      if (!nr_boost_reclaim && balanced) break restart;
      if (nr_boost_reclaim && sc.priority === DEF_PRIORITY - 2) raise_priority = false;
      sc.may_writepage = !mm.dirty.laptop_mode && !nr_boost_reclaim;
      sc.may_swap = !nr_boost_reclaim;
      // kswapd_age_node()
      if (total_swap_pages(mm) > 0 && inactive_is_low(node, LRU_INACTIVE_ANON))
        shrink_active_list(mm, node, SWAP_CLUSTER_MAX, sc, LRU_ACTIVE_ANON);
      if (sc.priority < DEF_PRIORITY - 2) sc.may_writepage = true;
      sc.nr_scanned = 0;
      if (kswapd_shrink_node(mm, node, sc)) raise_priority = false;
      const nr_reclaimed = sc.nr_reclaimed - reclaimed_before;
      nr_boost_reclaim -= Math.min(nr_boost_reclaim, nr_reclaimed);
      if (nr_boost_reclaim && !nr_reclaimed) break;
      if (raise_priority || !nr_reclaimed) sc.priority--;
    } while (sc.priority >= 1);
    if (!sc.nr_reclaimed && sc.priority < 1 && !sc.no_cache_trim_mode && sc.cache_trim_mode_failed) {
      sc.no_cache_trim_mode = true;
      continue;
    }
    if (!sc.nr_reclaimed) node.kswapd_failures++;
    break;
  }
  update_reclaim_active(node, highest, false);
  if (boosted) {
    for (const zone of node.node_zones) {
      if (zone.zone_idx > highest || !zone_boosts[zone.zone_idx]) continue;
      zone.watermark_boost -= Math.min(zone.watermark_boost, zone_boosts[zone.zone_idx]);
    }
    // As there is now likely space, wake kcompactd to defragment pageblocks.
    wakeup_kcompactd(mm, node, pageblock_order, highest);
  }
  node.kswapd_running = false;
  // kswapd(): reclaim that fell back to order 0 (kswapd_shrink_node) tries to sleep at that order
  // but wakes kcompactd for the original one; otherwise kswapd loops back and takes the order and
  // zone of any wake-up since it started (none: 0 and the zone it had).
  let alloc_order = order;
  let reclaim_order = sc.order;
  let sleep_zoneidx = highest;
  if (reclaim_order >= alloc_order) {
    alloc_order = reclaim_order = k.order;
    if (k.highest_zoneidx !== MAX_NR_ZONES) sleep_zoneidx = k.highest_zoneidx;
  }
  kswapd_try_to_sleep(mm, nid, alloc_order, reclaim_order, sleep_zoneidx);
}

/** kswapd's nap after a balanced run (schedule_timeout(HZ/10)), in ns. */
const KSWAPD_NAP_NS = 100e6;

/** kernel: mm/vmscan.c prepare_kswapd_sleep(): a hopeless node or a balanced one. */
function prepare_kswapd_sleep(mm: MM, node: PglistData, order: number, highest_zoneidx: number): boolean {
  if (node.kswapd_failures >= MAX_RECLAIM_RETRIES) return true;
  return pgdat_balanced(mm, node, order, highest_zoneidx);
}

/**
 * kernel: mm/vmscan.c kswapd_try_to_sleep()
 * A node kswapd may leave gets a 100 ms nap first: a wake-up during it counts
 * kswapd_low_wmark_hit_quickly (see wakeup_kswapd); at its end kswapd sleeps for good if the
 * node still may be left, else it counts kswapd_high_wmark_hit_quickly and goes back to work —
 * as it does at once when the node is neither balanced nor hopeless.
 */
function kswapd_try_to_sleep(
  mm: MM,
  nid: number,
  alloc_order: number,
  reclaim_order: number,
  highest_zoneidx: number,
): void {
  const k = mm.kswapd[nid];
  const node = mm.nodes[nid];
  if (prepare_kswapd_sleep(mm, node, reclaim_order, highest_zoneidx)) {
    k.pgdat_flags = 0; // clear_pgdat_congested()
    // Compaction may scan pageblocks it skipped again.
    reset_isolation_suitable(mm, node);
    // Memory was freed: compact it so the requested order can be allocated.
    wakeup_kcompactd(mm, node, alloc_order, highest_zoneidx);
    const until = mm.now() + KSWAPD_NAP_NS;
    k.nap_until = until;
    mm.defer(KSWAPD_NAP_NS, new KswapdNapEnd(mm, nid, until, reclaim_order, highest_zoneidx));
    return;
  }
  kswapd_rerun(mm, nid, reclaim_order, highest_zoneidx);
}

/**
 * How soon kswapd runs balance_pgdat() again when it could not leave the node: its last run's
 * duration, until the cost model (issue 4) charges reclaim its real time.
 */
const KSWAPD_RERUN_NS = 10e6;

/** kswapd did not get to sleep: kswapd_high_wmark_hit_quickly, and balance_pgdat() again. */
function kswapd_rerun(mm: MM, nid: number, reclaim_order: number, highest_zoneidx: number): void {
  const k = mm.kswapd[nid];
  mm.vm_events[KSWAPD_HIGH_WMARK_HIT_QUICKLY]++;
  if (k.queued) return;
  if (k.order < reclaim_order) k.order = reclaim_order;
  if (k.highest_zoneidx === MAX_NR_ZONES || k.highest_zoneidx < highest_zoneidx)
    k.highest_zoneidx = highest_zoneidx;
  k.queued = true;
  mm.defer(KSWAPD_RERUN_NS, new KswapdRun(mm, nid));
}
