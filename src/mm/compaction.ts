/**
 * Memory compaction (mm/compaction.c, Linux 6.18): move movable pages out of the low end of a zone
 * into free pages at its high end, so that free memory coalesces into large blocks.
 *
 * compact_zone() runs two scanners towards each other over one zone. The migrate scanner
 * (isolate_migratepages) walks pageblocks up from the zone start and isolates LRU pages from
 * them, COMPACT_CLUSTER_MAX (32) at a time; the free scanner (isolate_freepages) walks pageblocks
 * down from the zone end and takes free buddy blocks off the free lists as migration targets,
 * handing them to migrate_pages() one page at a time (compaction_alloc). The run ends when the
 * scanners meet (COMPACT_COMPLETE), or, for an allocation, as soon as a block of the requested
 * order is free (__compact_finished: COMPACT_SUCCESS); a direct compactor may even catch that
 * block as it is freed (capture_control, compaction_capture in the buddy free path).
 *
 * Hints make repeated runs cheap, as in the kernel: per zone, the position each scanner stopped
 * at (compact_cached_migrate_pfn[async, sync], compact_cached_free_pfn); per pageblock, a skip bit
 * (PB_compact_skip) set on blocks where isolation found nothing, reset once a full compaction has
 * finished (__reset_isolation_suitable); quick free-list searches for a block to empty
 * (fast_find_migrateblock) and for a target near the zone end (fast_isolate_freepages); and per
 * zone, deferral after failures (compact_considered, compact_defer_shift, compact_order_failed).
 *
 * Entry points: try_to_compact_pages() for the allocation slow path (direct compaction at the
 * three priorities), compact_nodes() for /proc/sys/vm/compact_memory, compaction_suitable() and
 * compaction_zonelist_suitable() for reclaim's decisions. Also mm/vmstat.c's fragmentation_index()
 * and extfrag_for_order(), which they rely on.
 *
 * kcompactd, one per node on the simulated clock, compacts for the order kswapd or an allocation
 * that could not reclaim asked for (wakeup_kcompactd, kcompactd_do_work), and every
 * HPAGE_FRAG_CHECK_INTERVAL_MSEC (500 ms) checks the node's fragmentation score to compact it
 * proactively (compaction_proactiveness, fragmentation_score_node, compact_node(proactive)).
 *
 * The model runs compaction in one go, with no lock contention, signals or need_resched(), so
 * `contended` stays false and nothing is aborted for those reasons. Compaction takes no simulated
 * time yet: the cost model is still to come (issue 4).
 */

import { run_kthread } from './cost.ts';
import { is_file_page } from './filemap.ts';
import { __GFP_FS, __GFP_IO, GFP_KERNEL, gfp_migratetype } from './gfp.ts';
import { folio_maybe_dma_pinned } from './gup.ts';
import { isolate_or_dissolve_huge_folio } from './hugetlb.ts';
import { ALLOC_CMA, ALLOC_WMARK_HIGH, ALLOC_WMARK_MASK, ALLOC_WMARK_MIN } from './internal.ts';
import {
  folio_isolate_lru,
  folio_putback_lru,
  MIGRATE_ASYNC,
  MIGRATE_SYNC,
  MIGRATE_SYNC_LIGHT,
  migrate_pages,
  type NewFolioOps,
} from './migrate.ts';
import type { MM } from './mm.ts';
import {
  HPAGE_PMD_ORDER,
  is_migrate_movable,
  MAX_PAGE_ORDER,
  MIGRATE_CMA,
  MIGRATE_ISOLATE,
  MIGRATE_MOVABLE,
  MIGRATE_TYPES,
  migratetype_is_mergeable,
  NR_PAGE_ORDERS,
  PAGE_ALLOC_COSTLY_ORDER,
  type PglistData,
  pageblock_end_pfn,
  pageblock_nr_pages,
  pageblock_order,
  pageblock_start_pfn,
  WMARK_MIN,
  type Zone,
} from './mmzone.ts';
import { __free_pages } from './page_alloc/alloc_pages.ts';
import {
  type AllocContext,
  COMPACT_COMPLETE,
  COMPACT_CONTENDED,
  COMPACT_CONTINUE,
  COMPACT_DEFERRED,
  COMPACT_NO_SUITABLE_PAGE,
  COMPACT_NOT_SUITABLE_ZONE,
  COMPACT_PARTIAL_SKIPPED,
  COMPACT_PRIO_ASYNC,
  COMPACT_SKIPPED,
  COMPACT_SUCCESS,
  type CompactOutcome,
  MIN_COMPACT_PRIORITY,
} from './page_alloc/context.ts';
import { find_suitable_fallback, move_freepages_block } from './page_alloc/fallback.ts';
import { __del_page_from_free_list, account_freepages } from './page_alloc/freelist.ts';
import { drain_all_pages, drain_pages_zone, mod_zone_stat_diff } from './page_alloc/pcp.ts';
import { __zone_watermark_ok, zone_watermark_ok } from './page_alloc/watermark.ts';
import { compound_head } from './page_isolation.ts';
import {
  PG_anon,
  PG_buddy,
  PG_dirty,
  PG_head,
  PG_hugetlb,
  PG_locked,
  PG_lru,
  PG_swapcache,
  PG_tail,
  PG_unevictable,
  PG_writeback,
  PGI_alloc,
} from './page-flags.ts';
import { get_pageblock_skip, get_pfnblock_migratetype, set_pageblock_skip } from './pageblock.ts';
import { NR_FREE_PAGES, NR_FREE_PAGES_BLOCKS, node_stat_index, vm_event_index } from './vmstat_items.ts';
import type { Work } from './workqueue.ts';

/** COMPACT_CLUSTER_MAX (= SWAP_CLUSTER_MAX): pages isolated for one migrate_pages() call. */
export const COMPACT_CLUSTER_MAX = 32;
/** Do not skip compaction more than 64 times. */
export const COMPACT_MAX_DEFER_SHIFT = 6;
/** The order the fragmentation score is about: HPAGE_PMD_ORDER (THP or hugetlbfs or PMD size). */
export const COMPACTION_HPAGE_ORDER = HPAGE_PMD_ORDER;

// isolate_mode_t (include/linux/mmzone.h)
export const ISOLATE_ASYNC_MIGRATE = 0x4;
export const ISOLATE_UNEVICTABLE = 0x8;

// isolate_migrate_t: what isolate_migratepages() found.
const ISOLATE_ABORT = 0;
const ISOLATE_NONE = 1;
const ISOLATE_SUCCESS = 2;

const ULONG_MAX = Number.MAX_SAFE_INTEGER;
const EAGAIN = -11;
const ENOMEM = -12;
const EBUSY = -16;

const COMPACTMIGRATE_SCANNED = vm_event_index('compact_migrate_scanned');
const COMPACTFREE_SCANNED = vm_event_index('compact_free_scanned');
const COMPACTISOLATED = vm_event_index('compact_isolated');
const KCOMPACTD_MIGRATE_SCANNED = vm_event_index('compact_daemon_migrate_scanned');
const KCOMPACTD_FREE_SCANNED = vm_event_index('compact_daemon_free_scanned');
const NR_INACTIVE_ANON = node_stat_index('nr_inactive_anon');
const NR_ACTIVE_ANON = node_stat_index('nr_active_anon');
const NR_INACTIVE_FILE = node_stat_index('nr_inactive_file');
const NR_ACTIVE_FILE = node_stat_index('nr_active_file');
const NR_ISOLATED_ANON = node_stat_index('nr_isolated_anon');
const NR_ISOLATED_FILE = node_stat_index('nr_isolated_file');

/** The sysctls of mm/compaction.c (vm_compaction[]), with their 6.18 defaults in MM. */
export interface CompactionSysctls {
  /** vm.compact_memory: write-only; the last value written (1 starts a compaction). */
  compact_memory: number;
  /** vm.compaction_proactiveness, 0..100 (default 20). */
  compaction_proactiveness: number;
  /** vm.extfrag_threshold, 0..1000 (default 500). */
  extfrag_threshold: number;
  /** vm.compact_unevictable_allowed, 0 or 1 (CONFIG_COMPACT_UNEVICTABLE_DEFAULT: 1, 0 on RT). */
  compact_unevictable_allowed: number;
}

/**
 * One order's list of isolated free blocks (cc->freepages[order]): a deque of pfns with the
 * kernel's list operations (list_add_tail when isolating, list_add for split-off halves and
 * returned targets, list_first_entry when allocating). Grows by doubling; never shrinks.
 */
class FreePageList {
  buf = new Int32Array(64);
  head = 0;
  count = 0;

  private grow(): void {
    const n = this.buf.length;
    const next = new Int32Array(n * 2);
    for (let i = 0; i < this.count; i++) next[i] = this.buf[(this.head + i) & (n - 1)];
    this.buf = next;
    this.head = 0;
  }
  add_tail(pfn: number): void {
    if (this.count === this.buf.length) this.grow();
    this.buf[(this.head + this.count) & (this.buf.length - 1)] = pfn;
    this.count++;
  }
  add_head(pfn: number): void {
    if (this.count === this.buf.length) this.grow();
    this.head = (this.head - 1) & (this.buf.length - 1);
    this.buf[this.head] = pfn;
    this.count++;
  }
  take_head(): number {
    const pfn = this.buf[this.head];
    this.head = (this.head + 1) & (this.buf.length - 1);
    this.count--;
    return pfn;
  }
}

/**
 * struct compact_control (mm/internal.h): one compaction run's state, reused from run to run
 * (reset() is the kernel's designated initializer). It is also the migrate_pages() target
 * allocator: get_new_folio() is compaction_alloc(), put_new_folio() compaction_free().
 *
 * Isolated free blocks stay out of the buddy allocator as allocated blocks (PGI_alloc with their
 * order) until they are used or released, so the invariant checker counts them as allocated.
 */
export class CompactControl implements NewFolioOps {
  mm!: MM;
  /** List of free pages to migrate to, per order. */
  readonly freepages: FreePageList[] = [];
  /** The pages isolated for migration, in isolation order (the kernel's list is reversed). */
  migratepages = new Int32Array(2 * pageblock_nr_pages);
  /** Entries on migratepages. */
  nr_migratelist = 0;
  /** Number of isolated free pages. */
  nr_freepages = 0;
  /** Number of pages to migrate (compaction_alloc() and compaction_free() move it, as in 6.18). */
  nr_migratepages = 0;
  /** isolate_freepages() search base. */
  free_pfn = 0;
  /** isolate_migratepages() search base; the next pfn to scan after isolate_migratepages_block(). */
  migrate_pfn = 0;
  /** A pfn to start a linear scan from (fast_find_migrateblock): 0 unset, ULONG_MAX used. */
  fast_start_pfn = 0;
  zone!: Zone;
  total_migrate_scanned = 0;
  total_free_scanned = 0;
  /** Failures to use free list searches (unsigned short). */
  fast_search_fail = 0;
  /** Order to start a fast search at. */
  search_order = 0;
  /** gfp mask of a direct compactor. */
  gfp_mask = 0;
  /** Order a direct compactor needs; -1 for a full compaction (compact_memory). */
  order = 0;
  /** Migratetype of a direct compactor. */
  migratetype = 0;
  /** alloc flags of a direct compactor. */
  alloc_flags = 0;
  /** Zone index of a direct compactor. */
  highest_zoneidx = 0;
  /** Async or sync migration mode. */
  mode = MIGRATE_ASYNC;
  /** Scan blocks even if marked skip. */
  ignore_skip_hint = false;
  /** Don't mark blocks for skipping. */
  no_set_skip_hint = false;
  /** Scan blocks considered unsuitable. */
  ignore_block_suitable = false;
  /** False from kcompactd or /proc/... */
  direct_compaction = false;
  /** kcompactd proactive compaction. */
  proactive_compaction = false;
  /** Whole zone should/has been scanned. */
  whole_zone = false;
  /** Signal lock contention (never set in the model: nothing contends). */
  contended = false;
  /** Scan the remainder of a pageblock (after transient isolation or migration failures). */
  finish_pageblock = false;
  /** alloc_contig_range allocation. */
  alloc_contig = false;
  /** The CPU the compaction runs on: its pcp lists take the freed pages. */
  cpu = 0;
  /** PF_MEMALLOC: direct compaction runs with it (memalloc_noreclaim_save()). */
  pf_memalloc = false;
  /** isolate_freepages_block()'s in/out start_pfn. */
  block_pfn = 0;

  constructor() {
    for (let o = 0; o < NR_PAGE_ORDERS; o++) this.freepages.push(new FreePageList());
  }

  /** The designated initializer of a compact_control: every field zero or false, then `mm`. */
  reset(mm: MM, zone: Zone | null, cpu: number): void {
    this.mm = mm;
    if (zone !== null) this.zone = zone;
    this.cpu = cpu;
    for (let o = 0; o < NR_PAGE_ORDERS; o++) {
      this.freepages[o].head = 0;
      this.freepages[o].count = 0;
    }
    this.nr_migratelist = 0;
    this.nr_freepages = 0;
    this.nr_migratepages = 0;
    this.free_pfn = 0;
    this.migrate_pfn = 0;
    this.fast_start_pfn = 0;
    this.total_migrate_scanned = 0;
    this.total_free_scanned = 0;
    this.fast_search_fail = 0;
    this.search_order = 0;
    this.gfp_mask = 0;
    this.order = 0;
    this.migratetype = 0;
    this.alloc_flags = 0;
    this.highest_zoneidx = 0;
    this.mode = MIGRATE_ASYNC;
    this.ignore_skip_hint = false;
    this.no_set_skip_hint = false;
    this.ignore_block_suitable = false;
    this.direct_compaction = false;
    this.proactive_compaction = false;
    this.whole_zone = false;
    this.contended = false;
    this.finish_pageblock = false;
    this.alloc_contig = false;
    this.pf_memalloc = false;
  }

  /** compaction_alloc() */
  get_new_folio(src: number): number {
    return compaction_alloc(this, src);
  }

  /** compaction_free() */
  put_new_folio(dst: number): void {
    compaction_free(this, dst);
  }
}

/** struct capture_control (mm/internal.h): where __free_one_page() leaves a captured block. */
export class CaptureControl {
  cc!: CompactControl;
  /** The captured block's first pfn, or -1. */
  page = -1;
}

/** compact_control and capture_control by nesting depth, reused. */
const ccs: CompactControl[] = [];
const capcs: CaptureControl[] = [];
let cc_depth = 0;

/** Get a compact_control for a run (release it with put_cc()). */
function get_cc(): CompactControl {
  if (cc_depth === ccs.length) {
    ccs.push(new CompactControl());
    capcs.push(new CaptureControl());
  }
  return ccs[cc_depth++];
}
function put_cc(): void {
  cc_depth--;
}

// kernel: include/linux/compaction.h compact_gap()
/**
 * Free order-0 pages compaction wants above the watermark, so the free scanner does not run out
 * of targets: twice the request, since up to 1 << order pages may sit isolated while an
 * (order - 1) block is being split.
 */
export function compact_gap(order: number): number {
  return 2 * 2 ** order;
}

/** order == -1: a full compaction (compact_memory, a node's compact file, proactive). */
function is_via_compact_memory(order: number): boolean {
  return order === -1;
}

function pageblock_aligned(pfn: number): boolean {
  return (pfn & (pageblock_nr_pages - 1)) === 0;
}

/** block_start_pfn(pfn, order): round_down(pfn, 1 << order). */
function block_start_pfn(pfn: number, order: number): number {
  return pfn - (pfn & ((1 << order) - 1));
}

/** block_end_pfn(pfn, order): ALIGN(pfn + 1, 1 << order). */
function block_end_pfn(pfn: number, order: number): number {
  return block_start_pfn(pfn, order) + (1 << order);
}

/**
 * kernel: mm/compaction.c defer_compaction()
 * Compaction failed to yield an allocation: skip the next 1 << ++compact_defer_shift attempts (at
 * most 64), for this order and above.
 */
export function defer_compaction(zone: Zone, order: number): void {
  zone.compact_considered = 0;
  zone.compact_defer_shift++;
  if (order < zone.compact_order_failed) zone.compact_order_failed = order;
  if (zone.compact_defer_shift > COMPACT_MAX_DEFER_SHIFT) zone.compact_defer_shift = COMPACT_MAX_DEFER_SHIFT;
}

/**
 * kernel: mm/compaction.c compaction_deferred()
 * Whether to skip compaction this time: orders below compact_order_failed never are; otherwise
 * every attempt counts and the 1 << compact_defer_shift-th one goes ahead (and so do all after
 * it, until the next deferral).
 */
export function compaction_deferred(zone: Zone, order: number): boolean {
  const defer_limit = 2 ** zone.compact_defer_shift;
  if (order < zone.compact_order_failed) return false;
  if (++zone.compact_considered >= defer_limit) {
    zone.compact_considered = defer_limit;
    return false;
  }
  return true;
}

/**
 * kernel: mm/compaction.c compaction_defer_reset()
 * Compaction of `order` succeeded (or should have): forget the deferral if the allocation did
 * succeed, and let orders up to this one compact again.
 */
export function compaction_defer_reset(zone: Zone, order: number, alloc_success: boolean): void {
  if (alloc_success) {
    zone.compact_considered = 0;
    zone.compact_defer_shift = 0;
  }
  if (order >= zone.compact_order_failed) zone.compact_order_failed = order + 1;
}

/** kernel: mm/compaction.c compaction_restarting(): restarting after the longest deferral. */
export function compaction_restarting(zone: Zone, order: number): boolean {
  if (order < zone.compact_order_failed) return false;
  return (
    zone.compact_defer_shift === COMPACT_MAX_DEFER_SHIFT &&
    zone.compact_considered >= 2 ** zone.compact_defer_shift
  );
}

/** kernel: mm/compaction.c isolation_suitable(): whether to scan the pageblock of `pfn`. */
function isolation_suitable(cc: CompactControl, pfn: number): boolean {
  if (cc.ignore_skip_hint) return true;
  return !get_pageblock_skip(cc.mm, pfn);
}

/** kernel: mm/compaction.c reset_cached_positions(): the scanners start over at the zone ends. */
function reset_cached_positions(zone: Zone): void {
  zone.compact_cached_migrate_pfn[0] = zone.zone_start_pfn;
  zone.compact_cached_migrate_pfn[1] = zone.zone_start_pfn;
  zone.compact_cached_free_pfn = pageblock_start_pfn(zone.zone_end_pfn - 1);
}

/** compound_order(): the order of a compound page's head, 0 for other pages and for tails. */
function compound_order(mm: MM, pfn: number): number {
  return mm.frames.flags[pfn] & PG_head ? mm.frames.order[pfn] : 0;
}

/**
 * kernel: mm/compaction.c pageblock_skip_persistent()
 * A compound page of pageblock order or more: its pageblocks stay skipped until it is freed.
 */
function pageblock_skip_persistent(mm: MM, pfn: number): boolean {
  if (!(mm.frames.flags[pfn] & (PG_head | PG_tail))) return false;
  return compound_order(mm, compound_head(mm, pfn)) >= pageblock_order;
}

/**
 * kernel: mm/page_alloc.c __pageblock_pfn_to_page()
 * Whether [start_pfn, end_pfn) of one pageblock is valid memory wholly in `zone` (the kernel
 * returns the first page or NULL). zone->contiguous only saves the kernel this check.
 */
function pageblock_pfn_to_page(mm: MM, start_pfn: number, end_pfn: number, zone: Zone): boolean {
  end_pfn--;
  if (end_pfn >= mm.frames.nr_frames || !mm.pfn_online(end_pfn)) return false;
  if (!mm.pfn_online(start_pfn)) return false;
  const zid = mm.pb_zone[start_pfn >>> pageblock_order];
  if (zid !== zone.id + 1) return false;
  return mm.pb_zone[end_pfn >>> pageblock_order] === zid;
}

/**
 * kernel: mm/compaction.c __reset_isolation_pfn()
 * Clear the skip bit of the pageblock of `pfn` if a sample (every 8th page) finds an LRU page (a
 * migration source) or a free page (a target) in it. Blocks of huge compound pages stay skipped.
 */
function __reset_isolation_pfn(
  mm: MM,
  zone: Zone,
  pfn: number,
  check_source: boolean,
  check_target: boolean,
): boolean {
  if (!mm.pfn_online(pfn)) return false;
  if (mm.page_zone(pfn) !== zone) return false;
  if (pageblock_skip_persistent(mm, pfn)) return false;
  // If skip is already cleared do no further checking once the restart points have been set.
  if (check_source && check_target && !get_pageblock_skip(mm, pfn)) return true;
  // When clearing for the target scanner only, do not pick a non-movable block as a start.
  if (!check_source && check_target && get_pfnblock_migratetype(mm, pfn) !== MIGRATE_MOVABLE) return false;
  let block_pfn = Math.max(pageblock_start_pfn(pfn), zone.zone_start_pfn);
  if (mm.pfn_online(block_pfn)) pfn = block_pfn;
  block_pfn = Math.min(pageblock_end_pfn(pfn) - 1, zone.zone_end_pfn - 1);
  if (!mm.pfn_online(block_pfn)) return false;
  const flags = mm.frames.flags;
  const first = pfn;
  for (let p = pfn; p <= block_pfn; p += 1 << PAGE_ALLOC_COSTLY_ORDER) {
    if ((check_source && flags[p] & PG_lru) || (check_target && flags[p] & PG_buddy)) {
      set_pageblock_skip(mm, first, false);
      return true;
    }
  }
  return false;
}

/**
 * kernel: mm/compaction.c __reset_isolation_suitable()
 * After a full direct compaction (compact_blockskip_flush), walk the zone from both ends at once
 * clearing skip bits of blocks that can be sources (from the bottom) or targets (from the top),
 * and restart both scanners at the first such blocks.
 */
export function __reset_isolation_suitable(mm: MM, zone: Zone): void {
  let migrate_pfn = zone.zone_start_pfn;
  let free_pfn = zone.zone_end_pfn - 1;
  let reset_migrate = free_pfn;
  let reset_free = migrate_pfn;
  let source_set = false;
  let free_set = false;
  if (!zone.compact_blockskip_flush) return;
  zone.compact_blockskip_flush = false;
  for (; migrate_pfn < free_pfn; migrate_pfn += pageblock_nr_pages, free_pfn -= pageblock_nr_pages) {
    if (__reset_isolation_pfn(mm, zone, migrate_pfn, true, source_set) && migrate_pfn < reset_migrate) {
      source_set = true;
      reset_migrate = migrate_pfn;
      zone.compact_init_migrate_pfn = reset_migrate;
      zone.compact_cached_migrate_pfn[0] = reset_migrate;
      zone.compact_cached_migrate_pfn[1] = reset_migrate;
    }
    if (__reset_isolation_pfn(mm, zone, free_pfn, free_set, true) && free_pfn > reset_free) {
      free_set = true;
      reset_free = free_pfn;
      zone.compact_init_free_pfn = reset_free;
      zone.compact_cached_free_pfn = reset_free;
    }
  }
  // Leave no distance if no suitable block was reset.
  if (reset_migrate >= reset_free) {
    zone.compact_cached_migrate_pfn[0] = migrate_pfn;
    zone.compact_cached_migrate_pfn[1] = migrate_pfn;
    zone.compact_cached_free_pfn = free_pfn;
  }
}

/**
 * kernel: mm/compaction.c reset_isolation_suitable()
 * Every populated zone of the node (kswapd calls this before it sleeps).
 */
export function reset_isolation_suitable(mm: MM, pgdat: PglistData): void {
  for (const zone of pgdat.node_zones) {
    if (!zone.populated_zone()) continue;
    __reset_isolation_suitable(mm, zone);
  }
}

/**
 * kernel: mm/compaction.c test_and_set_skip()
 * Set the pageblock's skip bit if it was clear; whether it was already set.
 */
function test_and_set_skip(cc: CompactControl, pfn: number): boolean {
  if (cc.ignore_skip_hint) return false;
  const skip = get_pageblock_skip(cc.mm, pfn);
  if (!skip && !cc.no_set_skip_hint) set_pageblock_skip(cc.mm, pfn, true);
  return skip;
}

/** kernel: mm/compaction.c update_cached_migrate(): where async and sync compaction restart. */
function update_cached_migrate(cc: CompactControl, pfn: number): void {
  const zone = cc.zone;
  if (cc.no_set_skip_hint) return;
  pfn = pageblock_end_pfn(pfn);
  if (pfn > zone.compact_cached_migrate_pfn[0]) zone.compact_cached_migrate_pfn[0] = pfn;
  if (cc.mode !== MIGRATE_ASYNC && pfn > zone.compact_cached_migrate_pfn[1])
    zone.compact_cached_migrate_pfn[1] = pfn;
}

/**
 * kernel: mm/compaction.c update_pageblock_skip()
 * The free scanner isolated nothing from the block at `page`: skip it from now on, and restart
 * the free scanner below `pfn`.
 */
function update_pageblock_skip(cc: CompactControl, page: number, pfn: number): void {
  const zone = cc.zone;
  if (cc.no_set_skip_hint) return;
  set_pageblock_skip(cc.mm, page, true);
  if (pfn < zone.compact_cached_free_pfn) zone.compact_cached_free_pfn = pfn;
}

/**
 * kernel: mm/page_alloc.c __isolate_free_page()
 * Take the free block at `pfn` off its free list for compaction, if the zone stays above its min
 * watermark plus the block (ignoring the boost); a block of at least half a pageblock makes its
 * pageblocks MOVABLE (with their other free pages), unless they are CMA, highatomic or isolated.
 * Returns the pages taken, or 0. The block becomes an allocated block of its order. `zone` is
 * page_zone(pfn); the caller marks its CPU's counter differential (mod_zone_stat_diff()).
 */
export function __isolate_free_page(mm: MM, zone: Zone, pfn: number, order: number): number {
  const mt = get_pfnblock_migratetype(mm, pfn);
  if (mt !== MIGRATE_ISOLATE) {
    const watermark = zone._watermark[WMARK_MIN] + 2 ** order;
    if (!zone_watermark_ok(mm, zone, 0, watermark, 0, ALLOC_CMA)) return 0;
  }
  // del_page_from_free_list()
  __del_page_from_free_list(mm, pfn, zone, order, mt);
  account_freepages(zone, -(2 ** order), mt);
  if (order >= pageblock_order - 1) {
    const endpage = pfn + 2 ** order - 1;
    for (let page = pfn; page < endpage; page += pageblock_nr_pages) {
      const bmt = get_pfnblock_migratetype(mm, page);
      if (migratetype_is_mergeable(bmt)) move_freepages_block(mm, zone, page, bmt, MIGRATE_MOVABLE);
    }
  }
  mm.frames.flags[pfn] |= PGI_alloc;
  mm.frames.order[pfn] = order;
  mm.kernel_ns += mm.cost.isolate_page;
  return 2 ** order;
}

/**
 * kernel: mm/compaction.c isolate_freepages_block()
 * Isolate the free blocks of [cc.block_pfn, end_pfn) onto cc.freepages, looking at every
 * `stride`-th page, until as many free pages are isolated as there are pages to migrate (never
 * stopping early when `strict`, which instead fails on the first page that is not free).
 * Leaves cc.block_pfn where it stopped; returns the pages isolated (0 for a failed strict run).
 */
function isolate_freepages_block(
  cc: CompactControl,
  end_pfn: number,
  stride: number,
  strict: boolean,
): number {
  const mm = cc.mm;
  const flags = mm.frames.flags;
  const orders = mm.frames.order;
  let nr_scanned = 0;
  let total_isolated = 0;
  let blockpfn = cc.block_pfn;
  if (strict) stride = 1;
  for (; blockpfn < end_pfn; blockpfn += stride) {
    nr_scanned++;
    const fl = flags[blockpfn];
    // Compound pages (THP, hugetlbfs) are skipped at once.
    if (fl & (PG_head | PG_tail)) {
      const order = fl & PG_head ? orders[blockpfn] : 0;
      if (order <= MAX_PAGE_ORDER && blockpfn + (1 << order) <= end_pfn) {
        blockpfn += (1 << order) - 1;
        nr_scanned += (1 << order) - 1;
      }
      if (strict) break;
      continue;
    }
    if (!(fl & PG_buddy)) {
      if (strict) break;
      continue;
    }
    // A free page: it goes whole onto the list of its order, to be split as targets are taken.
    const order = orders[blockpfn];
    const isolated = __isolate_free_page(mm, cc.zone, blockpfn, order);
    if (!isolated) break;
    nr_scanned += isolated - 1;
    total_isolated += isolated;
    cc.nr_freepages += isolated;
    cc.freepages[order].add_tail(blockpfn);
    if (!strict && cc.nr_migratepages <= cc.nr_freepages) {
      blockpfn += isolated;
      break;
    }
    // Advance to the end of the split page.
    blockpfn += isolated - 1;
  }
  // Be careful not to go outside of the pageblock.
  if (blockpfn > end_pfn) blockpfn = end_pfn;
  cc.block_pfn = blockpfn;
  if (strict && blockpfn < end_pfn) total_isolated = 0;
  cc.total_free_scanned += nr_scanned;
  if (total_isolated) {
    mm.vm_events[COMPACTISOLATED] += total_isolated;
    mod_zone_stat_diff(cc.zone, cc.cpu);
  }
  return total_isolated;
}

/**
 * kernel: mm/compaction.c too_many_isolated()
 * More pages isolated from the node's LRU lists than half of what is on them (an eighth, for
 * callers that may enter the filesystem).
 */
function too_many_isolated(cc: CompactControl): boolean {
  const stat = cc.mm.nodes[cc.zone.nid].vm_stat;
  let inactive = stat[NR_INACTIVE_FILE] + stat[NR_INACTIVE_ANON];
  let active = stat[NR_ACTIVE_FILE] + stat[NR_ACTIVE_ANON];
  const isolated = stat[NR_ISOLATED_FILE] + stat[NR_ISOLATED_ANON];
  if (cc.gfp_mask & __GFP_FS) {
    inactive = Math.floor(inactive / 8);
    active = Math.floor(active / 8);
  }
  return isolated > Math.floor((inactive + active) / 2);
}

/**
 * kernel: mm/compaction.c skip_isolation_on_order()
 * A folio of the target order or larger is not worth migrating (unless compacting everything),
 * nor is one of pageblock order or larger.
 */
function skip_isolation_on_order(order: number, target_order: number): boolean {
  if (!is_via_compact_memory(target_order) && order >= target_order) return true;
  return order >= pageblock_order;
}

/** folio_mapping() != NULL: a page-cache page or an anonymous page in the swap cache. */
function folio_has_mapping(mm: MM, pfn: number): boolean {
  return (
    is_file_page(mm, pfn) || (mm.frames.flags[pfn] & (PG_anon | PG_swapcache)) === (PG_anon | PG_swapcache)
  );
}

/** Put back every page on cc.migratepages (putback_movable_pages(), the list from its head). */
function putback_movable_pages(cc: CompactControl): void {
  for (let i = cc.nr_migratelist - 1; i >= 0; i--) folio_putback_lru(cc.mm, cc.migratepages[i]);
  cc.nr_migratelist = 0;
}

/** list_add(&folio->lru, &cc->migratepages) */
function add_migratepage(cc: CompactControl, pfn: number): void {
  if (cc.nr_migratelist === cc.migratepages.length) {
    const next = new Int32Array(cc.migratepages.length * 2);
    next.set(cc.migratepages);
    cc.migratepages = next;
  }
  cc.migratepages[cc.nr_migratelist++] = pfn;
}

/**
 * kernel: mm/compaction.c isolate_migratepages_block()
 * Isolate the migratable pages of [low_pfn, end_pfn), one pageblock at most, onto
 * cc.migratepages; stop after COMPACT_CLUSTER_MAX of them unless the block is being finished.
 * Only LRU pages are taken (the model has no non-LRU movable pages), and not those that cannot
 * move now: anonymous pages with pins, unevictable (mlocked) pages unless `mode` has
 * ISOLATE_UNEVICTABLE, pages under writeback and locked dirty ones in the async modes,
 * page-cache pages for a caller without __GFP_FS, compound pages of the target order or more.
 * Free blocks are stepped over whole. Async direct compaction gives up on an order-aligned block
 * at the first page it cannot take (the block could not become free anyway). A block that yields
 * nothing gets its skip bit. Leaves cc.migrate_pfn at the next pfn to scan; returns 0 or -EAGAIN.
 */
function isolate_migratepages_block(
  cc: CompactControl,
  low_pfn: number,
  end_pfn: number,
  mode: number,
): number {
  const mm = cc.mm;
  const f = mm.frames;
  const flags = f.flags;
  const orders = f.order;
  const zone_start_pfn = cc.zone.zone_start_pfn;
  let nr_scanned = 0;
  let nr_isolated = 0;
  let valid_page = -1;
  let skip_on_failure = false;
  let next_skip_pfn = 0;
  let skip_updated = false;
  let ret = 0;

  cc.migrate_pfn = low_pfn;
  // Too many pages isolated from the LRU: the kernel throttles a sync compactor until parallel
  // isolators finish, but nothing else runs in the model, so waiting would never end.
  if (too_many_isolated(cc)) return EAGAIN;

  if (cc.direct_compaction && cc.mode === MIGRATE_ASYNC) {
    skip_on_failure = true;
    next_skip_pfn = block_end_pfn(low_pfn, cc.order);
  }

  for (; low_pfn < end_pfn; low_pfn++) {
    if (skip_on_failure && low_pfn >= next_skip_pfn) {
      // Everything in the previous order-aligned block was isolated: migrate it now.
      if (nr_isolated) break;
      // Isolation failed in the previous block; the new boundary is the end of this one.
      next_skip_pfn = block_end_pfn(low_pfn, cc.order);
    }
    nr_scanned++;
    // The skip bit is checked once, at the first pfn of the block (the caller isolates 32 pages
    // at a time, so a second call must not conclude the block should be skipped).
    if (valid_page < 0 && (pageblock_aligned(low_pfn) || low_pfn === zone_start_pfn)) {
      if (!isolation_suitable(cc, low_pfn)) {
        low_pfn = end_pfn;
        break;
      }
      valid_page = low_pfn;
    }
    const fl = flags[low_pfn];
    let isolate_fail = false;
    if (fl & PG_hugetlb) {
      // hugetlbfs pages are skipped unless for alloc_contig_range (THPs are handled below).
      const order = compound_order(mm, low_pfn);
      if (!cc.alloc_contig) {
        if (order <= MAX_PAGE_ORDER) {
          low_pfn += (1 << order) - 1;
          nr_scanned += (1 << order) - 1;
        }
        isolate_fail = true;
      } else {
        const head = compound_head(mm, low_pfn);
        ret = isolate_or_dissolve_huge_folio(mm, head, cc.cpu);
        if (ret < 0) {
          // Do not report -EBUSY down the chain; -ENOMEM aborts at once.
          if (ret === EBUSY) ret = 0;
          low_pfn += 2 ** order - 1;
          nr_scanned += 2 ** order - 1;
          isolate_fail = true;
        } else if (flags[head] & PG_hugetlb) {
          // Isolated: on cc.migratepages (isolate_success_no_list).
          const nr = 2 ** orders[head];
          add_migratepage(cc, head);
          low_pfn += nr - (low_pfn - head) - 1;
          cc.nr_migratepages += nr;
          nr_isolated += nr;
          nr_scanned += nr - 1;
          if (cc.nr_migratepages >= COMPACT_CLUSTER_MAX && !cc.finish_pageblock && !cc.contended) {
            ++low_pfn;
            break;
          }
          continue;
        }
        // Dissolved: its pages are free buddy pages now, isolated, handled as PageBuddy below.
      }
    }
    if (isolate_fail) {
      // (the hugetlb page above)
    } else if (flags[low_pfn] & PG_buddy) {
      // Skip a free block whole.
      const freepage_order = orders[low_pfn];
      if (freepage_order > 0 && freepage_order <= MAX_PAGE_ORDER) {
        low_pfn += (1 << freepage_order) - 1;
        nr_scanned += (1 << freepage_order) - 1;
      }
      continue;
    } else {
      if (fl & (PG_head | PG_tail) && !cc.alloc_contig) {
        const order = compound_order(mm, low_pfn);
        if (skip_isolation_on_order(order, cc.order)) {
          if (order <= MAX_PAGE_ORDER) {
            low_pfn += (1 << order) - 1;
            nr_scanned += (1 << order) - 1;
          }
          isolate_fail = true;
        }
      }
      // Only LRU pages (non-LRU movable pages, zsmalloc and balloons, are not modelled), and no
      // tail pages (folio_get_nontail_page()).
      if (!isolate_fail && (!(fl & PG_lru) || fl & PG_tail)) isolate_fail = true;
      if (!isolate_fail) {
        const mapping = folio_has_mapping(mm, low_pfn);
        const is_unevictable = (fl & PG_unevictable) !== 0;
        if (
          // An anonymous page with more references than mappings (a pin) would fail to migrate.
          (!mapping && folio_maybe_dma_pinned(mm, low_pfn)) ||
          // Only anonymous pages in GFP_NOFS context: the others may need fs locks.
          (!(cc.gfp_mask & __GFP_FS) && mapping) ||
          // Compaction may skip unevictable pages (vm.compact_unevictable_allowed = 0).
          (!(mode & ISOLATE_UNEVICTABLE) && is_unevictable) ||
          // Async modes only take pages they can migrate without blocking.
          (mode & ISOLATE_ASYNC_MIGRATE && fl & PG_writeback) ||
          // A dirty page (async) or an unevictable page-cache page needs the page lock to check
          // its mapping (every mapping of the model can migrate dirty pages).
          (((mode & ISOLATE_ASYNC_MIGRATE && fl & PG_dirty) || (mapping && is_unevictable)) && fl & PG_locked)
        ) {
          isolate_fail = true;
        }
      }
      if (!isolate_fail) {
        // Under the LRU lock: the skip bit, once per call ("exclusive access"). Another compactor
        // having set it aborts the block unless this is a rescan to finish it.
        if (!skip_updated && valid_page >= 0) {
          skip_updated = true;
          if (test_and_set_skip(cc, valid_page) && !cc.finish_pageblock) {
            low_pfn = end_pfn;
            break;
          }
        }
        // Successfully isolated: off its LRU list, counted in nr_isolated_anon/file.
        folio_isolate_lru(mm, low_pfn);
        add_migratepage(cc, low_pfn);
        // isolate_success: a THP counts its pages and is stepped over whole.
        const nr = fl & PG_head ? 1 << orders[low_pfn] : 1;
        cc.nr_migratepages += nr;
        nr_isolated += nr;
        nr_scanned += nr - 1;
        low_pfn += nr - 1;
        // Avoid isolating too much unless the block is being fully scanned.
        if (cc.nr_migratepages >= COMPACT_CLUSTER_MAX && !cc.finish_pageblock && !cc.contended) {
          ++low_pfn;
          break;
        }
        continue;
      }
    }
    // isolate_fail:
    if (!skip_on_failure && ret !== ENOMEM) continue;
    // Some pages are isolated but the order-aligned block cannot become free: release them.
    if (nr_isolated) {
      putback_movable_pages(cc);
      cc.nr_migratepages = 0;
      nr_isolated = 0;
    }
    if (low_pfn < next_skip_pfn) {
      low_pfn = next_skip_pfn - 1;
      next_skip_pfn += 1 << cc.order;
    }
    if (ret === ENOMEM) break;
  }
  // The PageBuddy() step could have taken us past the range.
  if (low_pfn > end_pfn) low_pfn = end_pfn;
  // isolate_abort: once the block is scanned, remember where to restart; mark it skipped if
  // nothing was isolated or it was rescanned (the pages either moved or failed for a reason
  // likely to persist).
  if (low_pfn === end_pfn && (!nr_isolated || cc.finish_pageblock)) {
    if (!cc.no_set_skip_hint && valid_page >= 0 && !skip_updated) set_pageblock_skip(mm, valid_page, true);
    update_cached_migrate(cc, low_pfn);
  }
  cc.total_migrate_scanned += nr_scanned;
  mm.vm_events[COMPACTISOLATED] += nr_isolated;
  mm.kernel_ns += nr_isolated * mm.cost.isolate_page;
  cc.migrate_pfn = low_pfn;
  return ret;
}

/**
 * kernel: mm/compaction.c suitable_migration_source()
 * Async direct compaction only empties pageblocks of its own type (movable and CMA count as one).
 */
function suitable_migration_source(cc: CompactControl, pfn: number): boolean {
  if (pageblock_skip_persistent(cc.mm, pfn)) return false;
  if (cc.mode !== MIGRATE_ASYNC || !cc.direct_compaction) return true;
  const block_mt = get_pfnblock_migratetype(cc.mm, pfn);
  if (cc.migratetype === MIGRATE_MOVABLE) return is_migrate_movable(block_mt);
  return block_mt === cc.migratetype;
}

/**
 * kernel: mm/compaction.c suitable_migration_target()
 * Free pages are taken as targets only from MOVABLE and CMA pageblocks (any block at the lowest
 * priority, ignore_block_suitable), and not from a block whose first page heads a free block of
 * the requested order or more (pageblock order for a full compaction): that one is already what
 * compaction is trying to make.
 */
export function suitable_migration_target(cc: CompactControl, pfn: number): boolean {
  const mm = cc.mm;
  if (mm.frames.flags[pfn] & PG_buddy) {
    const order = cc.order > 0 ? cc.order : pageblock_order;
    if (mm.frames.order[pfn] >= order) return false;
  }
  if (cc.ignore_block_suitable) return true;
  return is_migrate_movable(get_pfnblock_migratetype(mm, pfn));
}

/** kernel: mm/compaction.c freelist_scan_limit(): (32 >> fast_search_fail) + 1 free-list entries. */
function freelist_scan_limit(cc: CompactControl): number {
  const shift = Math.min(63, cc.fast_search_fail);
  return (shift >= 6 ? 0 : COMPACT_CLUSTER_MAX >> shift) + 1;
}

/** kernel: mm/compaction.c compact_scanners_met(): the free scanner reached the migrate scanner's block. */
function compact_scanners_met(cc: CompactControl): boolean {
  return Math.floor(cc.free_pfn / pageblock_nr_pages) <= Math.floor(cc.migrate_pfn / pageblock_nr_pages);
}

/**
 * kernel: mm/compaction.c move_freelist_head()
 * Rotate the free list so that `pfn` comes first (the entries before it move to the tail): the
 * next reverse search starts with the entries this one did not reach.
 */
function move_freelist_head(mm: MM, list: number, pfn: number): void {
  const f = mm.frames;
  const head = f.nr_frames + list;
  if (f.next[head] === pfn) return;
  // Move the sentinel to just before `pfn`.
  const next = f.next;
  const prev = f.prev;
  next[prev[head]] = next[head];
  prev[next[head]] = prev[head];
  const p = prev[pfn];
  next[p] = head;
  prev[head] = p;
  next[head] = pfn;
  prev[pfn] = head;
}

/**
 * kernel: mm/compaction.c move_freelist_tail()
 * Rotate the free list so that `pfn` comes last (it and the entries before it move to the tail).
 */
function move_freelist_tail(mm: MM, list: number, pfn: number): void {
  const f = mm.frames;
  const head = f.nr_frames + list;
  if (f.prev[head] === pfn) return;
  // Move the sentinel to just after `pfn`.
  const next = f.next;
  const prev = f.prev;
  next[prev[head]] = next[head];
  prev[next[head]] = prev[head];
  const n = next[pfn];
  prev[n] = head;
  next[head] = n;
  prev[head] = pfn;
  next[pfn] = head;
}

/**
 * kernel: mm/compaction.c fast_isolate_around()
 * After the fast search found a target, take the free pages of its whole pageblock (not in async
 * direct compaction), and skip the block from now on if the scan reached its end.
 */
function fast_isolate_around(cc: CompactControl, pfn: number): void {
  if (cc.nr_freepages >= cc.nr_migratepages) return;
  if (cc.direct_compaction && cc.mode === MIGRATE_ASYNC) return;
  const zone = cc.zone;
  const start_pfn = Math.max(pageblock_start_pfn(pfn), zone.zone_start_pfn);
  const end_pfn = Math.min(pageblock_end_pfn(pfn), zone.zone_end_pfn);
  if (!pageblock_pfn_to_page(cc.mm, start_pfn, end_pfn, zone)) return;
  cc.block_pfn = start_pfn;
  isolate_freepages_block(cc, end_pfn, 1, false);
  if (cc.block_pfn === end_pfn && !cc.no_set_skip_hint) set_pageblock_skip(cc.mm, start_pfn, true);
}

/** kernel: mm/compaction.c next_search_order(): orders round-robin below cc.order; -1 once round. */
function next_search_order(cc: CompactControl, order: number): number {
  order--;
  if (order < 0) order = cc.order - 1;
  if (order === cc.search_order) {
    cc.search_order--;
    if (cc.search_order < 0) cc.search_order = cc.order - 1;
    return -1;
  }
  return order;
}

/**
 * kernel: mm/compaction.c fast_isolate_freepages()
 * Before scanning, search the MOVABLE free lists below cc.order (from their tails, a bounded
 * number of entries) for a free block in the top quarter of the space between the scanners
 * (else the top half); isolate it and the free pages around it, and move the free scanner there
 * at the start of a run. Not for full compactions.
 */
function fast_isolate_freepages(cc: CompactControl): void {
  const mm = cc.mm;
  const f = mm.frames;
  const zone = cc.zone;
  let limit = Math.max(1, freelist_scan_limit(cc) >> 1);
  let nr_scanned = 0;
  let highest = 0;
  let page = -1;
  let scan_start = false;
  if (cc.order <= 0) return;
  // At the start of a scan search deeper, and fall back to the highest pfn found.
  if (cc.free_pfn >= zone.compact_init_free_pfn) {
    limit = pageblock_nr_pages >> 1;
    scan_start = true;
  }
  // Preferred: the top quarter of the scan space; acceptable: the top half.
  const distance = cc.free_pfn - cc.migrate_pfn;
  let low_pfn = pageblock_start_pfn(cc.free_pfn - Math.floor(distance / 4));
  const min_pfn = pageblock_start_pfn(cc.free_pfn - Math.floor(distance / 2));
  if (min_pfn > low_pfn) low_pfn = min_pfn;
  // Start at the last successful order, or the next one after a failure.
  cc.search_order = Math.min(cc.order - 1, cc.search_order);
  for (let order = cc.search_order; page < 0 && order >= 0; order = next_search_order(cc, order)) {
    if (!zone.nr_free[order]) continue;
    const list = zone.free_list(order, MIGRATE_MOVABLE);
    const head = f.nr_frames + list;
    let order_scanned = 0;
    let high_pfn = 0;
    let freepage = -1;
    for (let p = f.prev[head]; p !== head; p = f.prev[p]) {
      order_scanned++;
      nr_scanned++;
      freepage = p;
      if (p >= highest) highest = Math.max(pageblock_start_pfn(p), zone.zone_start_pfn);
      if (p >= low_pfn) {
        cc.fast_search_fail = 0;
        cc.search_order = order;
        page = p;
        break;
      }
      if (p >= min_pfn && p > high_pfn) {
        high_pfn = p;
        // Shorten the scan if a candidate is found.
        limit >>= 1;
      }
      if (order_scanned >= limit) break;
      // The loop ran off the end: list_for_each_entry_reverse() leaves no entry to rotate to.
      if (f.prev[p] === head) freepage = -1;
    }
    // Use the best candidate if no preferred one was found.
    if (page < 0 && high_pfn) {
      page = high_pfn;
      freepage = page;
    }
    // Reorder so that a future search skips recent pages.
    if (freepage >= 0) move_freelist_head(mm, list, freepage);
    if (page >= 0) {
      const nr_isolated = __isolate_free_page(mm, zone, page, order);
      if (nr_isolated) {
        mod_zone_stat_diff(zone, cc.cpu);
        nr_scanned += nr_isolated - 1;
        cc.nr_freepages += nr_isolated;
        cc.freepages[order].add_tail(page);
        mm.vm_events[COMPACTISOLATED] += nr_isolated;
      } else {
        // Isolation failed (watermark): abort the search.
        order = cc.search_order + 1;
        page = -1;
      }
    }
    // Enough free pages isolated.
    if (cc.nr_freepages >= cc.nr_migratepages) break;
    // A smaller scan on the next order, so the total stays near freelist_scan_limit().
    if (order_scanned >= limit) limit = Math.max(1, limit >> 1);
  }
  if (page < 0) {
    cc.fast_search_fail = (cc.fast_search_fail + 1) & 0xffff;
    if (scan_start) {
      // Use the highest pfn found above the minimum; if none, direct compaction is pessimistic
      // and starts at the minimum.
      if (highest >= min_pfn) {
        page = highest;
        cc.free_pfn = highest;
      } else if (cc.direct_compaction && min_pfn < f.nr_frames && mm.pfn_online(min_pfn)) {
        page = pageblock_pfn_to_page(
          mm,
          min_pfn,
          Math.min(pageblock_end_pfn(min_pfn), zone.zone_end_pfn),
          zone,
        )
          ? min_pfn
          : -1;
        if (page >= 0 && !suitable_migration_target(cc, page)) page = -1;
        cc.free_pfn = min_pfn;
      }
    }
  }
  if (highest && highest >= zone.compact_cached_free_pfn) {
    highest -= pageblock_nr_pages;
    zone.compact_cached_free_pfn = highest;
  }
  cc.total_free_scanned += nr_scanned;
  if (page < 0) return;
  fast_isolate_around(cc, page);
}

/**
 * kernel: mm/compaction.c isolate_freepages()
 * Find free pages for the isolated pages to move to: a quick free-list search first; otherwise
 * walk pageblocks down from cc.free_pfn to the migrate scanner's block, in MOVABLE (or CMA)
 * blocks not marked skipped, isolating until there are enough. Async compaction looks at every
 * 32nd page only; in every mode the stride doubles (up to 32) after each block that gave
 * nothing and drops back to 1 after one that gave some.
 */
function isolate_freepages(cc: CompactControl): void {
  const mm = cc.mm;
  const zone = cc.zone;
  fast_isolate_freepages(cc);
  if (cc.nr_freepages) return;
  // Start where the last isolation stopped, or at the zone's end the first time.
  let isolate_start_pfn = cc.free_pfn;
  let block_start_pfn = pageblock_start_pfn(isolate_start_pfn);
  let block_end_pfn = Math.min(block_start_pfn + pageblock_nr_pages, zone.zone_end_pfn);
  // The lowest pfn the scanner may reach: the end of the migrate scanner's block.
  const low_pfn = pageblock_end_pfn(cc.migrate_pfn);
  let stride = cc.mode === MIGRATE_ASYNC ? COMPACT_CLUSTER_MAX : 1;
  for (
    ;
    block_start_pfn >= low_pfn;
    block_end_pfn = block_start_pfn,
      block_start_pfn -= pageblock_nr_pages,
      isolate_start_pfn = block_start_pfn
  ) {
    if (!pageblock_pfn_to_page(mm, block_start_pfn, block_end_pfn, zone)) continue;
    // Is the block suitable for migration to? Did isolation fail here recently?
    if (!suitable_migration_target(cc, block_start_pfn)) continue;
    if (!isolation_suitable(cc, block_start_pfn)) continue;
    cc.block_pfn = isolate_start_pfn;
    const nr_isolated = isolate_freepages_block(cc, block_end_pfn, stride, false);
    isolate_start_pfn = cc.block_pfn;
    // Update the skip hint if the full pageblock was scanned.
    if (isolate_start_pfn === block_end_pfn)
      update_pageblock_skip(cc, block_start_pfn, block_start_pfn - pageblock_nr_pages);
    if (cc.nr_freepages >= cc.nr_migratepages) {
      // Restart at the previous pageblock if this one is done.
      if (isolate_start_pfn >= block_end_pfn) isolate_start_pfn = block_start_pfn - pageblock_nr_pages;
      break;
    } else if (isolate_start_pfn < block_end_pfn) {
      // Isolation failed early (watermark): do not continue needlessly.
      break;
    }
    // Adjust the stride depending on isolation.
    if (nr_isolated) {
      stride = 1;
      continue;
    }
    stride = Math.min(COMPACT_CLUSTER_MAX, stride << 1);
  }
  // Where the free scanner restarts: where the last block stopped, or below the migrate scanner.
  cc.free_pfn = isolate_start_pfn;
}

/**
 * kernel: mm/compaction.c compaction_alloc()
 * migrate_pages()'s target allocator: the first isolated free block of the source's order or
 * larger, split down (the upper halves go back on the lists); when the lists are empty, one more
 * round of isolate_freepages(). -1 if that finds nothing either.
 */
function compaction_alloc(cc: CompactControl, src: number): number {
  const f = cc.mm.frames;
  const order = compound_order(cc.mm, src); // folio_order(src)
  let has_isolated_pages = false;
  for (;;) {
    let start_order = order;
    while (start_order < NR_PAGE_ORDERS && cc.freepages[start_order].count === 0) start_order++;
    if (start_order === NR_PAGE_ORDERS) {
      if (has_isolated_pages) return -1;
      isolate_freepages(cc);
      has_isolated_pages = true;
      continue;
    }
    const freepage = cc.freepages[start_order].take_head();
    let size = 1 << start_order;
    while (start_order > order) {
      start_order--;
      size >>= 1;
      const half = freepage + size;
      f.flags[half] |= PGI_alloc;
      f.order[half] = start_order;
      cc.freepages[start_order].add_head(half);
    }
    // post_alloc_hook(): an allocated page of the source's order.
    f.order[freepage] = order;
    cc.nr_freepages -= 1 << order;
    cc.nr_migratepages -= 1 << order;
    return freepage;
  }
}

/** kernel: mm/compaction.c compaction_free(): an unused target goes back on the list. */
function compaction_free(cc: CompactControl, dst: number): void {
  const order = cc.mm.frames.order[dst];
  cc.freepages[order].add_head(dst);
  cc.nr_freepages += 1 << order;
  cc.nr_migratepages += 1 << order;
}

/**
 * kernel: mm/compaction.c release_free_list()
 * Free every block still on cc.freepages (order by order, each list from its head); returns the
 * highest pfn freed, 0 if none.
 */
function release_free_list(cc: CompactControl): number {
  let high_pfn = 0;
  for (let order = 0; order < NR_PAGE_ORDERS; order++) {
    const list = cc.freepages[order];
    while (list.count) {
      const pfn = list.take_head();
      __free_pages(cc.mm, pfn, order, cc.cpu);
      if (pfn > high_pfn) high_pfn = pfn;
    }
  }
  return high_pfn;
}

/** kernel: mm/compaction.c update_fast_start_pfn() */
function update_fast_start_pfn(cc: CompactControl, pfn: number): void {
  if (cc.fast_start_pfn === ULONG_MAX) return;
  if (!cc.fast_start_pfn) cc.fast_start_pfn = pfn;
  cc.fast_start_pfn = Math.min(cc.fast_start_pfn, pfn);
}

/** kernel: mm/compaction.c reinit_migrate_pfn() */
function reinit_migrate_pfn(cc: CompactControl): number {
  if (!cc.fast_start_pfn || cc.fast_start_pfn === ULONG_MAX) return cc.migrate_pfn;
  cc.migrate_pfn = cc.fast_start_pfn;
  cc.fast_start_pfn = ULONG_MAX;
  return cc.migrate_pfn;
}

/**
 * kernel: mm/compaction.c fast_find_migrateblock()
 * For costly movable requests (and kcompactd), at the start of a pageblock: search the MOVABLE
 * free lists from order cc.order - 1 down to 3 for a free block in the first half (first eighth,
 * once the scan is under way) of the space between the scanners, in a block not marked skipped,
 * and start migrating there, since that block is already partly free. Otherwise continue the
 * linear scan (from the lowest such block seen, once the fast search starts failing).
 */
function fast_find_migrateblock(cc: CompactControl): number {
  const mm = cc.mm;
  const f = mm.frames;
  const zone = cc.zone;
  const limit = freelist_scan_limit(cc);
  let nr_scanned = 0;
  let pfn = cc.migrate_pfn;
  let found_block = false;
  if (cc.ignore_skip_hint) return pfn;
  if (cc.finish_pageblock) return pfn;
  // Not at a zone or pageblock start: a continuation of a scan restarted after 32 pages.
  if (pfn !== zone.zone_start_pfn && pfn !== pageblock_start_pfn(pfn)) return pfn;
  // Small orders just scan linearly.
  if (cc.order <= PAGE_ALLOC_COSTLY_ORDER) return pfn;
  // Only kcompactd and direct requests for movable pages quickly clear a MOVABLE block.
  if (cc.direct_compaction && cc.migratetype !== MIGRATE_MOVABLE) return pfn;
  let distance = Math.floor((cc.free_pfn - cc.migrate_pfn) / 2);
  if (cc.migrate_pfn !== zone.zone_start_pfn) distance = Math.floor(distance / 4);
  const high_pfn = pageblock_start_pfn(cc.migrate_pfn + distance);
  for (
    let order = cc.order - 1;
    order >= PAGE_ALLOC_COSTLY_ORDER && !found_block && nr_scanned < limit;
    order--
  ) {
    if (!zone.nr_free[order]) continue;
    const list = zone.free_list(order, MIGRATE_MOVABLE);
    const head = f.nr_frames + list;
    for (let freepage = f.next[head]; freepage !== head; freepage = f.next[freepage]) {
      if (nr_scanned++ >= limit) {
        move_freelist_tail(mm, list, freepage);
        break;
      }
      if (freepage < high_pfn) {
        // Avoid blocks skipped recently.
        if (get_pageblock_skip(mm, freepage)) continue;
        // Reorder so a future search skips recent pages.
        move_freelist_tail(mm, list, freepage);
        update_fast_start_pfn(cc, freepage);
        pfn = pageblock_start_pfn(freepage);
        if (pfn < zone.zone_start_pfn) pfn = zone.zone_start_pfn;
        cc.fast_search_fail = 0;
        found_block = true;
        break;
      }
    }
  }
  cc.total_migrate_scanned += nr_scanned;
  // If the fast search failed, scan linearly from a block seen to hold free pages.
  if (!found_block) {
    cc.fast_search_fail = (cc.fast_search_fail + 1) & 0xffff;
    pfn = reinit_migrate_pfn(cc);
  }
  return pfn;
}

/**
 * kernel: mm/compaction.c isolate_migratepages()
 * From where the migrate scanner stopped (or the block fast_find_migrateblock() picked), find the
 * first suitable pageblock below the free scanner and isolate pages from it.
 */
function isolate_migratepages(cc: CompactControl): number {
  const mm = cc.mm;
  const zone = cc.zone;
  const isolate_mode =
    (mm.compaction.compact_unevictable_allowed ? ISOLATE_UNEVICTABLE : 0) |
    (cc.mode !== MIGRATE_SYNC ? ISOLATE_ASYNC_MIGRATE : 0);
  let low_pfn = fast_find_migrateblock(cc);
  let block_start_pfn = pageblock_start_pfn(low_pfn);
  if (block_start_pfn < zone.zone_start_pfn) block_start_pfn = zone.zone_start_pfn;
  // fast_find_migrateblock() already made sure the block is not marked skipped.
  let fast_find_block = low_pfn !== cc.migrate_pfn && !cc.fast_search_fail;
  let block_end_pfn = pageblock_end_pfn(low_pfn);
  // Whole pageblocks until the first suitable one; never past the free scanner.
  for (
    ;
    block_end_pfn <= cc.free_pfn;
    fast_find_block = false,
      cc.migrate_pfn = low_pfn = block_end_pfn,
      block_start_pfn = block_end_pfn,
      block_end_pfn += pageblock_nr_pages
  ) {
    if (!pageblock_pfn_to_page(mm, block_start_pfn, block_end_pfn, zone)) continue;
    // Check the skip bit once per block (a block is visited 32 pages at a time).
    if (
      (pageblock_aligned(low_pfn) || low_pfn === zone.zone_start_pfn) &&
      !fast_find_block &&
      !isolation_suitable(cc, block_start_pfn)
    )
      continue;
    // Async direct compaction only scans blocks of its own type without huge pages.
    if (!suitable_migration_source(cc, block_start_pfn)) {
      update_cached_migrate(cc, block_end_pfn);
      continue;
    }
    if (isolate_migratepages_block(cc, low_pfn, block_end_pfn, isolate_mode)) return ISOLATE_ABORT;
    // Either something was isolated, or compact_zone() decides whether to go on.
    break;
  }
  return cc.nr_migratepages ? ISOLATE_SUCCESS : ISOLATE_NONE;
}

/**
 * kernel: mm/compaction.c isolate_freepages_range()
 * For alloc_contig_range(): take every free block of [start_pfn, end_pfn) off the free lists
 * onto cc.freepages (strict isolate_freepages_block(), pageblock by pageblock). A page that is not
 * free, an invalid pfn or a zone boundary undoes it all (the blocks are freed again) and returns
 * 0. Otherwise returns one past the last pfn isolated: beyond end_pfn if end_pfn fell inside a
 * free block. Blocks of the ISOLATE lists skip the watermark check.
 */
export function isolate_freepages_range(cc: CompactControl, start_pfn: number, end_pfn: number): number {
  const mm = cc.mm;
  const zone = cc.zone;
  let isolated = 0;
  for (let order = 0; order < NR_PAGE_ORDERS; order++) {
    cc.freepages[order].head = 0;
    cc.freepages[order].count = 0;
  }
  let pfn = start_pfn;
  let block_start_pfn = pageblock_start_pfn(pfn);
  if (block_start_pfn < zone.zone_start_pfn) block_start_pfn = zone.zone_start_pfn;
  let block_end_pfn = pageblock_end_pfn(pfn);
  for (
    ;
    pfn < end_pfn;
    pfn += isolated, block_start_pfn = block_end_pfn, block_end_pfn += pageblock_nr_pages
  ) {
    // pfn may pass block_end_pfn when a free page was larger than a pageblock.
    if (pfn >= block_end_pfn) {
      block_start_pfn = pageblock_start_pfn(pfn);
      block_end_pfn = pageblock_end_pfn(pfn);
    }
    block_end_pfn = Math.min(block_end_pfn, end_pfn);
    if (!pageblock_pfn_to_page(mm, block_start_pfn, block_end_pfn, zone)) break;
    cc.block_pfn = pfn;
    isolated = isolate_freepages_block(cc, block_end_pfn, 0, true);
    // Strict mode: 0 if the block has a hole or a page that is not free.
    if (!isolated) break;
  }
  if (pfn < end_pfn) {
    // Loop terminated early: clean up.
    release_free_list(cc);
    return 0;
  }
  return pfn;
}

/**
 * kernel: mm/compaction.c isolate_migratepages_range()
 * For alloc_contig_range(): isolate the movable pages of [start_pfn, end_pfn) block by block
 * (ISOLATE_UNEVICTABLE: mlocked pages too), stopping once COMPACT_CLUSTER_MAX are isolated.
 * Invalid pageblocks are passed over. cc.migrate_pfn is left at the next pfn to scan. Returns 0
 * or -EAGAIN.
 */
export function isolate_migratepages_range(cc: CompactControl, start_pfn: number, end_pfn: number): number {
  let ret = 0;
  let pfn = start_pfn;
  let block_start_pfn = pageblock_start_pfn(pfn);
  if (block_start_pfn < cc.zone.zone_start_pfn) block_start_pfn = cc.zone.zone_start_pfn;
  let block_end_pfn = pageblock_end_pfn(pfn);
  // Scan block by block; the first and last blocks may be incomplete.
  for (
    ;
    pfn < end_pfn;
    pfn = block_end_pfn, block_start_pfn = block_end_pfn, block_end_pfn += pageblock_nr_pages
  ) {
    block_end_pfn = Math.min(block_end_pfn, end_pfn);
    if (!pageblock_pfn_to_page(cc.mm, block_start_pfn, block_end_pfn, cc.zone)) continue;
    ret = isolate_migratepages_block(cc, pfn, block_end_pfn, ISOLATE_UNEVICTABLE);
    if (ret) break;
    if (cc.nr_migratepages >= COMPACT_CLUSTER_MAX) break;
  }
  return ret;
}

/**
 * kernel: mm/compaction.c kswapd_is_running(): the node's kswapd is TASK_RUNNING, reclaiming or
 * woken to (a run queued on the clock; kswapd napping or asleep is not running).
 */
function kswapd_is_running(mm: MM, pgdat: PglistData): boolean {
  return pgdat.kswapd_running || mm.kswapd[pgdat.node_id].queued;
}

/**
 * kernel: mm/compaction.c __compact_finished()
 * Done when the scanners meet (COMPLETE for a whole-zone run, else PARTIAL_SKIPPED; the next run
 * starts afresh). A full compaction goes on to the end. Otherwise, at a pageblock boundary only,
 * success once a free block of the requested order or larger is on the requested type's list
 * (or CMA's, for movable requests), or on a list the allocation could claim from.
 */
function __compact_finished(cc: CompactControl): number {
  const mm = cc.mm;
  const zone = cc.zone;
  const migratetype = cc.migratetype;
  if (compact_scanners_met(cc)) {
    reset_cached_positions(zone);
    // The skip bits are due for a reset (by kswapd when it sleeps); kcompactd does not ask for it.
    if (cc.direct_compaction) zone.compact_blockskip_flush = true;
    return cc.whole_zone ? COMPACT_COMPLETE : COMPACT_PARTIAL_SKIPPED;
  }
  if (cc.proactive_compaction) {
    if (kswapd_is_running(mm, mm.nodes[zone.nid])) return COMPACT_PARTIAL_SKIPPED;
    const score = fragmentation_score_zone(zone);
    const wmark_low = fragmentation_score_wmark(mm, true);
    const ret = score > wmark_low ? COMPACT_CONTINUE : COMPACT_SUCCESS;
    return cc.contended ? COMPACT_CONTENDED : ret;
  }
  if (is_via_compact_memory(cc.order)) return COMPACT_CONTINUE;
  // Always finish scanning a pageblock, to reduce later fallbacks.
  if (!pageblock_aligned(cc.migrate_pfn)) return COMPACT_CONTINUE;
  // defrag_mode: kcompactd targets the high watermark in whole free pageblocks.
  if (mm.sysctl.defrag_mode && !cc.direct_compaction) {
    if (
      __zone_watermark_ok(
        mm,
        zone,
        cc.order,
        zone.high_wmark_pages(),
        cc.highest_zoneidx,
        cc.alloc_flags,
        zone.vm_stat[NR_FREE_PAGES_BLOCKS],
      )
    )
      return COMPACT_SUCCESS;
    return COMPACT_CONTINUE;
  }
  // Direct compactor: is a suitable page free?
  const count = mm.frames.list_count;
  for (let order = cc.order; order < NR_PAGE_ORDERS; order++) {
    const base = zone.free_list_base + order * MIGRATE_TYPES;
    if (count[base + migratetype]) return COMPACT_SUCCESS;
    if (mm.config.CMA && migratetype === MIGRATE_MOVABLE && count[base + MIGRATE_CMA]) return COMPACT_SUCCESS;
    // Or the allocation would claim a block of another type.
    if (find_suitable_fallback(mm, zone, order, migratetype, true) >= 0) return COMPACT_SUCCESS;
  }
  return cc.contended ? COMPACT_CONTENDED : COMPACT_NO_SUITABLE_PAGE;
}

/** kernel: mm/compaction.c compact_finished() */
function compact_finished(cc: CompactControl): number {
  const ret = __compact_finished(cc);
  return ret === COMPACT_NO_SUITABLE_PAGE ? COMPACT_CONTINUE : ret;
}

/**
 * kernel: mm/compaction.c __compaction_suitable()
 * Enough free order-0 pages for compaction's targets: `watermark` plus compact_gap(order), plus
 * the low-min gap for costly orders, with the direct compactor's lowmem reserve and CMA counted.
 */
export function __compaction_suitable(
  mm: MM,
  zone: Zone,
  order: number,
  watermark: number,
  highest_zoneidx: number,
  free_pages: number,
): boolean {
  watermark += compact_gap(order);
  if (order > PAGE_ALLOC_COSTLY_ORDER) watermark += zone.low_wmark_pages() - zone.min_wmark_pages();
  return __zone_watermark_ok(mm, zone, 0, watermark, highest_zoneidx, ALLOC_CMA, free_pages);
}

/**
 * kernel: mm/compaction.c compaction_suitable()
 * Is it worth compacting this zone now? Only with enough free pages (__compaction_suitable), and
 * for costly orders only if a failure would be due to fragmentation: not when the fragmentation
 * index is known (>= 0) and at most vm.extfrag_threshold.
 */
export function compaction_suitable(
  mm: MM,
  zone: Zone,
  order: number,
  watermark: number,
  highest_zoneidx: number,
): boolean {
  let suitable = __compaction_suitable(
    mm,
    zone,
    order,
    watermark,
    highest_zoneidx,
    zone.vm_stat[NR_FREE_PAGES],
  );
  if (suitable && order > PAGE_ALLOC_COSTLY_ORDER) {
    const fragindex = fragmentation_index(zone, order);
    if (fragindex >= 0 && fragindex <= mm.compaction.extfrag_threshold) suitable = false;
  }
  return suitable;
}

/**
 * kernel: mm/compaction.c compaction_suitable()'s result as the kernel traces it: CONTINUE,
 * NOT_SUITABLE_ZONE (the fragmentation index says reclaim), or SKIPPED (too few free pages).
 */
export function compaction_suitable_result(
  mm: MM,
  zone: Zone,
  order: number,
  watermark: number,
  highest_zoneidx: number,
): number {
  if (!__compaction_suitable(mm, zone, order, watermark, highest_zoneidx, zone.vm_stat[NR_FREE_PAGES]))
    return COMPACT_SKIPPED;
  return compaction_suitable(mm, zone, order, watermark, highest_zoneidx)
    ? COMPACT_CONTINUE
    : COMPACT_NOT_SUITABLE_ZONE;
}

/**
 * kernel: mm/compaction.c compaction_zonelist_suitable()
 * For should_compact_retry(): would some zone pass __compaction_suitable() at its min watermark
 * if reclaim freed a 1/order share of its reclaimable pages?
 */
export function compaction_zonelist_suitable(
  mm: MM,
  ac: AllocContext,
  order: number,
  _alloc_flags: number,
): boolean {
  const zonelist = ac.zonelist;
  for (let i = 0; i < zonelist.length; i++) {
    const zone = mm.zones[zonelist[i]];
    if (zone.zone_idx > ac.highest_zoneidx) continue;
    let available = Math.floor(mm.hooks.zone_reclaimable_pages(zone) / order);
    available += zone.vm_stat[NR_FREE_PAGES];
    if (__compaction_suitable(mm, zone, order, zone.min_wmark_pages(), ac.highest_zoneidx, available))
      return true;
  }
  return false;
}

/**
 * kernel: mm/compaction.c compaction_suit_allocation_order()
 * SUCCESS if the allocation would already succeed, SKIPPED if compaction is unlikely to help
 * (too few free pages, or for async costly unmovable requests too few outside CMA), else
 * CONTINUE.
 */
export function compaction_suit_allocation_order(
  mm: MM,
  zone: Zone,
  order: number,
  highest_zoneidx: number,
  alloc_flags: number,
  async: boolean,
  kcompactd: boolean,
): number {
  const free_pages =
    kcompactd && mm.sysctl.defrag_mode ? zone.vm_stat[NR_FREE_PAGES_BLOCKS] : zone.vm_stat[NR_FREE_PAGES];
  const watermark = zone.wmark_pages(alloc_flags & ALLOC_WMARK_MASK);
  if (__zone_watermark_ok(mm, zone, order, watermark, highest_zoneidx, alloc_flags, free_pages))
    return COMPACT_SUCCESS;
  // Unmovable requests (no ALLOC_CMA) need the free memory outside CMA pageblocks.
  if (order > PAGE_ALLOC_COSTLY_ORDER && async && !(alloc_flags & ALLOC_CMA)) {
    if (
      !__zone_watermark_ok(
        mm,
        zone,
        0,
        watermark + compact_gap(order),
        highest_zoneidx,
        0,
        zone.vm_stat[NR_FREE_PAGES],
      )
    )
      return COMPACT_SKIPPED;
  }
  if (!compaction_suitable(mm, zone, order, watermark, highest_zoneidx)) return COMPACT_SKIPPED;
  return COMPACT_CONTINUE;
}

/**
 * kernel: mm/compaction.c compact_zone()
 * One compaction run over cc.zone: check that it is worthwhile, set the scanners up from the
 * cached positions (or the zone ends for a whole-zone run), then isolate and migrate batches
 * until compact_finished() says stop. Pages freed by migration are drained from this CPU's pcp
 * lists whenever the migrate scanner leaves the cc.order-aligned block it migrated from, so they
 * merge (and can be captured). Unused targets are released at the end and the free scanner's
 * cached position moved back over them. Counts compact_migrate_scanned and compact_free_scanned.
 */
export function compact_zone(cc: CompactControl, capc: CaptureControl | null): number {
  const mm = cc.mm;
  const zone = cc.zone;
  const start_pfn = zone.zone_start_pfn;
  const end_pfn = zone.zone_end_pfn;
  const sync = cc.mode !== MIGRATE_ASYNC;
  let ret: number;

  cc.total_migrate_scanned = 0;
  cc.total_free_scanned = 0;
  cc.nr_migratepages = 0;
  cc.nr_freepages = 0;
  cc.nr_migratelist = 0;
  for (let order = 0; order < NR_PAGE_ORDERS; order++) {
    cc.freepages[order].head = 0;
    cc.freepages[order].count = 0;
  }
  cc.migratetype = gfp_migratetype(cc.gfp_mask);

  if (!is_via_compact_memory(cc.order)) {
    ret = compaction_suit_allocation_order(
      mm,
      zone,
      cc.order,
      cc.highest_zoneidx,
      cc.alloc_flags,
      cc.mode === MIGRATE_ASYNC,
      !cc.direct_compaction,
    );
    if (ret !== COMPACT_CONTINUE) return ret;
  }
  // Clear the skip bits if compaction is retried after the longest deferral.
  if (compaction_restarting(zone, cc.order)) __reset_isolation_suitable(mm, zone);

  // Start from the cached positions, unless the whole zone is wanted; check they are inside it.
  cc.fast_start_pfn = 0;
  if (cc.whole_zone) {
    cc.migrate_pfn = start_pfn;
    cc.free_pfn = pageblock_start_pfn(end_pfn - 1);
  } else {
    cc.migrate_pfn = zone.compact_cached_migrate_pfn[sync ? 1 : 0];
    cc.free_pfn = zone.compact_cached_free_pfn;
    if (cc.free_pfn < start_pfn || cc.free_pfn >= end_pfn) {
      cc.free_pfn = pageblock_start_pfn(end_pfn - 1);
      zone.compact_cached_free_pfn = cc.free_pfn;
    }
    if (cc.migrate_pfn < start_pfn || cc.migrate_pfn >= end_pfn) {
      cc.migrate_pfn = start_pfn;
      zone.compact_cached_migrate_pfn[0] = cc.migrate_pfn;
      zone.compact_cached_migrate_pfn[1] = cc.migrate_pfn;
    }
    if (cc.migrate_pfn <= zone.compact_init_migrate_pfn) cc.whole_zone = true;
  }
  const tp_begin = mm.trace.mm_compaction_begin;
  if (tp_begin !== null) tp_begin(zone.nid, zone.zone_idx, cc.order, sync);
  let last_migrated_pfn = 0;
  // Until a block with isolation candidates is found, keep the async and sync cached pfns in
  // step (blocks skipped for having no candidates are skipped in either mode).
  let update_cached = !sync && zone.compact_cached_migrate_pfn[0] === zone.compact_cached_migrate_pfn[1];
  // lru_add_drain(): the model has no per-CPU LRU batches.

  for (;;) {
    ret = compact_finished(cc);
    if (ret !== COMPACT_CONTINUE) break;
    const iteration_start_pfn = cc.migrate_pfn;
    // Avoid rescanning a pageblock over and over: the first rescan takes the whole block; if
    // that fails too, it gets its skip bit.
    cc.finish_pageblock = pageblock_start_pfn(last_migrated_pfn) === pageblock_start_pfn(iteration_start_pfn);
    let out = false;
    for (;;) {
      // rescan:
      const isolated = isolate_migratepages(cc);
      if (isolated === ISOLATE_ABORT) {
        ret = COMPACT_CONTENDED;
        putback_movable_pages(cc);
        cc.nr_migratepages = 0;
        out = true;
        break;
      }
      if (isolated === ISOLATE_NONE) {
        if (update_cached) zone.compact_cached_migrate_pfn[1] = zone.compact_cached_migrate_pfn[0];
        // Nothing isolated, but pages freed by earlier migrations may still need draining.
        break;
      }
      update_cached = false;
      last_migrated_pfn = Math.max(start_pfn, pageblock_start_pfn(cc.migrate_pfn - 1));
      // The kernel's list is LIFO: migrate the last isolated page first.
      const list = cc.migratepages;
      const n = cc.nr_migratelist;
      for (let i = 0, j = n - 1; i < j; i++, j--) {
        const t = list[i];
        list[i] = list[j];
        list[j] = t;
      }
      cc.nr_migratelist = 0;
      const r = migrate_pages(mm, list, cc, cc.mode, n);
      // All pages were either migrated or put back.
      cc.nr_migratepages = 0;
      if (r.err || r.failed) {
        // -ENOMEM while the scanners have not met: the free scanner found no more targets.
        if (r.err === ENOMEM && !compact_scanners_met(cc)) {
          ret = COMPACT_CONTENDED;
          out = true;
          break;
        }
        // An async or sync-light run that failed to migrate a page of a pageblock the fast
        // search may return to scans the rest of the block (and marks it skipped).
        if (
          !pageblock_aligned(cc.migrate_pfn) &&
          !cc.ignore_skip_hint &&
          !cc.finish_pageblock &&
          cc.mode < MIGRATE_SYNC
        ) {
          cc.finish_pageblock = true;
          // Draining the pcp lists does not help a THP if any page failed to migrate.
          if (cc.order === COMPACTION_HPAGE_ORDER) last_migrated_pfn = 0;
          continue;
        }
      }
      // Stop if a page has been captured.
      if (capc !== null && capc.page >= 0) {
        ret = COMPACT_SUCCESS;
        out = true;
      }
      break;
    }
    if (out) break;
    // check_drain: the migrate scanner left the cc.order-aligned block it migrated from: flush
    // the freed pages so they merge and compact_finished() sees them.
    if (cc.order > 0 && last_migrated_pfn) {
      const current_block_start = block_start_pfn(cc.migrate_pfn, cc.order);
      if (last_migrated_pfn < current_block_start) {
        // lru_add_drain_cpu_zone(): this CPU's pcp lists of the zone.
        drain_pages_zone(mm, cc.cpu, zone);
        last_migrated_pfn = 0;
      }
    }
  }
  // out: release the unused free pages; the free scanner restarts above them next time.
  if (cc.nr_freepages > 0) {
    let free_pfn = release_free_list(cc);
    cc.nr_freepages = 0;
    free_pfn = pageblock_start_pfn(free_pfn);
    // Only go back, not forward (compact_finished() may have reset it to the zone end).
    if (free_pfn > zone.compact_cached_free_pfn) zone.compact_cached_free_pfn = free_pfn;
  }
  mm.vm_events[COMPACTMIGRATE_SCANNED] += cc.total_migrate_scanned;
  mm.vm_events[COMPACTFREE_SCANNED] += cc.total_free_scanned;
  const tp_end = mm.trace.mm_compaction_end;
  if (tp_end !== null) tp_end(zone.nid, zone.zone_idx, cc.order, ret);
  const cost = mm.cost;
  mm.kernel_ns +=
    cc.total_migrate_scanned * cost.migrate_scan_pfn + cc.total_free_scanned * cost.free_scan_pfn;
  return ret;
}

/**
 * kernel: mm/compaction.c compact_zone_order()
 * Direct compaction of one zone at priority `prio`: ASYNC at COMPACT_PRIO_ASYNC, else
 * SYNC_LIGHT; the lowest priority (SYNC_FULL) scans the whole zone ignoring skip bits and block
 * types. The run's capture_control is current while it runs, so a block of `order` freed in the
 * zone is handed straight to it. Returns the result and, in `captured`, the block or -1.
 */
export function compact_zone_order(
  mm: MM,
  zone: Zone,
  order: number,
  gfp_mask: number,
  prio: number,
  alloc_flags: number,
  highest_zoneidx: number,
  cpu: number,
  captured: { pfn: number },
): number {
  const cc = get_cc();
  const capc = capcs[cc_depth - 1];
  try {
    cc.reset(mm, zone, cpu);
    cc.order = order;
    cc.search_order = order;
    cc.gfp_mask = gfp_mask;
    cc.mode = prio === COMPACT_PRIO_ASYNC ? MIGRATE_ASYNC : MIGRATE_SYNC_LIGHT;
    cc.alloc_flags = alloc_flags;
    cc.highest_zoneidx = highest_zoneidx;
    cc.direct_compaction = true;
    cc.whole_zone = prio === MIN_COMPACT_PRIORITY;
    cc.ignore_skip_hint = prio === MIN_COMPACT_PRIORITY;
    cc.ignore_block_suitable = prio === MIN_COMPACT_PRIORITY;
    cc.pf_memalloc = true;
    capc.cc = cc;
    capc.page = -1;
    const saved = mm.capture_control;
    mm.capture_control = capc;
    let ret: number;
    try {
      ret = compact_zone(cc, capc);
    } finally {
      mm.capture_control = saved;
    }
    captured.pfn = capc.page;
    // A captured page means success, even if compaction itself was skipped.
    if (capc.page >= 0) ret = COMPACT_SUCCESS;
    return ret;
  } finally {
    put_cc();
  }
}

const captured_pfn = { pfn: -1 };

/**
 * kernel: mm/compaction.c try_to_compact_pages()
 * Direct compaction for a high-order allocation: each zone of the zonelist the request may use,
 * unless deferred (except at the lowest priority), until one reports success. A sync run that
 * completes or gives up without success defers the zone. Fills `out` with the worst-to-best
 * result (the kernel's max over zones) and a captured block, if any.
 */
export function try_to_compact_pages(
  mm: MM,
  gfp_mask: number,
  order: number,
  alloc_flags: number,
  ac: AllocContext,
  prio: number,
  out: CompactOutcome,
): void {
  let rc = COMPACT_SKIPPED;
  out.pfn = -1;
  out.result = COMPACT_SKIPPED;
  // gfp_compaction_allowed(): compaction may need I/O.
  if (!(gfp_mask & __GFP_IO)) return;
  const zonelist = ac.zonelist;
  for (let i = 0; i < zonelist.length; i++) {
    const zone = mm.zones[zonelist[i]];
    if (zone.zone_idx > ac.highest_zoneidx) continue;
    if (prio > MIN_COMPACT_PRIORITY && compaction_deferred(zone, order)) {
      rc = Math.max(COMPACT_DEFERRED, rc);
      continue;
    }
    captured_pfn.pfn = -1;
    const status = compact_zone_order(
      mm,
      zone,
      order,
      gfp_mask,
      prio,
      alloc_flags,
      ac.highest_zoneidx,
      ac.cpu,
      captured_pfn,
    );
    if (captured_pfn.pfn >= 0) out.pfn = captured_pfn.pfn;
    rc = Math.max(status, rc);
    // The allocation should succeed: stop compacting (the caller confirms with alloc_success).
    if (status === COMPACT_SUCCESS) {
      compaction_defer_reset(zone, order, false);
      break;
    }
    // A sync run that did not succeed: the allocation will not succeed here, defer.
    if (prio !== COMPACT_PRIO_ASYNC && (status === COMPACT_COMPLETE || status === COMPACT_PARTIAL_SKIPPED))
      defer_compaction(zone, order);
  }
  out.result = rc;
}

/**
 * kernel: mm/compaction.c compact_node()
 * Compact every populated zone of the node completely (order -1, skip bits ignored): MIGRATE_SYNC
 * for compact_memory, SYNC_LIGHT for proactive compaction.
 */
export function compact_node(mm: MM, pgdat: PglistData, proactive: boolean, cpu = 0): number {
  const cc = get_cc();
  try {
    cc.reset(mm, null, cpu);
    cc.order = -1;
    cc.mode = proactive ? MIGRATE_SYNC_LIGHT : MIGRATE_SYNC;
    cc.ignore_skip_hint = true;
    cc.whole_zone = true;
    cc.gfp_mask = GFP_KERNEL;
    cc.proactive_compaction = proactive;
    for (const zone of pgdat.node_zones) {
      if (!zone.populated_zone()) continue;
      cc.zone = zone;
      compact_zone(cc, null);
      if (proactive) {
        mm.vm_events[KCOMPACTD_MIGRATE_SCANNED] += cc.total_migrate_scanned;
        mm.vm_events[KCOMPACTD_FREE_SCANNED] += cc.total_free_scanned;
      }
    }
  } finally {
    put_cc();
  }
  return 0;
}

/**
 * kernel: mm/compaction.c compact_nodes()
 * Compact all zones of all nodes: `echo 1 > /proc/sys/vm/compact_memory`, running on `cpu`.
 */
export function compact_nodes(mm: MM, cpu = 0): number {
  // lru_add_drain_all(): the model has no per-CPU LRU batches.
  for (const pgdat of mm.nodes) {
    const ret = compact_node(mm, pgdat, false, cpu);
    if (ret) return ret;
  }
  return 0;
}

/** struct contig_page_info (mm/vmstat.c) */
export interface ContigPageInfo {
  free_pages: number;
  free_blocks_total: number;
  free_blocks_suitable: number;
}

const contig_info: ContigPageInfo = { free_pages: 0, free_blocks_total: 0, free_blocks_suitable: 0 };

/**
 * kernel: mm/vmstat.c fill_contig_page_info()
 * The zone's free pages, free blocks, and blocks of at least `suitable_order` counted in blocks of
 * that order (an order-10 block is two order-9 blocks), from free_area[].nr_free.
 */
export function fill_contig_page_info(zone: Zone, suitable_order: number, info: ContigPageInfo): void {
  info.free_pages = 0;
  info.free_blocks_total = 0;
  info.free_blocks_suitable = 0;
  for (let order = 0; order < NR_PAGE_ORDERS; order++) {
    const blocks = zone.nr_free[order];
    info.free_blocks_total += blocks;
    info.free_pages += blocks * 2 ** order;
    if (order >= suitable_order) info.free_blocks_suitable += blocks * 2 ** (order - suitable_order);
  }
}

/**
 * kernel: mm/vmstat.c __fragmentation_index()
 * Whether a failing allocation of `order` fails for lack of memory (towards 0) or for
 * fragmentation (towards 1000): 1000 - (1000 + free_pages * 1000 / 2^order) / free_blocks_total,
 * in integer arithmetic. -1000 if a suitable block exists (the allocation would not fail), 0 with
 * no free blocks at all.
 */
export function __fragmentation_index(order: number, info: ContigPageInfo): number {
  const requested = 2 ** order;
  if (order > MAX_PAGE_ORDER) return 0;
  if (!info.free_blocks_total) return 0;
  if (info.free_blocks_suitable) return -1000;
  return (
    1000 - Math.floor((1000 + Math.floor((info.free_pages * 1000) / requested)) / info.free_blocks_total)
  );
}

/** kernel: mm/vmstat.c fragmentation_index() */
export function fragmentation_index(zone: Zone, order: number): number {
  fill_contig_page_info(zone, order, contig_info);
  return __fragmentation_index(order, contig_info);
}

/**
 * kernel: mm/vmstat.c extfrag_for_order()
 * The percentage (0..100) of free pages in blocks smaller than 2^order.
 */
export function extfrag_for_order(zone: Zone, order: number): number {
  fill_contig_page_info(zone, order, contig_info);
  if (contig_info.free_pages === 0) return 0;
  return Math.floor(
    ((contig_info.free_pages - contig_info.free_blocks_suitable * 2 ** order) * 100) / contig_info.free_pages,
  );
}

/**
 * kernel: mm/vmstat.c unusable_free_index()
 * The share of free memory (0..1000) unusable for an allocation of `order`; 1000 with none free.
 */
export function unusable_free_index(order: number, info: ContigPageInfo): number {
  if (info.free_pages === 0) return 1000;
  return Math.floor(((info.free_pages - info.free_blocks_suitable * 2 ** order) * 1000) / info.free_pages);
}

/**
 * kernel: mm/compaction.c fragmentation_score_wmark()
 * Proactive compaction's thresholds: it starts above 100 - proactiveness + min(10, half of
 * that) and stops at or below 100 - proactiveness.
 */
export function fragmentation_score_wmark(mm: MM, low: boolean): number {
  const wmark_low = 100 - mm.compaction.compaction_proactiveness;
  const leeway = Math.min(10, Math.floor(wmark_low / 2));
  return low ? wmark_low : Math.min(wmark_low + leeway, 100);
}

/** kernel: mm/compaction.c fragmentation_score_zone(): extfrag_for_order(COMPACTION_HPAGE_ORDER). */
export function fragmentation_score_zone(zone: Zone): number {
  return extfrag_for_order(zone, COMPACTION_HPAGE_ORDER);
}

/**
 * kernel: mm/compaction.c fragmentation_score_zone_weighted()
 * The zone's score scaled by its share of the node's present pages, so that a small zone (DMA,
 * DMA32 beside a large Normal) adds little to the node's score.
 */
export function fragmentation_score_zone_weighted(zone: Zone, pgdat: PglistData): number {
  return Math.floor((zone.present_pages * fragmentation_score_zone(zone)) / (pgdat.node_present_pages + 1));
}

/**
 * kernel: mm/compaction.c fragmentation_score_node()
 * The node's fragmentation score, 0..100: the weighted scores of its populated zones summed.
 * Arithmetic over free_area[].nr_free only (11 orders per zone): cheap enough to run every
 * HPAGE_FRAG_CHECK_INTERVAL_MSEC. Free pages on the per-cpu lists are not on free_area and do
 * not count, as in the kernel.
 */
export function fragmentation_score_node(pgdat: PglistData): number {
  let score = 0;
  for (const zone of pgdat.node_zones) {
    if (!zone.populated_zone()) continue;
    score += fragmentation_score_zone_weighted(zone, pgdat);
  }
  return score;
}

/**
 * kernel: mm/compaction.c should_proactive_compact_node()
 * Proactive compaction is on (compaction_proactiveness > 0), kswapd is not reclaiming on the
 * node, and the node's score is above the high threshold.
 */
export function should_proactive_compact_node(mm: MM, pgdat: PglistData): boolean {
  if (!mm.compaction.compaction_proactiveness || kswapd_is_running(mm, pgdat)) return false;
  return fragmentation_score_node(pgdat) > fragmentation_score_wmark(mm, false);
}

// ---------------------------------------------------------------------------------------------
// kcompactd: one background compaction thread per node, on the simulated clock.

/** HPAGE_FRAG_CHECK_INTERVAL_MSEC (500 ms): kcompactd's proactive check interval, in ns. */
export const HPAGE_FRAG_CHECK_INTERVAL_NS = 500e6;
/** MAX_SCHEDULE_TIMEOUT: a wait with no timeout. */
const MAX_SCHEDULE_TIMEOUT = Number.POSITIVE_INFINITY;

const KCOMPACTD_WAKE = vm_event_index('compact_daemon_wake');

/**
 * The kcompactd thread of one node (pgdat->kcompactd, its wait queue and kcompactd()'s local
 * `timeout`). The thread's loop runs as events on the clock: a wait is a pending timeout event
 * (none with MAX_SCHEDULE_TIMEOUT), a wake-up queues a run at the current time.
 */
export class KcompactdState {
  /** pgdat->kcompactd != NULL: kcompactd_run() started the thread. */
  started = false;
  /** Waiting on pgdat->kcompactd_wait (wq_has_sleeper()); false while a woken run is queued. */
  sleeping = false;
  /** Numbers the waits, so the timeout event of a wait that a wake-up ended does nothing. */
  wait_seq = 0;
  /** kcompactd()'s `timeout` for its next wait, in ns. */
  timeout = HPAGE_FRAG_CHECK_INTERVAL_NS;
  /** Simulated time the current wait times out at (Infinity without a timeout), for tests. */
  wait_until = MAX_SCHEDULE_TIMEOUT;
  /** CPU time kcompactd has used, ns (cost.ts). */
  cpu_ns = 0;
}

/** The CPU kcompactd runs on (a kthread bound to its node's CPUs): the node's first CPU. */
function kcompactd_cpu(pgdat: PglistData): number {
  return pgdat.cpus.length ? pgdat.cpus[0] : 0;
}

/** kernel: mm/compaction.c kcompactd_work_requested() */
function kcompactd_work_requested(pgdat: PglistData): boolean {
  return pgdat.kcompactd_max_order > 0 || pgdat.proactive_compact_trigger;
}

/**
 * kernel: mm/compaction.c kcompactd_node_suitable()
 * Some populated zone up to kcompactd_highest_zoneidx is worth compacting for
 * kcompactd_max_order: not already able to serve it at the min watermark (high in defrag_mode),
 * with enough free pages and, for costly orders, a fragmentation index above extfrag_threshold.
 */
export function kcompactd_node_suitable(mm: MM, pgdat: PglistData): boolean {
  const highest_zoneidx = pgdat.kcompactd_highest_zoneidx;
  const alloc_flags = mm.sysctl.defrag_mode ? ALLOC_WMARK_HIGH : ALLOC_WMARK_MIN;
  for (let zoneid = 0; zoneid <= highest_zoneidx; zoneid++) {
    const zone = pgdat.node_zones[zoneid];
    if (!zone.populated_zone()) continue;
    const ret = compaction_suit_allocation_order(
      mm,
      zone,
      pgdat.kcompactd_max_order,
      highest_zoneidx,
      alloc_flags,
      false,
      true,
    );
    if (ret === COMPACT_CONTINUE) return true;
  }
  return false;
}

/**
 * kernel: mm/compaction.c kcompactd_do_work()
 * Compact each zone up to kcompactd_highest_zoneidx that is not deferred and worth compacting
 * until a block of kcompactd_max_order is free: MIGRATE_SYNC_LIGHT from the cached scanner
 * positions, skip bits honoured, one compact_control shared by the zones. Success resets the
 * zone's deferral for the order; a run that reached the end without success drains every CPU's
 * pcp lists of the zone (so freed pages merge) and defers the zone as sync direct compaction
 * does. Counts compact_daemon_wake and the scanners' work in compact_daemon_*_scanned, then
 * forgets the request.
 */
export function kcompactd_do_work(mm: MM, pgdat: PglistData): void {
  const cc = get_cc();
  const order = pgdat.kcompactd_max_order;
  const highest_zoneidx = pgdat.kcompactd_highest_zoneidx;
  try {
    cc.reset(mm, null, kcompactd_cpu(pgdat));
    cc.order = order;
    cc.search_order = order;
    cc.highest_zoneidx = highest_zoneidx;
    cc.mode = MIGRATE_SYNC_LIGHT;
    cc.ignore_skip_hint = false;
    cc.gfp_mask = GFP_KERNEL;
    cc.alloc_flags = mm.sysctl.defrag_mode ? ALLOC_WMARK_HIGH : ALLOC_WMARK_MIN;
    mm.trace.mm_compaction_kcompactd_wake?.(pgdat.node_id, order, highest_zoneidx);
    mm.vm_events[KCOMPACTD_WAKE]++;
    for (let zoneid = 0; zoneid <= highest_zoneidx; zoneid++) {
      const zone = pgdat.node_zones[zoneid];
      if (!zone.populated_zone()) continue;
      if (compaction_deferred(zone, order)) continue;
      const ret = compaction_suit_allocation_order(mm, zone, order, zoneid, cc.alloc_flags, false, true);
      if (ret !== COMPACT_CONTINUE) continue;
      cc.zone = zone;
      const status = compact_zone(cc, null);
      if (status === COMPACT_SUCCESS) {
        compaction_defer_reset(zone, order, false);
      } else if (status === COMPACT_PARTIAL_SKIPPED || status === COMPACT_COMPLETE) {
        // Buddy pages stranded on pcp lists could coalesce to >= cc.order; ratelimited by the
        // deferral that follows.
        drain_all_pages(mm, zone, cc.cpu);
        // Sync migration: defer as sync direct compaction does.
        defer_compaction(zone, order);
      }
      mm.vm_events[KCOMPACTD_MIGRATE_SCANNED] += cc.total_migrate_scanned;
      mm.vm_events[KCOMPACTD_FREE_SCANNED] += cc.total_free_scanned;
    }
  } finally {
    put_cc();
  }
  // Done until woken again, but keep a request that was higher or tighter than this run's.
  if (pgdat.kcompactd_max_order <= order) pgdat.kcompactd_max_order = 0;
  if (pgdat.kcompactd_highest_zoneidx >= highest_zoneidx)
    pgdat.kcompactd_highest_zoneidx = pgdat.nr_zones - 1;
}

/**
 * kernel: mm/compaction.c wakeup_kcompactd()
 * Ask the node's kcompactd to compact for `order` in zones up to `highest_zoneidx` (the request
 * is recorded even if kcompactd is not woken), and wake it if it is waiting and some zone is
 * worth compacting. A request recorded without a wake-up is still served when kcompactd's wait
 * next ends, e.g. at its proactive timeout.
 */
export function wakeup_kcompactd(mm: MM, pgdat: PglistData, order: number, highest_zoneidx: number): void {
  if (!order) return;
  if (pgdat.kcompactd_max_order < order) pgdat.kcompactd_max_order = order;
  if (pgdat.kcompactd_highest_zoneidx > highest_zoneidx) pgdat.kcompactd_highest_zoneidx = highest_zoneidx;
  // wq_has_sleeper(): a running (or already woken) kcompactd sees the request when it loops.
  if (!mm.kcompactd[pgdat.node_id].sleeping) return;
  if (!kcompactd_node_suitable(mm, pgdat)) return;
  mm.trace.mm_compaction_wakeup_kcompactd?.(pgdat.node_id, order, highest_zoneidx);
  wake_up_kcompactd(mm, pgdat);
}

/**
 * wake_up_interruptible(&pgdat->kcompactd_wait): the waiting kcompactd re-checks
 * kcompactd_work_requested() and, if it holds, runs now; otherwise it sleeps on with the rest of
 * its timeout.
 */
export function wake_up_kcompactd(mm: MM, pgdat: PglistData): void {
  const k = mm.kcompactd[pgdat.node_id];
  if (!k.sleeping || !kcompactd_work_requested(pgdat)) return;
  k.sleeping = false;
  k.wait_seq++;
  k.wait_until = MAX_SCHEDULE_TIMEOUT;
  mm.defer(0, new KcompactdWoken(mm, pgdat));
}

/** kcompactd woken from its wait (wake_up_kcompactd()): one iteration, then the wait again. */
class KcompactdWoken implements Work {
  constructor(
    readonly mm: MM,
    readonly pgdat: PglistData,
  ) {}

  run(): void {
    kcompactd_wait_done(this.mm, this.pgdat, true);
    kcompactd_wait(this.mm, this.pgdat);
  }
}

/** kcompactd's wait timed out (the proactive interval), unless the wait `seq` has ended since. */
class KcompactdTimeout implements Work {
  constructor(
    readonly mm: MM,
    readonly pgdat: PglistData,
    readonly seq: number,
  ) {}

  run(): void {
    const { mm, pgdat } = this;
    const k = mm.kcompactd[pgdat.node_id];
    if (k.wait_seq !== this.seq || !k.sleeping) return;
    k.sleeping = false;
    k.wait_until = MAX_SCHEDULE_TIMEOUT;
    // Timed out: the wait still returns nonzero if the condition holds by now.
    kcompactd_wait_done(mm, pgdat, kcompactd_work_requested(pgdat));
    kcompactd_wait(mm, pgdat);
  }
}

/**
 * kernel: mm/compaction.c kcompactd(), the top of its loop: with proactiveness 0 the wait has no
 * timeout; wait_event_freezable_timeout() returns at once while work is requested, else
 * kcompactd sleeps until wake_up_kcompactd() or the timeout (whose event then finishes the
 * iteration and loops).
 */
function kcompactd_wait(mm: MM, pgdat: PglistData): void {
  const k = mm.kcompactd[pgdat.node_id];
  for (;;) {
    // Avoid the unnecessary wake-up for proactive compaction when it is disabled.
    if (!mm.compaction.compaction_proactiveness) k.timeout = MAX_SCHEDULE_TIMEOUT;
    mm.trace.mm_compaction_kcompactd_sleep?.(pgdat.node_id);
    if (!kcompactd_work_requested(pgdat)) break;
    kcompactd_wait_done(mm, pgdat, true);
  }
  k.sleeping = true;
  const seq = ++k.wait_seq;
  k.wait_until = k.timeout === MAX_SCHEDULE_TIMEOUT ? MAX_SCHEDULE_TIMEOUT : mm.now() + k.timeout;
  if (k.timeout === MAX_SCHEDULE_TIMEOUT) return;
  mm.defer(k.timeout, new KcompactdTimeout(mm, pgdat, seq));
}

/**
 * kernel: mm/compaction.c kcompactd(), the rest of one iteration after the wait returned
 * (`woken`: nonzero). A wake-up for an order (not the proactive trigger) compacts for it
 * (kcompactd_do_work()). Otherwise, the timeout or the sysctl's trigger: compact the whole node
 * proactively (compact_node(proactive)) if its fragmentation score is above the high threshold,
 * and if that did not lower the score, wait 64 intervals (32 s) before the next check.
 */
function kcompactd_wait_done(mm: MM, pgdat: PglistData, woken: boolean): void {
  const k = mm.kcompactd[pgdat.node_id];
  run_kthread(mm, k, () => kcompactd_iteration(mm, pgdat, k, woken));
}

function kcompactd_iteration(mm: MM, pgdat: PglistData, k: KcompactdState, woken: boolean): void {
  const default_timeout = HPAGE_FRAG_CHECK_INTERVAL_NS;
  if (woken && !pgdat.proactive_compact_trigger) {
    kcompactd_do_work(mm, pgdat);
    // The proactive back-off is lost here, as in the kernel.
    k.timeout = default_timeout;
    return;
  }
  k.timeout = default_timeout;
  if (should_proactive_compact_node(mm, pgdat)) {
    const prev_score = fragmentation_score_node(pgdat);
    compact_node(mm, pgdat, true, kcompactd_cpu(pgdat));
    const score = fragmentation_score_node(pgdat);
    // No progress: defer proactive compaction.
    if (score >= prev_score) k.timeout = default_timeout * 2 ** COMPACT_MAX_DEFER_SHIFT;
  }
  if (pgdat.proactive_compact_trigger) pgdat.proactive_compact_trigger = false;
}

/**
 * kernel: mm/compaction.c kcompactd_run() and the start of kcompactd()
 * Start the node's kcompactd: no request yet, then the loop's first wait (500 ms with proactive
 * compaction on, as it is by default). Needs the machine's clock (mm.defer).
 */
export function kcompactd_run(mm: MM, pgdat: PglistData): void {
  const k = mm.kcompactd[pgdat.node_id];
  if (k.started) return;
  k.started = true;
  pgdat.kcompactd_max_order = 0;
  pgdat.kcompactd_highest_zoneidx = pgdat.nr_zones - 1;
  k.timeout = HPAGE_FRAG_CHECK_INTERVAL_NS;
  kcompactd_wait(mm, pgdat);
}

/**
 * kernel: mm/compaction.c kcompactd_init()
 * A kcompactd for every node with memory (N_MEMORY).
 */
export function kcompactd_init(mm: MM): void {
  for (const pgdat of mm.nodes) if (pgdat.node_present_pages) kcompactd_run(mm, pgdat);
}
