/**
 * The physical-memory state the kernel keeps in globals: mem_map (the frame table), the pageblock
 * bitmap, the nodes and zones, the page-allocator sysctls and the vm event counters. Every
 * mechanism in src/mm takes this as its first argument.
 */
import type { Cma } from './cma.ts';
import { type CaptureControl, type CompactionSysctls, KcompactdState } from './compaction.ts';
import { type CostModel, type CpuAccount, DEFAULT_COSTS } from './cost.ts';
import { PageCache } from './filemap.ts';
import { FrameTable } from './frames.ts';
import { HugetlbState } from './hstate.ts';
import type { ThpState } from './huge_memory.ts';
import { NR_LRU_LISTS } from './lru.ts';
import {
  MAX_NR_ZONES,
  MIGRATE_TYPES,
  NR_PAGE_ORDERS,
  NR_PCP_LISTS,
  PerCpuPages,
  type PglistData,
  pageblock_order,
  type Zone,
} from './mmzone.ts';
import { no_slowpath_hooks, type SlowpathHooks } from './page_alloc/context.ts';
import { type DirtySysctls, default_dirty_sysctls, Writeback } from './page-writeback.ts';
import { no_rmap, type RmapOps } from './rmap.ts';
import { SlabAllocator } from './slab.ts';
import type { SwapInfo } from './swapfile.ts';
import { no_tracepoints, type Tracepoints } from './trace.ts';
import { VmallocState } from './vmalloc.ts';
import { KswapdState } from './vmscan.ts';
import { NR_VM_EVENT_ITEMS } from './vmstat_items.ts';
import { KthreadWork, type Timer, type Work } from './workqueue.ts';

/** Kernel build options that change behaviour or the format of /proc files. */
export interface KernelConfig {
  /** CONFIG_CMA: the CMA migratetype, its pagetypeinfo column and cma_alloc_* counters. */
  CMA: boolean;
  /** CONFIG_NUMA: the numa_* counters. */
  NUMA: boolean;
  /** CONFIG_TRANSPARENT_HUGEPAGE: the THP pcp lists and khugepaged's min_free_kbytes floor. */
  TRANSPARENT_HUGEPAGE: boolean;
}

/** The vm sysctls of mm/page_alloc.c. */
export interface PageAllocSysctls {
  min_free_kbytes: number;
  /** Set once the user writes min_free_kbytes; later recomputation keeps the user's value. */
  user_min_free_kbytes: number;
  watermark_scale_factor: number;
  watermark_boost_factor: number;
  lowmem_reserve_ratio: number[];
  defrag_mode: number;
  percpu_pagelist_high_fraction: number;
}

/** What a long-running kernel path yields to (the machine's scheduler). */
export interface Sched {
  cond_resched(): void;
}

export class MM {
  readonly frames: FrameTable;
  /** One byte of flags per pageblock (pageblock.ts). */
  readonly pb_flags: Uint8Array;
  /** Per pageblock, 1 + the id of the zone it belongs to, or 0 outside every zone. */
  readonly pb_zone: Uint16Array;
  /** memblock.memory: the RAM ranges, sorted (set at boot). */
  ram: ReadonlyArray<{ readonly start: number; readonly end: number }> = [];
  /**
   * Per 2 MiB subsection, 1 if it holds any RAM: the bit subsection_map_init() sets and
   * pfn_section_valid() tests (SPARSEMEM_VMEMMAP).
   */
  readonly subsection_valid: Uint8Array;
  /** 128 MiB memory sections holding any RAM: each got a memmap at boot (sparse_init_nid). */
  nr_present_sections = 0;
  /** The pfn of empty_zero_page, a reserved page in the kernel image (my_zero_pfn()). */
  zero_pfn = -1;
  readonly zones: Zone[];
  readonly nodes: PglistData[];
  readonly nr_cpus: number;
  /** cpu_to_node() */
  readonly cpu_to_node: Int32Array;
  readonly vm_events = new Float64Array(NR_VM_EVENT_ITEMS);
  readonly trace: Tracepoints = no_tracepoints();
  /** Reclaim, compaction and OOM as the slow path reaches them. */
  hooks: SlowpathHooks = no_slowpath_hooks();
  /**
   * current->capture_control: set while a direct compactor runs (compact_zone_order()), so that
   * __free_one_page() hands it the block it is waiting for.
   */
  capture_control: CaptureControl | null = null;
  /** The compaction sysctls of mm/compaction.c (/proc/sys/vm/compact_*, extfrag_threshold). */
  readonly compaction: CompactionSysctls = {
    compact_memory: 0,
    compaction_proactiveness: 20,
    extfrag_threshold: 500,
    compact_unevictable_allowed: 1,
  };
  /** From a page to the PTEs that map it: installed by the address-space layer. */
  rmap: RmapOps = no_rmap();
  /** The swap device (swapfile.ts), or null: our machines have none. */
  swap: SwapInfo | null = null;
  /** vm.swappiness (0..200, default 60): reclaim's anon/file balance. */
  readonly reclaim = { swappiness: 60 };
  /** Pins per frame (gup.ts), created at the first pin. */
  pincount: Uint16Array | null = null;
  /**
   * PF_MEMALLOC_PIN of the running task (memalloc_pin_save()): its allocations lose
   * __GFP_MOVABLE (current_gfp_context()), so pages faulted in for a long-term pin are not
   * placed where they would block migration.
   */
  pf_memalloc_pin = false;
  /** Per-node kswapd state (vmscan.ts). */
  readonly kswapd: KswapdState[];
  /** Per-node kcompactd threads (compaction.ts), started by kcompactd_init(). */
  readonly kcompactd: KcompactdState[];
  /**
   * The machine's clock (src/sim/clock.ts), which defer() queues work on and now() reads; null
   * for an MM without a machine: work then runs at once, and the time is always 0.
   */
  timer: Timer | null = null;
  /**
   * cond_resched() of the task in a long syscall: the machine lets its clock catch up with the
   * task's kernel time, so kernel threads (kswapd, kcompactd) run meanwhile as they would on the
   * other CPUs. Null: nothing runs until the syscall ends.
   */
  sched: Sched | null = null;
  /** What each primitive step costs (cost.ts). */
  readonly cost: CostModel = { ...DEFAULT_COSTS };
  /**
   * Time, ns, the context running kernel code has spent in it: the cost of every step (cost.ts)
   * and its waits for devices. Tasks and in-kernel callers add to it as they go; kernel threads
   * run with their own (run_kthread()).
   */
  kernel_ns = 0;
  /** CPU time of the kernel threads without an account of their own (flusher, vmstat worker). */
  readonly kthreads: CpuAccount = { cpu_ns: 0 };
  /** CPU time of khugepaged (vm/khugepaged.ts). */
  readonly khugepaged: CpuAccount = { cpu_ns: 0 };
  /** Every file's cached pages (filemap.ts). */
  readonly page_cache = new PageCache();
  /** The flusher (page-writeback.ts) and the writeback sysctls. */
  readonly writeback = new Writeback();
  readonly dirty: DirtySysctls = default_dirty_sysctls();
  /** The kernel log (printk), oldest first. */
  readonly klog: string[] = [];
  /** The slab allocator: caches, slabs, large kmallocs and shrinkers (slab.ts). */
  readonly slab: SlabAllocator;
  /** vmalloc's busy areas and nr_vmalloc_pages (vmalloc.ts). */
  readonly vmalloc = new VmallocState();
  /** The hugetlb pools (hugetlb.ts); hugetlb_init() sets them up at boot. */
  hugetlb: HugetlbState;
  page_group_by_mobility_disabled = false;
  totalreserve_pages = 0;
  /** cma_areas[] (cma.ts), in declaration order; empty without CMA parameters. */
  readonly cma_areas: Cma[] = [];
  /** totalcma_pages: the pages of every activated CMA area. */
  totalcma_pages = 0;
  /** Pages never given to the buddy allocator (memblock reservations and holes inside zones). */
  totalram_pages = 0;
  /** The WARN_ON_ONCE() sites that have fired, as `file:line` (page_alloc/slowpath.ts, contig.ts). */
  readonly warned_once = new Set<string>();
  /** The THP state (huge_memory.ts thp()), created at first use. */
  thp_state: ThpState | null = null;

  constructor(
    readonly config: KernelConfig,
    readonly sysctl: PageAllocSysctls,
    nr_frames: number,
    nodes: PglistData[],
    zones: Zone[],
    nr_cpus: number,
    cpu_to_node: Int32Array,
  ) {
    this.nodes = nodes;
    this.zones = zones;
    this.kswapd = nodes.map(() => new KswapdState());
    this.kcompactd = nodes.map(() => new KcompactdState());
    this.hugetlb = new HugetlbState(nodes.length);
    this.nr_cpus = nr_cpus;
    this.cpu_to_node = cpu_to_node;
    // List ids: each zone's free areas, then each zone's per-cpu lists.
    let lists = 0;
    for (const z of zones) {
      z.free_list_base = lists;
      lists += NR_PAGE_ORDERS * MIGRATE_TYPES;
    }
    for (const z of zones) {
      z.pcp = new PerCpuPages(nr_cpus, lists);
      lists += nr_cpus * NR_PCP_LISTS;
    }
    for (const n of nodes) {
      n.lru_base = lists;
      lists += NR_LRU_LISTS;
    }
    this.frames = new FrameTable(nr_frames, lists);
    this.slab = new SlabAllocator(nr_cpus, nodes.length);
    const nr_pageblocks = Math.ceil(nr_frames / (1 << pageblock_order));
    this.pb_flags = new Uint8Array(nr_pageblocks);
    this.pb_zone = new Uint16Array(nr_pageblocks);
    this.subsection_valid = new Uint8Array(nr_pageblocks);
  }

  /**
   * Run kernel background work `delay` ns from now, in a kernel thread (mm.kthreads' CPU time),
   * on the machine's clock; without one, at once. `work` is a class instance, never a closure
   * (workqueue.ts), so that a machine with work pending can be cloned.
   */
  defer(delay: number, work: Work): void {
    if (this.timer) this.timer.after(delay, new KthreadWork(this, work));
    else work.run();
  }

  /** Simulated ns since boot (the machine's clock; 0 without one). */
  now(): number {
    return this.timer ? this.timer.now : 0;
  }

  /** max_pfn: the end of the highest RAM range. */
  get max_pfn(): number {
    return this.ram.length ? this.ram[this.ram.length - 1].end : 0;
  }

  /**
   * pfn_to_online_page() != NULL: the pfn's 2 MiB subsection holds RAM. Walks over a zone
   * (pagetypeinfo's block counts, compaction's scanners) skip subsections that are holes.
   */
  pfn_online(pfn: number): boolean {
    return this.subsection_valid[pfn >>> pageblock_order] === 1;
  }

  /** page_zone(): the zone a pfn belongs to, or undefined for a pfn outside every zone. */
  page_zone(pfn: number): Zone | undefined {
    const z = this.pb_zone[pfn >>> pageblock_order];
    return z === 0 ? undefined : this.zones[z - 1];
  }

  /** The zone of (node, zone_idx). */
  zone(nid: number, zone_idx: number): Zone {
    return this.zones[nid * MAX_NR_ZONES + zone_idx];
  }
}
