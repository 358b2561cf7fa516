/**
 * kernel: mm/page_alloc.c __alloc_pages_slowpath(), as in v6.18: wake kswapd, retry at the min
 * watermark, compact first for costly and non-movable high orders, then direct reclaim and
 * compaction at rising priority, bounded retries, the OOM killer, and for __GFP_NOFAIL no
 * failure at all. Reclaim, compaction and OOM are reached through mm.hooks.
 */
import { compaction_defer_reset } from '../compaction.ts';
import {
  __GFP_DIRECT_RECLAIM,
  __GFP_HARDWALL,
  __GFP_IO,
  __GFP_MEMALLOC,
  __GFP_NOFAIL,
  __GFP_NOMEMALLOC,
  __GFP_NORETRY,
  __GFP_NOWARN,
  __GFP_RETRY_MAYFAIL,
  __GFP_THISNODE,
  gfp_flags_string,
} from '../gfp.ts';
import {
  ALLOC_CPUSET,
  ALLOC_KSWAPD,
  ALLOC_MIN_RESERVE,
  ALLOC_NO_WATERMARKS,
  ALLOC_NOFRAGMENT,
  ALLOC_WMARK_HIGH,
} from '../internal.ts';
import type { MM } from '../mm.ts';
import { MIGRATE_MOVABLE, PAGE_ALLOC_COSTLY_ORDER, ZONE_NORMAL } from '../mmzone.ts';
import { NR_FREE_PAGES, vm_event_index } from '../vmstat_items.ts';
import {
  type AllocContext,
  COMPACT_DEFERRED,
  COMPACT_SKIPPED,
  COMPACT_SUCCESS,
  CompactOutcome,
  DEF_COMPACT_PRIORITY,
  INIT_COMPACT_PRIORITY,
  MIN_COMPACT_COSTLY_PRIORITY,
  MIN_COMPACT_PRIORITY,
} from './context.ts';
import { unreserve_highatomic_pageblock } from './fallback.ts';
import { drain_all_pages } from './pcp.ts';
import {
  get_page_from_freelist,
  gfp_to_alloc_flags,
  gfp_to_alloc_flags_cma,
  prep_new_page,
} from './rmqueue.ts';
import { __zone_watermark_ok } from './watermark.ts';

export const MAX_RECLAIM_RETRIES = 16;
export const MAX_COMPACT_RETRIES = 16;
/**
 * How many times a __GFP_NOFAIL request goes back to `retry:` before the model reports that the
 * kernel would loop forever and fails it (docs/decisions.md).
 */
export const NOFAIL_LOOP_LIMIT = 1000;

const compact = new CompactOutcome();
const COMPACTSTALL = vm_event_index('compact_stall');
const COMPACTFAIL = vm_event_index('compact_fail');
const COMPACTSUCCESS = vm_event_index('compact_success');

/** What a pass through the retry loop ends in, besides a page: the kernel's `goto` targets. */
const GOTO_NOPAGE = -1;
const GOTO_RETRY = -2;

/** The slow path's locals that live across `goto retry` (reset only at `restart:`). */
class SlowpathState {
  alloc_flags = 0;
  did_some_progress = 0;
  compaction_retries = 0;
  no_progress_loops = 0;
  compact_priority = DEF_COMPACT_PRIORITY;
  compact_result = COMPACT_SKIPPED;
}

/**
 * kernel: include/asm-generic/bug.h WARN_ON_ONCE(): the first time `cond` holds at this site, a
 * WARNING line in the kernel log (the kernel adds registers and a stack trace). Returns `cond`.
 */
function WARN_ON_ONCE(mm: MM, cond: boolean, line: number, fn: string, cpu: number): boolean {
  if (!cond) return false;
  // The sites that have fired on this machine, by their v6.18 source line.
  const site = `slowpath:${line}`;
  if (!mm.warned_once.has(site)) {
    mm.warned_once.add(site);
    mm.klog.push(`WARNING: CPU: ${cpu} at mm/page_alloc.c:${line} ${fn}`);
  }
  return true;
}

/**
 * kernel: mm/internal.h WARN_ON_ONCE_GFP(): as WARN_ON_ONCE(), but __GFP_NOWARN keeps the line
 * out of the log (without using up the once). Returns `cond` either way.
 */
function WARN_ON_ONCE_GFP(
  mm: MM,
  cond: boolean,
  gfp: number,
  line: number,
  fn: string,
  cpu: number,
): boolean {
  if (cond && (gfp & __GFP_NOWARN) === 0) WARN_ON_ONCE(mm, true, line, fn, cpu);
  return cond;
}

/**
 * kernel: include/linux/gfp.h gfp_compaction_allowed()
 * CONFIG_COMPACTION (set, as on our machines) and __GFP_IO: compaction migrates pages, which may
 * need I/O.
 */
export function gfp_compaction_allowed(gfp: number): boolean {
  return (gfp & __GFP_IO) !== 0;
}

/**
 * kernel: mm/page_alloc.c __gfp_pfmemalloc_flags()
 * __GFP_NOMEMALLOC forbids the reserves, __GFP_MEMALLOC opens all of them. The kernel also looks
 * at the current task (PF_MEMALLOC, OOM victims); allocations in the model have no task.
 */
function __gfp_pfmemalloc_flags(gfp: number): number {
  if (gfp & __GFP_NOMEMALLOC) return 0;
  if (gfp & __GFP_MEMALLOC) return ALLOC_NO_WATERMARKS;
  return 0;
}

/** kernel: mm/page_alloc.c gfp_pfmemalloc_allowed() */
export function gfp_pfmemalloc_allowed(gfp: number): boolean {
  return __gfp_pfmemalloc_flags(gfp) !== 0;
}

/**
 * kernel: mm/page_alloc.c __alloc_pages_cpuset_fallback()
 * Within the cpuset, then outside it if its nodes are depleted. The model has no cpusets, so
 * ALLOC_CPUSET restricts nothing and the second attempt repeats the first, as in a kernel whose
 * cpusets are not enabled.
 */
function __alloc_pages_cpuset_fallback(
  mm: MM,
  gfp: number,
  order: number,
  alloc_flags: number,
  ac: AllocContext,
): number {
  const pfn = get_page_from_freelist(mm, gfp, order, alloc_flags | ALLOC_CPUSET, ac);
  if (pfn >= 0) return pfn;
  return get_page_from_freelist(mm, gfp, order, alloc_flags, ac);
}

/**
 * kernel: mm/page_alloc.c __alloc_pages_may_oom()
 * One more try at the high watermark (to catch a parallel OOM kill), then the OOM killer, but not
 * for costly orders, __GFP_RETRY_MAYFAIL, __GFP_THISNODE or requests that cannot use Normal.
 * A kill counts as progress; so does a __GFP_NOFAIL request the killer could not help, which
 * warns once and may then ignore the watermarks altogether. (oom_lock is always free: one
 * allocation runs at a time; no task dumps core; storage is never suspended.)
 */
function __alloc_pages_may_oom(
  mm: MM,
  gfp: number,
  order: number,
  ac: AllocContext,
  st: SlowpathState,
): number {
  st.did_some_progress = 0;
  let pfn = get_page_from_freelist(
    mm,
    (gfp | __GFP_HARDWALL) & ~__GFP_DIRECT_RECLAIM,
    order,
    ALLOC_WMARK_HIGH | ALLOC_CPUSET,
    ac,
  );
  if (pfn >= 0) return pfn;
  if (order > PAGE_ALLOC_COSTLY_ORDER) return -1;
  if (gfp & (__GFP_RETRY_MAYFAIL | __GFP_THISNODE)) return -1;
  if (ac.highest_zoneidx < ZONE_NORMAL) return -1;
  if (
    mm.hooks.out_of_memory(gfp, order, ac) ||
    WARN_ON_ONCE_GFP(mm, (gfp & __GFP_NOFAIL) !== 0, gfp, 4056, '__alloc_pages_may_oom', ac.cpu)
  ) {
    st.did_some_progress = 1;
    if (gfp & __GFP_NOFAIL) pfn = __alloc_pages_cpuset_fallback(mm, gfp, order, ALLOC_NO_WATERMARKS, ac);
  }
  return pfn;
}

/**
 * kernel: mm/page_alloc.c __alloc_pages_direct_compact() (CONFIG_COMPACTION)
 * Order 0 never compacts (and leaves compact_result alone). A compaction that ran in some zone
 * counts compact_stall, then compact_success with the captured block or one from the free lists
 * (resetting that zone's deferral), or compact_fail.
 */
function __alloc_pages_direct_compact(
  mm: MM,
  gfp: number,
  order: number,
  alloc_flags: number,
  ac: AllocContext,
  prio: number,
  st: SlowpathState,
): number {
  if (!order) return -1;
  mm.hooks.try_to_compact_pages(gfp, order, alloc_flags, ac, prio, compact);
  st.compact_result = compact.result;
  if (compact.result === COMPACT_SKIPPED) return -1;
  mm.vm_events[COMPACTSTALL]++;
  let pfn = compact.pfn;
  // Prep a captured page if available, else try the free lists.
  if (pfn >= 0) prep_new_page(mm, pfn, order, gfp);
  else pfn = get_page_from_freelist(mm, gfp, order, alloc_flags, ac);
  if (pfn >= 0) {
    const zone = mm.page_zone(pfn)!;
    zone.compact_blockskip_flush = false;
    compaction_defer_reset(zone, order, true);
    mm.vm_events[COMPACTSUCCESS]++;
    return pfn;
  }
  mm.vm_events[COMPACTFAIL]++;
  return -1;
}

/**
 * kernel: mm/page_alloc.c __alloc_pages_direct_reclaim()
 * Reclaim, then retry; if that still fails, give back highatomic reserves and drain the pcp
 * lists once (from this CPU), since parked pages can be what the request needs.
 */
function __alloc_pages_direct_reclaim(
  mm: MM,
  gfp: number,
  order: number,
  alloc_flags: number,
  ac: AllocContext,
  st: SlowpathState,
): number {
  st.did_some_progress = mm.hooks.try_to_free_pages(order, gfp, ac);
  if (!st.did_some_progress) return -1;
  let drained = false;
  for (;;) {
    const pfn = get_page_from_freelist(mm, gfp, order, alloc_flags, ac);
    if (pfn >= 0 || drained) return pfn;
    unreserve_highatomic_pageblock(mm, ac.zonelist, ac.highest_zoneidx, ac.migratetype, false);
    drain_all_pages(mm, null, ac.cpu);
    drained = true;
  }
}

/**
 * kernel: mm/page_alloc.c should_reclaim_retry()
 * Retry while some zone would pass its min watermark if every reclaimable page were freed, for at
 * most MAX_RECLAIM_RETRIES rounds without progress (costly orders never count as progress).
 * Before giving up, release the highatomic reserves.
 */
function should_reclaim_retry(
  mm: MM,
  order: number,
  ac: AllocContext,
  alloc_flags: number,
  did_some_progress: boolean,
  st: SlowpathState,
): boolean {
  if (did_some_progress && order <= PAGE_ALLOC_COSTLY_ORDER) st.no_progress_loops = 0;
  else st.no_progress_loops++;
  let ret = false;
  if (st.no_progress_loops <= MAX_RECLAIM_RETRIES) {
    for (let i = ac.preferred_index; i < ac.zonelist.length; i++) {
      const zone = mm.zones[ac.zonelist[i]];
      if (zone.zone_idx > ac.highest_zoneidx) continue;
      const available = mm.hooks.zone_reclaimable_pages(zone) + zone.vm_stat[NR_FREE_PAGES];
      if (
        __zone_watermark_ok(
          mm,
          zone,
          order,
          zone.min_wmark_pages(),
          ac.highest_zoneidx,
          alloc_flags,
          available,
        )
      ) {
        ret = true;
        break;
      }
    }
  }
  if (!ret) return unreserve_highatomic_pageblock(mm, ac.zonelist, ac.highest_zoneidx, ac.migratetype, true);
  return ret;
}

/**
 * kernel: mm/page_alloc.c should_compact_retry() (CONFIG_COMPACTION)
 * Retry compaction at rising priority (down to SYNC_FULL, or SYNC_LIGHT for costly orders); a
 * success that lost the race retries up to 16 times (4 for costly orders).
 */
function should_compact_retry(
  mm: MM,
  order: number,
  alloc_flags: number,
  ac: AllocContext,
  st: SlowpathState,
): boolean {
  if (!order) return false;
  if (st.compact_result === COMPACT_SKIPPED)
    return mm.hooks.compaction_zonelist_suitable(ac, order, alloc_flags);
  if (st.compact_result === COMPACT_SUCCESS) {
    let max_retries = MAX_COMPACT_RETRIES;
    if (order > PAGE_ALLOC_COSTLY_ORDER) max_retries /= 4;
    if (++st.compaction_retries <= max_retries) return true;
  }
  const min_priority = order > PAGE_ALLOC_COSTLY_ORDER ? MIN_COMPACT_COSTLY_PRIORITY : MIN_COMPACT_PRIORITY;
  if (st.compact_priority > min_priority) {
    st.compact_priority--;
    st.compaction_retries = 0;
    return true;
  }
  return false;
}

/** kernel: mm/page_alloc.c warn_alloc(): one line in the kernel log per failure. */
function warn_alloc(mm: MM, gfp: number, order: number, ac: AllocContext): void {
  if (gfp & __GFP_NOWARN) return;
  mm.klog.push(
    `page allocation failure: order:${order}, mode:0x${gfp.toString(16)}(${gfp_flags_string(gfp)}), nodemask=(null),cpuset=/,mems_allowed=0-${mm.nodes.length - 1} (cpu ${ac.cpu})`,
  );
}

/**
 * One pass of __alloc_pages_slowpath() from `retry:` to the point where it jumps: a pfn (got_pg),
 * GOTO_RETRY or GOTO_NOPAGE. The cpuset and zonelist-update checks that would `goto restart`
 * never fire in the model (no cpusets, no memory hot-remove), nor do the checks on the current
 * task (PF_MEMALLOC, OOM victims).
 */
function slowpath_retry(
  mm: MM,
  gfp: number,
  order: number,
  ac: AllocContext,
  st: SlowpathState,
  can_compact: boolean,
): number {
  const costly_order = order > PAGE_ALLOC_COSTLY_ORDER;
  if (st.alloc_flags & ALLOC_KSWAPD) mm.hooks.wake_all_kswapds(order, gfp, ac);
  const reserve_flags = __gfp_pfmemalloc_flags(gfp);
  if (reserve_flags)
    st.alloc_flags = gfp_to_alloc_flags_cma(mm, gfp, reserve_flags) | (st.alloc_flags & ALLOC_KSWAPD);
  let pfn = get_page_from_freelist(mm, gfp, order, st.alloc_flags, ac);
  if (pfn >= 0) return pfn;
  if ((gfp & __GFP_DIRECT_RECLAIM) === 0) return GOTO_NOPAGE;

  pfn = __alloc_pages_direct_reclaim(mm, gfp, order, st.alloc_flags, ac, st);
  if (pfn >= 0) return pfn;
  pfn = __alloc_pages_direct_compact(mm, gfp, order, st.alloc_flags, ac, st.compact_priority, st);
  if (pfn >= 0) return pfn;

  if (gfp & __GFP_NORETRY) return GOTO_NOPAGE;
  // Costly orders retry only with __GFP_RETRY_MAYFAIL, and only if they may compact.
  if (costly_order && (!can_compact || (gfp & __GFP_RETRY_MAYFAIL) === 0)) return GOTO_NOPAGE;

  if (should_reclaim_retry(mm, order, ac, st.alloc_flags, st.did_some_progress > 0, st)) return GOTO_RETRY;
  // Compaction needs free order-0 pages: retrying it makes sense only while reclaim progresses.
  if (st.did_some_progress > 0 && can_compact && should_compact_retry(mm, order, st.alloc_flags, ac, st))
    return GOTO_RETRY;
  if (mm.sysctl.defrag_mode && st.alloc_flags & ALLOC_NOFRAGMENT) {
    st.alloc_flags &= ~ALLOC_NOFRAGMENT;
    return GOTO_RETRY;
  }

  pfn = __alloc_pages_may_oom(mm, gfp, order, ac, st);
  if (pfn >= 0) return pfn;
  if (st.did_some_progress) {
    st.no_progress_loops = 0;
    return GOTO_RETRY;
  }
  return GOTO_NOPAGE;
}

export function __alloc_pages_slowpath(mm: MM, gfp: number, order: number, ac: AllocContext): number {
  const can_direct_reclaim = (gfp & __GFP_DIRECT_RECLAIM) !== 0;
  const can_compact = gfp_compaction_allowed(gfp);
  const nofail = (gfp & __GFP_NOFAIL) !== 0;
  const costly_order = order > PAGE_ALLOC_COSTLY_ORDER;
  const st = new SlowpathState();
  let next = GOTO_RETRY;

  if (nofail) {
    // Callers must not ask for more than order 1, nor for no failure without direct reclaim.
    WARN_ON_ONCE(mm, order > 1, 4649, '__alloc_pages_slowpath', ac.cpu);
    WARN_ON_ONCE(mm, !can_direct_reclaim, 4654, '__alloc_pages_slowpath', ac.cpu);
  }

  // restart:
  st.alloc_flags = gfp_to_alloc_flags(mm, gfp, order);
  if (ac.preferred_zone === null) next = GOTO_NOPAGE;
  else {
    if (st.alloc_flags & ALLOC_KSWAPD) mm.hooks.wake_all_kswapds(order, gfp, ac);
    const pfn = get_page_from_freelist(mm, gfp, order, st.alloc_flags, ac);
    if (pfn >= 0) return pfn;
    // Costly and non-movable high-order requests compact before reclaiming, unless they may
    // ignore the watermarks (that attempt has not been made yet).
    if (
      can_direct_reclaim &&
      can_compact &&
      (costly_order || (order > 0 && ac.migratetype !== MIGRATE_MOVABLE)) &&
      !gfp_pfmemalloc_allowed(gfp)
    ) {
      const pfn = __alloc_pages_direct_compact(mm, gfp, order, st.alloc_flags, ac, INIT_COMPACT_PRIORITY, st);
      if (pfn >= 0) return pfn;
      if (costly_order && gfp & __GFP_NORETRY) {
        if (st.compact_result === COMPACT_SKIPPED || st.compact_result === COMPACT_DEFERRED)
          next = GOTO_NOPAGE;
        // A THP fault's local-node-first attempt may compact, not reclaim (alloc_pages_mpol()).
        else if (gfp & __GFP_THISNODE) next = GOTO_NOPAGE;
        else st.compact_priority = INIT_COMPACT_PRIORITY;
      }
    }
  }

  let nofail_loops = 0;
  for (;;) {
    if (next === GOTO_RETRY) next = slowpath_retry(mm, gfp, order, ac, st, can_compact);
    if (next >= 0) return next;
    if (next === GOTO_NOPAGE) {
      // nopage: a __GFP_NOFAIL request must not fail, unless it cannot reclaim: then the kernel
      // gives up on it (after the warning above).
      if (!nofail || !can_direct_reclaim) break;
      // One attempt with part of the min reserve (not ALLOC_NO_WATERMARKS, which could empty
      // it), then back to retry: with the slow path's own flags.
      const pfn = __alloc_pages_cpuset_fallback(mm, gfp, order, ALLOC_MIN_RESERVE, ac);
      if (pfn >= 0) return pfn;
    }
    // goto retry
    if (nofail && ++nofail_loops > NOFAIL_LOOP_LIMIT) {
      mm.klog.push(
        `__GFP_NOFAIL allocation of order ${order} cannot be satisfied: the kernel would loop forever here`,
      );
      break;
    }
    next = GOTO_RETRY;
  }
  // fail:
  warn_alloc(mm, gfp, order, ac);
  return -1;
}
