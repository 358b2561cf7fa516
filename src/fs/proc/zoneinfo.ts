/**
 * /proc/zoneinfo (mm/vmstat.c zoneinfo_show_print; mode 0444): every zone of every online node,
 * empty ones included (they stop after `protection:`), the node's stats under its first
 * populated zone, then zone stats, NUMA events, each CPU's pageset and vm stats threshold,
 * node_unreclaimable and start_pfn. Linux 6.18 prints no reserved_highatomic/free_highatomic.
 */
import type { MM } from '../../mm/mm.ts';
import {
  HPAGE_PMD_ORDER,
  MAX_NR_ZONES,
  PAGE_SHIFT,
  type PglistData,
  WMARK_PROMO,
  type Zone,
} from '../../mm/mmzone.ts';
import {
  NR_FREE_PAGES,
  NR_VM_NUMA_EVENT_ITEMS,
  NR_VM_ZONE_STAT_ITEMS,
  node_stat_names,
  numa_stat_names,
  zone_stat_names,
} from '../../mm/vmstat_items.ts';
import { fls, lu, s_lw, s_w } from '../seq_file.ts';
import { node_stat_enabled, vmstat_item_print_in_thp } from './vmstat.ts';

/** MAX_RECLAIM_RETRIES: kswapd failures after which a node counts as unreclaimable. */
const MAX_RECLAIM_RETRIES = 16;
const HPAGE_PMD_NR = 1 << HPAGE_PMD_ORDER;

/**
 * kernel: mm/vmstat.c calculate_normal_threshold()
 * How far a CPU's counter delta may drift before it is folded into the zone's counter:
 * 2 * fls(online CPUs) * (1 + fls(managed in 128 MiB units)), at most 125. With 2 CPUs: DMA
 * (3840 pages, 0 units) 2*2*1 = 4; DMA32 (772915 pages, 23 units, fls 5) 2*2*6 = 24; Normal at
 * 131072 pages (4 units, fls 3) 2*2*4 = 16, the real machine's values.
 */
export function calculate_normal_threshold(mm: MM, zone: Zone): number {
  const mem = Math.floor(zone.managed_pages / 2 ** (27 - PAGE_SHIFT));
  const threshold = 2 * fls(mm.nr_cpus) * (1 + fls(mem));
  return Math.min(125, threshold);
}

/**
 * kernel: mm/vmstat.c calculate_pressure_threshold()
 * While kswapd is awake the drift must not hide a breach of the min watermark: the gap between
 * low and min split over the CPUs, between 1 and 125.
 */
export function calculate_pressure_threshold(mm: MM, zone: Zone): number {
  const distance = zone.low_wmark_pages() - zone.min_wmark_pages();
  const threshold = Math.max(1, Math.floor(distance / mm.nr_cpus));
  return Math.min(125, threshold);
}

/**
 * kernel: mm/vmstat.c refresh_zone_stat_thresholds() + mm/vmscan.c kswapd_try_to_sleep()
 * The per-cpu stat_threshold zoneinfo prints. kswapd switches its node's zones to the pressure
 * threshold while awake, but only zones with a percpu_drift_mark, i.e. where the worst-case drift
 * (CPUs * normal threshold) exceeds low - min. The kernel sets the drift mark with the watermarks
 * of the last refresh (boot); this uses the current ones.
 */
export function zone_stat_threshold(mm: MM, zone: Zone): number {
  const normal = calculate_normal_threshold(mm, zone);
  if (!mm.nodes[zone.nid].kswapd_running) return normal;
  const tolerate_drift = zone.low_wmark_pages() - zone.min_wmark_pages();
  if (mm.nr_cpus * normal <= tolerate_drift) return normal;
  return calculate_pressure_threshold(mm, zone);
}

// kernel: mm/vmstat.c is_zone_first_populated()
function is_zone_first_populated(node: PglistData, zone: Zone): boolean {
  for (let zid = 0; zid < MAX_NR_ZONES; zid++) {
    const compare = node.node_zones[zid];
    if (compare.populated_zone()) return zone === compare;
  }
  return false;
}

// kernel: mm/vmstat.c zoneinfo_show_print()
function zoneinfo_show_print(mm: MM, node: PglistData, zone: Zone): string {
  let out = `Node ${node.node_id}, zone ${s_w(zone.name, 8)}`;
  if (is_zone_first_populated(node, zone)) {
    out += '\n  per-node stats';
    for (let i = 0; i < node_stat_names.length; i++) {
      if (!node_stat_enabled(mm, i)) continue;
      let pages = node.vm_stat[i];
      if (vmstat_item_print_in_thp(mm, i)) pages = Math.floor(pages / HPAGE_PMD_NR);
      out += `\n      ${s_lw(node_stat_names[i], 12)} ${lu(pages)}`;
    }
  }
  out +=
    `\n  pages free     ${lu(zone.vm_stat[NR_FREE_PAGES])}` +
    `\n        boost    ${lu(zone.watermark_boost)}` +
    `\n        min      ${lu(zone.min_wmark_pages())}` +
    `\n        low      ${lu(zone.low_wmark_pages())}` +
    `\n        high     ${lu(zone.high_wmark_pages())}` +
    `\n        promo    ${lu(zone.wmark_pages(WMARK_PROMO))}` +
    `\n        spanned  ${lu(zone.spanned_pages)}` +
    `\n        present  ${lu(zone.present_pages)}` +
    `\n        managed  ${lu(zone.managed_pages)}` +
    `\n        cma      ${lu(zone.cma_pages)}`;
  out += `\n        protection: (${lu(zone.lowmem_reserve[0])}`;
  for (let i = 1; i < MAX_NR_ZONES; i++) out += `, ${lu(zone.lowmem_reserve[i])}`;
  out += ')';
  // If unpopulated, no other information is useful.
  if (!zone.populated_zone()) return `${out}\n`;

  for (let i = 0; i < NR_VM_ZONE_STAT_ITEMS; i++) {
    out += `\n      ${s_lw(zone_stat_names[i], 12)} ${lu(zone.vm_stat[i])}`;
  }
  if (mm.config.NUMA) {
    for (let i = 0; i < NR_VM_NUMA_EVENT_ITEMS; i++) {
      out += `\n      ${s_lw(numa_stat_names[i], 12)} ${lu(zone.vm_numa_event[i])}`;
    }
  }
  out += '\n  pagesets';
  const pcp = zone.pcp;
  const threshold = zone_stat_threshold(mm, zone);
  for (let cpu = 0; cpu < mm.nr_cpus; cpu++) {
    out +=
      `\n    cpu: ${cpu}` +
      `\n              count:    ${pcp.count[cpu]}` +
      `\n              high:     ${pcp.high[cpu]}` +
      `\n              batch:    ${pcp.batch[cpu]}` +
      `\n              high_min: ${pcp.high_min[cpu]}` +
      `\n              high_max: ${pcp.high_max[cpu]}` +
      `\n  vm stats threshold: ${threshold}`;
  }
  out +=
    `\n  node_unreclaimable:  ${node.kswapd_failures >= MAX_RECLAIM_RETRIES ? 1 : 0}` +
    `\n  start_pfn:           ${lu(zone.zone_start_pfn)}`;
  return `${out}\n`;
}

// kernel: mm/vmstat.c zoneinfo_show() -> walk_zones_in_node(assert_populated = false)
/** The text of /proc/zoneinfo. */
export function zoneinfo(mm: MM): string {
  let out = '';
  for (const node of mm.nodes) {
    for (const zone of node.node_zones) out += zoneinfo_show_print(mm, node, zone);
  }
  return out;
}
