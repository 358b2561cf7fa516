/**
 * The SLUB slab allocator (mm/slub.c, Linux 6.18): caches of equal-sized kernel objects carved
 * out of compound pages that come from the page allocator, so slab pages claim and steal
 * pageblocks (UNMOVABLE, or RECLAIMABLE for SLAB_RECLAIM_ACCOUNT caches) like the kernel's, and
 * stay pinned until every object in them is freed.
 *
 * Objects are handles, never JS objects. A handle is the object's physical address,
 * `head_pfn * PAGE_SIZE + index * s.size`, so the slab is found as the kernel finds it
 * (virt_to_slab): the frame of the address is PG_slab, its compound head is the allocated frame
 * that covers it, and a Map keyed by head pfn (one entry per slab) gives the slab's cache and its
 * slot in that cache's typed arrays. 0 is NULL and 16 ZERO_SIZE_PTR, as in the kernel; pfn 0 is
 * never RAM, so no object has those addresses.
 *
 * Per cache, per slab slot: head pfn, order, objects, in-use count, state, node, owning CPU, list
 * links, a bitmap of allocated objects and a stack of free object indices (the freelist: LIFO as
 * SLUB's, the first object handed out first). The cache's per-CPU state (cpu slab, cpu partial
 * list) and per-node state (kmem_cache_node: partial list, nr_slabs, total_objects) are typed
 * arrays too.
 *
 * The 6.18 rules modelled:
 * - Geometry: calculate_sizes() (word-aligned object, free pointer after the object for caches
 *   with a constructor or SLAB_TYPESAFE_BY_RCU, size aligned to the cache's alignment) and
 *   calculate_order()/calc_slab_order(): at least min_objects = 4 * (fls(nr_cpus) + 1) objects
 *   per slab where that fits in slub_max_order = PAGE_ALLOC_COSTLY_ORDER, the smallest order
 *   from there wasting at most 1/16 of the slab, then 1/8, 1/4, 1/2; s->min = get_order(size).
 *   min_partial = clamp(ilog2(size) / 2, 5, 10); cpu_partial = 120/52/24/6 objects by size and
 *   cpu_partial_slabs = DIV_ROUND_UP(2 * cpu_partial, objects).
 * - allocate_slab(): the preferred order with __GFP_NOWARN | __GFP_NORETRY and, when it is above
 *   s->min, without direct reclaim; then s->min with the caller's flags (ORDER_FALLBACK).
 *   Slabs come from alloc_pages(flags | s->allocflags) on the caller's CPU and node;
 *   s->allocflags = __GFP_COMP, plus __GFP_RECLAIMABLE for SLAB_RECLAIM_ACCOUNT and GFP_DMA for
 *   SLAB_CACHE_DMA. account_slab() adds the pages to the node's nr_slab_(un)reclaimable.
 * - ___slab_alloc(): the cpu slab while it has free objects (a node mismatch deactivates it),
 *   else the cpu partial list (slabs of another node go back to their node), else
 *   get_partial_node() on the local or requested node, which also moves up to
 *   cpu_partial_slabs / 2 more slabs to the cpu partial list, else get_any_partial() on other
 *   nodes holding more than min_partial partial slabs, else a new slab. A requested node is
 *   tried first with GFP_NOWAIT | __GFP_THISNODE, then with the caller's flags.
 * - __slab_free(): a free into a cpu slab (frozen) changes no list; the first free into a full
 *   slab puts it on this CPU's partial list (put_cpu_partial(), which first flushes the list to
 *   the nodes when it already holds cpu_partial_slabs); a slab on its node's partial list that
 *   becomes empty is freed to the page allocator when the node holds min_partial partial slabs
 *   or more. __put_partials() and deactivate_slab() free empty slabs under the same rule and put
 *   the others on the node partial list (to the head on deactivation, to the tail when other
 *   CPUs freed into the slab meanwhile, and from a cpu partial list to the tail).
 * - __kmem_cache_shrink() (kmem_cache_shrink, kmem_cache_destroy): flush every CPU, free the
 *   empty slabs on the partial lists and sort the fullest first.
 * - /proc/slabinfo (get_slabinfo()): active objects are all objects less the free ones on node
 *   partial lists (count_partial_free_approx()); objects free in cpu and cpu-partial slabs count
 *   as active, as on Linux.
 *
 * Simplified: one freelist per slab (the kernel's lockless per-CPU freelist and the slab's own
 * freelist of remote frees are merged; "remote frees" is one bit per slab); 6.18's opt-in per-CPU
 * sheaves (vm_area_struct and maple_node) are not modelled, those caches use cpu slabs like the
 * rest; no pfmemalloc, debugging, freelist randomisation, KFENCE or cache merging; frees that the
 * kernel defers by RCU (SLAB_TYPESAFE_BY_RCU slabs, kfree_rcu) are immediate;
 * remote_node_defrag_ratio always lets get_any_partial() search (the kernel skips 23 in 1024).
 */

import {
  __GFP_COMP,
  __GFP_DIRECT_RECLAIM,
  __GFP_DMA32,
  __GFP_HIGHMEM,
  __GFP_NOFAIL,
  __GFP_NOMEMALLOC,
  __GFP_NORETRY,
  __GFP_NOWARN,
  __GFP_RECLAIM,
  __GFP_RECLAIMABLE,
  __GFP_THISNODE,
  GFP_DMA,
  GFP_DMA32,
  GFP_NOWAIT,
  gfp_flags_string,
  gfp_zone,
} from './gfp.ts';
import type { MM } from './mm.ts';
import { get_order, MAX_PAGE_ORDER, PAGE_ALLOC_COSTLY_ORDER, PAGE_SIZE } from './mmzone.ts';
import { __alloc_pages, __free_pages } from './page_alloc/alloc_pages.ts';
import { PG_head, PG_slab, PG_tail, PGI_alloc, PGI_nopage } from './page-flags.ts';
import type { ObjectTable, Shrinker, SuperBlock } from './shrinker.ts';
import {
  SLAB_CACHE_DMA,
  SLAB_CACHE_DMA32,
  SLAB_HWCACHE_ALIGN,
  SLAB_KMALLOC,
  SLAB_RECLAIM_ACCOUNT,
  SLAB_TYPESAFE_BY_RCU,
} from './slab_flags.ts';
import { node_stat_index } from './vmstat_items.ts';

/** NUMA_NO_NODE: no node preference (the local node first, then any). */
export const NUMA_NO_NODE = -1;
/** NULL: what an allocation that fails returns. */
export const NULL = 0;
/** ZERO_SIZE_PTR: what kmalloc(0) returns; kfree() ignores it. */
export const ZERO_SIZE_PTR = 16;

/** slub_max_order: PAGE_ALLOC_COSTLY_ORDER unless slub_max_order= says otherwise. */
export const slub_max_order = PAGE_ALLOC_COSTLY_ORDER;
/** slub_min_order */
export const slub_min_order = 0;
/** MAX_OBJS_PER_PAGE: slab->objects is 15 bits. */
export const MAX_OBJS_PER_PAGE = 32767;
/** MIN_PARTIAL / MAX_PARTIAL: the bounds of s->min_partial. */
export const MIN_PARTIAL = 5;
export const MAX_PARTIAL = 10;
/** count_partial_free_approx() scans at most this many partial slabs per node. */
const MAX_PARTIAL_TO_SCAN = 10000;
/** __kmem_cache_do_shrink(): slabs with at most this many free objects are sorted to the head. */
const SHRINK_PROMOTE_MAX = 32;
/** Largest number of caches: a slab's Map entry packs the cache id below the slot. */
export const MAX_CACHES = 4096;
/** cache_line_size() on x86-64. */
export const CACHE_LINE_SIZE = 64;
/** sizeof(void *) */
const WORD = 8;
/** GFP_SLAB_BUG_MASK: zone modifiers slab cannot honour (kmalloc_fix_flags() strips them). */
export const GFP_SLAB_BUG_MASK = __GFP_DMA32 | __GFP_HIGHMEM;

const NR_SLAB_RECLAIMABLE = node_stat_index('nr_slab_reclaimable');
const NR_SLAB_UNRECLAIMABLE = node_stat_index('nr_slab_unreclaimable');

// Hot constants as module-local literals (as page_alloc/buddy.ts does): V8 folds a local literal
// but loads an imported binding on every use. The check keeps them equal to the canonical values.
const L_PAGE_SIZE = 4096;
const L_PG_slab = 1 << 6;
const L_PGI_alloc = 1 << 25;
if (L_PAGE_SIZE !== PAGE_SIZE || L_PG_slab !== PG_slab || L_PGI_alloc !== PGI_alloc)
  throw new Error('slab.ts: local constants disagree with mmzone.ts/page-flags.ts');

// Where a slab is. The kernel's slab->frozen is SLAB_CPU; a full slab is on no list (SLUB keeps
// a full list only with debugging).
const SLAB_UNUSED = 0;
/** Frozen: some CPU's c->slab. */
const SLAB_CPU = 1;
/** On some CPU's partial list (c->partial). */
const SLAB_CPU_PARTIAL = 2;
/** On its node's partial list (n->partial). */
const SLAB_NODE_PARTIAL = 3;
/** Full, on no list. */
const SLAB_FULL = 4;
/** Slab state names, for slab_check() and tests. */
export const slab_state_names = ['unused', 'cpu', 'cpu_partial', 'node_partial', 'full'] as const;

/** Per-slab flag: another CPU freed into this slab while it was a cpu slab. */
const SF_REMOTE_FREES = 1;

/** enum add_partial position */
const DEACTIVATE_TO_HEAD = 0;
const DEACTIVATE_TO_TAIL = 1;

/** fls(): the 1-based index of the highest set bit; fls(2) = 2, fls(1) = 1, fls(0) = 0. */
export function fls(x: number): number {
  return x <= 0 ? 0 : 32 - Math.clz32(x);
}

/** ALIGN(x, a) for a power-of-two `a`. */
function ALIGN(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

/** order_objects(): objects of `size` bytes in a slab of `order`. */
export function order_objects(order: number, size: number): number {
  return Math.floor((PAGE_SIZE * 2 ** order) / size);
}

/**
 * kernel: mm/slub.c calc_slab_order()
 * The smallest order in [min_order, max_order] whose slab wastes at most 1/fract_leftover of
 * itself; max_order + 1 when none does.
 */
export function calc_slab_order(
  size: number,
  min_order: number,
  max_order: number,
  fract_leftover: number,
): number {
  let order = min_order;
  for (; order <= max_order; order++) {
    const slab_size = PAGE_SIZE * 2 ** order;
    const rem = slab_size % size;
    if (rem <= Math.floor(slab_size / fract_leftover)) break;
  }
  return order;
}

/**
 * kernel: mm/slub.c calculate_order()
 * The slab order for objects of `size` bytes on a machine with `nr_cpus` CPUs (slub_min_objects
 * unset). For 2 CPUs min_objects is 12: 192-byte dentries get order 0 (21 per slab), 512-byte
 * objects order 1 (16), 1 KiB order 2, 2 KiB and larger order 3 — the orders /proc/slabinfo shows
 * on a 2-CPU 6.18 machine. Returns -1 (-ENOSYS) when not even one object fits MAX_PAGE_ORDER.
 */
export function calculate_order(size: number, nr_cpus: number): number {
  let min_objects = 4 * (fls(nr_cpus) + 1);
  const max_objects = Math.max(order_objects(slub_max_order, size), 1);
  min_objects = Math.min(min_objects, max_objects);
  const min_order = Math.max(slub_min_order, get_order(min_objects * size));
  if (order_objects(min_order, size) > MAX_OBJS_PER_PAGE) return get_order(size * MAX_OBJS_PER_PAGE) - 1;
  for (let fraction = 16; fraction > 1; fraction /= 2) {
    const order = calc_slab_order(size, min_order, slub_max_order, fraction);
    if (order <= slub_max_order) return order;
  }
  const order = get_order(size);
  return order <= MAX_PAGE_ORDER ? order : -1;
}

/** What kmem_cache_create() takes besides the name and size (struct kmem_cache_args). */
export interface KmemCacheArgs {
  /** Required alignment (0: none beyond the word). */
  align?: number;
  /** SLAB_* flags. */
  flags?: number;
  /** The cache has a constructor (its free pointer then lives after the object). */
  ctor?: boolean;
  /** SLAB_TYPESAFE_BY_RCU caches that give a freeptr_offset keep the free pointer inside. */
  use_freeptr_offset?: boolean;
}

/**
 * struct kmem_cache with its kmem_cache_cpu and kmem_cache_node parts, and the slab table: the
 * state of every slab of the cache in typed arrays indexed by slot.
 */
export class KmemCache {
  /** Index in SlabAllocator.by_id. */
  readonly id: number;
  readonly name: string;
  readonly object_size: number;
  /** s->size: the object with its free pointer and padding, the stride between objects. */
  readonly size: number;
  readonly align: number;
  readonly flags: number;
  readonly ctor: boolean;
  /** s->offset: where the free pointer lives. */
  readonly offset: number;
  /** s->allocflags: __GFP_COMP, __GFP_RECLAIMABLE, GFP_DMA as the flags ask. */
  readonly allocflags: number;
  /** s->oo: the preferred slab order and its objects. */
  readonly oo_order: number;
  readonly oo_objects: number;
  /** s->min: the fallback order (get_order(size)) and its objects. */
  readonly min_order: number;
  readonly min_objects: number;
  /** s->min_partial: partial slabs a node keeps even when empty. */
  readonly min_partial: number;
  /** s->cpu_partial: objects the per-cpu partial lists aim at. */
  readonly cpu_partial: number;
  /** s->cpu_partial_slabs: slabs a cpu partial list holds before it is flushed. */
  readonly cpu_partial_slabs: number;
  /** s->remote_node_defrag_ratio (sysfs shows it divided by 10). */
  readonly remote_node_defrag_ratio = 1000;
  /** Counts kmem_cache_create() calls merged into this cache (always 1: no merging). */
  refcount = 1;
  /** Slab allocations that fell back to s->min (the ORDER_FALLBACK stat). */
  order_fallback = 0;
  /** Still on slab_caches (false once destroyed). */
  listed = true;

  // struct kmem_cache_cpu, per CPU.
  /** c->slab: the slot of this CPU's active slab, or -1. */
  readonly cpu_slab: Int32Array;
  /** c->partial: the first slot of this CPU's partial list (linked by slab_next), or -1. */
  readonly cpu_partial_head: Int32Array;
  /** Slabs on this CPU's partial list (the head slab's slab->slabs). */
  readonly cpu_partial_nr: Int32Array;

  // struct kmem_cache_node, per node.
  readonly nr_partial: Int32Array;
  readonly partial_head: Int32Array;
  readonly partial_tail: Int32Array;
  readonly nr_slabs: Float64Array;
  readonly total_objects: Float64Array;

  // The slab table, indexed by slot.
  /** Slots in the table (grows by doubling). */
  capacity = 0;
  /** Slots ever used: slots below this are live or on the free-slot stack. */
  nr_slots = 0;
  /** Live slabs. */
  nr_live = 0;
  /** Words of the per-slab object bitmap. */
  readonly bitmap_words: number;
  slab_pfn = new Int32Array(0);
  slab_order = new Uint8Array(0);
  slab_objects = new Uint16Array(0);
  slab_inuse = new Uint16Array(0);
  slab_state = new Uint8Array(0);
  slab_flags = new Uint8Array(0);
  slab_nid = new Uint16Array(0);
  slab_cpu = new Int16Array(0);
  slab_next = new Int32Array(0);
  slab_prev = new Int32Array(0);
  /** Per slot, oo_objects entries: the free object indices, top of stack last. */
  free_stack = new Uint16Array(0);
  /** Per slot, bitmap_words words: bit i set while object i is allocated. */
  inuse_map = new Uint32Array(0);
  private free_slots = new Int32Array(0);
  private nr_free_slots = 0;
  /** Told the new slot capacity when the table grows (per-object side tables follow). */
  readonly grow_hooks: Array<{ grow(capacity: number): void }> = [];
  /** The dentry or inode state of each object (shrinker.ts ObjectTable), for the VFS caches. */
  object_table: ObjectTable | null = null;

  constructor(
    id: number,
    name: string,
    object_size: number,
    args: KmemCacheArgs,
    nr_cpus: number,
    nr_nodes: number,
  ) {
    this.id = id;
    this.name = name;
    this.object_size = object_size;
    this.flags = args.flags ?? 0;
    this.ctor = args.ctor ?? false;
    this.align = calculate_alignment(this.flags, args.align ?? 0, object_size);
    // kernel: mm/slub.c calculate_sizes()
    let size = ALIGN(object_size, WORD);
    if ((this.flags & SLAB_TYPESAFE_BY_RCU && !args.use_freeptr_offset) || this.ctor) {
      this.offset = size;
      size += WORD;
    } else {
      this.offset = Math.floor(object_size / 2 / WORD) * WORD;
    }
    this.size = ALIGN(size, this.align);
    const order = calculate_order(this.size, nr_cpus);
    if (order < 0) throw new RangeError(`kmem_cache_create(${name}): no slab order fits ${this.size} bytes`);
    let allocflags = __GFP_COMP;
    if (this.flags & SLAB_CACHE_DMA) allocflags |= GFP_DMA;
    if (this.flags & SLAB_CACHE_DMA32) allocflags |= GFP_DMA32;
    if (this.flags & SLAB_RECLAIM_ACCOUNT) allocflags |= __GFP_RECLAIMABLE;
    this.allocflags = allocflags;
    this.oo_order = order;
    this.oo_objects = order_objects(order, this.size);
    this.min_order = get_order(this.size);
    this.min_objects = order_objects(this.min_order, this.size);
    // kernel: mm/slub.c set_min_partial(s, ilog2(s->size) / 2)
    this.min_partial = Math.min(MAX_PARTIAL, Math.max(MIN_PARTIAL, (fls(this.size) - 1) >> 1));
    // kernel: mm/slub.c set_cpu_partial() and slub_set_cpu_partial()
    let nr_objects = 120;
    if (this.size >= PAGE_SIZE) nr_objects = 6;
    else if (this.size >= 1024) nr_objects = 24;
    else if (this.size >= 256) nr_objects = 52;
    this.cpu_partial = nr_objects;
    this.cpu_partial_slabs = Math.ceil((nr_objects * 2) / this.oo_objects);

    this.cpu_slab = new Int32Array(nr_cpus).fill(-1);
    this.cpu_partial_head = new Int32Array(nr_cpus).fill(-1);
    this.cpu_partial_nr = new Int32Array(nr_cpus);
    this.nr_partial = new Int32Array(nr_nodes);
    this.partial_head = new Int32Array(nr_nodes).fill(-1);
    this.partial_tail = new Int32Array(nr_nodes).fill(-1);
    this.nr_slabs = new Float64Array(nr_nodes);
    this.total_objects = new Float64Array(nr_nodes);
    this.bitmap_words = (this.oo_objects + 31) >>> 5;
    this.grow(16);
  }

  /** cache_vmstat_idx(): the node stat the cache's slab pages count in. */
  get reclaimable(): boolean {
    return (this.flags & SLAB_RECLAIM_ACCOUNT) !== 0;
  }

  /** Grow the slab table to `capacity` slots, keeping its contents. */
  private grow(capacity: number): void {
    const copy = <T extends Int32Array | Uint8Array | Uint16Array | Int16Array | Uint32Array>(
      old: T,
      make: (n: number) => T,
      per: number,
    ): T => {
      const a = make(capacity * per);
      a.set(old);
      return a;
    };
    this.slab_pfn = copy(this.slab_pfn, (n) => new Int32Array(n), 1);
    this.slab_order = copy(this.slab_order, (n) => new Uint8Array(n), 1);
    this.slab_objects = copy(this.slab_objects, (n) => new Uint16Array(n), 1);
    this.slab_inuse = copy(this.slab_inuse, (n) => new Uint16Array(n), 1);
    this.slab_state = copy(this.slab_state, (n) => new Uint8Array(n), 1);
    this.slab_flags = copy(this.slab_flags, (n) => new Uint8Array(n), 1);
    this.slab_nid = copy(this.slab_nid, (n) => new Uint16Array(n), 1);
    this.slab_cpu = copy(this.slab_cpu, (n) => new Int16Array(n), 1);
    this.slab_next = copy(this.slab_next, (n) => new Int32Array(n), 1);
    this.slab_prev = copy(this.slab_prev, (n) => new Int32Array(n), 1);
    this.free_stack = copy(this.free_stack, (n) => new Uint16Array(n), this.oo_objects);
    this.inuse_map = copy(this.inuse_map, (n) => new Uint32Array(n), this.bitmap_words);
    this.free_slots = copy(this.free_slots, (n) => new Int32Array(n), 1);
    this.capacity = capacity;
    for (const hook of this.grow_hooks) hook.grow(capacity);
  }

  /** A free slot for a new slab. */
  take_slot(): number {
    if (this.nr_free_slots > 0) return this.free_slots[--this.nr_free_slots];
    if (this.nr_slots === this.capacity) this.grow(this.capacity * 2);
    return this.nr_slots++;
  }

  /** Give back the slot of a freed slab. */
  put_slot(slot: number): void {
    this.slab_state[slot] = SLAB_UNUSED;
    this.free_slots[this.nr_free_slots++] = slot;
  }

  /** The object id of object `idx` of slab `slot`: an index for per-object side tables. */
  oid(slot: number, idx: number): number {
    return slot * this.oo_objects + idx;
  }

  /** The handle (address) of object `idx` of slab `slot`. */
  handle(slot: number, idx: number): number {
    return this.slab_pfn[slot] * L_PAGE_SIZE + idx * this.size;
  }

  /** The handle of object id `oid` (slot * oo_objects + index). */
  handle_of(oid: number): number {
    const slot = Math.floor(oid / this.oo_objects);
    return this.slab_pfn[slot] * L_PAGE_SIZE + (oid - slot * this.oo_objects) * this.size;
  }

  /** The name of a slab's state: cpu, cpu_partial, node_partial or full. */
  state_of(slot: number): string {
    return slab_state_names[this.slab_state[slot]];
  }
}

/**
 * kernel: mm/slab_common.c calculate_alignment()
 * SLAB_HWCACHE_ALIGN aligns to the cache line, halved while the object fits twice; never below
 * ARCH_SLAB_MINALIGN (8) and always a whole number of words.
 */
export function calculate_alignment(flags: number, align: number, size: number): number {
  if (flags & SLAB_HWCACHE_ALIGN) {
    let ralign = CACHE_LINE_SIZE;
    while (size <= ralign / 2) ralign /= 2;
    align = Math.max(align, ralign);
  }
  align = Math.max(align, 8);
  return ALIGN(align, WORD);
}

/**
 * The slab allocator's global state: slab_caches, the kmalloc caches, the slab lookup by head
 * pfn, the large kmalloc blocks, and the shrinkers (mm.slab).
 */
export class SlabAllocator {
  /** slab_caches in creation order (/proc/slabinfo prints it newest first). */
  readonly slab_caches: KmemCache[] = [];
  /** Every cache by id; destroyed caches leave null (or stay, leaked, if objects remained). */
  readonly by_id: Array<KmemCache | null> = [];
  /** Head pfn of every slab -> cache id + slot * MAX_CACHES. */
  readonly slab_map = new Map<number, number>();
  /** Head pfns of kmalloc_large() blocks (PageLargeKmalloc). */
  readonly large_kmalloc = new Set<number>();
  /** kmalloc_caches[type][index] (slab_common.ts). */
  readonly kmalloc_caches: Array<Array<KmemCache | null>> = [];
  /**
   * Slab pages freed back to the page allocator since boot. mm_account_reclaimed_pages() adds
   * them to current->reclaim_state during reclaim; reclaim reads this before and after
   * shrink_slab() to count them as reclaimed.
   */
  reclaimed_pages = 0;
  /** shrinker_list, in registration order (shrinker.ts). */
  readonly shrinker_list: Shrinker[] = [];
  /** Mounted super blocks, whose shrinkers free unused dentries and inodes (shrinker.ts). */
  readonly super_blocks: SuperBlock[] = [];
  /** drop_caches' `stfu`: a write with bit 4 silenced its kernel log line for good. */
  drop_caches_stfu = false;

  constructor(
    readonly nr_cpus: number,
    readonly nr_nodes: number,
  ) {}
}

/**
 * kernel: mm/slab_common.c __kmem_cache_create_args() -> mm/slub.c do_kmem_cache_create()
 * A new cache on slab_caches. Throws RangeError for arguments the kernel refuses (-EINVAL).
 */
export function __kmem_cache_create(mm: MM, name: string, size: number, args: KmemCacheArgs = {}): KmemCache {
  const sa = mm.slab;
  if (!name) throw new RangeError('kmem_cache_create: a cache needs a name');
  if (!Number.isInteger(size) || size <= 0 || size > PAGE_SIZE * 2 ** MAX_PAGE_ORDER)
    throw new RangeError(`kmem_cache_create(${name}) integrity check failed: size ${size}`);
  const align = args.align ?? 0;
  if (!Number.isInteger(align) || align < 0 || (align & (align - 1)) !== 0)
    throw new RangeError(`kmem_cache_create(${name}): align ${align} is not a power of two`);
  let id = sa.by_id.indexOf(null);
  if (id < 0) id = sa.by_id.length;
  if (id >= MAX_CACHES) throw new RangeError(`kmem_cache_create(${name}): more than ${MAX_CACHES} caches`);
  const s = new KmemCache(id, name, size, args, mm.nr_cpus, mm.nodes.length);
  sa.by_id[id] = s;
  sa.slab_caches.push(s);
  return s;
}

// kernel: mm/slub.c kmalloc_fix_flags()
function kmalloc_fix_flags(mm: MM, flags: number): number {
  const invalid = flags & GFP_SLAB_BUG_MASK;
  flags &= ~GFP_SLAB_BUG_MASK;
  mm.klog.push(
    `Unexpected gfp: 0x${invalid.toString(16)} (${gfp_flags_string(invalid)}). Fixing up to gfp: 0x${flags.toString(16)} (${gfp_flags_string(flags)}). Fix your code!`,
  );
  return flags;
}

/** The node a CPU allocates on (numa_mem_id()). */
function numa_mem_id(mm: MM, cpu: number): number {
  return mm.cpu_to_node[cpu];
}

/**
 * kernel: mm/slub.c alloc_slab_page()
 * A compound block from the page allocator, marked PG_slab on every page (PageSlab() of any
 * page of a slab folio is true). Returns its pfn or -1.
 */
function alloc_slab_page(mm: MM, flags: number, node: number, order: number, cpu: number): number {
  const nid = node === NUMA_NO_NODE ? numa_mem_id(mm, cpu) : node;
  const pfn = __alloc_pages(mm, flags, order, nid, cpu);
  if (pfn < 0) return -1;
  const fl = mm.frames.flags;
  const end = pfn + (1 << order);
  for (let p = pfn; p < end; p++) fl[p] |= L_PG_slab;
  return pfn;
}

/**
 * kernel: mm/slub.c allocate_slab()
 * The preferred order first, opportunistically; then the minimum order with the caller's flags.
 * Returns the new slab's slot (on no list, nothing allocated from it) or -1.
 */
function allocate_slab(mm: MM, s: KmemCache, flags: number, node: number, cpu: number): number {
  flags |= s.allocflags;
  let alloc_gfp = (flags | __GFP_NOWARN | __GFP_NORETRY) & ~__GFP_NOFAIL;
  if (alloc_gfp & __GFP_DIRECT_RECLAIM && s.oo_order > s.min_order)
    alloc_gfp = (alloc_gfp | __GFP_NOMEMALLOC) & ~__GFP_RECLAIM;
  let order = s.oo_order;
  let objects = s.oo_objects;
  let pfn = alloc_slab_page(mm, alloc_gfp, node, order, cpu);
  if (pfn < 0) {
    order = s.min_order;
    objects = s.min_objects;
    pfn = alloc_slab_page(mm, flags, node, order, cpu);
    if (pfn < 0) return -1;
    s.order_fallback++;
  }
  const slot = s.take_slot();
  const nid = mm.page_zone(pfn)!.nid;
  s.slab_pfn[slot] = pfn;
  s.slab_order[slot] = order;
  s.slab_objects[slot] = objects;
  s.slab_inuse[slot] = 0;
  s.slab_state[slot] = SLAB_FULL;
  s.slab_flags[slot] = 0;
  s.slab_nid[slot] = nid;
  s.slab_cpu[slot] = -1;
  s.slab_next[slot] = -1;
  s.slab_prev[slot] = -1;
  // The freelist in address order: object 0 on top of the stack.
  const stack = s.free_stack;
  const base = slot * s.oo_objects;
  for (let k = 0; k < objects; k++) stack[base + k] = objects - 1 - k;
  s.inuse_map.fill(0, slot * s.bitmap_words, (slot + 1) * s.bitmap_words);
  mm.slab.slab_map.set(pfn, s.id + slot * MAX_CACHES);
  // account_slab() and inc_slabs_node()
  mm.nodes[nid].vm_stat[s.reclaimable ? NR_SLAB_RECLAIMABLE : NR_SLAB_UNRECLAIMABLE] += 1 << order;
  s.nr_slabs[nid]++;
  s.total_objects[nid] += objects;
  s.nr_live++;
  return slot;
}

// kernel: mm/slub.c new_slab()
function new_slab(mm: MM, s: KmemCache, flags: number, node: number, cpu: number): number {
  if (flags & GFP_SLAB_BUG_MASK) flags = kmalloc_fix_flags(mm, flags);
  return allocate_slab(mm, s, flags, node, cpu);
}

/**
 * kernel: mm/slub.c discard_slab() -> free_slab() -> __free_slab()
 * Uncount the slab, clear PG_slab and give its pages back to the page allocator from `cpu`.
 */
function discard_slab(mm: MM, s: KmemCache, slot: number, cpu: number): void {
  const pfn = s.slab_pfn[slot];
  const order = s.slab_order[slot];
  const nid = s.slab_nid[slot];
  s.nr_slabs[nid]--;
  s.total_objects[nid] -= s.slab_objects[slot];
  s.nr_live--;
  const fl = mm.frames.flags;
  const end = pfn + (1 << order);
  for (let p = pfn; p < end; p++) fl[p] &= ~L_PG_slab;
  mm.slab.slab_map.delete(pfn);
  mm.slab.reclaimed_pages += 1 << order;
  mm.nodes[nid].vm_stat[s.reclaimable ? NR_SLAB_RECLAIMABLE : NR_SLAB_UNRECLAIMABLE] -= 1 << order;
  s.put_slot(slot);
  __free_pages(mm, pfn, order, cpu);
}

// kernel: mm/slub.c add_partial()
function add_partial(s: KmemCache, nid: number, slot: number, tail: number): void {
  s.nr_partial[nid]++;
  s.slab_state[slot] = SLAB_NODE_PARTIAL;
  s.slab_cpu[slot] = -1;
  const next = s.slab_next;
  const prev = s.slab_prev;
  if (tail === DEACTIVATE_TO_TAIL) {
    const last = s.partial_tail[nid];
    prev[slot] = last;
    next[slot] = -1;
    if (last >= 0) next[last] = slot;
    else s.partial_head[nid] = slot;
    s.partial_tail[nid] = slot;
  } else {
    const first = s.partial_head[nid];
    next[slot] = first;
    prev[slot] = -1;
    if (first >= 0) prev[first] = slot;
    else s.partial_tail[nid] = slot;
    s.partial_head[nid] = slot;
  }
}

// kernel: mm/slub.c remove_partial()
function remove_partial(s: KmemCache, nid: number, slot: number): void {
  const next = s.slab_next;
  const prev = s.slab_prev;
  const n = next[slot];
  const p = prev[slot];
  if (p >= 0) next[p] = n;
  else s.partial_head[nid] = n;
  if (n >= 0) prev[n] = p;
  else s.partial_tail[nid] = p;
  next[slot] = -1;
  prev[slot] = -1;
  s.nr_partial[nid]--;
}

/** Make `slot` this CPU's cpu slab (freeze_slab() / get_freelist() of a partial slab). */
function freeze_slab(s: KmemCache, slot: number, cpu: number): void {
  s.slab_state[slot] = SLAB_CPU;
  s.slab_cpu[slot] = cpu;
  s.slab_flags[slot] &= ~SF_REMOTE_FREES;
  s.cpu_slab[cpu] = slot;
}

/**
 * kernel: mm/slub.c __put_partials()
 * Move a detached cpu partial list (linked by slab_next from `head`) to the node partial lists'
 * tails; empty slabs are freed instead while their node holds min_partial partial slabs.
 */
function __put_partials(mm: MM, s: KmemCache, head: number, cpu: number): void {
  const next = s.slab_next;
  let discard = -1;
  while (head >= 0) {
    const slot = head;
    head = next[slot];
    const nid = s.slab_nid[slot];
    if (s.slab_inuse[slot] === 0 && s.nr_partial[nid] >= s.min_partial) {
      next[slot] = discard;
      discard = slot;
    } else {
      add_partial(s, nid, slot, DEACTIVATE_TO_TAIL);
    }
  }
  while (discard >= 0) {
    const slot = discard;
    discard = next[slot];
    discard_slab(mm, s, slot, cpu);
  }
}

/**
 * kernel: mm/slub.c put_cpu_partial()
 * Push `slot` on this CPU's partial list. With `drain`, a list already holding
 * cpu_partial_slabs slabs is first moved to the node lists and a new list started.
 */
function put_cpu_partial(mm: MM, s: KmemCache, slot: number, cpu: number, drain: boolean): void {
  let old = s.cpu_partial_head[cpu];
  let to_put = -1;
  if (old >= 0 && drain && s.cpu_partial_nr[cpu] >= s.cpu_partial_slabs) {
    to_put = old;
    old = -1;
    s.cpu_partial_nr[cpu] = 0;
  }
  s.slab_next[slot] = old;
  s.slab_prev[slot] = -1;
  s.slab_state[slot] = SLAB_CPU_PARTIAL;
  s.slab_cpu[slot] = cpu;
  s.cpu_partial_head[cpu] = slot;
  s.cpu_partial_nr[cpu]++;
  if (to_put >= 0) __put_partials(mm, s, to_put, cpu);
}

/**
 * kernel: mm/slub.c deactivate_slab()
 * A cpu slab leaves its CPU: freed if empty and its node holds min_partial partial slabs, else to
 * the node partial list if it has free objects (to the tail if other CPUs freed into it), else
 * it is full and on no list.
 */
function deactivate_slab(mm: MM, s: KmemCache, slot: number, cpu: number): void {
  const nid = s.slab_nid[slot];
  const tail = s.slab_flags[slot] & SF_REMOTE_FREES ? DEACTIVATE_TO_TAIL : DEACTIVATE_TO_HEAD;
  s.slab_flags[slot] &= ~SF_REMOTE_FREES;
  if (s.slab_inuse[slot] === 0 && s.nr_partial[nid] >= s.min_partial) {
    discard_slab(mm, s, slot, cpu);
  } else if (s.slab_inuse[slot] < s.slab_objects[slot]) {
    add_partial(s, nid, slot, tail);
  } else {
    s.slab_state[slot] = SLAB_FULL;
    s.slab_cpu[slot] = -1;
  }
}

/**
 * kernel: mm/slub.c get_partial_node()
 * Take the first partial slab of node `nid` as the cpu slab and up to cpu_partial_slabs / 2 more
 * onto this CPU's partial list. Returns the cpu slab's slot or -1.
 */
function get_partial_node(mm: MM, s: KmemCache, nid: number, cpu: number): number {
  if (s.nr_partial[nid] === 0) return -1;
  let partial = -1;
  let partial_slabs = 0;
  const limit = s.cpu_partial_slabs >>> 1;
  while (s.partial_head[nid] >= 0) {
    const slot = s.partial_head[nid];
    remove_partial(s, nid, slot);
    if (partial < 0) {
      partial = slot;
      if (s.cpu_partial_slabs === 0) break;
    } else {
      put_cpu_partial(mm, s, slot, cpu, false);
      if (++partial_slabs > limit) break;
    }
  }
  return partial;
}

/**
 * kernel: mm/slub.c get_any_partial()
 * Partial slabs of other nodes, nearest first along the local zonelist, from nodes holding more
 * than min_partial of them.
 */
function get_any_partial(mm: MM, s: KmemCache, flags: number, cpu: number): number {
  if (!s.remote_node_defrag_ratio) return -1;
  const zonelist = mm.nodes[numa_mem_id(mm, cpu)].zonelist_fallback;
  const highest = gfp_zone(flags);
  let last = -1;
  for (let i = 0; i < zonelist.length; i++) {
    const zone = mm.zones[zonelist[i]];
    if (zone.zone_idx > highest || zone.nid === last) continue;
    last = zone.nid;
    if (s.nr_partial[zone.nid] > s.min_partial) {
      const slot = get_partial_node(mm, s, zone.nid, cpu);
      if (slot >= 0) return slot;
    }
  }
  return -1;
}

// kernel: mm/slub.c get_partial()
function get_partial(mm: MM, s: KmemCache, node: number, flags: number, cpu: number): number {
  const searchnode = node === NUMA_NO_NODE ? numa_mem_id(mm, cpu) : node;
  const slot = get_partial_node(mm, s, searchnode, cpu);
  if (slot >= 0 || (node !== NUMA_NO_NODE && flags & __GFP_THISNODE)) return slot;
  return get_any_partial(mm, s, flags, cpu);
}

// kernel: mm/slub.c slab_out_of_memory()
function slab_out_of_memory(mm: MM, s: KmemCache, gfp: number, nid: number): void {
  if (gfp & __GFP_NOWARN) return;
  mm.klog.push(
    `SLUB: Unable to allocate memory on node ${nid}, gfp=0x${gfp.toString(16)}(${gfp_flags_string(gfp)})`,
  );
  mm.klog.push(
    `  cache: ${s.name}, object size: ${s.object_size}, buffer size: ${s.size}, default order: ${s.oo_order}, min order: ${s.min_order}`,
  );
  for (let n = 0; n < mm.nodes.length; n++) {
    mm.klog.push(
      `  node ${n}: slabs: ${s.nr_slabs[n]}, objs: ${s.total_objects[n]}, free: ${count_partial_free(s, n)}`,
    );
  }
}

/**
 * kernel: mm/slub.c ___slab_alloc()
 * The slow path: find this CPU a cpu slab with a free object (see the file comment for the
 * order). Returns its slot, or -1 when no memory could be had.
 */
function ___slab_alloc(mm: MM, s: KmemCache, gfp: number, node: number, cpu: number): number {
  let slot = s.cpu_slab[cpu];
  if (slot >= 0) {
    if (node !== NUMA_NO_NODE && s.slab_nid[slot] !== node) {
      // ALLOC_NODE_MISMATCH
      s.cpu_slab[cpu] = -1;
      deactivate_slab(mm, s, slot, cpu);
    } else if (s.slab_inuse[slot] < s.slab_objects[slot]) {
      return slot;
    } else {
      // get_freelist() came back empty: the full slab leaves the CPU (DEACTIVATE_BYPASS).
      s.cpu_slab[cpu] = -1;
      s.slab_state[slot] = SLAB_FULL;
      s.slab_cpu[slot] = -1;
    }
  }
  // new_slab: the cpu partial list.
  while (s.cpu_partial_head[cpu] >= 0) {
    slot = s.cpu_partial_head[cpu];
    s.cpu_partial_head[cpu] = s.slab_next[slot];
    s.cpu_partial_nr[cpu]--;
    s.slab_next[slot] = -1;
    if (node === NUMA_NO_NODE || s.slab_nid[slot] === node) {
      freeze_slab(s, slot, cpu); // CPU_PARTIAL_ALLOC
      return slot;
    }
    __put_partials(mm, s, slot, cpu);
  }
  // new_objects
  let try_thisnode = true;
  for (;;) {
    const fallback = node !== NUMA_NO_NODE && (gfp & __GFP_THISNODE) === 0 && try_thisnode;
    const pc_flags = fallback ? GFP_NOWAIT | __GFP_THISNODE : gfp;
    slot = get_partial(mm, s, node, pc_flags, cpu);
    if (slot >= 0) {
      freeze_slab(s, slot, cpu); // ALLOC_FROM_PARTIAL
      return slot;
    }
    slot = new_slab(mm, s, pc_flags, node, cpu);
    if (slot >= 0) {
      freeze_slab(s, slot, cpu); // ALLOC_SLAB
      return slot;
    }
    if (fallback) {
      try_thisnode = false;
      continue;
    }
    slab_out_of_memory(mm, s, gfp, node);
    return -1;
  }
}

/**
 * kernel: mm/slub.c slab_alloc_node()
 * One object from cache `s` on `cpu`, preferring `node` (NUMA_NO_NODE: none). Returns its
 * object id (slot * oo_objects + index; see KmemCache.handle_of()), or -1.
 */
export function slab_alloc_oid(mm: MM, s: KmemCache, gfp: number, node: number, cpu: number): number {
  let slot = s.cpu_slab[cpu];
  if (
    slot < 0 ||
    (node !== NUMA_NO_NODE && s.slab_nid[slot] !== node) ||
    s.slab_inuse[slot] === s.slab_objects[slot]
  ) {
    slot = ___slab_alloc(mm, s, gfp, node, cpu);
    if (slot < 0) return -1;
  }
  // Pop the freelist.
  const inuse = s.slab_inuse[slot];
  const idx = s.free_stack[slot * s.oo_objects + s.slab_objects[slot] - inuse - 1];
  s.slab_inuse[slot] = inuse + 1;
  s.inuse_map[slot * s.bitmap_words + (idx >>> 5)] |= 1 << (idx & 31);
  return slot * s.oo_objects + idx;
}

/** slab_alloc_node() for callers that want the handle: the object's address, or NULL (0). */
export function slab_alloc_node(mm: MM, s: KmemCache, gfp: number, node: number, cpu: number): number {
  const oid = slab_alloc_oid(mm, s, gfp, node, cpu);
  return oid < 0 ? NULL : s.handle_of(oid);
}

/**
 * kernel: mm/slub.c __slab_free() (and do_slab_free()'s fast path into the cpu slab)
 * Object `idx` of slab `slot` goes back on the slab's freelist; the slab changes lists as the
 * file comment describes.
 */
export function __slab_free(mm: MM, s: KmemCache, slot: number, idx: number, cpu: number): void {
  const objects = s.slab_objects[slot];
  const inuse = s.slab_inuse[slot];
  const prior = inuse < objects;
  s.free_stack[slot * s.oo_objects + objects - inuse] = idx;
  s.slab_inuse[slot] = inuse - 1;
  s.inuse_map[slot * s.bitmap_words + (idx >>> 5)] &= ~(1 << (idx & 31));
  const state = s.slab_state[slot];
  if (state === SLAB_CPU) {
    if (s.slab_cpu[slot] !== cpu) s.slab_flags[slot] |= SF_REMOTE_FREES;
    return;
  }
  if (state === SLAB_CPU_PARTIAL) return;
  if (!prior) {
    put_cpu_partial(mm, s, slot, cpu, true); // CPU_PARTIAL_FREE
    return;
  }
  const nid = s.slab_nid[slot];
  if (inuse - 1 === 0 && s.nr_partial[nid] >= s.min_partial) {
    remove_partial(s, nid, slot); // FREE_REMOVE_PARTIAL
    discard_slab(mm, s, slot, cpu);
  }
}

/**
 * kernel: mm/slub.c virt_to_slab()
 * The slab holding address `addr`, as cache id + slot * MAX_CACHES, or -1 if the address is not
 * in a slab. The compound head is the allocated frame of the largest alignment that covers it.
 */
export function virt_to_slab(mm: MM, addr: number): number {
  const f = mm.frames;
  const pfn = Math.floor(addr / L_PAGE_SIZE);
  if (!(pfn >= 0 && pfn < f.nr_frames) || (f.flags[pfn] & L_PG_slab) === 0) return -1;
  for (let o = 0; o <= MAX_PAGE_ORDER; o++) {
    const head = pfn - (pfn % (1 << o));
    if (f.flags[head] & L_PGI_alloc) {
      if (head + (1 << f.order[head]) <= pfn) return -1;
      return mm.slab.slab_map.get(head) ?? -1;
    }
  }
  return -1;
}

/**
 * Resolve `addr` to (slot, idx) of cache `s`, throwing as the kernel's free-time checks would
 * (BUG or WARN) on an address that is not an allocated object of `s`. Returns slot * 2^16 + idx.
 */
export function object_of(mm: MM, s: KmemCache, addr: number, what: string): number {
  const ref = virt_to_slab(mm, addr);
  if (ref < 0) throw new Error(`${what}: ${addr} is not an object in a slab`);
  if (ref % MAX_CACHES !== s.id)
    throw new Error(
      `${what}(${s.name}): object ${addr} belongs to cache ${mm.slab.by_id[ref % MAX_CACHES]?.name ?? '?'}`,
    );
  const slot = Math.floor(ref / MAX_CACHES);
  const off = addr - s.slab_pfn[slot] * L_PAGE_SIZE;
  const idx = off / s.size;
  if (!Number.isInteger(idx) || idx >= s.slab_objects[slot])
    throw new Error(`${what}(${s.name}): ${addr} is not the start of an object`);
  if ((s.inuse_map[slot * s.bitmap_words + (idx >>> 5)] & (1 << (idx & 31))) === 0)
    throw new Error(`${what}(${s.name}): double free or free of an unallocated object ${addr}`);
  return slot * 65536 + idx;
}

/** kernel: mm/slub.c kmem_cache_free(): free an object of `s` on `cpu`. */
export function kmem_cache_free(mm: MM, s: KmemCache, addr: number, cpu: number): void {
  const ref = object_of(mm, s, addr, 'kmem_cache_free');
  __slab_free(mm, s, Math.floor(ref / 65536), ref % 65536, cpu);
}

/**
 * kernel: mm/slub.c flush_cpu_slab()
 * Deactivate this CPU's cpu slab and move its partial list to the nodes.
 */
export function flush_cpu_slab(mm: MM, s: KmemCache, cpu: number): void {
  const slot = s.cpu_slab[cpu];
  if (slot >= 0) {
    s.cpu_slab[cpu] = -1;
    deactivate_slab(mm, s, slot, cpu);
  }
  const head = s.cpu_partial_head[cpu];
  if (head >= 0) {
    s.cpu_partial_head[cpu] = -1;
    s.cpu_partial_nr[cpu] = 0;
    __put_partials(mm, s, head, cpu);
  }
}

/** kernel: mm/slub.c flush_all(): flush_cpu_slab() on every CPU. */
export function flush_all(mm: MM, s: KmemCache): void {
  for (let cpu = 0; cpu < mm.nr_cpus; cpu++) flush_cpu_slab(mm, s, cpu);
}

/**
 * kernel: mm/slub.c __kmem_cache_shrink() -> __kmem_cache_do_shrink()
 * Flush every CPU, free every empty slab on the node partial lists, and put the slabs with the
 * fewest free objects (up to 32) at the head, fullest first. Returns whether slabs remain.
 */
export function __kmem_cache_shrink(mm: MM, s: KmemCache, cpu: number): boolean {
  flush_all(mm, s);
  let remain = false;
  for (let nid = 0; nid < mm.nodes.length; nid++) {
    const promote: number[][] = [];
    for (let i = 0; i < SHRINK_PROMOTE_MAX; i++) promote.push([]);
    const discard: number[] = [];
    const rest: number[] = [];
    for (let slot = s.partial_head[nid]; slot >= 0; slot = s.slab_next[slot]) {
      const free = s.slab_objects[slot] - s.slab_inuse[slot];
      if (free === s.slab_objects[slot]) discard.unshift(slot);
      else if (free <= SHRINK_PROMOTE_MAX) promote[free - 1].unshift(slot);
      else rest.push(slot);
    }
    // Rebuild the list: promote[0], promote[1], ..., then the others in their order.
    s.partial_head[nid] = -1;
    s.partial_tail[nid] = -1;
    s.nr_partial[nid] = 0;
    for (const group of promote) for (const slot of group) add_partial(s, nid, slot, DEACTIVATE_TO_TAIL);
    for (const slot of rest) add_partial(s, nid, slot, DEACTIVATE_TO_TAIL);
    for (const slot of discard) discard_slab(mm, s, slot, cpu);
    if (s.nr_slabs[nid] > 0) remain = true;
  }
  return remain;
}

/**
 * kernel: mm/slab_common.c kmem_cache_destroy() -> mm/slub.c __kmem_cache_shutdown()
 * Flush and free every empty slab; the cache leaves slab_caches. If objects remain the kernel
 * warns and leaks the cache: it stays in by_id (its slabs still allocated) and false is returned.
 */
export function kmem_cache_destroy(mm: MM, s: KmemCache, cpu: number): boolean {
  if (s.flags & SLAB_KMALLOC) throw new Error(`kmem_cache_destroy(${s.name}): kmalloc caches are permanent`);
  if (!s.listed) throw new Error(`kmem_cache_destroy(${s.name}): already destroyed`);
  if (--s.refcount > 0) return true;
  const remain = __kmem_cache_shrink(mm, s, cpu);
  const sa = mm.slab;
  sa.slab_caches.splice(sa.slab_caches.indexOf(s), 1);
  s.listed = false;
  if (remain) {
    mm.klog.push(
      `kmem_cache_destroy ${s.name}: Slab cache still has objects when called from kmem_cache_destroy`,
    );
    return false;
  }
  sa.by_id[s.id] = null;
  return true;
}

/** Free objects on node `nid`'s partial list (count_partial(n, count_free)). */
function count_partial_free(s: KmemCache, nid: number): number {
  let x = 0;
  for (let slot = s.partial_head[nid]; slot >= 0; slot = s.slab_next[slot])
    x += s.slab_objects[slot] - s.slab_inuse[slot];
  return x;
}

/**
 * kernel: mm/slub.c count_partial_free_approx()
 * Exact up to 10000 partial slabs; beyond, 5000 from each end of the list scaled to the whole.
 */
export function count_partial_free_approx(s: KmemCache, nid: number): number {
  const nr = s.nr_partial[nid];
  if (nr <= MAX_PARTIAL_TO_SCAN) return count_partial_free(s, nid);
  let x = 0;
  let scanned = 0;
  for (let slot = s.partial_head[nid]; slot >= 0; slot = s.slab_next[slot]) {
    x += s.slab_objects[slot] - s.slab_inuse[slot];
    if (++scanned === MAX_PARTIAL_TO_SCAN / 2) break;
  }
  for (let slot = s.partial_tail[nid]; slot >= 0; slot = s.slab_prev[slot]) {
    x += s.slab_objects[slot] - s.slab_inuse[slot];
    if (++scanned === MAX_PARTIAL_TO_SCAN) break;
  }
  x = Math.floor((x * nr) / scanned);
  return Math.min(x, s.total_objects[nid]);
}

/** struct slabinfo: what /proc/slabinfo prints for one cache. */
export interface SlabInfo {
  active_objs: number;
  num_objs: number;
  active_slabs: number;
  num_slabs: number;
  objects_per_slab: number;
  cache_order: number;
}

// kernel: mm/slub.c get_slabinfo()
export function get_slabinfo(s: KmemCache): SlabInfo {
  let nr_slabs = 0;
  let nr_objs = 0;
  let nr_free = 0;
  for (let nid = 0; nid < s.nr_slabs.length; nid++) {
    nr_slabs += s.nr_slabs[nid];
    nr_objs += s.total_objects[nid];
    nr_free += count_partial_free_approx(s, nid);
  }
  return {
    active_objs: nr_objs - nr_free,
    num_objs: nr_objs,
    active_slabs: nr_slabs,
    num_slabs: nr_slabs,
    objects_per_slab: s.oo_objects,
    cache_order: s.oo_order,
  };
}

/** Objects allocated from `s` (exact: every slab's in-use count). */
export function cache_objects_inuse(s: KmemCache): number {
  let n = 0;
  for (let slot = 0; slot < s.nr_slots; slot++)
    if (s.slab_state[slot] !== SLAB_UNUSED) n += s.slab_inuse[slot];
  return n;
}

/** Pages held by the slabs of `s`. */
export function cache_pages(s: KmemCache): number {
  let n = 0;
  for (let slot = 0; slot < s.nr_slots; slot++)
    if (s.slab_state[slot] !== SLAB_UNUSED) n += 1 << s.slab_order[slot];
  return n;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/**
 * The slab allocator's own consistency check (the model's CONFIG_SLUB_DEBUG validate_slab_cache
 * plus counter checks): every slab's in-use count against its bitmap and freelist, its frames
 * (allocated compound head of the slab's order, PG_slab on every page, the lookup map), its list
 * membership against its state, the per-node counters and partial lists, the node stats
 * nr_slab_reclaimable / nr_slab_unreclaimable against the slabs and large kmalloc blocks, and
 * that no other frame carries PG_slab. Returns the violations; empty means consistent.
 */
export function slab_check(mm: MM): string[] {
  const errors: string[] = [];
  const report = (msg: string): void => {
    if (errors.length < 50) errors.push(msg);
  };
  const sa = mm.slab;
  const f = mm.frames;
  const nr_nodes = mm.nodes.length;
  const pages = [new Float64Array(nr_nodes), new Float64Array(nr_nodes)]; // unreclaimable, reclaimable
  let slab_frames = 0;
  let live_slabs = 0;
  for (const s of sa.by_id) {
    if (s === null) continue;
    if (s.listed !== sa.slab_caches.includes(s))
      report(`${s.name}: listed ${s.listed} disagrees with slab_caches`);
    const nr_slabs = new Float64Array(nr_nodes);
    const total = new Float64Array(nr_nodes);
    const stride = s.oo_objects;
    const seen = new Uint8Array(stride);
    let live = 0;
    for (let slot = 0; slot < s.nr_slots; slot++) {
      const state = s.slab_state[slot];
      if (state === SLAB_UNUSED) continue;
      live++;
      live_slabs++;
      const pfn = s.slab_pfn[slot];
      const order = s.slab_order[slot];
      const objects = s.slab_objects[slot];
      const inuse = s.slab_inuse[slot];
      const nid = s.slab_nid[slot];
      const where = `${s.name} slab ${slot} (pfn ${pfn}, ${slab_state_names[state]})`;
      nr_slabs[nid]++;
      total[nid] += objects;
      pages[s.reclaimable ? 1 : 0][nid] += 1 << order;
      if (order !== s.oo_order && order !== s.min_order)
        report(`${where}: order ${order} is neither oo nor min`);
      if (objects !== order_objects(order, s.size)) report(`${where}: ${objects} objects for order ${order}`);
      if (inuse > objects) report(`${where}: inuse ${inuse} > objects ${objects}`);
      // Frames.
      const fl = f.flags[pfn];
      if ((fl & PGI_alloc) === 0 || f.order[pfn] !== order)
        report(`${where}: head frame is not an allocated order-${order} block`);
      if (order > 0 && (fl & PG_head) === 0) report(`${where}: order-${order} slab is not compound`);
      if (mm.page_zone(pfn)?.nid !== nid) report(`${where}: slab_nid ${nid} but the page is on another node`);
      for (let p = pfn; p < pfn + (1 << order); p++) {
        if ((f.flags[p] & PG_slab) === 0) {
          report(`${where}: pfn ${p} lacks PG_slab`);
          break;
        }
        if (p > pfn && (f.flags[p] & PG_tail) === 0) {
          report(`${where}: pfn ${p} lacks PG_tail`);
          break;
        }
      }
      slab_frames += 1 << order;
      if (sa.slab_map.get(pfn) !== s.id + slot * MAX_CACHES) report(`${where}: slab_map disagrees`);
      // Bitmap and freelist.
      let bits = 0;
      for (let w = 0; w < s.bitmap_words; w++) bits += popcount(s.inuse_map[slot * s.bitmap_words + w]);
      if (bits !== inuse) report(`${where}: inuse ${inuse} but ${bits} objects marked allocated`);
      seen.fill(0);
      for (let k = 0; k < objects - inuse; k++) {
        const idx = s.free_stack[slot * stride + k];
        if (idx >= objects || seen[idx]) {
          report(`${where}: freelist entry ${idx} out of range or repeated`);
          break;
        }
        seen[idx] = 1;
        if (s.inuse_map[slot * s.bitmap_words + (idx >>> 5)] & (1 << (idx & 31)))
          report(`${where}: object ${idx} is on the freelist and allocated`);
      }
      // Lists.
      const cpu = s.slab_cpu[slot];
      if (state === SLAB_CPU && (cpu < 0 || s.cpu_slab[cpu] !== slot))
        report(`${where}: not its CPU's cpu slab`);
      if (state === SLAB_NODE_PARTIAL && inuse === objects) report(`${where}: full slab on a partial list`);
      if (state === SLAB_CPU_PARTIAL && inuse === objects)
        report(`${where}: full slab on a cpu partial list`);
      if (state === SLAB_FULL && inuse !== objects) report(`${where}: not full but on no list`);
    }
    if (live !== s.nr_live) report(`${s.name}: ${live} live slabs but nr_live ${s.nr_live}`);
    for (let nid = 0; nid < nr_nodes; nid++) {
      if (nr_slabs[nid] !== s.nr_slabs[nid])
        report(`${s.name} node ${nid}: nr_slabs ${s.nr_slabs[nid]} but ${nr_slabs[nid]} slabs`);
      if (total[nid] !== s.total_objects[nid])
        report(`${s.name} node ${nid}: total_objects ${s.total_objects[nid]} but ${total[nid]}`);
      let n = 0;
      let prev = -1;
      for (let slot = s.partial_head[nid]; slot >= 0; slot = s.slab_next[slot]) {
        if (
          ++n > s.nr_partial[nid] + 1 ||
          s.slab_state[slot] !== SLAB_NODE_PARTIAL ||
          s.slab_nid[slot] !== nid
        ) {
          report(`${s.name} node ${nid}: partial list holds slab ${slot} that does not belong there`);
          break;
        }
        if (s.slab_prev[slot] !== prev) report(`${s.name} node ${nid}: partial list links broken at ${slot}`);
        prev = slot;
      }
      if (prev !== s.partial_tail[nid]) report(`${s.name} node ${nid}: partial list tail is wrong`);
      if (n !== s.nr_partial[nid])
        report(`${s.name} node ${nid}: nr_partial ${s.nr_partial[nid]} but ${n} listed`);
    }
    for (let cpu = 0; cpu < mm.nr_cpus; cpu++) {
      const c = s.cpu_slab[cpu];
      if (c >= 0 && (s.slab_state[c] !== SLAB_CPU || s.slab_cpu[c] !== cpu))
        report(`${s.name} cpu ${cpu}: cpu slab ${c} is not frozen for it`);
      let n = 0;
      for (let slot = s.cpu_partial_head[cpu]; slot >= 0; slot = s.slab_next[slot]) {
        if (++n > s.nr_slots || s.slab_state[slot] !== SLAB_CPU_PARTIAL || s.slab_cpu[slot] !== cpu) {
          report(`${s.name} cpu ${cpu}: partial list holds slab ${slot} that does not belong there`);
          break;
        }
      }
      if (n !== s.cpu_partial_nr[cpu])
        report(`${s.name} cpu ${cpu}: cpu_partial_nr ${s.cpu_partial_nr[cpu]} but ${n} listed`);
    }
  }
  if (live_slabs !== sa.slab_map.size) report(`${sa.slab_map.size} slabs in slab_map but ${live_slabs} live`);
  for (const pfn of sa.large_kmalloc) {
    const fl = f.flags[pfn];
    if ((fl & PGI_alloc) === 0 || fl & PG_slab)
      report(`large kmalloc at pfn ${pfn} is not an allocated non-slab block`);
    const zone = mm.page_zone(pfn);
    if (zone) pages[0][zone.nid] += 1 << f.order[pfn];
  }
  for (let nid = 0; nid < nr_nodes; nid++) {
    const vm = mm.nodes[nid].vm_stat;
    if (vm[NR_SLAB_UNRECLAIMABLE] !== pages[0][nid])
      report(
        `node ${nid}: nr_slab_unreclaimable ${vm[NR_SLAB_UNRECLAIMABLE]} but slabs and large kmalloc hold ${pages[0][nid]} pages`,
      );
    if (vm[NR_SLAB_RECLAIMABLE] !== pages[1][nid])
      report(
        `node ${nid}: nr_slab_reclaimable ${vm[NR_SLAB_RECLAIMABLE]} but slabs hold ${pages[1][nid]} pages`,
      );
  }
  let flagged = 0;
  const fl = f.flags;
  for (let pfn = 0; pfn < f.nr_frames; pfn++) if ((fl[pfn] & (PG_slab | PGI_nopage)) === PG_slab) flagged++;
  if (flagged !== slab_frames) report(`${flagged} frames carry PG_slab but slabs hold ${slab_frames}`);
  return errors;
}
