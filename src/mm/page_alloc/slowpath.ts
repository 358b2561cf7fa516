/**
 * kernel: mm/page_alloc.c __alloc_pages_slowpath(), the 6.x shape: wake kswapd, retry at the min
 * watermark, compact first for costly orders, then direct reclaim and compaction at rising
 * priority, bounded retries, the OOM killer, and for __GFP_NOFAIL no failure at all. Reclaim,
 * compaction and OOM are reached through mm.hooks.
 */
import {
  __GFP_DIRECT_RECLAIM,
  __GFP_IO,
  __GFP_NOFAIL,
  __GFP_NORETRY,
  __GFP_NOWARN,
  __GFP_RETRY_MAYFAIL,
  __GFP_THISNODE,
  gfp_flags_string,
} from '../gfp.ts';
import {
  ALLOC_CMA,
  ALLOC_KSWAPD,
  ALLOC_MIN_RESERVE,
  ALLOC_NOFRAGMENT,
  ALLOC_WMARK_MIN,
} from '../internal.ts';
import type { MM } from '../mm.ts';
import { MIGRATE_MOVABLE, PAGE_ALLOC_COSTLY_ORDER, ZONE_NORMAL } from '../mmzone.ts';
import { NR_FREE_PAGES } from '../vmstat_items.ts';
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
import { get_page_from_freelist, gfp_to_alloc_flags } from './rmqueue.ts';
import { __zone_watermark_ok } from './watermark.ts';

export const MAX_RECLAIM_RETRIES = 16;
export const MAX_COMPACT_RETRIES = 16;
/** How many times a __GFP_NOFAIL request loops before the model reports it would hang. */
export const NOFAIL_LOOP_LIMIT = 1000;

const compact = new CompactOutcome();

/** Slow-path bookkeeping that survives the retry loop (compaction_retries, no_progress_loops…). */
class SlowpathState {
  compaction_retries = 0;
  no_progress_loops = 0;
  compact_priority = DEF_COMPACT_PRIORITY;
  compact_result = COMPACT_SKIPPED;
}

/** kernel: mm/page_alloc.c __alloc_pages_direct_compact() */
function __alloc_pages_direct_compact(
  mm: MM,
  gfp: number,
  order: number,
  alloc_flags: number,
  ac: AllocContext,
  prio: number,
  st: SlowpathState,
): number {
  if (!order) {
    st.compact_result = COMPACT_SKIPPED;
    return -1;
  }
  mm.hooks.try_to_compact_pages(gfp, order, alloc_flags, ac, prio, compact);
  st.compact_result = compact.result;
  if (compact.result === COMPACT_SKIPPED) return -1;
  if (compact.pfn >= 0) return compact.pfn;
  return get_page_from_freelist(mm, gfp, order, alloc_flags, ac);
}

/**
 * kernel: mm/page_alloc.c __alloc_pages_direct_reclaim()
 * Reclaim, then retry; if that still fails, give back highatomic reserves and drain the pcp
 * lists once, since parked pages can be what the request needs.
 */
function __alloc_pages_direct_reclaim(
  mm: MM,
  gfp: number,
  order: number,
  alloc_flags: number,
  ac: AllocContext,
  progress: { pages: number },
): number {
  progress.pages = mm.hooks.try_to_free_pages(order, gfp, ac);
  if (!progress.pages) return -1;
  let drained = false;
  for (;;) {
    const pfn = get_page_from_freelist(mm, gfp, order, alloc_flags, ac);
    if (pfn >= 0 || drained) return pfn;
    unreserve_highatomic_pageblock(mm, ac.zonelist, ac.highest_zoneidx, ac.migratetype, false);
    drain_all_pages(mm, null);
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
 * kernel: mm/page_alloc.c should_compact_retry()
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

export function __alloc_pages_slowpath(mm: MM, gfp: number, order: number, ac: AllocContext): number {
  const costly_order = order > PAGE_ALLOC_COSTLY_ORDER;
  const can_direct_reclaim = (gfp & __GFP_DIRECT_RECLAIM) !== 0;
  const st = new SlowpathState();
  const progress = { pages: 0 };
  let alloc_flags = gfp_to_alloc_flags(mm, gfp, order);
  let pfn = -1;
  let nofail_loops = 0;

  // restart:
  if (alloc_flags & ALLOC_KSWAPD) mm.hooks.wake_all_kswapds(order, gfp, ac);
  pfn = get_page_from_freelist(mm, gfp, order, alloc_flags, ac);
  if (pfn >= 0) return pfn;

  // Costly and non-movable high-order requests compact before reclaiming.
  if (
    can_direct_reclaim &&
    gfp & __GFP_IO &&
    (costly_order || (order > 0 && ac.migratetype !== MIGRATE_MOVABLE))
  ) {
    pfn = __alloc_pages_direct_compact(mm, gfp, order, alloc_flags, ac, INIT_COMPACT_PRIORITY, st);
    if (pfn >= 0) return pfn;
    if (costly_order && gfp & __GFP_NORETRY) {
      if (st.compact_result === COMPACT_SKIPPED || st.compact_result === COMPACT_DEFERRED) return nopage();
      st.compact_priority = INIT_COMPACT_PRIORITY;
    }
  }

  for (;;) {
    // retry:
    if (alloc_flags & ALLOC_KSWAPD) mm.hooks.wake_all_kswapds(order, gfp, ac);
    pfn = get_page_from_freelist(mm, gfp, order, alloc_flags, ac);
    if (pfn >= 0) return pfn;
    if (!can_direct_reclaim) return nopage();

    pfn = __alloc_pages_direct_reclaim(mm, gfp, order, alloc_flags, ac, progress);
    if (pfn >= 0) return pfn;
    pfn = __alloc_pages_direct_compact(mm, gfp, order, alloc_flags, ac, st.compact_priority, st);
    if (pfn >= 0) return pfn;

    if (gfp & __GFP_NORETRY) return nopage();
    if (costly_order && (gfp & __GFP_RETRY_MAYFAIL) === 0) return nopage();

    const did_some_progress = progress.pages > 0;
    if (should_reclaim_retry(mm, order, ac, alloc_flags, did_some_progress, st)) continue;
    if (did_some_progress && should_compact_retry(mm, order, alloc_flags, ac, st)) continue;
    if (mm.sysctl.defrag_mode && alloc_flags & ALLOC_NOFRAGMENT) {
      alloc_flags &= ~ALLOC_NOFRAGMENT;
      continue;
    }
    // __alloc_pages_may_oom(): never for costly orders, __GFP_RETRY_MAYFAIL, __GFP_THISNODE
    // or requests that cannot use Normal.
    const may_oom =
      !costly_order &&
      (gfp & (__GFP_RETRY_MAYFAIL | __GFP_THISNODE)) === 0 &&
      ac.highest_zoneidx >= ZONE_NORMAL;
    if (may_oom && mm.hooks.out_of_memory(gfp, order, ac)) {
      st.no_progress_loops = 0;
      continue;
    }
    if (gfp & __GFP_NOFAIL && ++nofail_loops < NOFAIL_LOOP_LIMIT) {
      // The kernel loops forever here, dipping into the min reserve.
      alloc_flags |= ALLOC_MIN_RESERVE;
      continue;
    }
    return nopage();
  }

  function nopage(): number {
    if (gfp & __GFP_NOFAIL) {
      const flags =
        ALLOC_WMARK_MIN | ALLOC_MIN_RESERVE | (ac.migratetype === MIGRATE_MOVABLE ? ALLOC_CMA : 0);
      const p = get_page_from_freelist(mm, gfp, order, flags, ac);
      if (p >= 0) return p;
      mm.klog.push(
        `__GFP_NOFAIL allocation of order ${order} cannot be satisfied: the kernel would loop forever here`,
      );
    }
    warn_alloc(mm, gfp, order, ac);
    return -1;
  }
}
