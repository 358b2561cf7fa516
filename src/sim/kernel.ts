/**
 * machine.kernel: the in-kernel API that tests, benchmarks, later layers and kernel developers
 * call, with the kernel's names and return conventions (a pfn, or -1 where the kernel returns
 * NULL). Allocations and frees run on a CPU the caller names.
 *
 * Slab objects (kmalloc, kmem_cache_alloc, the dentry/inode entry points) are handles: numbers
 * that are the object's physical address. Their allocators return NULL (0) on failure, as a C
 * pointer would; kmalloc(0) returns ZERO_SIZE_PTR (16).
 */

import type { MM } from '../mm/mm.ts';
import { __alloc_pages, __free_pages } from '../mm/page_alloc/alloc_pages.ts';
import { drain_all_pages } from '../mm/page_alloc/pcp.ts';
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
  type Shrinker,
  type SuperBlock,
  shrink_slab,
  shrinker_alloc,
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

export interface AllocWhere {
  /** Preferred node; defaults to the node of `cpu`. */
  nid?: number;
  /** The CPU the allocation runs on (its per-cpu lists); defaults to 0. */
  cpu?: number;
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
   * returns how many it freed (or SHRINK_STOP).
   */
  register_shrinker(
    name: string,
    count: Shrinker['count_objects'],
    scan: Shrinker['scan_objects'],
    opts: { flags?: number; seeks?: number; batch?: number } = {},
  ): Shrinker {
    const s = shrinker_alloc(this.mm, opts.flags ?? 0, name);
    s.count_objects = count;
    s.scan_objects = scan;
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
