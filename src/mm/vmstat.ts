/**
 * The vmstat worker (mm/vmstat.c): every stat_interval each CPU folds its counters and tends its
 * per-cpu page lists, lowering an idle list's `high` and draining what lies above it, and
 * draining lists it holds for other nodes' zones after three idle rounds. This is how pages
 * parked on pcp lists find their way back to the buddy lists, slowly.
 */
import type { MM } from './mm.ts';
import { decay_pcp_high, fold_zone_stat_diff, free_pcppages_bulk } from './page_alloc/pcp.ts';
import type { Work } from './workqueue.ts';

/** Default vm.stat_interval: one second. */
export const STAT_INTERVAL_NS = 1e9;

/**
 * kernel: mm/vmstat.c vmstat_update()
 * One CPU's vmstat worker: refresh_cpu_vm_stats() every stat_interval, for as long as the
 * machine runs (the model re-arms it whether or not anything changed).
 */
export class VmstatWork implements Work {
  constructor(
    readonly mm: MM,
    readonly cpu: number,
  ) {}

  run(): void {
    refresh_cpu_vm_stats(this.mm, this.cpu);
    this.mm.defer(STAT_INTERVAL_NS, this);
  }
}

/** Start the vmstat worker of every CPU on the machine's clock (mm.timer must be set). */
export function start_vmstat_workers(mm: MM): void {
  if (!mm.timer) throw new Error('start_vmstat_workers: the MM has no clock');
  for (let cpu = 0; cpu < mm.nr_cpus; cpu++) mm.defer(STAT_INTERVAL_NS, new VmstatWork(mm, cpu));
}

// kernel: include/linux/vmstat.h global_zone_page_state()
/** A zone stat item summed over every zone. */
export function global_zone_page_state(mm: MM, item: number): number {
  let sum = 0;
  for (const zone of mm.zones) sum += zone.vm_stat[item];
  return sum;
}

// kernel: include/linux/vmstat.h global_node_page_state_pages()
/** A node stat item summed over every node. */
export function global_node_page_state(mm: MM, item: number): number {
  let sum = 0;
  for (const node of mm.nodes) sum += node.vm_stat[item];
  return sum;
}

// kernel: mm/page_alloc.c drain_zone_pages()
function drain_zone_pages(mm: MM, cpu: number, zone: MM['zones'][number]): void {
  const to_drain = Math.min(zone.pcp.count[cpu], zone.pcp.batch[cpu]);
  if (to_drain > 0) free_pcppages_bulk(mm, zone, cpu, to_drain, 0);
}

/**
 * kernel: mm/vmstat.c refresh_cpu_vm_stats(do_pagesets = true)
 * Per populated zone: fold this CPU's counter differentials (under CONFIG_NUMA a zone that had
 * any gets pcp->expire = 3: "3 seconds idle till flush"), decay the pcp list, then count expire
 * down on lists of other nodes' zones that hold pages and drain a batch when it reaches 0. So a
 * remote list drains a batch every three seconds while the drains themselves leave
 * differentials, and not at all if this CPU never changed the zone's counters (pages freed onto
 * the list and allocated from it do not change them). Returns whether anything changed (the
 * kernel re-arms the worker only then).
 */
export function refresh_cpu_vm_stats(mm: MM, cpu: number): boolean {
  let changes = false;
  const nid = mm.cpu_to_node[cpu];
  for (const zone of mm.zones) {
    if (!zone.populated_zone()) continue;
    const pcp = zone.pcp;
    if (fold_zone_stat_diff(zone, cpu)) {
      changes = true;
      if (mm.config.NUMA) pcp.expire[cpu] = 3;
    }
    if (decay_pcp_high(mm, zone, cpu)) changes = true;
    if (!mm.config.NUMA) continue;
    if (!pcp.expire[cpu] || !pcp.count[cpu]) continue;
    // Lists of this CPU's own node are never drained here.
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
