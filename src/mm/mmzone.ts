/**
 * Constants of the physical layout (include/linux/mmzone.h, pageblock-flags.h) for x86-64 with
 * 4 KiB pages. Valid orders are 0..MAX_PAGE_ORDER; a max-order buddy (1024 pages, 4 MiB) covers
 * two pageblocks of 512 pages (2 MiB).
 */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
export const MAX_PAGE_ORDER = 10;
export const NR_PAGE_ORDERS = MAX_PAGE_ORDER + 1;
export const MAX_ORDER_NR_PAGES = 1 << MAX_PAGE_ORDER;
export const PAGE_ALLOC_COSTLY_ORDER = 3;
/**
 * MAX_FOLIO_ORDER (include/linux/mm.h) on x86-64 with hugetlb: get_order(SZ_16G). Only
 * alloc_contig_range(__GFP_COMP) makes folios above MAX_PAGE_ORDER.
 */
export const MAX_FOLIO_ORDER = 22;
export const pageblock_order = 9;
export const pageblock_nr_pages = 1 << pageblock_order;
export const HPAGE_PMD_ORDER = 9;
/** 128 MiB memory sections (SECTION_SIZE_BITS = 27). */
export const PAGES_PER_SECTION = 1 << (27 - PAGE_SHIFT);

// enum migratetype
export const MIGRATE_UNMOVABLE = 0;
export const MIGRATE_MOVABLE = 1;
export const MIGRATE_RECLAIMABLE = 2;
export const MIGRATE_PCPTYPES = 3;
export const MIGRATE_HIGHATOMIC = MIGRATE_PCPTYPES;
export const MIGRATE_CMA = 4;
export const MIGRATE_ISOLATE = 5;
export const MIGRATE_TYPES = 6;
export const migratetype_names = [
  'Unmovable',
  'Movable',
  'Reclaimable',
  'HighAtomic',
  'CMA',
  'Isolate',
] as const;

export function migratetype_is_mergeable(mt: number): boolean {
  return mt < MIGRATE_PCPTYPES;
}
export function is_migrate_movable(mt: number): boolean {
  return mt === MIGRATE_MOVABLE || mt === MIGRATE_CMA;
}

// enum zone_type (x86-64 with CONFIG_ZONE_DMA, CONFIG_ZONE_DMA32, CONFIG_ZONE_DEVICE)
export const ZONE_DMA = 0;
export const ZONE_DMA32 = 1;
export const ZONE_NORMAL = 2;
export const ZONE_MOVABLE = 3;
export const ZONE_DEVICE = 4;
export const MAX_NR_ZONES = 5;
export const zone_names = ['DMA', 'DMA32', 'Normal', 'Movable', 'Device'] as const;
/** Zone limits in pfns: DMA below 16 MiB, DMA32 below 4 GiB. */
export const MAX_DMA_PFN = (16 << 20) >> PAGE_SHIFT;
export const MAX_DMA32_PFN = 2 ** (32 - PAGE_SHIFT);

// enum zone_watermarks
export const WMARK_MIN = 0;
export const WMARK_LOW = 1;
export const WMARK_HIGH = 2;
export const WMARK_PROMO = 3;
export const NR_WMARK = 4;

// zone->flags
export const ZONE_BOOSTED_WATERMARK = 1 << 0;
export const ZONE_RECLAIM_ACTIVE = 1 << 1;
export const ZONE_BELOW_HIGH = 1 << 2;

/** Per-cpu lists: orders 0..3 for each pcp type, plus two THP lists (NR_PCP_LISTS = 14). */
export const NR_LOWORDER_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1);
export const NR_PCP_THP = 2;
export const NR_PCP_LISTS = NR_LOWORDER_PCP_LISTS + NR_PCP_THP;

/** The buddy of the block at `pfn` of `order`: the buddy of pfn 8 at order 1 is pfn 10. */
export function buddy_pfn(pfn: number, order: number): number {
  return pfn ^ (1 << order);
}
export function pageblock_start_pfn(pfn: number): number {
  return pfn - (pfn & (pageblock_nr_pages - 1));
}
export function pageblock_end_pfn(pfn: number): number {
  return pageblock_start_pfn(pfn) + pageblock_nr_pages;
}

/** get_order(size): the smallest order whose block holds `bytes`. */
export function get_order(bytes: number): number {
  let order = 0;
  let pages = Math.ceil(bytes / PAGE_SIZE);
  pages = pages > 1 ? pages - 1 : 0;
  while (pages > 0) {
    pages = Math.floor(pages / 2);
    order++;
  }
  return order;
}

/**
 * struct per_cpu_pages for one zone, one slot per CPU. The lists themselves live in the frame
 * table: CPU c's list of pcp index i is list `list_base + c * NR_PCP_LISTS + i`.
 */
export class PerCpuPages {
  readonly count: Int32Array; // pages on this CPU's lists
  readonly high: Int32Array;
  readonly high_min: Int32Array;
  readonly high_max: Int32Array;
  readonly batch: Int32Array;
  readonly flags: Uint8Array; // PCPF_*
  readonly alloc_factor: Uint8Array;
  readonly free_count: Int32Array;
  readonly expire: Int32Array;

  constructor(
    readonly nr_cpus: number,
    readonly list_base: number,
  ) {
    this.count = new Int32Array(nr_cpus);
    this.high = new Int32Array(nr_cpus);
    this.high_min = new Int32Array(nr_cpus);
    this.high_max = new Int32Array(nr_cpus);
    this.batch = new Int32Array(nr_cpus).fill(1);
    this.flags = new Uint8Array(nr_cpus);
    this.alloc_factor = new Uint8Array(nr_cpus);
    this.free_count = new Int32Array(nr_cpus);
    this.expire = new Int32Array(nr_cpus);
  }
}
export const PCPF_PREV_FREE_HIGH_ORDER = 1 << 0;
export const PCPF_FREE_HIGH_BATCH = 1 << 1;

/** struct zone: the fields the model uses, named as in the kernel. */
export class Zone {
  /** Index into MM.zones: nid * MAX_NR_ZONES + zone_idx. */
  readonly id: number;
  readonly name: string;
  zone_start_pfn = 0;
  spanned_pages = 0;
  present_pages = 0;
  managed_pages = 0;
  cma_pages = 0;
  readonly _watermark = new Float64Array(NR_WMARK);
  watermark_boost = 0;
  readonly lowmem_reserve = new Float64Array(MAX_NR_ZONES);
  nr_reserved_highatomic = 0;
  nr_free_highatomic = 0;
  /** Pageblocks with the isolate bit set (page_isolation.c; the kernel's CONFIG_MEMORY_ISOLATION). */
  nr_isolate_pageblock = 0;
  flags = 0;
  /** List id of free_area[0].free_list[0]; free_area[o].free_list[mt] is base + o*MIGRATE_TYPES + mt. */
  free_list_base = 0;
  /** free_area[order].nr_free: blocks per order, all migratetypes. */
  readonly nr_free = new Int32Array(NR_PAGE_ORDERS);
  readonly vm_stat = new Float64Array(16);
  readonly vm_numa_event = new Float64Array(8);
  pcp!: PerCpuPages;
  /** Per CPU, 1 while it holds a counter differential not yet folded (page_alloc/pcp.ts). */
  vm_stat_diff: Uint8Array | null = null;
  // CONFIG_COMPACTION (mm/compaction.c): where the scanners restart, deferral after failures, and
  // whether the pageblock skip bits are due for a reset. Zero at boot, as in the kernel.
  /** Where the free scanner restarts (a pageblock start). */
  compact_cached_free_pfn = 0;
  /** Where the migrate scanner restarts: [0] for async, [1] for sync compaction. */
  readonly compact_cached_migrate_pfn = new Float64Array(2);
  compact_init_migrate_pfn = 0;
  compact_init_free_pfn = 0;
  /** Compaction attempts skipped since the last deferral (compaction_deferred()). */
  compact_considered = 0;
  /** Skip up to 1 << compact_defer_shift attempts (at most COMPACT_MAX_DEFER_SHIFT). */
  compact_defer_shift = 0;
  /** Orders below this are never deferred. */
  compact_order_failed = 0;
  /** A full direct compaction finished: reset the skip bits when kswapd goes to sleep. */
  compact_blockskip_flush = false;

  constructor(
    readonly nid: number,
    readonly zone_idx: number,
  ) {
    this.id = nid * MAX_NR_ZONES + zone_idx;
    this.name = zone_names[zone_idx];
  }

  get zone_end_pfn(): number {
    return this.zone_start_pfn + this.spanned_pages;
  }
  populated_zone(): boolean {
    return this.present_pages !== 0;
  }
  managed_zone(): boolean {
    return this.managed_pages !== 0;
  }
  zone_spans_pfn(pfn: number): boolean {
    return pfn >= this.zone_start_pfn && pfn < this.zone_start_pfn + this.spanned_pages;
  }
  /** wmark_pages(): the watermark including the boost. */
  wmark_pages(i: number): number {
    return this._watermark[i] + this.watermark_boost;
  }
  min_wmark_pages(): number {
    return this.wmark_pages(WMARK_MIN);
  }
  low_wmark_pages(): number {
    return this.wmark_pages(WMARK_LOW);
  }
  high_wmark_pages(): number {
    return this.wmark_pages(WMARK_HIGH);
  }
  free_list(order: number, mt: number): number {
    return this.free_list_base + order * MIGRATE_TYPES + mt;
  }
}

/** pg_data_t: one NUMA node. */
export class PglistData {
  node_start_pfn = 0;
  node_spanned_pages = 0;
  node_present_pages = 0;
  readonly node_zones: Zone[] = [];
  /** ZONELIST_FALLBACK: zone ids, this node's highest zone first, then other nodes by distance. */
  zonelist_fallback: number[] = [];
  /** ZONELIST_NOFALLBACK: this node's zones only (__GFP_THISNODE). */
  zonelist_nofallback: number[] = [];
  readonly vm_stat: Float64Array;
  readonly cpus: number[] = [];
  /** kswapd is awake and reclaiming (not waiting on kswapd_wait). */
  kswapd_running = false;
  /** Consecutive kswapd runs that reclaimed nothing (pgdat->kswapd_failures). */
  kswapd_failures = 0;
  /** List id of this node's first LRU list (lruvec->lists[0]); see lru.ts. */
  lru_base = 0;
  /**
   * One more than the highest zone with pages spanned (free_area_init_core() →
   * init_currently_empty_zone()); 0 for a node without memory.
   */
  nr_zones = 0;
  // CONFIG_COMPACTION: what kcompactd was asked for (mm/compaction.c). Zero, as the kernel's
  // zeroed pg_data_t, until kcompactd starts (kcompactd_run()).
  /** The highest order a wakeup_kcompactd() asked for since kcompactd last worked (0: none). */
  kcompactd_max_order = 0;
  /** The lowest highest_zoneidx a wakeup_kcompactd() asked for (nr_zones - 1 when none). */
  kcompactd_highest_zoneidx = 0;
  /** A write to vm.compaction_proactiveness asked kcompactd for a proactive round. */
  proactive_compact_trigger = false;
  /**
   * The first pfn of the node's highest zone not yet initialised (`deferred_init=lazy`,
   * page_alloc/deferred.ts), or Infinity (ULONG_MAX) when everything is.
   */
  first_deferred_pfn = Number.POSITIVE_INFINITY;
  /** RAM pages above first_deferred_pfn not yet initialised (and not reserved). */
  nr_deferred_pages = 0;

  constructor(
    readonly node_id: number,
    nr_node_stat_items: number,
  ) {
    this.vm_stat = new Float64Array(nr_node_stat_items);
  }
}
