/**
 * The allocation fast path (mm/page_alloc.c): get_page_from_freelist() walks the zonelist and
 * takes a page from the first zone that passes its watermark, through the pcp lists or the buddy.
 */
import {
  __GFP_COMP,
  __GFP_DIRECT_RECLAIM,
  __GFP_HIGH,
  __GFP_KSWAPD_RECLAIM,
  __GFP_NOMEMALLOC,
  __GFP_ZERO,
  gfp_migratetype,
} from '../gfp.ts';
import {
  ALLOC_CMA,
  ALLOC_CPUSET,
  ALLOC_HIGHATOMIC,
  ALLOC_KSWAPD,
  ALLOC_MIN_RESERVE,
  ALLOC_NO_WATERMARKS,
  ALLOC_NOFRAGMENT,
  ALLOC_NON_BLOCK,
  ALLOC_OOM,
  ALLOC_WMARK_MASK,
  ALLOC_WMARK_MIN,
} from '../internal.ts';
import type { MM } from '../mm.ts';
import {
  MIGRATE_HIGHATOMIC,
  MIGRATE_MOVABLE,
  WMARK_HIGH,
  ZONE_BELOW_HIGH,
  ZONE_BOOSTED_WATERMARK,
  ZONE_NORMAL,
  type Zone,
} from '../mmzone.ts';
import { PG_head, PG_tail, PGI_alloc } from '../page-flags.ts';
import { NUMA_FOREIGN, NUMA_HIT, NUMA_LOCAL, NUMA_MISS, NUMA_OTHER, PGALLOC_DMA } from '../vmstat_items.ts';
import { __rmqueue_smallest } from './buddy.ts';
import type { AllocContext } from './context.ts';
import { deferred_grow_zone } from './deferred.ts';
import { __rmqueue, RMQUEUE_NORMAL, reserve_highatomic_pageblock, rmqueue_state } from './fallback.ts';
import { pcp_allowed_order, rmqueue_pcplist } from './pcp.ts';
import { zone_watermark_fast } from './watermark.ts';

/** kernel: mm/page_alloc.c zone_statistics(): numa_hit/miss/foreign and local/other. */
export function zone_statistics(mm: MM, preferred: Zone, z: Zone, cpu: number, nr: number): void {
  if (!mm.config.NUMA) return;
  const local = z.nid === mm.cpu_to_node[cpu] ? NUMA_LOCAL : NUMA_OTHER;
  if (z.nid === preferred.nid) z.vm_numa_event[NUMA_HIT] += nr;
  else {
    z.vm_numa_event[NUMA_MISS] += nr;
    preferred.vm_numa_event[NUMA_FOREIGN] += nr;
  }
  z.vm_numa_event[local] += nr;
}

/**
 * kernel: mm/page_alloc.c rmqueue_buddy()
 * High-order atomic requests try the HIGHATOMIC reserve first; if all else fails, OOM victims and
 * non-blocking requests may still take from it.
 */
function rmqueue_buddy(mm: MM, zone: Zone, order: number, alloc_flags: number, mt: number): number {
  let pfn = -1;
  if (alloc_flags & ALLOC_HIGHATOMIC) pfn = __rmqueue_smallest(mm, zone, order, MIGRATE_HIGHATOMIC);
  if (pfn < 0) {
    rmqueue_state.mode = RMQUEUE_NORMAL;
    pfn = __rmqueue(mm, zone, order, mt, alloc_flags);
    if (pfn < 0 && alloc_flags & (ALLOC_OOM | ALLOC_NON_BLOCK))
      pfn = __rmqueue_smallest(mm, zone, order, MIGRATE_HIGHATOMIC);
  }
  mm.kernel_ns += mm.cost.zone_lock + (pfn >= 0 ? mm.cost.buddy_alloc : 0);
  return pfn;
}

/** kernel: mm/page_alloc.c rmqueue() */
function rmqueue(
  mm: MM,
  preferred: Zone,
  zone: Zone,
  cpu: number,
  order: number,
  alloc_flags: number,
  mt: number,
): number {
  let pfn = -1;
  if (pcp_allowed_order(mm, order)) pfn = rmqueue_pcplist(mm, zone, cpu, order, mt, alloc_flags);
  if (pfn < 0) pfn = rmqueue_buddy(mm, zone, order, alloc_flags, mt);
  if (pfn >= 0) {
    mm.vm_events[PGALLOC_DMA + zone.zone_idx] += 1 << order;
    zone_statistics(mm, preferred, zone, cpu, 1);
  }
  if (alloc_flags & ALLOC_KSWAPD && zone.flags & ZONE_BOOSTED_WATERMARK) {
    zone.flags &= ~ZONE_BOOSTED_WATERMARK;
    mm.hooks.wakeup_kswapd(zone, 0, 0, zone.zone_idx);
  }
  return pfn;
}

/**
 * kernel: mm/page_alloc.c prep_new_page()
 * Mark the block allocated; __GFP_COMP makes it a compound page (head and tails).
 */
export function prep_new_page(mm: MM, pfn: number, order: number, gfp: number): void {
  const f = mm.frames;
  f.flags[pfn] |= PGI_alloc;
  f.order[pfn] = order;
  // kernel_init_pages(): clear_page() over the block.
  if (gfp & __GFP_ZERO) mm.kernel_ns += mm.cost.clear_page * (1 << order);
  if (gfp & __GFP_COMP && order > 0) {
    f.flags[pfn] |= PG_head;
    const end = pfn + (1 << order);
    for (let p = pfn + 1; p < end; p++) f.flags[p] |= PG_tail;
    mm.kernel_ns += ((1 << order) - 1) * mm.cost.compound_tail;
  }
}

/**
 * kernel: mm/page_alloc.c alloc_flags_nofragment()
 * Avoid fragmenting fallbacks in Normal while DMA32 still has room: set ALLOC_NOFRAGMENT when
 * the preferred zone is Normal and the node's DMA32 is populated (always under defrag_mode).
 */
export function alloc_flags_nofragment(mm: MM, zone: Zone | null, gfp: number): number {
  const alloc_flags = gfp & __GFP_KSWAPD_RECLAIM;
  if (mm.sysctl.defrag_mode) return alloc_flags | ALLOC_NOFRAGMENT;
  if (!zone || zone.zone_idx !== ZONE_NORMAL) return alloc_flags;
  if (mm.nodes.length > 1 && !mm.zones[zone.id - 1].populated_zone()) return alloc_flags;
  return alloc_flags | ALLOC_NOFRAGMENT;
}

/** kernel: mm/page_alloc.c gfp_to_alloc_flags_cma() */
export function gfp_to_alloc_flags_cma(mm: MM, gfp: number, alloc_flags: number): number {
  return mm.config.CMA && gfp_migratetype(gfp) === MIGRATE_MOVABLE ? alloc_flags | ALLOC_CMA : alloc_flags;
}

/**
 * kernel: mm/page_alloc.c gfp_to_alloc_flags()
 * The slow path's flags: the min watermark; __GFP_HIGH reaches into it; callers that cannot
 * reclaim are ALLOC_NON_BLOCK and, for high orders with __GFP_HIGH, may use the HIGHATOMIC reserve.
 */
export function gfp_to_alloc_flags(mm: MM, gfp: number, order: number): number {
  let alloc_flags = ALLOC_WMARK_MIN | ALLOC_CPUSET;
  alloc_flags |= gfp & (__GFP_HIGH | __GFP_KSWAPD_RECLAIM);
  if ((gfp & __GFP_DIRECT_RECLAIM) === 0) {
    if ((gfp & __GFP_NOMEMALLOC) === 0) {
      alloc_flags |= ALLOC_NON_BLOCK;
      if (order > 0 && alloc_flags & ALLOC_MIN_RESERVE) alloc_flags |= ALLOC_HIGHATOMIC;
    }
    if (alloc_flags & ALLOC_MIN_RESERVE) alloc_flags &= ~ALLOC_CPUSET;
  }
  alloc_flags = gfp_to_alloc_flags_cma(mm, gfp, alloc_flags);
  if (mm.sysctl.defrag_mode) alloc_flags |= ALLOC_NOFRAGMENT;
  return alloc_flags;
}

/**
 * kernel: mm/page_alloc.c get_page_from_freelist()
 * Walk the zonelist from the preferred zone. A zone below its high watermark is flagged
 * ZONE_BELOW_HIGH (pcp lists then shrink); one below the requested mark is skipped. Without
 * defrag_mode, ALLOC_NOFRAGMENT is dropped when the walk reaches another node (locality first)
 * or finds nothing, and the walk starts again.
 */
export function get_page_from_freelist(
  mm: MM,
  gfp: number,
  order: number,
  alloc_flags: number,
  ac: AllocContext,
): number {
  const zones = mm.zones;
  const zonelist = ac.zonelist;
  const preferred = ac.preferred_zone;
  if (preferred === null) return -1;
  const defrag_mode = mm.sysctl.defrag_mode !== 0;
  // On NUMA, first pass over nodes whose kswapd is busy reclaiming; come back to them last.
  let skip_kswapd_nodes = mm.nodes.length > 1;
  for (;;) {
    const no_fallback = (alloc_flags & ALLOC_NOFRAGMENT) !== 0;
    let restart = false;
    let skipped = false;
    for (let i = ac.preferred_index; i < zonelist.length; i++) {
      const zone = zones[zonelist[i]];
      if (zone.zone_idx > ac.highest_zoneidx) continue;
      if (
        no_fallback &&
        !defrag_mode &&
        mm.nodes.length > 1 &&
        zone !== preferred &&
        zone.nid !== preferred.nid
      ) {
        alloc_flags &= ~ALLOC_NOFRAGMENT;
        restart = true;
        break;
      }
      if (skip_kswapd_nodes && mm.nodes[zone.nid].kswapd_running) {
        skipped = true;
        continue;
      }
      let ok = false;
      if ((zone.flags & ZONE_BELOW_HIGH) === 0) {
        if (
          zone_watermark_fast(mm, zone, order, zone.wmark_pages(WMARK_HIGH), ac.highest_zoneidx, alloc_flags)
        )
          ok = true;
        else zone.flags |= ZONE_BELOW_HIGH;
      }
      if (!ok) {
        const mark = zone.wmark_pages(alloc_flags & ALLOC_WMARK_MASK);
        if (
          !zone_watermark_fast(mm, zone, order, mark, ac.highest_zoneidx, alloc_flags) &&
          // Below the mark, but the zone may still have deferred pages to grow into.
          !deferred_grow_zone(mm, zone, order) &&
          (alloc_flags & ALLOC_NO_WATERMARKS) === 0
        ) {
          continue;
        }
      }
      let pfn = rmqueue(mm, preferred, zone, ac.cpu, order, alloc_flags, ac.migratetype);
      // No block of the order: try again if the zone has deferred pages.
      while (pfn < 0 && deferred_grow_zone(mm, zone, order))
        pfn = rmqueue(mm, preferred, zone, ac.cpu, order, alloc_flags, ac.migratetype);
      if (pfn >= 0) {
        prep_new_page(mm, pfn, order, gfp);
        if (alloc_flags & ALLOC_HIGHATOMIC) reserve_highatomic_pageblock(mm, pfn, order, zone);
        return pfn;
      }
    }
    if (restart) continue;
    if (skip_kswapd_nodes && skipped) {
      skip_kswapd_nodes = false;
      continue;
    }
    if (no_fallback && !defrag_mode) {
      alloc_flags &= ~ALLOC_NOFRAGMENT;
      continue;
    }
    return -1;
  }
}
