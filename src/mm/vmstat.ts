/**
 * The vmstat worker (mm/vmstat.c): every stat_interval each CPU folds its counters and tends its
 * per-cpu page lists, lowering an idle list's `high` and draining what lies above it, and
 * draining lists it holds for other nodes' zones after three idle rounds. This is how pages
 * parked on pcp lists find their way back to the buddy lists, slowly.
 */
import type { MM } from './mm.ts';
import { decay_pcp_high, free_pcppages_bulk } from './page_alloc/pcp.ts';

/** Default vm.stat_interval: one second. */
export const STAT_INTERVAL_NS = 1e9;

// kernel: mm/page_alloc.c drain_zone_pages()
function drain_zone_pages(mm: MM, cpu: number, zone: MM['zones'][number]): void {
  const to_drain = Math.min(zone.pcp.count[cpu], zone.pcp.batch[cpu]);
  if (to_drain > 0) free_pcppages_bulk(mm, zone, cpu, to_drain, 0);
}

/**
 * kernel: mm/vmstat.c refresh_cpu_vm_stats(do_pagesets = true)
 * Returns whether anything changed (the kernel re-arms the worker only then).
 */
export function refresh_cpu_vm_stats(mm: MM, cpu: number): boolean {
  let changes = false;
  const nid = mm.cpu_to_node[cpu];
  for (const zone of mm.zones) {
    if (!zone.managed_pages) continue;
    if (decay_pcp_high(mm, zone, cpu)) changes = true;
    const pcp = zone.pcp;
    if (!pcp.expire[cpu] || !pcp.count[cpu]) continue;
    if (zone.nid === nid) {
      pcp.expire[cpu] = 0;
      continue;
    }
    if (--pcp.expire[cpu]) {
      changes = true;
      continue;
    }
    drain_zone_pages(mm, cpu, zone);
    changes = true;
  }
  return changes;
}
