/**
 * The slab allocator's common layer (mm/slab_common.c, include/linux/slab.h): the kmalloc size
 * classes and their caches, kmalloc()/kfree() with kmalloc_large() for sizes above 8 KiB, and
 * the caches the kernel creates at boot (kmem_cache_init() and the subsystems' init calls).
 *
 * kmalloc caches: 8, 16, 32, 64, 96, 128, 192, 256, 512 bytes and 1k..8k (KMALLOC_SHIFT_HIGH =
 * PAGE_SHIFT + 1), in four types chosen from the GFP flags by kmalloc_type(): KMALLOC_NORMAL,
 * KMALLOC_RECLAIM (__GFP_RECLAIMABLE: kmalloc-rcl-*, SLAB_RECLAIM_ACCOUNT), KMALLOC_DMA
 * (__GFP_DMA: dma-kmalloc-*, slabs in ZONE_DMA) and KMALLOC_CGROUP (__GFP_ACCOUNT:
 * kmalloc-cg-*), created in that order as 6.18 does (CONFIG_RANDOM_KMALLOC_CACHES off). Sizes
 * above KMALLOC_MAX_CACHE_SIZE go to the page allocator as a compound block of get_order(size)
 * counted in nr_slab_unreclaimable (___kmalloc_large_node()).
 *
 * Handles: a slab object's handle is its address (slab.ts); a large kmalloc's is its block's
 * address pfn * PAGE_SIZE, a frame that is allocated but not PG_slab — kfree() tells them apart
 * as the kernel does, by PageSlab of the address's page.
 */
import { __GFP_ACCOUNT, __GFP_COMP, __GFP_DMA, __GFP_NOWARN, __GFP_RECLAIMABLE } from './gfp.ts';
import type { MM } from './mm.ts';
import { get_order, MAX_PAGE_ORDER, PAGE_SHIFT, PAGE_SIZE } from './mmzone.ts';
import { __alloc_pages, __free_pages } from './page_alloc/alloc_pages.ts';
import { PG_slab, PGI_alloc } from './page-flags.ts';
import {
  __kmem_cache_create,
  __slab_free,
  GFP_SLAB_BUG_MASK,
  type KmemCache,
  type KmemCacheArgs,
  MAX_CACHES,
  NULL,
  NUMA_NO_NODE,
  object_of,
  slab_alloc_node,
  virt_to_slab,
  ZERO_SIZE_PTR,
} from './slab.ts';
import {
  SLAB_ACCOUNT,
  SLAB_CACHE_DMA,
  SLAB_HWCACHE_ALIGN,
  SLAB_KMALLOC,
  SLAB_NO_MERGE,
  SLAB_PANIC,
  SLAB_RECLAIM_ACCOUNT,
  SLAB_TYPESAFE_BY_RCU,
} from './slab_flags.ts';
import { node_stat_index } from './vmstat_items.ts';

export const KMALLOC_MIN_SIZE = 8;
export const KMALLOC_SHIFT_LOW = 3;
export const KMALLOC_SHIFT_HIGH = PAGE_SHIFT + 1;
/** The largest kmalloc served by a cache (8 KiB); larger ones are kmalloc_large(). */
export const KMALLOC_MAX_CACHE_SIZE = 1 << KMALLOC_SHIFT_HIGH;
/** The largest kmalloc at all: a MAX_PAGE_ORDER block (4 MiB). */
export const KMALLOC_MAX_SIZE = 1 << (MAX_PAGE_ORDER + PAGE_SHIFT);

// enum kmalloc_cache_type
export const KMALLOC_NORMAL = 0;
export const KMALLOC_RECLAIM = 1;
export const KMALLOC_DMA = 2;
export const KMALLOC_CGROUP = 3;
export const NR_KMALLOC_TYPES = 4;
const KMALLOC_PREFIX = ['kmalloc-', 'kmalloc-rcl-', 'dma-kmalloc-', 'kmalloc-cg-'];

const NR_SLAB_UNRECLAIMABLE = node_stat_index('nr_slab_unreclaimable');

/** kmalloc_size_index[]: the cache index of sizes 1..192 in steps of 8 (96 is 1, 192 is 2). */
const kmalloc_size_index = [3, 4, 5, 5, 6, 6, 6, 6, 1, 1, 1, 1, 7, 7, 7, 7, 2, 2, 2, 2, 2, 2, 2, 2];

/**
 * kernel: mm/slab_common.c kmalloc_slab() index: the kmalloc cache index of a request of `size`
 * bytes (1..8192): 1..8 -> 3 (kmalloc-8), 65..96 -> 1 (kmalloc-96), 129..192 -> 2 (kmalloc-192),
 * 193..256 -> 8, 4097..8192 -> 13.
 */
export function kmalloc_index(size: number): number {
  if (size <= 192) return kmalloc_size_index[(size - 1) >>> 3];
  return 32 - Math.clz32(size - 1);
}

/** kmalloc_size(): the object size of cache index `i`. */
export function kmalloc_size(i: number): number {
  return i === 1 ? 96 : i === 2 ? 192 : 1 << i;
}

/** The kmalloc cache name of (type, index), e.g. kmalloc-rcl-1k. */
export function kmalloc_name(type: number, i: number): string {
  const size = kmalloc_size(i);
  return KMALLOC_PREFIX[type] + (size >= 1024 ? `${size >> 10}k` : String(size));
}

/**
 * kernel: include/linux/slab.h kmalloc_type()
 * __GFP_DMA wins, then __GFP_RECLAIMABLE, then __GFP_ACCOUNT (memcg kmem accounting is on).
 */
export function kmalloc_type(gfp: number): number {
  if ((gfp & (__GFP_DMA | __GFP_RECLAIMABLE | __GFP_ACCOUNT)) === 0) return KMALLOC_NORMAL;
  if (gfp & __GFP_DMA) return KMALLOC_DMA;
  if (gfp & __GFP_RECLAIMABLE) return KMALLOC_RECLAIM;
  return KMALLOC_CGROUP;
}

/**
 * kernel: mm/slab_common.c new_kmalloc_cache() via create_boot_cache()
 * kmalloc caches are aligned to the largest power of two dividing their size.
 */
function new_kmalloc_cache(mm: MM, i: number, type: number): void {
  let flags = SLAB_KMALLOC | SLAB_NO_MERGE;
  if (type === KMALLOC_RECLAIM) flags |= SLAB_RECLAIM_ACCOUNT;
  else if (type === KMALLOC_CGROUP) flags |= SLAB_ACCOUNT;
  else if (type === KMALLOC_DMA) flags |= SLAB_CACHE_DMA;
  const size = kmalloc_size(i);
  const align = Math.max(8, size & -size);
  mm.slab.kmalloc_caches[type][i] = __kmem_cache_create(mm, kmalloc_name(type, i), size, { align, flags });
}

// kernel: mm/slab_common.c create_kmalloc_caches()
function create_kmalloc_caches(mm: MM): void {
  for (let type = KMALLOC_NORMAL; type < NR_KMALLOC_TYPES; type++) {
    mm.slab.kmalloc_caches.push(new Array<KmemCache | null>(KMALLOC_SHIFT_HIGH + 1).fill(null));
    new_kmalloc_cache(mm, 1, type);
    new_kmalloc_cache(mm, 2, type);
    for (let i = KMALLOC_SHIFT_LOW; i <= KMALLOC_SHIFT_HIGH; i++) new_kmalloc_cache(mm, i, type);
  }
}

/** A cache the kernel creates at boot: name, object size and kmem_cache_create() arguments. */
export interface BootCache {
  name: string;
  size: number;
  args: KmemCacheArgs;
}

const HW = SLAB_HWCACHE_ALIGN;
const RCL = SLAB_RECLAIM_ACCOUNT;
const RCU = SLAB_TYPESAFE_BY_RCU;
const P = SLAB_PANIC;
const A = SLAB_ACCOUNT;

/**
 * Caches created after the kmalloc caches, in the order a 6.18 x86-64 kernel creates them (the
 * reverse of its /proc/slabinfo), with the object sizes, flags and constructors of our machines'
 * 6.18 kernel (/sys/kernel/slab/<name>/{object_size,align,ctor,...}). kmem_cache and
 * kmem_cache_node come first, before the kmalloc caches.
 */
export const BOOT_CACHES: readonly BootCache[] = [
  { name: 'vmap_area', size: 72, args: { flags: P } },
  { name: 'mm_struct', size: 1568, args: { flags: HW | P | A } },
  { name: 'maple_node', size: 256, args: { align: 256, flags: P } },
  { name: 'radix_tree_node', size: 576, args: { flags: P | RCL, ctor: true } },
  { name: 'pid', size: 184, args: { flags: HW | P | A } },
  { name: 'anon_vma', size: 96, args: { flags: RCU | P | A, ctor: true } },
  { name: 'anon_vma_chain', size: 64, args: { flags: P | A } },
  { name: 'task_struct', size: 5888, args: { align: 64, flags: P | A } },
  { name: 'sighand_cache', size: 2080, args: { flags: HW | P | RCU | A, ctor: true } },
  { name: 'signal_cache', size: 1152, args: { flags: HW | P | A } },
  { name: 'files_cache', size: 704, args: { flags: HW | P | A } },
  { name: 'vm_area_struct', size: 192, args: { flags: HW | P | RCU | A, use_freeptr_offset: true } },
  { name: 'lsm_inode_cache', size: 32, args: { flags: P } },
  { name: 'names_cache', size: 4096, args: { flags: HW | P } },
  { name: 'dentry', size: 192, args: { flags: RCL | P | A } },
  { name: 'inode_cache', size: 616, args: { flags: RCL | P | A, ctor: true } },
  { name: 'filp', size: 184, args: { flags: HW | P | A | RCU, use_freeptr_offset: true } },
  { name: 'mnt_cache', size: 384, args: { flags: HW | P } },
  { name: 'kernfs_node_cache', size: 136, args: { flags: P } },
  { name: 'shmem_inode_cache', size: 744, args: { flags: P | A, ctor: true } },
  { name: 'proc_inode_cache', size: 688, args: { flags: RCL | A | P, ctor: true } },
  { name: 'buffer_head', size: 104, args: { flags: RCL | P } },
  { name: 'skbuff_head_cache', size: 224, args: { flags: HW | P } },
  { name: 'sock_inode_cache', size: 768, args: { flags: HW | RCL | A, ctor: true } },
  { name: 'ext4_inode_cache', size: 1120, args: { flags: RCL | A, ctor: true } },
];

/**
 * kernel: mm/slub.c kmem_cache_init() and the init calls that create caches
 * kmem_cache, kmem_cache_node, the kmalloc caches, then BOOT_CACHES. Creating a cache allocates
 * no memory here (its struct kmem_cache is not a slab object); the boot allocations
 * (mm_init.ts) allocate those objects.
 */
export function kmem_cache_init(mm: MM): void {
  __kmem_cache_create(mm, 'kmem_cache', 232, { flags: HW });
  __kmem_cache_create(mm, 'kmem_cache_node', 72, { flags: HW });
  create_kmalloc_caches(mm);
  for (const c of BOOT_CACHES) __kmem_cache_create(mm, c.name, c.size, c.args);
}

/** The listed cache named `name` (the newest, if several share it), or undefined. */
export function find_kmem_cache(mm: MM, name: string): KmemCache | undefined {
  const list = mm.slab.slab_caches;
  for (let i = list.length - 1; i >= 0; i--) if (list[i].name === name) return list[i];
  return undefined;
}

/** The cache named `name`, or an Error naming it. */
export function kmem_cache_by_name(mm: MM, name: string): KmemCache {
  const s = find_kmem_cache(mm, name);
  if (!s) throw new Error(`no slab cache named ${name}`);
  return s;
}

/**
 * kernel: mm/slab_common.c kmalloc_slab()
 * The cache a kmalloc of `size` bytes (1..KMALLOC_MAX_CACHE_SIZE) with `gfp` uses.
 */
export function kmalloc_slab(mm: MM, size: number, gfp: number): KmemCache {
  return mm.slab.kmalloc_caches[kmalloc_type(gfp)][kmalloc_index(size)]!;
}

/**
 * kernel: mm/slub.c ___kmalloc_large_node()
 * A compound block of get_order(size) pages straight from the page allocator, counted in
 * nr_slab_unreclaimable. Returns its address, or NULL.
 */
function ___kmalloc_large_node(mm: MM, size: number, gfp: number, node: number, cpu: number): number {
  if (gfp & GFP_SLAB_BUG_MASK) {
    const invalid = gfp & GFP_SLAB_BUG_MASK;
    gfp &= ~GFP_SLAB_BUG_MASK;
    mm.klog.push(
      `Unexpected gfp: 0x${invalid.toString(16)}. Fixing up to gfp: 0x${gfp.toString(16)}. Fix your code!`,
    );
  }
  gfp |= __GFP_COMP;
  const order = get_order(size);
  if (order > MAX_PAGE_ORDER) {
    if ((gfp & __GFP_NOWARN) === 0) mm.klog.push(`kmalloc_large: order ${order} exceeds MAX_PAGE_ORDER`);
    return NULL;
  }
  const nid = node === NUMA_NO_NODE ? mm.cpu_to_node[cpu] : node;
  const pfn = __alloc_pages(mm, gfp, order, nid, cpu);
  if (pfn < 0) return NULL;
  mm.slab.large_kmalloc.add(pfn);
  mm.nodes[mm.page_zone(pfn)!.nid].vm_stat[NR_SLAB_UNRECLAIMABLE] += 1 << order;
  return pfn * PAGE_SIZE;
}

// kernel: mm/slub.c free_large_kmalloc()
function free_large_kmalloc(mm: MM, pfn: number, cpu: number): void {
  const order = mm.frames.order[pfn];
  mm.slab.large_kmalloc.delete(pfn);
  mm.nodes[mm.page_zone(pfn)!.nid].vm_stat[NR_SLAB_UNRECLAIMABLE] -= 1 << order;
  __free_pages(mm, pfn, order, cpu);
}

/**
 * kernel: mm/slub.c __do_kmalloc_node()
 * `size` bytes on `cpu`, preferring `node`: ZERO_SIZE_PTR for 0, a kmalloc cache object up to
 * 8 KiB, a large kmalloc above. Returns the handle, or NULL (0) on failure.
 */
export function __kmalloc_node(mm: MM, size: number, gfp: number, node: number, cpu: number): number {
  if (size > KMALLOC_MAX_CACHE_SIZE) return ___kmalloc_large_node(mm, size, gfp, node, cpu);
  if (size === 0) return ZERO_SIZE_PTR;
  return slab_alloc_node(mm, kmalloc_slab(mm, size, gfp), gfp, node, cpu);
}

/**
 * kernel: mm/slub.c kfree()
 * Free what kmalloc() (or kmem_cache_alloc()) returned; NULL and ZERO_SIZE_PTR are ignored.
 * Throws on an address that is neither (the kernel would BUG or corrupt memory).
 */
export function kfree(mm: MM, addr: number, cpu: number): void {
  if (addr === NULL || addr === ZERO_SIZE_PTR) return;
  const ref = virt_to_slab(mm, addr);
  if (ref >= 0) {
    const s = mm.slab.by_id[ref % MAX_CACHES]!;
    const obj = object_of(mm, s, addr, 'kfree');
    __slab_free(mm, s, Math.floor(obj / 65536), obj % 65536, cpu);
    return;
  }
  const pfn = addr / PAGE_SIZE;
  const f = mm.frames;
  if (!Number.isInteger(pfn) || pfn < 0 || pfn >= f.nr_frames || !mm.slab.large_kmalloc.has(pfn)) {
    throw new Error(`kfree: ${addr} was not returned by kmalloc`);
  }
  if ((f.flags[pfn] & (PGI_alloc | PG_slab)) !== PGI_alloc)
    throw new Error(`kfree: bad page state at pfn ${pfn}`);
  free_large_kmalloc(mm, pfn, cpu);
}

/** kernel: mm/slub.c __ksize(): the usable size of an allocated object. */
export function ksize(mm: MM, addr: number): number {
  if (addr === NULL || addr === ZERO_SIZE_PTR) return 0;
  const ref = virt_to_slab(mm, addr);
  if (ref >= 0) return mm.slab.by_id[ref % MAX_CACHES]!.object_size;
  const pfn = addr / PAGE_SIZE;
  if (!mm.slab.large_kmalloc.has(pfn)) throw new Error(`ksize: ${addr} was not returned by kmalloc`);
  return PAGE_SIZE << mm.frames.order[pfn];
}
