/**
 * The cost model: the simulated CPU time of the kernel's primitive steps, in nanoseconds. Each
 * mechanism adds the cost of what it does to `mm.kernel_ns` (the time of the context running
 * kernel code), so a syscall, a fault or an in-kernel call knows its latency and a daemon its
 * CPU time; the machine lets its clock run by the time a task spent (see sim/machine.ts).
 *
 * Defaults were measured on the machine the model is checked against (Linux 6.18.44, Firecracker
 * VM, 2 vCPUs of a Xeon, gcc -O2 microbenchmarks: docs/cost-model.md) or, where no measurement
 * is possible from user space, are the estimates of kernel-mm-reference.md §12. Every value can
 * be overridden in the machine configuration (`cost: { copy_page: 400 }`).
 */
export interface CostModel {
  /** System call entry and exit (getppid(): 87–96 ns). */
  syscall: number;
  /** The #PF exception entry and exit of a hardware fault (read fault 518 ns − the gup path). */
  fault_exception: number;
  /** handle_mm_fault(): page-table walk and PTE update (MAP_POPULATE per page − alloc − clear). */
  handle_mm_fault: number;
  /** A new anonymous folio: memcg charge, rmap, LRU add, counters (write − read fault − alloc − clear). */
  new_anon_folio: number;
  /** Unmapping one present PTE (zap_pte_range) before the page is freed (munmap 151 ns/page − free). */
  zap_pte: number;
  /** Taking a page from a per-cpu list (LLFree, USENIX ATC 2023: 94 ns per 4 KiB allocation). */
  pcp_alloc: number;
  /** Putting a page on a per-cpu list (estimate). */
  pcp_free: number;
  /**
   * Taking and releasing zone->lock with interrupts off, once per batch of buddy operations
   * (estimate; with one buddy operation, §12's 100–300 ns for a buddy allocation).
   */
  zone_lock: number;
  /** Taking one block off the buddy free lists (__rmqueue), under the lock (estimate). */
  buddy_alloc: number;
  /** Putting one block on the buddy free lists (__free_one_page), under the lock (estimate). */
  buddy_free: number;
  /** Each split (expand) or merge level in the buddy allocator (estimate, §12: ~20 ns). */
  buddy_order: number;
  /**
   * prep_compound_page() or free_tail_page_prepare() on one tail page of a compound page
   * (a 2 MiB hugetlb pool page from a free block: 2.6 µs to allocate, 2.4 µs to free).
   */
  compound_tail: number;
  /**
   * __init_single_page() and the free of one page when deferred_init=lazy grows a zone
   * (initialising a 128 MiB section: 3.5–6 ms on the real kernel).
   */
  init_page: number;
  /** clear_page(): zeroing 4 KiB of cold memory (memset: 497–503 ns, ≈ 8 GB/s). */
  clear_page: number;
  /** copy_page(): copying 4 KiB between cold pages (memcpy: 628–646 ns). */
  copy_page: number;
  /**
   * A cross-CPU interrupt waited for: a TLB shootdown or a drain_all_pages() work item on
   * another CPU (mprotect() with a second thread on the other CPU: +17 µs on this VM).
   */
  ipi: number;
  /** The compaction migrate scanner looking at one pfn (compact_memory: 3.2–4.0 ns per frame). */
  migrate_scan_pfn: number;
  /** The compaction free scanner looking at one pfn (as the migrate scanner). */
  free_scan_pfn: number;
  /** Isolating one page: off the LRU for migration, or off a free list (estimate, §12: 50–200 ns). */
  isolate_page: number;
  /**
   * Migrating one folio, besides the copy, the rmap walks and the TLB flush: lock, unmap and
   * remap bookkeeping, move the mapping (compact_memory: 1.8–4.9 µs per migrated page in all).
   */
  migrate_folio: number;
  /** Visiting one mapping in an rmap walk: unmap or remap one PTE (estimate). */
  rmap_one: number;
  /** shrink_folio_list() deciding about and freeing one folio, besides rmap walks (estimate). */
  shrink_folio: number;
}

export const DEFAULT_COSTS: Readonly<CostModel> = Object.freeze({
  syscall: 90,
  fault_exception: 440,
  handle_mm_fault: 80,
  new_anon_folio: 410,
  zap_pte: 90,
  pcp_alloc: 90,
  pcp_free: 60,
  zone_lock: 150,
  buddy_alloc: 50,
  buddy_free: 50,
  buddy_order: 20,
  compound_tail: 4.5,
  init_page: 140,
  clear_page: 500,
  copy_page: 640,
  ipi: 17_000,
  migrate_scan_pfn: 4,
  free_scan_pfn: 4,
  isolate_page: 100,
  migrate_folio: 1100,
  rmap_one: 150,
  shrink_folio: 300,
});

/** The CPU time a daemon (kswapd, kcompactd, the flusher) has used. */
export interface CpuAccount {
  cpu_ns: number;
}

/**
 * Run kernel-thread work (a daemon's turn, a deferred completion): its CPU time goes to
 * `account`, not to the task whose syscall happened to let the clock reach it.
 */
export function run_kthread(
  mm: { kernel_ns: number },
  account: CpuAccount,
  fn: (() => void) | { run(): void },
): void {
  const saved = mm.kernel_ns;
  mm.kernel_ns = 0;
  try {
    if (typeof fn === 'function') fn();
    else fn.run();
  } finally {
    account.cpu_ns += mm.kernel_ns;
    mm.kernel_ns = saved;
  }
}
