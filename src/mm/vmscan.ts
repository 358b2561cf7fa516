/**
 * Reclaim (mm/vmscan.c): direct reclaim from the allocation slow path and kswapd, one per node,
 * woken when a zone falls below its low watermark (or its watermark is boosted) and reclaiming
 * until every eligible zone is above its high watermark plus boost.
 *
 * What there is to reclaim so far: reclaimable slab objects (shrink_slab). Anonymous pages need
 * swap, which the model's machines do not have (get_scan_count() then scans no anon pages), and
 * the file LRU stays empty until the page cache exists, so shrink_lruvec() finds nothing there.
 */

import { LRU_ACTIVE_FILE, LRU_INACTIVE_FILE } from './lru.ts';
import type { MM } from './mm.ts';
import { MAX_NR_ZONES, type PglistData, type Zone } from './mmzone.ts';
import type { AllocContext } from './page_alloc/context.ts';
import { zone_watermark_ok } from './page_alloc/watermark.ts';
import { DEF_PRIORITY, shrink_slab } from './shrinker.ts';
import { NR_ZONE_INACTIVE_ANON, vm_event_index } from './vmstat_items.ts';

export const SWAP_CLUSTER_MAX = 32;
/** kswapd gives a node up after this many runs that reclaimed nothing (MAX_RECLAIM_RETRIES). */
export const MAX_RECLAIM_RETRIES = 16;

const ALLOCSTALL_DMA = vm_event_index('allocstall_dma');
const PAGEOUTRUN = vm_event_index('pageoutrun');
const KSWAPD_LOW_WMARK_HIT_QUICKLY = vm_event_index('kswapd_low_wmark_hit_quickly');
const KSWAPD_HIGH_WMARK_HIT_QUICKLY = vm_event_index('kswapd_high_wmark_hit_quickly');

/** Per-node kswapd state (pgdat->kswapd_order, kswapd_highest_zoneidx). */
export class KswapdState {
  order = 0;
  highest_zoneidx = MAX_NR_ZONES;
  /** A run is queued on the clock. */
  queued = false;
}

/**
 * kernel: mm/vmscan.c zone_reclaimable_pages()
 * File LRU pages, plus anonymous ones only when there is swap to put them (there is none).
 */
export function zone_reclaimable_pages(zone: Zone): number {
  return (
    zone.vm_stat[NR_ZONE_INACTIVE_ANON + LRU_INACTIVE_FILE] +
    zone.vm_stat[NR_ZONE_INACTIVE_ANON + LRU_ACTIVE_FILE]
  );
}

/**
 * kernel: mm/vmscan.c shrink_node()
 * One reclaim pass over a node at `priority`: its LRU lists (empty of reclaimable pages for now)
 * and the slab shrinkers. Returns the pages freed.
 */
export function shrink_node(mm: MM, nid: number, gfp: number, priority: number): number {
  const before = mm.slab.reclaimed_pages;
  shrink_slab(mm, gfp, nid, priority);
  const reclaimed = mm.slab.reclaimed_pages - before;
  // Any reclaim that frees something, direct or kswapd's own, revives a kswapd that gave up.
  if (reclaimed) mm.nodes[nid].kswapd_failures = 0;
  return reclaimed;
}

/**
 * kernel: mm/vmscan.c try_to_free_pages() / do_try_to_free_pages()
 * Direct reclaim: raise the pressure from DEF_PRIORITY down until SWAP_CLUSTER_MAX pages are
 * freed, over the nodes of the allocation's zonelist. Counts allocstall against the highest
 * zone the request may use.
 */
export function try_to_free_pages(mm: MM, _order: number, gfp: number, ac: AllocContext): number {
  mm.vm_events[ALLOCSTALL_DMA + Math.min(ac.highest_zoneidx, MAX_NR_ZONES - 1)]++;
  const nids: number[] = [];
  for (const zid of ac.zonelist) {
    const nid = mm.zones[zid].nid;
    if (!nids.includes(nid)) nids.push(nid);
  }
  let reclaimed = 0;
  for (let priority = DEF_PRIORITY; priority >= 0 && reclaimed < SWAP_CLUSTER_MAX; priority--) {
    for (const nid of nids) reclaimed += shrink_node(mm, nid, gfp, priority);
  }
  return reclaimed;
}

/**
 * kernel: mm/vmscan.c pgdat_balanced()
 * Every managed zone up to `highest_zoneidx` passes its high watermark (boost included) at
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
 * already balanced and unboosted, or kswapd has given up on it (then direct reclaim must do).
 */
export function wakeup_kswapd(
  mm: MM,
  zone: Zone,
  _gfp: number,
  order: number,
  highest_zoneidx: number,
): void {
  if (!zone.managed_pages) return;
  const node = mm.nodes[zone.nid];
  const k = mm.kswapd[zone.nid];
  if (k.highest_zoneidx === MAX_NR_ZONES || k.highest_zoneidx < highest_zoneidx)
    k.highest_zoneidx = highest_zoneidx;
  if (k.order < order) k.order = order;
  if (mm.nodes[zone.nid].kswapd_failures >= MAX_RECLAIM_RETRIES) return;
  // Balanced and unboosted: nothing for kswapd (the kernel then wakes kcompactd for callers
  // that cannot reclaim directly; compaction comes later).
  if (pgdat_balanced(mm, node, order, highest_zoneidx) && !node_boosted(node)) return;
  if (k.queued) return;
  k.queued = true;
  mm.defer(0, () => kswapd(mm, zone.nid));
}

function node_boosted(node: PglistData): boolean {
  for (const zone of node.node_zones) if (zone.watermark_boost) return true;
  return false;
}

/** kernel: mm/vmscan.c wake_all_kswapds(): every node of the allocation's zonelist. */
export function wake_all_kswapds(mm: MM, order: number, gfp: number, ac: AllocContext): void {
  const seen: number[] = [];
  for (let i = ac.preferred_index; i < ac.zonelist.length; i++) {
    const zone = mm.zones[ac.zonelist[i]];
    if (zone.zone_idx > ac.highest_zoneidx || seen.includes(zone.nid)) continue;
    seen.push(zone.nid);
    wakeup_kswapd(mm, zone, gfp, order, ac.highest_zoneidx);
  }
}

/**
 * kernel: mm/vmscan.c kswapd() → balance_pgdat()
 * Reclaim at rising priority until the node is balanced for the recorded order and zone; a
 * boosted watermark is reclaimed for and then cleared. A run that frees nothing counts a failure.
 */
export function kswapd(mm: MM, nid: number): void {
  const k = mm.kswapd[nid];
  const node = mm.nodes[nid];
  k.queued = false;
  const order = k.order;
  const highest = k.highest_zoneidx === MAX_NR_ZONES ? MAX_NR_ZONES - 1 : k.highest_zoneidx;
  k.order = 0;
  k.highest_zoneidx = MAX_NR_ZONES;
  node.kswapd_running = true;
  mm.vm_events[PAGEOUTRUN]++;
  const boosted = node_boosted(node);
  let reclaimed = 0;
  let balanced = pgdat_balanced(mm, node, order, highest) && !boosted;
  if (balanced) mm.vm_events[KSWAPD_LOW_WMARK_HIT_QUICKLY]++;
  for (let priority = DEF_PRIORITY; !balanced && priority >= 1; priority--) {
    reclaimed += shrink_node(mm, nid, 0, priority);
    balanced = pgdat_balanced(mm, node, order, highest);
  }
  if (balanced && reclaimed === 0 && !boosted) mm.vm_events[KSWAPD_HIGH_WMARK_HIT_QUICKLY]++;
  // The boost has been reclaimed for (or cannot be): clear it.
  for (const zone of node.node_zones) zone.watermark_boost = 0;
  if (!balanced && reclaimed === 0) node.kswapd_failures++;
  node.kswapd_running = false;
}
