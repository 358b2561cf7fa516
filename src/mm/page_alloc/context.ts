/**
 * struct alloc_context and the hooks through which the slow path reaches reclaim, compaction and
 * the OOM killer (mm/vmscan.c, mm/compaction.c, mm/oom_kill.c). Until those mechanisms are
 * installed the hooks report no progress, so an allocation fails where the kernel would fail
 * after they had found nothing to do.
 */
import type { Zone } from '../mmzone.ts';

export class AllocContext {
  zonelist: readonly number[] = [];
  /** Index into zonelist of the first usable zone (preferred_zoneref). */
  preferred_index = 0;
  preferred_zone: Zone | null = null;
  highest_zoneidx = 0;
  migratetype = 0;
  /** The CPU the allocation runs on (its pcp lists, numa_node_id()). */
  cpu = 0;
  spread_dirty_pages = false;
}

/** enum compact_result (include/linux/compaction.h), the values the slow path looks at. */
export const COMPACT_NOT_SUITABLE_ZONE = 0;
export const COMPACT_SKIPPED = 1;
export const COMPACT_DEFERRED = 2;
export const COMPACT_NO_SUITABLE_PAGE = 3;
export const COMPACT_CONTINUE = 4;
export const COMPACT_COMPLETE = 5;
export const COMPACT_PARTIAL_SKIPPED = 6;
export const COMPACT_CONTENDED = 7;
export const COMPACT_SUCCESS = 8;

/** enum compact_priority */
export const COMPACT_PRIO_SYNC_FULL = 0;
export const MIN_COMPACT_PRIORITY = COMPACT_PRIO_SYNC_FULL;
export const COMPACT_PRIO_SYNC_LIGHT = 1;
export const MIN_COMPACT_COSTLY_PRIORITY = COMPACT_PRIO_SYNC_LIGHT;
export const DEF_COMPACT_PRIORITY = COMPACT_PRIO_SYNC_LIGHT;
export const COMPACT_PRIO_ASYNC = 2;
export const INIT_COMPACT_PRIORITY = COMPACT_PRIO_ASYNC;

/** Out-parameters of the compaction hook, reused between calls. */
export class CompactOutcome {
  /** The captured or allocated pfn, or -1. */
  pfn = -1;
  result = COMPACT_SKIPPED;
}

export interface SlowpathHooks {
  /** wakeup_kswapd() for one zone (a boosted watermark, or from wake_all_kswapds). */
  wakeup_kswapd(zone: Zone, gfp: number, order: number, highest_zoneidx: number): void;
  /** wake_all_kswapds() */
  wake_all_kswapds(order: number, gfp: number, ac: AllocContext): void;
  /** __alloc_pages_direct_reclaim()'s try_to_free_pages(): pages reclaimed. */
  try_to_free_pages(order: number, gfp: number, ac: AllocContext): number;
  /**
   * try_to_compact_pages() with capture; fills `out`. The slow path calls it in its retry loop
   * whatever the GFP mask; like the kernel's, it must report COMPACT_SKIPPED when
   * !gfp_compaction_allowed(gfp) (no __GFP_IO).
   */
  try_to_compact_pages(
    gfp: number,
    order: number,
    alloc_flags: number,
    ac: AllocContext,
    prio: number,
    out: CompactOutcome,
  ): void;
  /** compaction_zonelist_suitable(): could reclaim make compaction worthwhile? */
  compaction_zonelist_suitable(ac: AllocContext, order: number, alloc_flags: number): boolean;
  /** zone_reclaimable_pages() */
  zone_reclaimable_pages(zone: Zone): number;
  /** __alloc_pages_may_oom()'s out_of_memory(): whether a victim was killed. */
  out_of_memory(gfp: number, order: number, ac: AllocContext): boolean;
}

/**
 * The hooks of a kernel whose reclaim, compaction and OOM killer find nothing to do: compaction
 * is configured (CONFIG_COMPACTION=y, the slow path's branches) but always COMPACT_SKIPPED; no
 * swap, no LRU.
 */
export function no_slowpath_hooks(): SlowpathHooks {
  return {
    wakeup_kswapd() {},
    wake_all_kswapds() {},
    try_to_free_pages: () => 0,
    try_to_compact_pages(_gfp, _order, _flags, _ac, _prio, out) {
      out.pfn = -1;
      out.result = COMPACT_SKIPPED;
    },
    compaction_zonelist_suitable: () => false,
    zone_reclaimable_pages: () => 0,
    out_of_memory: () => false,
  };
}
