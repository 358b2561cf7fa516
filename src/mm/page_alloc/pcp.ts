/**
 * Per-cpu page lists (mm/page_alloc.c, 6.7+ auto-tuned `high`). Each CPU keeps, per zone, LIFO
 * lists of free blocks of orders 0..3 per pcp type plus two THP lists. They hide free memory
 * from the buddy lists (it cannot merge while parked there) until a drain returns it.
 */
import type { MM } from '../mm.ts';
import {
  HPAGE_PMD_ORDER,
  MIGRATE_MOVABLE,
  MIGRATE_PCPTYPES,
  NR_LOWORDER_PCP_LISTS,
  NR_PCP_LISTS,
  PAGE_ALLOC_COSTLY_ORDER,
  PCPF_FREE_HIGH_BATCH,
  PCPF_PREV_FREE_HIGH_ORDER,
  WMARK_HIGH,
  WMARK_LOW,
  ZONE_BELOW_HIGH,
  ZONE_MOVABLE,
  ZONE_RECLAIM_ACTIVE,
  type Zone,
} from '../mmzone.ts';
import { PGI_pcp } from '../page-flags.ts';
import { get_pfnblock_migratetype } from '../pageblock.ts';
import { PGFREE } from '../vmstat_items.ts';
import { __free_one_page } from './buddy.ts';
import { __rmqueue, RMQUEUE_NORMAL, rmqueue_state } from './fallback.ts';
import { zone_watermark_ok } from './watermark.ts';

/**
 * Per CPU and zone: whether the CPU holds a counter differential for the zone that has not been
 * folded into it yet (kernel: zone->per_cpu_zonestats->vm_stat_diff[] not all zero). The model
 * keeps zone counters exact; refresh_cpu_vm_stats() needs only this bit, to arm pcp->expire
 * (docs/decisions.md).
 */
/**
 * kernel: mm/vmstat.c __mod_zone_page_state(), its per-cpu side: `cpu` changed a counter of
 * `zone` (NR_FREE_PAGES and friends, when pages move on or off the zone's buddy lists), leaving
 * a differential for the vmstat worker to fold.
 */
export function mod_zone_stat_diff(zone: Zone, cpu: number): void {
  let diff = zone.vm_stat_diff;
  if (diff === null) {
    diff = new Uint8Array(zone.pcp.nr_cpus);
    zone.vm_stat_diff = diff;
  }
  diff[cpu] = 1;
}

/**
 * kernel: mm/vmstat.c refresh_cpu_vm_stats(), this_cpu_xchg(pzstats->vm_stat_diff[i], 0): fold
 * `cpu`'s differentials for `zone`; whether there were any.
 */
export function fold_zone_stat_diff(zone: Zone, cpu: number): boolean {
  const diff = zone.vm_stat_diff;
  if (diff === null || !diff[cpu]) return false;
  diff[cpu] = 0;
  return true;
}

/** CONFIG_PCP_BATCH_SCALE_MAX */
export const PCP_BATCH_SCALE_MAX = 5;
/** MIN_PERCPU_PAGELIST_HIGH_FRACTION */
export const MIN_PERCPU_PAGELIST_HIGH_FRACTION = 8;

// kernel: mm/page_alloc.c pcp_allowed_order()
export function pcp_allowed_order(mm: MM, order: number): boolean {
  return order <= PAGE_ALLOC_COSTLY_ORDER || (mm.config.TRANSPARENT_HUGEPAGE && order === HPAGE_PMD_ORDER);
}

// kernel: mm/page_alloc.c order_to_pindex()
export function order_to_pindex(mt: number, order: number): number {
  if (order > PAGE_ALLOC_COSTLY_ORDER) return NR_LOWORDER_PCP_LISTS + (mt === MIGRATE_MOVABLE ? 1 : 0);
  return MIGRATE_PCPTYPES * order + mt;
}

// kernel: mm/page_alloc.c pindex_to_order()
export function pindex_to_order(pindex: number): number {
  return pindex >= NR_LOWORDER_PCP_LISTS ? HPAGE_PMD_ORDER : Math.floor(pindex / MIGRATE_PCPTYPES);
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(v, hi));
}

/**
 * kernel: mm/page_alloc.c zone_batchsize()
 * About 0.1% of the zone or 1 MiB, whichever is smaller, clamped to 2^n - 1: 63 for any zone of
 * 1 GiB or more, 31 for 128 MiB, 0 (pcp effectively off) below 4 MiB.
 */
export function zone_batchsize(zone: Zone): number {
  let batch = Math.min(Math.floor(zone.managed_pages / 1024), (1 << 20) / 4096);
  batch = Math.floor(batch / 4);
  if (batch < 1) batch = 1;
  const n = batch + (batch >> 1);
  return 2 ** Math.floor(Math.log2(n)) - 1;
}

/**
 * kernel: mm/page_alloc.c zone_highsize()
 * The low watermark (or managed / fraction) split over the node's CPUs, at least 4 batches.
 */
export function zone_highsize(mm: MM, zone: Zone, batch: number, high_fraction: number): number {
  const total =
    high_fraction === 0 ? zone.wmark_pages(WMARK_LOW) : Math.floor(zone.managed_pages / high_fraction);
  let nr_split_cpus = mm.nodes[zone.nid].cpus.length;
  if (nr_split_cpus === 0) nr_split_cpus = mm.nr_cpus;
  return Math.max(Math.floor(total / nr_split_cpus), batch << 2);
}

/** kernel: mm/page_alloc.c zone_set_pageset_high_and_batch() */
export function zone_set_pageset_high_and_batch(mm: MM, zone: Zone): void {
  const batch = Math.max(1, zone_batchsize(zone));
  const fraction = mm.sysctl.percpu_pagelist_high_fraction;
  let high_min: number;
  let high_max: number;
  if (fraction) {
    high_min = zone_highsize(mm, zone, batch, fraction);
    high_max = high_min;
  } else {
    high_min = zone_highsize(mm, zone, batch, 0);
    high_max = zone_highsize(mm, zone, batch, MIN_PERCPU_PAGELIST_HIGH_FRACTION);
  }
  const pcp = zone.pcp;
  for (let cpu = 0; cpu < mm.nr_cpus; cpu++) {
    pcp.batch[cpu] = batch;
    pcp.high_min[cpu] = high_min;
    pcp.high_max[cpu] = high_max;
  }
}

/**
 * kernel: mm/page_alloc.c nr_pcp_alloc()
 * How many blocks a refill takes: batch << alloc_factor for order 0 (doubling on consecutive
 * refills without a free), capped so the list stays below high; max(batch >> order, 2) above.
 * Refilling also grows pcp->high towards high_max while the zone is above its high watermark.
 */
function nr_pcp_alloc(zone: Zone, cpu: number, order: number): number {
  const pcp = zone.pcp;
  const base_batch = pcp.batch[cpu];
  const high_min = pcp.high_min[cpu];
  const high_max = pcp.high_max[cpu];
  let high = clamp(pcp.high[cpu], high_min, high_max);
  pcp.high[cpu] = high;
  if (high < base_batch) return 1;
  let batch = order ? base_batch : base_batch << pcp.alloc_factor[cpu];
  if (high_min !== high_max && (zone.flags & ZONE_BELOW_HIGH) === 0) {
    high = Math.min(high + batch, high_max);
    pcp.high[cpu] = high;
  }
  if (!order) {
    const max_nr_alloc = Math.max(high - pcp.count[cpu] - base_batch, base_batch);
    if (batch <= max_nr_alloc && pcp.alloc_factor[cpu] < PCP_BATCH_SCALE_MAX) pcp.alloc_factor[cpu]++;
    batch = Math.min(batch, max_nr_alloc);
  }
  if (batch > 1) batch = Math.max(batch >> order, 2);
  return batch;
}

/**
 * kernel: mm/page_alloc.c rmqueue_bulk()
 * Take `count` blocks from the buddy lists onto the tail of a pcp list, so the list is filled in
 * ascending physical order. The free-page counters change on `cpu`.
 */
function rmqueue_bulk(
  mm: MM,
  zone: Zone,
  cpu: number,
  order: number,
  count: number,
  list: number,
  mt: number,
  alloc_flags: number,
): number {
  const f = mm.frames;
  rmqueue_state.mode = RMQUEUE_NORMAL;
  let i = 0;
  for (; i < count; i++) {
    const pfn = __rmqueue(mm, zone, order, mt, alloc_flags);
    if (pfn < 0) break;
    f.flags[pfn] |= PGI_pcp;
    f.order[pfn] = order;
    f.list_add_tail(pfn, list);
  }
  if (i) mod_zone_stat_diff(zone, cpu);
  mm.kernel_ns += mm.cost.zone_lock + i * mm.cost.buddy_alloc;
  return i;
}

/**
 * kernel: mm/page_alloc.c rmqueue_pcplist() + __rmqueue_pcplist()
 * Allocate from this CPU's list head, refilling it from the buddy lists when empty. Only a refill
 * changes the zone's counters (pcp->expire is the vmstat worker's business).
 */
export function rmqueue_pcplist(
  mm: MM,
  zone: Zone,
  cpu: number,
  order: number,
  mt: number,
  alloc_flags: number,
): number {
  const pcp = zone.pcp;
  const f = mm.frames;
  pcp.free_count[cpu] >>= 1;
  const list = pcp.list_base + cpu * NR_PCP_LISTS + order_to_pindex(mt, order);
  if (f.list_count[list] === 0) {
    const batch = nr_pcp_alloc(zone, cpu, order);
    const alloced = rmqueue_bulk(mm, zone, cpu, order, batch, list, mt, alloc_flags);
    pcp.count[cpu] += alloced << order;
    if (alloced === 0) return -1;
  }
  const pfn = f.list_first(list);
  f.list_del(pfn, list);
  f.flags[pfn] &= ~PGI_pcp;
  pcp.count[cpu] -= 1 << order;
  mm.kernel_ns += mm.cost.pcp_alloc;
  return pfn;
}

/**
 * kernel: mm/page_alloc.c free_pcppages_bulk()
 * Return `count` pages of `cpu`'s lists to the buddy lists, from the tails (the coldest blocks),
 * round-robin over the lists starting with `pindex`. The free-page counters change on the CPU
 * doing it, `this_cpu` (another CPU for drain_all_pages(); -1 for none in particular).
 */
export function free_pcppages_bulk(
  mm: MM,
  zone: Zone,
  cpu: number,
  count: number,
  pindex: number,
  this_cpu = cpu,
): void {
  const pcp = zone.pcp;
  const f = mm.frames;
  count = Math.min(pcp.count[cpu], count);
  if (count > 0) mm.kernel_ns += mm.cost.zone_lock;
  if (count > 0 && this_cpu >= 0) mod_zone_stat_diff(zone, this_cpu);
  const base = pcp.list_base + cpu * NR_PCP_LISTS;
  pindex = pindex - 1;
  while (count > 0) {
    let list: number;
    do {
      if (++pindex > NR_PCP_LISTS - 1) pindex = 0;
      list = base + pindex;
    } while (f.list_count[list] === 0);
    const order = pindex_to_order(pindex);
    const nr_pages = 1 << order;
    do {
      const pfn = f.list_last(list);
      const mt = get_pfnblock_migratetype(mm, pfn);
      f.list_del(pfn, list);
      f.flags[pfn] &= ~PGI_pcp;
      count -= nr_pages;
      pcp.count[cpu] -= nr_pages;
      __free_one_page(mm, pfn, zone, order, mt, 0);
    } while (count > 0 && f.list_count[list] !== 0);
  }
}

/**
 * kernel: mm/page_alloc.c nr_pcp_high()
 * The effective high mark for this free, adjusting pcp->high: shrink it while the zone is under
 * reclaim or below its high watermark, grow it when frees keep overflowing it.
 */
function nr_pcp_high(zone: Zone, cpu: number, batch: number, free_high: boolean): number {
  const pcp = zone.pcp;
  const high_min = pcp.high_min[cpu];
  const high_max = pcp.high_max[cpu];
  let high = clamp(pcp.high[cpu], high_min, high_max);
  pcp.high[cpu] = high;
  if (!high) return 0;
  if (free_high) {
    pcp.high[cpu] = Math.max(high - (batch << PCP_BATCH_SCALE_MAX), high_min);
    return 0;
  }
  if (zone.flags & ZONE_RECLAIM_ACTIVE) {
    const free_count = Math.max(pcp.free_count[cpu], batch);
    pcp.high[cpu] = Math.max(high - free_count, high_min);
    return Math.min(batch << 2, pcp.high[cpu]);
  }
  if (high_min === high_max) return high;
  if (zone.flags & ZONE_BELOW_HIGH) {
    const free_count = Math.max(pcp.free_count[cpu], batch);
    pcp.high[cpu] = Math.max(high - free_count, high_min);
    high = Math.max(pcp.count[cpu], high_min);
  } else if (pcp.count[cpu] >= high) {
    const need_high = pcp.free_count[cpu] + batch;
    if (pcp.high[cpu] < need_high) pcp.high[cpu] = clamp(need_high, high_min, high_max);
  }
  return high;
}

/** kernel: mm/page_alloc.c nr_pcp_free(): how many pages to drain once count reaches high. */
function nr_pcp_free(zone: Zone, cpu: number, batch: number, high: number, free_high: boolean): number {
  const pcp = zone.pcp;
  if (free_high) return Math.min(pcp.count[cpu], batch << PCP_BATCH_SCALE_MAX);
  if (high < batch) return 1;
  return clamp(pcp.free_count[cpu], batch, high - batch);
}

/**
 * kernel: mm/page_alloc.c free_frozen_page_commit()
 * Park a freed block at the head of this CPU's list; drain to the buddy lists once the list
 * reaches its high mark. Repeated frees of orders 1..3 drain early ("free_high"), since parked
 * high-order blocks fragment memory.
 */
export function free_frozen_page_commit(
  mm: MM,
  zone: Zone,
  cpu: number,
  pfn: number,
  mt: number,
  order: number,
): void {
  const pcp = zone.pcp;
  const f = mm.frames;
  pcp.alloc_factor[cpu] >>= 1;
  mm.vm_events[PGFREE] += 1 << order;
  mm.kernel_ns += mm.cost.pcp_free;
  const pindex = order_to_pindex(mt, order);
  f.flags[pfn] |= PGI_pcp;
  f.order[pfn] = order;
  f.list_add(pfn, pcp.list_base + cpu * NR_PCP_LISTS + pindex);
  pcp.count[cpu] += 1 << order;
  const batch = pcp.batch[cpu];
  let free_high = false;
  if (order && order <= PAGE_ALLOC_COSTLY_ORDER) {
    free_high =
      pcp.free_count[cpu] >= batch + (pcp.high_min[cpu] >> 1) &&
      (pcp.flags[cpu] & PCPF_PREV_FREE_HIGH_ORDER) !== 0 &&
      ((pcp.flags[cpu] & PCPF_FREE_HIGH_BATCH) === 0 || pcp.count[cpu] >= batch);
    pcp.flags[cpu] |= PCPF_PREV_FREE_HIGH_ORDER;
  } else if (pcp.flags[cpu] & PCPF_PREV_FREE_HIGH_ORDER) {
    pcp.flags[cpu] &= ~PCPF_PREV_FREE_HIGH_ORDER;
  }
  if (pcp.free_count[cpu] < batch << PCP_BATCH_SCALE_MAX) pcp.free_count[cpu] += 1 << order;
  const high = nr_pcp_high(zone, cpu, batch, free_high);
  if (pcp.count[cpu] >= high) {
    free_pcppages_bulk(mm, zone, cpu, nr_pcp_free(zone, cpu, batch, high, free_high), pindex);
    if (
      zone.flags & ZONE_BELOW_HIGH &&
      zone_watermark_ok(mm, zone, 0, zone.wmark_pages(WMARK_HIGH), ZONE_MOVABLE, 0)
    ) {
      zone.flags &= ~ZONE_BELOW_HIGH;
    }
  }
}

/**
 * kernel: mm/page_alloc.c drain_pages_zone(): empty one CPU's lists of one zone, working on
 * `this_cpu`.
 */
export function drain_pages_zone(mm: MM, cpu: number, zone: Zone, this_cpu = cpu): void {
  const count = zone.pcp.count[cpu];
  if (count) free_pcppages_bulk(mm, zone, cpu, count, 0, this_cpu);
}

/**
 * kernel: mm/page_alloc.c drain_all_pages(): every CPU's lists, of one zone or of all. In 6.18
 * the calling CPU drains the others' lists itself (__drain_all_pages), so the counters change on
 * `this_cpu` (-1: a caller outside any CPU, such as the simulator's API).
 */
export function drain_all_pages(mm: MM, zone: Zone | null, this_cpu = -1): void {
  for (let cpu = 0; cpu < mm.nr_cpus; cpu++) {
    // The other CPUs with pages drain in a work item this one waits for (flush_work()).
    if (cpu !== this_cpu && cpu_has_pcps(mm, zone, cpu)) mm.kernel_ns += mm.cost.ipi;
    if (zone) drain_pages_zone(mm, cpu, zone, this_cpu);
    else for (const z of mm.zones) if (z.managed_pages) drain_pages_zone(mm, cpu, z, this_cpu);
  }
}

/** kernel: mm/page_alloc.c drain_all_pages()'s has_pcps test: `cpu` holds pages of `zone` (null: any). */
function cpu_has_pcps(mm: MM, zone: Zone | null, cpu: number): boolean {
  if (zone) return zone.pcp.count[cpu] > 0;
  for (const z of mm.zones) if (z.managed_pages && z.pcp.count[cpu] > 0) return true;
  return false;
}

/**
 * kernel: mm/page_alloc.c decay_pcp_high()
 * Run by vmstat every second per CPU: lower pcp->high by an eighth towards high_min, but by no
 * more than batch << PCP_BATCH_SCALE_MAX below the count, and drain what lies above it. Returns
 * whether more decay is pending.
 */
export function decay_pcp_high(mm: MM, zone: Zone, cpu: number): boolean {
  const pcp = zone.pcp;
  const high_min = pcp.high_min[cpu];
  const batch = pcp.batch[cpu];
  let todo = false;
  if (pcp.high[cpu] > high_min) {
    const high = pcp.high[cpu];
    pcp.high[cpu] = Math.max(pcp.count[cpu] - (batch << PCP_BATCH_SCALE_MAX), high - (high >> 3), high_min);
    if (pcp.high[cpu] > high_min) todo = true;
  }
  const to_drain = pcp.count[cpu] - pcp.high[cpu];
  if (to_drain > 0) {
    free_pcppages_bulk(mm, zone, cpu, to_drain, 0);
    todo = true;
  }
  return todo;
}
