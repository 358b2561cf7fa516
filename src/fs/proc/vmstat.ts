/**
 * /proc/vmstat (mm/vmstat.c vmstat_start/vmstat_show; mode 0444): one "%s %lu" line per counter
 * in vmstat_text[] order (src/mm/vmstat_items.ts): zone stats summed over all zones, NUMA events,
 * node stats summed over nodes, the four vm_stat items, the vm events, and the deprecated
 * `nr_unstable 0` last. Also the global counters and writeback thresholds /proc/meminfo shares.
 */
import type { MM } from '../../mm/mm.ts';
import { HPAGE_PMD_ORDER, PAGE_SIZE, PAGES_PER_SECTION } from '../../mm/mmzone.ts';
import { global_dirty_limits } from '../../mm/page-writeback.ts';
import { global_node_page_state, global_zone_page_state } from '../../mm/vmstat.ts';
import {
  CMA_EVENTS,
  type NodeStatItem,
  NR_VM_NUMA_EVENT_ITEMS,
  NR_VM_ZONE_STAT_ITEMS,
  node_stat_index,
  node_stat_names,
  numa_stat_names,
  vm_event_index,
  vm_event_names,
  zone_stat_names,
} from '../../mm/vmstat_items.ts';
import { lu } from '../seq_file.ts';

/** sizeof(struct page) on x86-64. */
export const STRUCT_PAGE_SIZE = 64;

// Items that exist only with a config option the model has a switch for. NUMA_BALANCING depends
// on NUMA, so its items go with CONFIG_NUMA; the others (ZSMALLOC, SWAP, ZSWAP, HUGETLB_PAGE,
// IOMMU_SUPPORT, MEMORY_BALLOON, ...) are on in the kernel we model and always printed.
const NUMA_BALANCING_NODE_ITEMS = new Set<string>([
  'pgpromote_success',
  'pgpromote_candidate',
  'pgpromote_candidate_nrl',
]);
const NUMA_EVENTS = new Set<string>([
  'zone_reclaim_success',
  'zone_reclaim_failed',
  'numa_pte_updates',
  'numa_huge_pte_updates',
  'numa_hint_faults',
  'numa_hint_faults_local',
  'numa_pages_migrated',
]);
/** The THP node items vmstat_item_print_in_thp() prints in units of THPs. */
const THP_UNIT_NODE_ITEMS = new Set<number>(
  (
    [
      'nr_anon_transparent_hugepages',
      'nr_file_hugepages',
      'nr_shmem_hugepages',
      'nr_shmem_pmdmapped',
      'nr_file_pmdmapped',
    ] as NodeStatItem[]
  ).map(node_stat_index),
);
const HPAGE_PMD_NR = 1 << HPAGE_PMD_ORDER;
const PGPGIN = vm_event_index('pgpgin');
const PGPGOUT = vm_event_index('pgpgout');
const _NR_ACTIVE_FILE = node_stat_index('nr_active_file');
const _NR_INACTIVE_FILE = node_stat_index('nr_inactive_file');

/** Whether node stat item `i` exists in this kernel config. */
export function node_stat_enabled(mm: MM, i: number): boolean {
  return mm.config.NUMA || !NUMA_BALANCING_NODE_ITEMS.has(node_stat_names[i]);
}

/** Whether vm event `name` exists in this kernel config (vmstat_text[]'s #ifdefs). */
export function vm_event_enabled(mm: MM, name: string): boolean {
  if (CMA_EVENTS.has(name)) return mm.config.CMA;
  if (NUMA_EVENTS.has(name)) return mm.config.NUMA;
  if (name.startsWith('thp_') && !name.startsWith('thp_migration_')) return mm.config.TRANSPARENT_HUGEPAGE;
  return true;
}

// kernel: include/linux/vmstat.h vmstat_item_print_in_thp()
/** THP counters are kept in pages but printed in THPs, with CONFIG_TRANSPARENT_HUGEPAGE. */
export function vmstat_item_print_in_thp(mm: MM, i: number): boolean {
  return mm.config.TRANSPARENT_HUGEPAGE && THP_UNIT_NODE_ITEMS.has(i);
}

// kernel: mm/vmstat.c global_numa_event_state()
function global_numa_event_state(mm: MM, item: number): number {
  let sum = 0;
  for (const zone of mm.zones) sum += zone.vm_numa_event[item];
  return sum;
}

/**
 * kernel: mm/sparse.c sparse_init_nid() memmap_boot_pages_add()
 * With SPARSEMEM_VMEMMAP every present 128 MiB section gets a memmap of 32768 * 64 bytes = 512
 * pages at boot: 24 GiB of RAM in 192 sections gives 98304, what the real machine shows.
 */
export function nr_memmap_boot_pages(mm: MM): number {
  return mm.nr_present_sections * Math.ceil((PAGES_PER_SECTION * STRUCT_PAGE_SIZE) / PAGE_SIZE);
}

// kernel: mm/vmstat.c vmstat_start() + vmstat_show()
/** The text of /proc/vmstat. */
export function vmstat(mm: MM): string {
  let out = '';
  for (let i = 0; i < NR_VM_ZONE_STAT_ITEMS; i++) {
    out += `${zone_stat_names[i]} ${lu(global_zone_page_state(mm, i))}\n`;
  }
  if (mm.config.NUMA) {
    for (let i = 0; i < NR_VM_NUMA_EVENT_ITEMS; i++) {
      out += `${numa_stat_names[i]} ${lu(global_numa_event_state(mm, i))}\n`;
    }
  }
  for (let i = 0; i < node_stat_names.length; i++) {
    if (!node_stat_enabled(mm, i)) continue;
    let v = global_node_page_state(mm, i);
    if (vmstat_item_print_in_thp(mm, i)) v = Math.floor(v / HPAGE_PMD_NR);
    out += `${node_stat_names[i]} ${lu(v)}\n`;
  }
  const { background, dirty } = global_dirty_limits(mm);
  out += `nr_dirty_threshold ${lu(dirty)}\n`;
  out += `nr_dirty_background_threshold ${lu(background)}\n`;
  // Memory hotplug is not modelled, so every memmap page was allocated at boot.
  out += 'nr_memmap_pages 0\n';
  out += `nr_memmap_boot_pages ${lu(nr_memmap_boot_pages(mm))}\n`;
  const ev = mm.vm_events;
  for (let i = 0; i < vm_event_names.length; i++) {
    const name = vm_event_names[i];
    if (!vm_event_enabled(mm, name)) continue;
    // The kernel counts pgpgin/pgpgout in 512-byte sectors and prints KiB.
    const v = i === PGPGIN || i === PGPGOUT ? Math.floor(ev[i] / 2) : ev[i];
    out += `${name} ${lu(v)}\n`;
  }
  out += 'nr_unstable 0\n';
  return out;
}
