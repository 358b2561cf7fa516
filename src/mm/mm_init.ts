/**
 * Boot (mm/mm_init.c, mm/memblock.c, mm/page_alloc.c init paths): from a physical layout build the
 * memmap, nodes and zones, free every RAM page that memblock has not reserved into the buddy
 * allocator in max-order chunks to the tail, set watermarks and pcp sizes, and make the kernel's
 * own early allocations, which claim pageblocks as UNMOVABLE and RECLAIMABLE as on a real boot.
 */
import type { Prng } from '../lib/prng.ts';
import { type CmaReservation, cma_init_reserved_areas } from './cma.ts';
import { compaction_zonelist_suitable, try_to_compact_pages } from './compaction.ts';
import { __GFP_RECLAIMABLE, GFP_KERNEL } from './gfp.ts';
import { type KernelConfig, MM, type PageAllocSysctls } from './mm.ts';
import {
  MAX_DMA_PFN,
  MAX_DMA32_PFN,
  MAX_NR_ZONES,
  MAX_ORDER_NR_PAGES,
  MIGRATE_MOVABLE,
  PAGE_SIZE,
  PAGES_PER_SECTION,
  PglistData,
  pageblock_nr_pages,
  pageblock_order,
  ZONE_MOVABLE,
  ZONE_NORMAL,
  Zone,
} from './mmzone.ts';
import { __free_pages_memory } from './page_alloc/alloc_pages.ts';
import type { AllocContext, CompactOutcome, SlowpathHooks } from './page_alloc/context.ts';
import { defer_init } from './page_alloc/deferred.ts';
import {
  calculate_min_free_kbytes,
  set_recommended_min_free_kbytes,
  setup_per_zone_lowmem_reserve,
  setup_per_zone_wmarks,
  update_mobility_grouping,
} from './page_alloc/watermark.ts';
import { PG_reserved, PGI_nopage } from './page-flags.ts';
import { alloc_super, d_alloc, d_instantiate, dput, new_inode } from './shrinker.ts';
import { type KmemCache, NULL, NUMA_NO_NODE, slab_alloc_node } from './slab.ts';
import { __kmalloc_node, kfree, kmem_cache_by_name, kmem_cache_init } from './slab_common.ts';
import { try_to_free_pages, wake_all_kswapds, wakeup_kswapd, zone_reclaimable_pages } from './vmscan.ts';
import { NR_VM_NODE_STAT_ITEMS, node_stat_index } from './vmstat_items.ts';

/** A half-open pfn range [start, end). */
export interface PfnRange {
  start: number;
  end: number;
}

/** What firmware and the command line tell the kernel about memory. */
export interface PhysLayout {
  /** System RAM ranges (e820), sorted, not overlapping. */
  ram: PfnRange[];
  /** Memblock reservations inside RAM: never given to the buddy allocator. */
  reserved: Array<PfnRange & { name: string }>;
  /** Each node's pfn range and CPUs; node ranges are MAX_ORDER aligned and in address order. */
  nodes: Array<PfnRange & { cpus: number[] }>;
  /** Per node, the first pfn of ZONE_MOVABLE (kernelcore=/movablecore=), or 0 for none. */
  zone_movable_pfn: number[];
  nr_cpus: number;
  /** CMA areas declared at boot (their ranges are also in `reserved`), activated after memblock. */
  cma?: CmaReservation[];
  /** What setup_arch() printed while reserving (CMA). */
  boot_log?: string[];
}

const NR_SLAB_RECLAIMABLE = node_stat_index('nr_slab_reclaimable');
const NR_SLAB_UNRECLAIMABLE = node_stat_index('nr_slab_unreclaimable');

function overlap(a: PfnRange, start: number, end: number): number {
  return Math.max(0, Math.min(a.end, end) - Math.max(a.start, start));
}

/**
 * free_area_init() for one node: zone spans clipped to the node's memory, ZONE_MOVABLE carved off
 * the top of the highest zone, present pages counted from the RAM ranges.
 */
function init_node_zones(node: PglistData, range: PfnRange, movable_pfn: number, layout: PhysLayout): void {
  const ram = layout.ram.filter((r) => r.end > range.start && r.start < range.end);
  const first = ram.length ? Math.max(ram[0].start, range.start) : range.start;
  const last = ram.length ? Math.min(ram[ram.length - 1].end, range.end) : range.start;
  node.node_start_pfn = first;
  node.node_spanned_pages = last - first;
  const limits = [MAX_DMA_PFN, MAX_DMA32_PFN, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 0];
  let lower = 0;
  for (let idx = 0; idx < MAX_NR_ZONES; idx++) {
    const zone = node.node_zones[idx];
    let start = 0;
    let end = 0;
    if (idx <= ZONE_NORMAL) {
      start = Math.max(lower, first);
      end = Math.min(limits[idx], last);
      lower = limits[idx];
      if (movable_pfn && end > movable_pfn) end = Math.max(start, movable_pfn);
    } else if (idx === ZONE_MOVABLE && movable_pfn) {
      start = Math.max(movable_pfn, first);
      end = last;
    }
    if (end <= start) continue;
    zone.zone_start_pfn = start;
    zone.spanned_pages = end - start;
    // init_currently_empty_zone()
    if (idx + 1 > node.nr_zones) node.nr_zones = idx + 1;
    for (const r of ram) zone.present_pages += overlap(r, start, end);
  }
  for (const z of node.node_zones) node.node_present_pages += z.present_pages;
}

/**
 * build_zonelists(): each node's zones from the highest managed one down, then the other nodes'
 * zones, nearest first (with equal distances, the nodes after this one before those below it, as
 * find_next_best_node's "prefer the next node" penalty orders them).
 */
function build_all_zonelists(mm: MM): void {
  const nr = mm.nodes.length;
  for (const node of mm.nodes) {
    const order: number[] = [];
    for (let k = 0; k < nr; k++) order.push((node.node_id + k) % nr);
    const zonesOf = (n: number) =>
      mm.nodes[n].node_zones
        .filter((z) => z.managed_pages > 0)
        .map((z) => z.id)
        .reverse();
    node.zonelist_nofallback = zonesOf(node.node_id);
    node.zonelist_fallback = order.flatMap(zonesOf);
  }
}

/** memblock_free_all() through __free_pages_memory(): each free range in the largest aligned chunks. */
function memblock_free_all(mm: MM, layout: PhysLayout): void {
  // Deferred memory is freed when initialised, not now.
  const deferred = mm.nodes
    .filter((n) => n.first_deferred_pfn !== Number.POSITIVE_INFINITY)
    .map((n) => ({ start: n.first_deferred_pfn, end: n.node_start_pfn + n.node_spanned_pages }));
  const reserved = [...layout.reserved, ...deferred].sort((a, b) => a.start - b.start);
  for (const r of layout.ram) {
    let start = r.start;
    for (const res of reserved) {
      if (res.end <= start || res.start >= r.end) continue;
      __free_pages_memory(mm, start, Math.max(start, res.start));
      start = Math.max(start, res.end);
    }
    __free_pages_memory(mm, start, r.end);
  }
}

/** The kernel's early boot allocations: slab objects and large kmallocs (kernel_init_allocations). */
export interface EarlyAllocations {
  /** Pages of unmovable kernel memory (unreclaimable slab, large kmallocs) still held after boot. */
  unmovable_pages: number;
  /** Pages of reclaimable kernel memory (dentry and inode slabs) still held after boot. */
  reclaimable_pages: number;
  /** Pages allocated during init and freed before it ends, as a fraction of the total above. */
  transient_fraction: number;
}

/**
 * Where the kernel's early memory sits, by share of pages: the caches of a booted 6.18 machine
 * (its /proc/slabinfo, pages per cache) and kmalloc_large() blocks ('large'). Unmovable caches,
 * reclaimable caches (dentries come with inodes), and the short-lived buffers of init.
 */
const EARLY_UNMOVABLE: ReadonlyArray<readonly [string, number]> = [
  ['kmalloc-8', 4],
  ['kmalloc-16', 8],
  ['kmalloc-32', 30],
  ['kmalloc-64', 32],
  ['kmalloc-96', 84],
  ['kmalloc-128', 385],
  ['kmalloc-192', 509],
  ['kmalloc-256', 54],
  ['kmalloc-512', 674],
  ['kmalloc-1k', 196],
  ['kmalloc-2k', 136],
  ['kmalloc-4k', 344],
  ['kmalloc-8k', 72],
  ['kernfs_node_cache', 581],
  ['vmap_area', 131],
  ['lsm_inode_cache', 300],
  ['task_struct', 288],
  ['vm_area_struct', 184],
  ['maple_node', 87],
  ['anon_vma', 74],
  ['anon_vma_chain', 52],
  ['sighand_cache', 64],
  ['signal_cache', 48],
  ['filp', 36],
  ['shmem_inode_cache', 36],
  ['mm_struct', 24],
  ['pid', 19],
  ['skbuff_head_cache', 10],
  ['files_cache', 8],
  ['mnt_cache', 6],
  ['large', 400],
];
const EARLY_RECLAIMABLE: ReadonlyArray<readonly [string, number]> = [
  ['dentry', 60],
  ['radix_tree_node', 20],
  ['kmalloc-rcl-96', 8],
  ['proc_inode_cache', 4],
  ['buffer_head', 3],
  ['kmalloc-rcl-128', 2],
  ['sock_inode_cache', 2],
  ['inode_cache', 1],
];
const EARLY_TRANSIENT: ReadonlyArray<readonly [string, number]> = [
  ['large', 50],
  ['names_cache', 15],
  ['kmalloc-8k', 5],
  ['kmalloc-4k', 10],
  ['kmalloc-2k', 8],
  ['kmalloc-1k', 6],
  ['kmalloc-512', 6],
];
/** Of the boot-time dentries: the share with an inode, and the share of bursts left unused on the LRU. */
const EARLY_DENTRY_INODE = 0.25;
const EARLY_DENTRY_UNUSED = 0.6;

/** A weighted choice of caches, resolved once (null: a kmalloc_large()). */
interface EarlyMix {
  caches: Array<KmemCache | null>;
  /** Per step: the page share divided by the pages a step takes on average. */
  weights: number[];
}

function early_mix(mm: MM, table: ReadonlyArray<readonly [string, number]>): EarlyMix {
  const caches = table.map(([name]) => (name === 'large' ? null : kmem_cache_by_name(mm, name)));
  const weights = table.map(([name, share], i) => {
    const s = caches[i];
    // A step is a kmalloc_large() of order 2 or 3, or 1..objects-per-slab objects.
    let bytes = s === null ? 6 * PAGE_SIZE : ((s.oo_objects + 1) / 2) * s.size;
    if (name === 'dentry') bytes += ((s!.oo_objects + 1) / 2) * EARLY_DENTRY_INODE * 1128;
    return share / (bytes / PAGE_SIZE);
  });
  return { caches, weights };
}

/**
 * The kernel's early allocations: kmem_cache_init() and the boot caches, the root file system's
 * super block, then what init allocates, through the real slab and page allocators round-robin
 * over the CPUs, so slabs claim pageblocks and leave mixed blocks as a real boot does. Each step
 * puts a burst of objects in one cache (up to a slab's worth) or makes one kmalloc_large() block
 * of order 2 or 3. Steps go on until the slab counters (nr_slab_unreclaimable, which includes
 * large kmallocs, and nr_slab_reclaimable) hold `early`'s pages and transient buffers worth a
 * transient_fraction of them were made; the buffers are freed at the end of init, leaving partly
 * used slabs and holes behind, and the counters are topped up to the goals again (refilling
 * those slabs first). Dentries are allocated on the root super block, a quarter with an inode,
 * in bursts of which 60% are left unused on its LRU (what drop_caches and reclaim can free).
 * Deterministic for a given Prng; with no early memory asked for, nothing is allocated.
 */
function kernel_init_allocations(mm: MM, early: EarlyAllocations, rand: Prng): void {
  kmem_cache_init(mm);
  const sb = alloc_super(mm, 'ext4', kmem_cache_by_name(mm, 'ext4_inode_cache'));
  const goals = [early.unmovable_pages, early.reclaimable_pages];
  const transient_goal = (goals[0] + goals[1]) * early.transient_fraction;
  if (goals[0] <= 0 && goals[1] <= 0 && transient_goal <= 0) return;
  const mixes = [
    early_mix(mm, EARLY_UNMOVABLE),
    early_mix(mm, EARLY_RECLAIMABLE),
    early_mix(mm, EARLY_TRANSIENT),
  ];
  const dentry = kmem_cache_by_name(mm, 'dentry');
  // Imported bindings hoisted out of the loop below (V8 reloads them on every use).
  const nil = NULL;
  const any_node = NUMA_NO_NODE;
  const alloc = slab_alloc_node;
  const transient: number[] = [];
  let transient_pages = 0;
  let cpu = 0;
  const held = (kind: number): number => {
    let n = 0;
    for (const node of mm.nodes) n += node.vm_stat[kind === 1 ? NR_SLAB_RECLAIMABLE : NR_SLAB_UNRECLAIMABLE];
    return n;
  };
  /** One burst in the mix `kind`; returns false when memory ran out. */
  const step = (kind: number): boolean => {
    const mix = mixes[kind];
    const s = mix.caches[rand.weighted(mix.weights)];
    if (s === null) {
      const order = 2 + rand.below(2);
      const addr = __kmalloc_node(mm, PAGE_SIZE << order, GFP_KERNEL, any_node, cpu);
      if (addr === nil) return false;
      if (kind === 2) {
        transient.push(addr);
        transient_pages += 1 << order;
      }
      return true;
    }
    const gfp = kind === 1 ? GFP_KERNEL | __GFP_RECLAIMABLE : GFP_KERNEL;
    const n = 1 + rand.below(s.oo_objects);
    // A burst of dentries is one walk of a directory: all released, or all still held.
    const unused = s === dentry && rand.next() < EARLY_DENTRY_UNUSED;
    for (let k = 0; k < n; k++) {
      if (s === dentry) {
        const d = d_alloc(sb, gfp, cpu);
        if (d === nil) return false;
        if (rand.next() < EARLY_DENTRY_INODE) {
          const inode = new_inode(sb, gfp, cpu);
          if (inode === nil) return false;
          d_instantiate(sb, d, inode);
        }
        if (unused) dput(sb, d, cpu);
        continue;
      }
      const addr = alloc(mm, s, gfp, any_node, cpu);
      if (addr === nil) return false;
      if (kind === 2) {
        transient.push(addr);
        transient_pages += s.size / PAGE_SIZE;
      }
    }
    return true;
  };

  // The caches' own structures: a kmem_cache per cache, a kmem_cache_node per cache and node.
  if (goals[0] > 0) {
    const kc = kmem_cache_by_name(mm, 'kmem_cache');
    const kcn = kmem_cache_by_name(mm, 'kmem_cache_node');
    for (let i = 0; i < mm.slab.slab_caches.length; i++) {
      slab_alloc_node(mm, kc, GFP_KERNEL, NUMA_NO_NODE, 0);
      for (let nid = 0; nid < mm.nodes.length; nid++) slab_alloc_node(mm, kcn, GFP_KERNEL, nid, 0);
    }
  }
  let ok = true;
  while (ok) {
    const want_u = held(0) < goals[0];
    const want_r = held(1) < goals[1];
    const want_t = transient_pages < transient_goal;
    if (!want_u && !want_r && !want_t) break;
    let kind: number;
    if (want_t && (!(want_u || want_r) || rand.next() < early.transient_fraction)) kind = 2;
    else kind = want_u ? (want_r && rand.next() < 0.35 ? 1 : 0) : 1;
    ok = step(kind);
    cpu = (cpu + 1) % mm.nr_cpus;
  }
  for (const addr of transient) kfree(mm, addr, rand.below(mm.nr_cpus));
  // Top up what the freed buffers' slabs took from the goals (refilling those slabs first).
  for (;;) {
    const want_u = held(0) < goals[0];
    const want_r = held(1) < goals[1];
    if (!ok || !(want_u || want_r)) break;
    ok = step(want_u ? (want_r && rand.next() < 0.35 ? 1 : 0) : 1);
    cpu = (cpu + 1) % mm.nr_cpus;
  }
}

export interface BootOptions {
  layout: PhysLayout;
  config: KernelConfig;
  sysctl: PageAllocSysctls;
  /** THP enabled at boot (always or madvise): khugepaged raises min_free_kbytes. */
  thp_enabled: boolean;
  /** `deferred_init=lazy`: the highest zones grow on demand (page_alloc/deferred.ts). */
  deferred_lazy?: boolean;
  early: EarlyAllocations;
  rand: Prng;
}

/** Boot a machine's physical memory. */
export function mm_init(opts: BootOptions): MM {
  const { layout } = opts;
  const nodes: PglistData[] = [];
  const zones: Zone[] = [];
  for (let nid = 0; nid < layout.nodes.length; nid++) {
    const node = new PglistData(nid, NR_VM_NODE_STAT_ITEMS);
    for (let idx = 0; idx < MAX_NR_ZONES; idx++) {
      const zone = new Zone(nid, idx);
      node.node_zones.push(zone);
      zones.push(zone);
    }
    node.cpus.push(...layout.nodes[nid].cpus);
    init_node_zones(node, layout.nodes[nid], layout.zone_movable_pfn[nid] ?? 0, layout);
    nodes.push(node);
  }
  const max_pfn = Math.max(...layout.ram.map((r) => r.end), ...layout.nodes.map((n) => n.end));
  const nr_frames = Math.ceil(max_pfn / MAX_ORDER_NR_PAGES) * MAX_ORDER_NR_PAGES;
  const cpu_to_node = new Int32Array(layout.nr_cpus);
  layout.nodes.forEach((n, nid) => {
    for (const c of n.cpus) cpu_to_node[c] = nid;
  });
  const mm = new MM(opts.config, opts.sysctl, nr_frames, nodes, zones, layout.nr_cpus, cpu_to_node);

  // memmap_init(): no struct page outside RAM; memblock-reserved RAM stays PageReserved, the rest
  // is freed below. Only holes and reservations are written here: the kernel marks every page
  // Reserved and clears it on free, but touching every frame would cost a 1 TiB machine seconds.
  // Pageblocks whose first pfn is RAM start MOVABLE; one that starts in a hole keeps 0,
  // UNMOVABLE (the DMA zone's first block, since pfn 0 is not RAM).
  const flags = mm.frames.flags;
  let holeStart = 0;
  for (const r of layout.ram) {
    flags.fill(PGI_nopage, holeStart, r.start);
    holeStart = r.end;
    mm.subsection_valid.fill(1, r.start >>> pageblock_order, ((r.end - 1) >>> pageblock_order) + 1);
    for (
      let pfn = Math.ceil(r.start / pageblock_nr_pages) * pageblock_nr_pages;
      pfn < r.end;
      pfn += pageblock_nr_pages
    ) {
      mm.pb_flags[pfn >>> pageblock_order] = MIGRATE_MOVABLE;
    }
  }
  flags.fill(PGI_nopage, holeStart);
  // memblocks_present(): the sections with RAM get a memmap.
  mm.ram = layout.ram.map((r) => ({ start: r.start, end: r.end }));
  const sections = new Set<number>();
  for (const r of layout.ram) {
    for (
      let s = Math.floor(r.start / PAGES_PER_SECTION);
      s <= Math.floor((r.end - 1) / PAGES_PER_SECTION);
      s++
    )
      sections.add(s);
  }
  mm.nr_present_sections = sections.size;
  const kernelImage = layout.reserved.find((r) => r.name === 'kernel') ?? layout.reserved[0];
  mm.zero_pfn = kernelImage ? kernelImage.end - 1 : layout.ram[0].start;
  for (const r of layout.reserved) {
    for (const ram of layout.ram)
      flags.fill(PG_reserved, Math.max(r.start, ram.start), Math.min(r.end, ram.end));
  }
  for (const zone of zones) {
    if (!zone.spanned_pages) continue;
    const first = zone.zone_start_pfn >>> pageblock_order;
    const last = (zone.zone_end_pfn - 1) >>> pageblock_order;
    for (let pb = first; pb <= last; pb++) mm.pb_zone[pb] = zone.id + 1;
  }

  if (layout.boot_log) mm.klog.push(...layout.boot_log);
  if (opts.deferred_lazy) for (const node of nodes) defer_init(mm, node);
  memblock_free_all(mm, layout);
  // core_initcall(cma_init_reserved_areas): before the watermarks (postcore_initcall).
  if (layout.cma) cma_init_reserved_areas(mm, layout.cma);
  build_all_zonelists(mm);
  update_mobility_grouping(mm);
  // init_per_zone_wmark_min(), then khugepaged's start raising min_free_kbytes.
  calculate_min_free_kbytes(mm);
  setup_per_zone_wmarks(mm);
  setup_per_zone_lowmem_reserve(mm);
  if (opts.config.TRANSPARENT_HUGEPAGE && opts.thp_enabled) {
    set_recommended_min_free_kbytes(mm);
    setup_per_zone_wmarks(mm);
  }
  update_mobility_grouping(mm);
  kernel_init_allocations(mm, opts.early, opts.rand);
  // kswapd_init(): from here on the slow path wakes kswapd and reclaims directly; with
  // CONFIG_COMPACTION it compacts directly (mm/compaction.c).
  mm.hooks = new KernelHooks(mm);
  return mm;
}

/** The OOM killer of the address-space layer (vm/vm.ts Vm). */
export interface OomKiller {
  /** out_of_memory(): whether a victim was killed. */
  out_of_memory(gfp: number, order: number): boolean;
}

/**
 * The slow path's hooks on a booted kernel: kswapd, direct reclaim and direct compaction, and
 * the OOM killer once the vm layer is there (`oom`). Methods, not closures, so that a machine can
 * be cloned (workqueue.ts).
 */
export class KernelHooks implements SlowpathHooks {
  constructor(
    readonly mm: MM,
    public oom: OomKiller | null = null,
  ) {}

  wakeup_kswapd(zone: Zone, gfp: number, order: number, highest_zoneidx: number): void {
    wakeup_kswapd(this.mm, zone, gfp, order, highest_zoneidx);
  }

  wake_all_kswapds(order: number, gfp: number, ac: AllocContext): void {
    wake_all_kswapds(this.mm, order, gfp, ac);
  }

  try_to_free_pages(order: number, gfp: number, ac: AllocContext): number {
    return try_to_free_pages(this.mm, order, gfp, ac);
  }

  try_to_compact_pages(
    gfp: number,
    order: number,
    alloc_flags: number,
    ac: AllocContext,
    prio: number,
    out: CompactOutcome,
  ): void {
    try_to_compact_pages(this.mm, gfp, order, alloc_flags, ac, prio, out);
  }

  compaction_zonelist_suitable(ac: AllocContext, order: number, alloc_flags: number): boolean {
    return compaction_zonelist_suitable(this.mm, ac, order, alloc_flags);
  }

  zone_reclaimable_pages(zone: Zone): number {
    return zone_reclaimable_pages(this.mm, zone);
  }

  out_of_memory(gfp: number, order: number, _ac: AllocContext): boolean {
    return this.oom ? this.oom.out_of_memory(gfp, order) : false;
  }
}
