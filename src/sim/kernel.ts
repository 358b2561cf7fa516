/**
 * machine.kernel: the in-kernel API that tests, benchmarks, later layers and kernel developers
 * call, with the kernel's names and return conventions (a pfn, or -1 where the kernel returns
 * NULL). Allocations and frees run on a CPU the caller names.
 *
 * Slab objects (kmalloc, kmem_cache_alloc, the dentry/inode entry points) are handles: numbers
 * that are the object's physical address. Their allocators return NULL (0) on failure, as a C
 * pointer would; kmalloc(0) returns ZERO_SIZE_PTR (16).
 */

import {
  type Cma,
  cma_alloc,
  cma_by_name,
  cma_pages_valid,
  cma_range_allocated,
  cma_release,
} from '../mm/cma.ts';
import { __GFP_NOWARN, __GFP_ZERO, GFP_ATOMIC, GFP_KERNEL, gfp_zone } from '../mm/gfp.ts';
import type { MM } from '../mm/mm.ts';
import { MAX_PAGE_ORDER } from '../mm/mmzone.ts';
import { __alloc_pages, __free_pages } from '../mm/page_alloc/alloc_pages.ts';
import {
  ACR_FLAGS_CMA,
  ACR_FLAGS_NONE,
  alloc_contig_pages,
  alloc_contig_range,
  free_contig_range,
} from '../mm/page_alloc/contig.ts';
import { drain_all_pages } from '../mm/page_alloc/pcp.ts';
import {
  type PagePool,
  page_pool_alloc_pages,
  page_pool_create,
  page_pool_destroy,
  page_pool_put_page,
} from '../mm/page_pool.ts';
import {
  d_alloc,
  d_drop,
  d_instantiate,
  dget,
  dput,
  drop_slab,
  ihold,
  iput,
  new_inode,
  type ShrinkControl,
  Shrinker,
  type SuperBlock,
  shrink_slab,
  shrinker_free,
  shrinker_register,
} from '../mm/shrinker.ts';
import {
  __kmem_cache_create,
  __kmem_cache_shrink,
  type KmemCache,
  type KmemCacheArgs,
  kmem_cache_destroy,
  kmem_cache_free,
  NUMA_NO_NODE,
  slab_alloc_node,
} from '../mm/slab.ts';
import { __kmalloc_node, find_kmem_cache, kfree, ksize } from '../mm/slab_common.ts';
import { __vmalloc_node_range, kvfree, kvmalloc_node, VM_ALLOW_HUGE_VMAP, vfree } from '../mm/vmalloc.ts';

export interface AllocWhere {
  /** Preferred node; defaults to the node of `cpu`. */
  nid?: number;
  /** The CPU the allocation runs on (its per-cpu lists); defaults to 0. */
  cpu?: number;
}

/** Where a vmalloc runs, and the caller name /proc/vmallocinfo shows for it (%pS). */
export interface VmallocWhere extends AllocWhere {
  /** Default: the entry point's name (vmalloc, vzalloc, vmalloc_huge, kvmalloc). */
  caller?: string;
}

/** Where alloc_contig_range() and alloc_contig_pages() run. */
export interface ContigWhere extends AllocWhere {
  /** fatal_signal_pending(current) of the calling task, asked during migration (-EINTR). */
  fatal_signal_pending?: () => boolean;
}

/** One CMA area as KernelApi.cma_areas() lists it. */
export interface CmaAreaInfo {
  name: string;
  /** The node it was declared on, or -1 (NUMA_NO_NODE). */
  nid: number;
  order_per_bit: number;
  /** Pages (0 if the area could not be activated). */
  count: number;
  available_count: number;
  ranges: Array<{ base_pfn: number; count: number }>;
}

export class KernelApi {
  constructor(readonly mm: MM) {}

  /** alloc_pages(): the first pfn of a free 2^order block, or -1. */
  alloc_pages(gfp: number, order: number, where: AllocWhere = {}): number {
    if (!Number.isInteger(gfp) || gfp < 0) throw new RangeError(`alloc_pages: gfp ${gfp} is not a GFP mask`);
    if (!Number.isInteger(order)) throw new RangeError(`alloc_pages: order ${order} is not an integer`);
    const cpu = this.cpu(where.cpu);
    const nid = where.nid ?? this.mm.cpu_to_node[cpu];
    if (!Number.isInteger(nid) || nid < 0 || nid >= this.mm.nodes.length)
      throw new RangeError(`alloc_pages: no node ${nid}`);
    return __alloc_pages(this.mm, gfp, order, nid, cpu);
  }

  /** free_pages(): give back a block alloc_pages() returned, with its order. */
  free_pages(pfn: number, order: number, where: { cpu?: number } = {}): void {
    __free_pages(this.mm, pfn, order, this.cpu(where.cpu));
  }

  /** drain_all_pages(): flush every CPU's per-cpu lists to the buddy lists. */
  drain_all_pages(): void {
    drain_all_pages(this.mm, null);
  }

  /**
   * alloc_contig_range(): allocate exactly the pfns [start, end) of one zone, isolating their
   * pageblocks and migrating what is in them. Returns 0 (the pages are the caller's: order-0
   * pages, or one compound page with __GFP_COMP) or a negative errno: -EBUSY (an unmovable or
   * pinned page, an overlapping isolation, a page that would not move), -ENOMEM (no page to
   * migrate to), -EINTR (`where.fatal_signal_pending()` said so), -EINVAL (a gfp flag other than
   * reclaim modifiers, __GFP_COMP, __GFP_RETRY_MAYFAIL, __GFP_NOWARN, __GFP_ZERO). `alloc_flags`
   * is ACR_FLAGS_NONE (0) or ACR_FLAGS_CMA (1). Free with free_contig_range().
   */
  alloc_contig_range(
    start: number,
    end: number,
    alloc_flags: number,
    gfp: number,
    where: ContigWhere = {},
  ): number {
    this.gfp(gfp, 'alloc_contig_range');
    const f = this.mm.frames;
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > f.nr_frames || start >= end)
      throw new RangeError(`alloc_contig_range: [${start}, ${end}) is not a pfn range`);
    const zone = this.mm.page_zone(start);
    if (!zone?.zone_spans_pfn(start) || !zone.zone_spans_pfn(end - 1) || this.mm.page_zone(end - 1) !== zone)
      throw new RangeError(`alloc_contig_range: [${start}, ${end}) is not inside one zone`);
    if (alloc_flags !== ACR_FLAGS_NONE && alloc_flags !== ACR_FLAGS_CMA)
      throw new RangeError(
        `alloc_contig_range: alloc_flags ${alloc_flags} is not ACR_FLAGS_NONE or ACR_FLAGS_CMA`,
      );
    return alloc_contig_range(this.mm, start, end, alloc_flags, gfp, {
      cpu: this.cpu(where.cpu),
      fatal_signal_pending: where.fatal_signal_pending,
    });
  }

  /**
   * alloc_contig_pages(): find and allocate `nr_pages` contiguous pages (aligned to nr_pages when
   * it is a power of two) in the zones `gfp` allows, on node `where.nid` (default: the CPU's)
   * and, without __GFP_THISNODE, the others; `where.nodemask` limits the nodes. Returns the
   * first pfn, or -1 (NULL).
   */
  alloc_contig_pages(
    nr_pages: number,
    gfp: number,
    where: ContigWhere & { nodemask?: number[] } = {},
  ): number {
    this.gfp(gfp, 'alloc_contig_pages');
    if (!Number.isInteger(nr_pages) || nr_pages < 1)
      throw new RangeError(`alloc_contig_pages: nr_pages ${nr_pages} is not a positive count`);
    if (gfp_zone(gfp) < 0)
      throw new RangeError(`alloc_contig_pages: invalid GFP zone modifiers in 0x${gfp.toString(16)}`);
    const cpu = this.cpu(where.cpu);
    const nid = where.nid ?? this.mm.cpu_to_node[cpu];
    if (!Number.isInteger(nid) || nid < 0 || nid >= this.mm.nodes.length)
      throw new RangeError(`alloc_contig_pages: no node ${nid}`);
    return alloc_contig_pages(this.mm, nr_pages, gfp, nid, where.nodemask ?? null, {
      cpu,
      fatal_signal_pending: where.fatal_signal_pending,
    });
  }

  /**
   * free_contig_range(): free `nr_pages` pages from `pfn` that alloc_contig_range() or
   * alloc_contig_pages() gave (a compound page whole: nr_pages must be its size).
   */
  free_contig_range(pfn: number, nr_pages: number, where: { cpu?: number } = {}): void {
    const f = this.mm.frames;
    if (
      !Number.isInteger(pfn) ||
      !Number.isInteger(nr_pages) ||
      pfn < 0 ||
      nr_pages < 0 ||
      pfn + nr_pages > f.nr_frames
    )
      throw new RangeError(`free_contig_range: [${pfn}, ${pfn} + ${nr_pages}) is not a pfn range`);
    free_contig_range(this.mm, pfn, nr_pages, this.cpu(where.cpu));
  }

  /** The CMA areas (cma_for_each_area()): name, node, size, free pages and ranges (pfns). */
  cma_areas(): CmaAreaInfo[] {
    return this.mm.cma_areas.map((c) => ({
      name: c.name,
      nid: c.nid,
      order_per_bit: c.order_per_bit,
      count: c.count,
      available_count: c.available_count,
      ranges: c.ranges.map((r) => ({ base_pfn: r.base_pfn, count: r.count })),
    }));
  }

  /**
   * cma_alloc(): `count` pages of the area `name`, the first aligned to 2^align pages, taken
   * with alloc_contig_range() (the movable pages borrowing them are migrated out). Returns the
   * first pfn (the pages are the caller's, order-0) or -1 (NULL), counting cma_alloc_success or
   * cma_alloc_fail. Without `no_warn` a failure is logged with the area's free runs.
   */
  cma_alloc(name: string, count: number, align = 0, no_warn = false, where: ContigWhere = {}): number {
    const cma = this.cma(name, 'cma_alloc');
    if (!Number.isInteger(count) || count < 0)
      throw new RangeError(`cma_alloc: count ${count} is not a page count`);
    if (!Number.isInteger(align) || align < 0 || align > 30)
      throw new RangeError(`cma_alloc: align ${align} is not a page order`);
    return cma_alloc(this.mm, cma, count, align, no_warn, {
      cpu: this.cpu(where.cpu),
      fatal_signal_pending: where.fatal_signal_pending,
    });
  }

  /**
   * cma_release(): give back `count` pages from `pfn` that cma_alloc() returned. False (nothing
   * done) if they are not inside the area, as in the kernel; pages inside it that cma_alloc() did
   * not hand out are a RangeError (the kernel would corrupt its free lists).
   */
  cma_release(name: string, pfn: number, count: number, where: { cpu?: number } = {}): boolean {
    const cma = this.cma(name, 'cma_release');
    if (!Number.isInteger(pfn) || !Number.isInteger(count) || count < 0)
      throw new RangeError(`cma_release: [${pfn}, ${pfn} + ${count}) is not a pfn range`);
    if (!cma_pages_valid(cma, pfn, count)) return false;
    if (!cma_range_allocated(cma, pfn, count))
      throw new RangeError(`cma_release: [${pfn}, ${pfn + count}) of ${name} was not allocated by cma_alloc`);
    return cma_release(this.mm, cma, pfn, count, this.cpu(where.cpu));
  }

  private cma(name: string, what: string): Cma {
    const cma = cma_by_name(this.mm, name);
    if (!cma) throw new RangeError(`${what}: no CMA area '${name}'`);
    return cma;
  }

  /**
   * kmalloc() / kmalloc_node(): at least `size` bytes from the kmalloc caches (kmalloc-rcl-* for
   * __GFP_RECLAIMABLE, dma-kmalloc-* for __GFP_DMA, kmalloc-cg-* for __GFP_ACCOUNT), or a
   * compound block of get_order(size) pages above 8 KiB. Without `where.nid` any node may serve
   * it (the CPU's own first). Returns the object's handle, NULL (0), or ZERO_SIZE_PTR for 0.
   */
  kmalloc(size: number, gfp: number, where: AllocWhere = {}): number {
    if (!Number.isInteger(size) || size < 0)
      throw new RangeError(`kmalloc: size ${size} is not a byte count`);
    this.gfp(gfp, 'kmalloc');
    return __kmalloc_node(this.mm, size, gfp, this.node(where.nid), this.cpu(where.cpu));
  }

  /** kfree(): free what kmalloc() or kmem_cache_alloc() returned (NULL and ZERO_SIZE_PTR are ignored). */
  kfree(handle: number, where: { cpu?: number } = {}): void {
    kfree(this.mm, handle, this.cpu(where.cpu));
  }

  /** ksize(): the usable size of an allocated object. */
  ksize(handle: number): number {
    return ksize(this.mm, handle);
  }

  /**
   * kmem_cache_create(): a new cache of `size`-byte objects (args: align, SLAB_* flags, ctor).
   * Its geometry follows SLUB's calculate_sizes() and calculate_order().
   */
  kmem_cache_create(name: string, size: number, args: KmemCacheArgs = {}): KmemCache {
    return __kmem_cache_create(this.mm, name, size, args);
  }

  /** A cache by name (kmalloc-64, dentry, task_struct, …), or undefined. */
  kmem_cache(name: string): KmemCache | undefined {
    return find_kmem_cache(this.mm, name);
  }

  /** kmem_cache_alloc() / kmem_cache_alloc_node(): an object's handle, or NULL (0). */
  kmem_cache_alloc(s: KmemCache, gfp: number, where: AllocWhere = {}): number {
    this.gfp(gfp, 'kmem_cache_alloc');
    return slab_alloc_node(this.mm, s, gfp, this.node(where.nid), this.cpu(where.cpu));
  }

  /** kmem_cache_free(): free an object of `s`. */
  kmem_cache_free(s: KmemCache, handle: number, where: { cpu?: number } = {}): void {
    kmem_cache_free(this.mm, s, handle, this.cpu(where.cpu));
  }

  /** kmem_cache_shrink(): flush the per-cpu slabs and free the empty slabs. */
  kmem_cache_shrink(s: KmemCache, where: { cpu?: number } = {}): void {
    __kmem_cache_shrink(this.mm, s, this.cpu(where.cpu));
  }

  /** kmem_cache_destroy(): false (and a kernel log line) if objects remain, as the kernel warns. */
  kmem_cache_destroy(s: KmemCache, where: { cpu?: number } = {}): boolean {
    return kmem_cache_destroy(this.mm, s, this.cpu(where.cpu));
  }

  /**
   * shrinker_alloc() + shrinker_register(): a shrinker with the given callbacks, registered.
   * `count` returns freeable objects (or SHRINK_EMPTY), `scan` frees up to sc.nr_to_scan and
   * returns how many it freed (or SHRINK_STOP). The callbacks are closures: while the shrinker
   * is registered, Machine.clone() refuses to copy the machine (unregister it first).
   */
  register_shrinker(
    name: string,
    count: (sc: ShrinkControl) => number,
    scan: (sc: ShrinkControl) => number,
    opts: { flags?: number; seeks?: number; batch?: number } = {},
  ): Shrinker {
    const s = new UserShrinker(opts.flags ?? 0, name, this.mm.nodes.length, count, scan);
    if (opts.seeks !== undefined) s.seeks = opts.seeks;
    if (opts.batch !== undefined) s.batch = opts.batch;
    shrinker_register(this.mm, s);
    return s;
  }

  /** shrinker_free(): unregister a shrinker. */
  unregister_shrinker(s: Shrinker): void {
    shrinker_free(this.mm, s);
  }

  /**
   * shrink_slab(): run every shrinker for node `nid` at `priority` (12 = DEF_PRIORITY, gentlest;
   * 0 scans everything). Returns the objects freed; freed slab pages are added to
   * mm.slab.reclaimed_pages.
   */
  shrink_slab(gfp: number, nid: number, priority: number): number {
    this.gfp(gfp, 'shrink_slab');
    if (!Number.isInteger(priority) || priority < 0 || priority > 12)
      throw new RangeError(`shrink_slab: priority ${priority} is not 0..12`);
    return shrink_slab(this.mm, gfp, this.node(nid), priority);
  }

  /** drop_slab(): what `echo 2 > /proc/sys/vm/drop_caches` does. */
  drop_slab(): void {
    drop_slab(this.mm);
  }

  /** The root file system's super block (ext4), whose unused dentries and inodes are shrinkable. */
  get sb(): SuperBlock {
    return this.mm.slab.super_blocks[0];
  }

  /** d_alloc(): a new dentry in use (count 1); NULL (0) on failure. */
  d_alloc(gfp: number, where: { cpu?: number } = {}): number {
    return d_alloc(this.sb, gfp, this.cpu(where.cpu));
  }

  /** new_inode(): a new inode in use (i_count 1); NULL (0) on failure. */
  new_inode(gfp: number, where: { cpu?: number } = {}): number {
    return new_inode(this.sb, gfp, this.cpu(where.cpu));
  }

  /** d_instantiate(): the dentry takes over the caller's inode reference. */
  d_instantiate(dentry: number, inode: number): void {
    d_instantiate(this.sb, dentry, inode);
  }

  /** dget(): another reference (a lookup hit). */
  dget(dentry: number): void {
    dget(this.sb, dentry);
  }

  /** dput(): drop a reference; the last one leaves the dentry unused on the LRU (or frees it if dropped). */
  dput(dentry: number, where: { cpu?: number } = {}): void {
    dput(this.sb, dentry, this.cpu(where.cpu));
  }

  /** d_drop(): unhash, so the last dput() frees the dentry (unlink, invalidation). */
  d_drop(dentry: number): void {
    d_drop(this.sb, dentry);
  }

  /** ihold(): another inode reference. */
  ihold(inode: number): void {
    ihold(this.sb, inode);
  }

  /** iput(): drop an inode reference; the last one leaves it unused on the inode LRU. */
  iput(inode: number, where: { cpu?: number } = {}): void {
    iput(this.sb, inode, this.cpu(where.cpu));
  }

  /**
   * vmalloc() / __vmalloc_node(): `size` bytes of virtually contiguous memory made of order-0
   * pages (unmovable with GFP_KERNEL), plus the vm_struct (kmalloc-96), the vmap_area and the page
   * array (kmalloc, or itself vmalloc'ed above 512 pages). Returns the area's virtual address (a
   * handle for vfree(); from VMALLOC_START = 0xffffc90000000000, so a double holds it exactly only
   * at multiples of 2 KiB: offset it by whole pages), or NULL (0); see /proc/vmallocinfo and
   * VmallocUsed in /proc/meminfo.
   */
  vmalloc(size: number, gfp = GFP_KERNEL, where: VmallocWhere = {}): number {
    return this.vmalloc_range(size, gfp, 0, where, 'vmalloc');
  }

  /** vzalloc() / vzalloc_node(): vmalloc() with GFP_KERNEL | __GFP_ZERO. */
  vzalloc(size: number, where: VmallocWhere = {}): number {
    return this.vmalloc_range(size, GFP_KERNEL | __GFP_ZERO, 0, where, 'vzalloc');
  }

  /**
   * vmalloc_huge() / vmalloc_huge_node(): from 2 MiB up, a PMD-aligned area of PMD-order (2 MiB)
   * pages, split to order 0; falls back to order-0 pages when those cannot be had.
   */
  vmalloc_huge(size: number, gfp = GFP_KERNEL, where: VmallocWhere = {}): number {
    return this.vmalloc_range(size, gfp, VM_ALLOW_HUGE_VMAP, where, 'vmalloc_huge');
  }

  /** vfree(): free a vmalloc area (NULL is ignored; an unknown address is a WARN in mm.klog). */
  vfree(handle: number, where: { cpu?: number } = {}): void {
    if (typeof handle !== 'number' || !Number.isFinite(handle))
      throw new RangeError(`vfree: ${handle} is not an address`);
    vfree(this.mm, handle, this.cpu(where.cpu));
  }

  /**
   * kvmalloc() / kvmalloc_node(): kmalloc first (a slab object, or a large kmalloc without
   * direct reclaim); above a page, if that fails and `gfp` may sleep, vmalloc (huge pages allowed).
   * Returns a handle for kvfree(), or NULL (0).
   */
  kvmalloc(size: number, gfp = GFP_KERNEL, where: VmallocWhere = {}): number {
    if (!Number.isInteger(size) || size < 0)
      throw new RangeError(`kvmalloc: size ${size} is not a byte count`);
    this.gfp(gfp, 'kvmalloc');
    return kvmalloc_node(
      this.mm,
      size,
      gfp,
      this.node(where.nid),
      this.cpu(where.cpu),
      where.caller ?? 'kvmalloc',
    );
  }

  /** kvfree(): free what kvmalloc(), kmalloc() or vmalloc() returned. */
  kvfree(handle: number, where: { cpu?: number } = {}): void {
    kvfree(this.mm, handle, this.cpu(where.cpu));
  }

  /**
   * page_pool_create(): a NIC receive queue's page pool of 2^order pages whose NAPI runs on
   * `cpu`, with a ring of min(pool_size, 16384) entries (1024 when 0) behind a 128-entry direct
   * cache. Returns the pool, or null if its struct or ring could not be allocated.
   */
  page_pool_create(
    params: { order?: number; pool_size?: number; nid?: number; cpu?: number } = {},
  ): PagePool | null {
    const order = params.order ?? 0;
    if (!Number.isInteger(order) || order < 0 || order > MAX_PAGE_ORDER)
      throw new RangeError(`page_pool_create: order ${order} is not 0..${MAX_PAGE_ORDER}`);
    const pool_size = params.pool_size ?? 0;
    if (!Number.isInteger(pool_size) || pool_size < 0)
      throw new RangeError(`page_pool_create: pool_size ${pool_size} is not a count`);
    return page_pool_create(this.mm, {
      order,
      pool_size,
      nid: this.node(params.nid),
      cpu: this.cpu(params.cpu),
    });
  }

  /**
   * page_pool_alloc_pages() (page_pool_dev_alloc_pages() passes GFP_ATOMIC | __GFP_NOWARN): a page
   * from the pool's caches, else from the page allocator (64 order-0 pages at once through the
   * bulk allocator, or one compound page). Returns its pfn, or -1.
   */
  page_pool_alloc_pages(pool: PagePool, gfp = GFP_ATOMIC | __GFP_NOWARN): number {
    this.gfp(gfp, 'page_pool_alloc_pages');
    return page_pool_alloc_pages(this.mm, pool, gfp);
  }

  /**
   * page_pool_put_full_page(): give a page back to its pool: to the direct cache when
   * `allow_direct` (the driver's NAPI context, the default), else to the ring; a page neither
   * holds goes back to the page allocator.
   */
  page_pool_put_page(pool: PagePool, pfn: number, opts: { allow_direct?: boolean } = {}): void {
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.mm.frames.nr_frames)
      throw new RangeError(`page_pool_put_page: pfn ${pfn} out of range`);
    page_pool_put_page(this.mm, pool, pfn, opts.allow_direct ?? true);
  }

  /**
   * page_pool_destroy(): free every cached page; the pool itself goes once the driver has put back
   * every page it still holds (pool.freed).
   */
  page_pool_destroy(pool: PagePool): void {
    page_pool_destroy(this.mm, pool);
  }

  private vmalloc_range(
    size: number,
    gfp: number,
    vm_flags: number,
    where: VmallocWhere,
    what: string,
  ): number {
    if (!Number.isInteger(size) || size < 0)
      throw new RangeError(`${what}: size ${size} is not a byte count`);
    this.gfp(gfp, what);
    return __vmalloc_node_range(
      this.mm,
      size,
      1,
      gfp,
      vm_flags,
      this.node(where.nid),
      where.caller ?? what,
      this.cpu(where.cpu),
    );
  }

  private gfp(gfp: number, what: string): void {
    if (!Number.isInteger(gfp) || gfp < 0) throw new RangeError(`${what}: gfp ${gfp} is not a GFP mask`);
  }

  private node(nid: number | undefined): number {
    if (nid === undefined || nid === NUMA_NO_NODE) return NUMA_NO_NODE;
    if (!Number.isInteger(nid) || nid < 0 || nid >= this.mm.nodes.length)
      throw new RangeError(`no node ${nid}`);
    return nid;
  }

  private cpu(cpu = 0): number {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.mm.nr_cpus)
      throw new RangeError(`no cpu ${cpu} (the machine has ${this.mm.nr_cpus})`);
    return cpu;
  }
}

/** A shrinker registered through KernelApi.register_shrinker(), with the caller's callbacks. */
class UserShrinker extends Shrinker {
  constructor(
    flags: number,
    name: string,
    nr_nodes: number,
    readonly count: (sc: ShrinkControl) => number,
    readonly scan: (sc: ShrinkControl) => number,
  ) {
    super(flags, name, nr_nodes);
  }

  override count_objects(sc: ShrinkControl): number {
    return this.count(sc);
  }

  override scan_objects(sc: ShrinkControl): number {
    return this.scan(sc);
  }
}
