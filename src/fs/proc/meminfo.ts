/**
 * /proc/meminfo (fs/proc/meminfo.c meminfo_proc_show; mode 0444), in the order and widths of
 * Linux 6.18 on x86-64 with this machine's options: ZSWAP and THP lines, CMA lines only with
 * CONFIG_CMA, no HIGHMEM or MEMORY_FAILURE lines, DirectMap1G (gbpages). Values come from the
 * model's counters; what it does not track yet (block-device buffers, swap, percpu)
 * prints 0, as on a machine that has none. VmallocUsed is 6.18's vmalloc_nr_pages() (pages
 * of every vmalloc area); VmallocChunk has been 0 since 4.4. CommitLimit and Committed_AS are
 * vm_commit_limit() and vm_memory_committed() (src/vm/util.ts).
 */

import { huge_page_size_kb } from '../../mm/hstate.ts';
import type { MM } from '../../mm/mm.ts';
import { PAGE_SHIFT } from '../../mm/mmzone.ts';
import { nr_deferred_pages } from '../../mm/page_alloc/deferred.ts';
import { get_nr_swap_pages, total_swap_pages } from '../../mm/swapfile.ts';
import { vmalloc_nr_pages } from '../../mm/vmalloc.ts';
import { global_node_page_state, global_zone_page_state } from '../../mm/vmstat.ts';
import { NR_FREE_CMA_PAGES, NR_FREE_PAGES, NR_MLOCK, node_stat_index } from '../../mm/vmstat_items.ts';
import { DEFAULT_OVERCOMMIT, type OvercommitSysctls, vm_commit_limit } from '../../vm/util.ts';
import { lu_w } from '../seq_file.ts';
import { direct_pages_count } from './direct_map.ts';

/** VMALLOC_END - VMALLOC_START with 4-level paging: 32 TiB less one byte, in KiB (rounded down). */
const VMALLOC_TOTAL_KB = (32 * 2 ** 40 - 1) / 1024;

const NR_INACTIVE_ANON = node_stat_index('nr_inactive_anon');
const NR_ACTIVE_ANON = node_stat_index('nr_active_anon');
const NR_INACTIVE_FILE = node_stat_index('nr_inactive_file');
const NR_ACTIVE_FILE = node_stat_index('nr_active_file');
const NR_UNEVICTABLE = node_stat_index('nr_unevictable');
const NR_SLAB_RECLAIMABLE = node_stat_index('nr_slab_reclaimable');
const NR_SLAB_UNRECLAIMABLE = node_stat_index('nr_slab_unreclaimable');
const NR_KERNEL_MISC_RECLAIMABLE = node_stat_index('nr_kernel_misc_reclaimable');
const NR_FILE_PAGES = node_stat_index('nr_file_pages');
const NR_SWAPCACHE = node_stat_index('nr_swapcached');
const NR_FILE_DIRTY = node_stat_index('nr_dirty');
const NR_WRITEBACK = node_stat_index('nr_writeback');
const NR_ANON_MAPPED = node_stat_index('nr_anon_pages');
const NR_FILE_MAPPED = node_stat_index('nr_mapped');
const NR_SHMEM = node_stat_index('nr_shmem');
const NR_KERNEL_STACK_KB = node_stat_index('nr_kernel_stack');
const NR_PAGETABLE = node_stat_index('nr_page_table_pages');
const NR_SECONDARY_PAGETABLE = node_stat_index('nr_sec_page_table_pages');
const NR_ANON_THPS = node_stat_index('nr_anon_transparent_hugepages');
const NR_SHMEM_THPS = node_stat_index('nr_shmem_hugepages');
const NR_SHMEM_PMDMAPPED = node_stat_index('nr_shmem_pmdmapped');
const NR_FILE_THPS = node_stat_index('nr_file_hugepages');
const NR_FILE_PMDMAPPED = node_stat_index('nr_file_pmdmapped');
const NR_BALLOON_PAGES = node_stat_index('nr_balloon_pages');

/**
 * kernel: mm/show_mem.c si_mem_available()
 * Free pages less totalreserve_pages, plus the page cache and reclaimable kernel memory less
 * what must stay: half of each, or the sum of all zones' low watermarks (empty zones included;
 * the empty Movable zone's low is 32), whichever is smaller.
 */
export function si_mem_available(mm: MM): number {
  let wmark_low = 0;
  for (const zone of mm.zones) wmark_low += zone.low_wmark_pages();
  // Pages deferred_init=lazy has not initialised yet count as free here, as on our machines.
  let available = global_zone_page_state(mm, NR_FREE_PAGES) + nr_deferred_pages(mm) - mm.totalreserve_pages;
  let pagecache = global_node_page_state(mm, NR_ACTIVE_FILE) + global_node_page_state(mm, NR_INACTIVE_FILE);
  pagecache -= Math.min(Math.floor(pagecache / 2), wmark_low);
  available += pagecache;
  let reclaimable =
    global_node_page_state(mm, NR_SLAB_RECLAIMABLE) + global_node_page_state(mm, NR_KERNEL_MISC_RECLAIMABLE);
  reclaimable -= Math.min(Math.floor(reclaimable / 2), wmark_low);
  available += reclaimable;
  return Math.max(available, 0);
}

// kernel: fs/proc/meminfo.c show_val_kb(): a 16-column label, pages in KiB in 8 columns.
function show_val_kb(label: string, pages: number): string {
  return `${label}${lu_w(pages * 2 ** (PAGE_SHIFT - 10), 8)} kB\n`;
}

// kernel: fs/proc/meminfo.c meminfo_proc_show()
/**
 * The text of /proc/meminfo. CommitLimit follows the `overcommit` sysctls; Committed_AS prints
 * `committed_as`, the pages of vm_committed_as (vm_memory_committed(); 0 for a bare MM).
 */
export function meminfo(
  mm: MM,
  overcommit: OvercommitSysctls = DEFAULT_OVERCOMMIT,
  committed_as = 0,
): string {
  const node = (item: number): number => global_node_page_state(mm, item);
  const totalram = mm.totalram_pages;
  const freeram = global_zone_page_state(mm, NR_FREE_PAGES) + nr_deferred_pages(mm);
  const bufferram = 0; // nr_blockdev_pages(): no block devices
  const swapcache = node(NR_SWAPCACHE);
  const cached = Math.max(0, node(NR_FILE_PAGES) - swapcache - bufferram);
  const inactive_anon = node(NR_INACTIVE_ANON);
  const active_anon = node(NR_ACTIVE_ANON);
  const inactive_file = node(NR_INACTIVE_FILE);
  const active_file = node(NR_ACTIVE_FILE);
  const sreclaimable = node(NR_SLAB_RECLAIMABLE);
  const sunreclaim = node(NR_SLAB_UNRECLAIMABLE);

  let out = '';
  out += show_val_kb('MemTotal:       ', totalram);
  out += show_val_kb('MemFree:        ', freeram);
  out += show_val_kb('MemAvailable:   ', si_mem_available(mm));
  out += show_val_kb('Buffers:        ', bufferram);
  out += show_val_kb('Cached:         ', cached);
  out += show_val_kb('SwapCached:     ', swapcache);
  out += show_val_kb('Active:         ', active_anon + active_file);
  out += show_val_kb('Inactive:       ', inactive_anon + inactive_file);
  out += show_val_kb('Active(anon):   ', active_anon);
  out += show_val_kb('Inactive(anon): ', inactive_anon);
  out += show_val_kb('Active(file):   ', active_file);
  out += show_val_kb('Inactive(file): ', inactive_file);
  out += show_val_kb('Unevictable:    ', node(NR_UNEVICTABLE));
  out += show_val_kb('Mlocked:        ', global_zone_page_state(mm, NR_MLOCK));
  out += show_val_kb('SwapTotal:      ', total_swap_pages(mm));
  out += show_val_kb('SwapFree:       ', get_nr_swap_pages(mm));
  out += show_val_kb('Zswap:          ', 0);
  out += `Zswapped:       ${lu_w(0, 8)} kB\n`;
  out += show_val_kb('Dirty:          ', node(NR_FILE_DIRTY));
  out += show_val_kb('Writeback:      ', node(NR_WRITEBACK));
  out += show_val_kb('AnonPages:      ', node(NR_ANON_MAPPED));
  out += show_val_kb('Mapped:         ', node(NR_FILE_MAPPED));
  out += show_val_kb('Shmem:          ', node(NR_SHMEM));
  out += show_val_kb('KReclaimable:   ', sreclaimable + node(NR_KERNEL_MISC_RECLAIMABLE));
  out += show_val_kb('Slab:           ', sreclaimable + sunreclaim);
  out += show_val_kb('SReclaimable:   ', sreclaimable);
  out += show_val_kb('SUnreclaim:     ', sunreclaim);
  // NR_KERNEL_STACK_KB is kept in KiB already.
  out += `KernelStack:    ${lu_w(node(NR_KERNEL_STACK_KB), 8)} kB\n`;
  out += show_val_kb('PageTables:     ', node(NR_PAGETABLE));
  out += show_val_kb('SecPageTables:  ', node(NR_SECONDARY_PAGETABLE));
  out += show_val_kb('NFS_Unstable:   ', 0);
  out += show_val_kb('Bounce:         ', 0);
  out += show_val_kb('WritebackTmp:   ', 0);
  out += show_val_kb('CommitLimit:    ', vm_commit_limit(mm, overcommit));
  out += show_val_kb('Committed_AS:   ', committed_as);
  out += `VmallocTotal:   ${lu_w(Math.floor(VMALLOC_TOTAL_KB), 8)} kB\n`;
  out += show_val_kb('VmallocUsed:    ', vmalloc_nr_pages(mm));
  out += show_val_kb('VmallocChunk:   ', 0);
  out += show_val_kb('Percpu:         ', 0);
  if (mm.config.TRANSPARENT_HUGEPAGE) {
    out += show_val_kb('AnonHugePages:  ', node(NR_ANON_THPS));
    out += show_val_kb('ShmemHugePages: ', node(NR_SHMEM_THPS));
    out += show_val_kb('ShmemPmdMapped: ', node(NR_SHMEM_PMDMAPPED));
    out += show_val_kb('FileHugePages:  ', node(NR_FILE_THPS));
    out += show_val_kb('FilePmdMapped:  ', node(NR_FILE_PMDMAPPED));
  }
  if (mm.config.CMA) {
    out += show_val_kb('CmaTotal:       ', mm.totalcma_pages);
    out += show_val_kb('CmaFree:        ', global_zone_page_state(mm, NR_FREE_CMA_PAGES));
  }
  out += show_val_kb('Balloon:        ', node(NR_BALLOON_PAGES));
  out += hugetlb_report_meminfo(mm);
  out += arch_report_meminfo(mm);
  return out;
}

/**
 * kernel: mm/hugetlb.c hugetlb_report_meminfo()
 * The default hstate's pool and the total over hstates in KiB.
 */
function hugetlb_report_meminfo(mm: MM): string {
  let total = 0;
  let out = '';
  for (const h of mm.hugetlb.hstates) {
    total += huge_page_size_kb(h) * h.nr_huge_pages;
    if (h === mm.hugetlb.default_hstate)
      out +=
        `HugePages_Total:   ${lu_w(h.nr_huge_pages, 5)}\n` +
        `HugePages_Free:    ${lu_w(h.free_huge_pages, 5)}\n` +
        `HugePages_Rsvd:    ${lu_w(h.resv_huge_pages, 5)}\n` +
        `HugePages_Surp:    ${lu_w(h.surplus_huge_pages, 5)}\n` +
        `Hugepagesize:   ${lu_w(huge_page_size_kb(h), 8)} kB\n`;
  }
  return `${out}Hugetlb:        ${lu_w(total, 8)} kB\n`;
}

// kernel: arch/x86/mm/pat/set_memory.c arch_report_meminfo()
function arch_report_meminfo(mm: MM): string {
  const c = direct_pages_count(mm);
  return (
    `DirectMap4k:    ${lu_w(c.k4 * 4, 8)} kB\n` +
    `DirectMap2M:    ${lu_w(c.m2 * 2048, 8)} kB\n` +
    `DirectMap1G:    ${lu_w(c.g1 * 1048576, 8)} kB\n`
  );
}

/** The value of one /proc/meminfo field in kB (or pages for HugePages_*), for tests and reports. */
export function meminfo_field(text: string, label: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${label}:`));
  if (!line) throw new Error(`no ${label} in /proc/meminfo`);
  return Number(
    line
      .slice(label.length + 1)
      .trim()
      .split(' ')[0],
  );
}
