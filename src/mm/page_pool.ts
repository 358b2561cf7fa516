/**
 * The network page_pool (net/core/page_pool.c, Linux 6.18), reduced to what shapes physical
 * memory: a NIC's receive queue keeps pages of one order (0, or 2-3 for drivers that build large
 * frames) in a per-queue recycling cache, so pages cycle between the driver and the pool without
 * reaching the page allocator, and the pages the pool does take are unmovable GFP_ATOMIC pages
 * that may dip into the watermark reserves, and for order > 0 claim highatomic pageblocks.
 *
 * A pool has two caches, both LIFO-filled from the pool's own NAPI CPU:
 * - `alloc.cache`, PP_ALLOC_CACHE_SIZE (128) entries, used lock-free from NAPI: allocation pops
 *   from it; a page put back by the NAPI context (allow_direct) is pushed onto it while it has room;
 * - `ring`, a ptr_ring of min(pool_size, 16384) entries (1024 if pool_size is 0): pages put back
 *   from elsewhere, or when alloc.cache is full; when alloc.cache is empty, allocation refills it
 *   from the ring (up to PP_ALLOC_CACHE_REFILL = 64 pages, stopping at a page of another node,
 *   which is freed). A page that fits in neither is freed to the page allocator.
 * When both are empty, order-0 pools allocate 64 pages at once through the bulk allocator
 * (alloc_pages_bulk_node()), higher orders one compound page (`gfp | __GFP_COMP`).
 *
 * The pool's own memory is allocated as the kernel does: `struct page_pool` (kzalloc_node) and
 * the ring's queue (kvmalloc_array of ring_qsize pointers: kmalloc-8k for the default 1024,
 * vmalloc above 4 MiB). Page-pool pages carry no page flag a /proc file shows: 6.18 marks them
 * with page->pp_magic, which /proc/kpageflags does not report (an order-0 page reads 0, a
 * compound one COMPOUND_HEAD/TAIL), and no /proc/meminfo or /proc/vmstat counter counts them.
 *
 * Departures: DMA mapping and syncing, page fragments (page_pool_alloc_frag), memory providers,
 * pfmemalloc pages and the per-CPU statistics are not modelled; the ring's capacity is exactly
 * its size (ptr_ring's batched consumer can make it refuse a few entries early); a destroyed pool
 * with pages still in flight frees each page as it comes back and the pool with the last one,
 * where the kernel's release work retries every second.
 */
import { __GFP_COMP, __GFP_NOWARN, GFP_ATOMIC, GFP_KERNEL } from './gfp.ts';
import type { MM } from './mm.ts';
import { MAX_PAGE_ORDER } from './mmzone.ts';
import { __alloc_pages, __free_pages } from './page_alloc/alloc_pages.ts';
import { alloc_pages_bulk } from './page_alloc/bulk.ts';
import { PG_head, PGI_alloc } from './page-flags.ts';
import { NULL, NUMA_NO_NODE } from './slab.ts';
import { __kmalloc_node, kfree } from './slab_common.ts';
import { kvfree, kvmalloc_node } from './vmalloc.ts';

/** include/net/page_pool/types.h PP_ALLOC_CACHE_SIZE: the direct-recycling cache. */
export const PP_ALLOC_CACHE_SIZE = 128;
/** PP_ALLOC_CACHE_REFILL: pages per refill from the ring or the bulk allocator. */
export const PP_ALLOC_CACHE_REFILL = 64;
/** page_pool_init(): the ring size without pool_size, and its ceiling. */
export const PP_RING_DEFAULT = 1024;
export const PP_RING_MAX = 16384;
/**
 * sizeof(struct page_pool) on x86-64 with CONFIG_PAGE_POOL_STATS: the 128-entry alloc cache and
 * the ring, each cacheline-aligned, and the parameters and counters: between 1 and 2 KiB, so
 * kzalloc() takes a kmalloc-2k object (an estimate; the exact size depends on the config).
 */
export const SIZEOF_PAGE_POOL = 1600;

/** struct page_pool_params, the parts the model uses. */
export interface PagePoolParams {
  /** Page order of every page (0 for most NICs, 2-3 for some). */
  order?: number;
  /** Ring entries wanted (0: 1024; capped at 16384). */
  pool_size?: number;
  /** Node of the pages (NUMA_NO_NODE: the NAPI CPU's). */
  nid?: number;
  /** The CPU the queue's NAPI runs on: pages are allocated and freed there. */
  cpu?: number;
}

/** struct page_pool_alloc_stats + struct page_pool_recycle_stats (CONFIG_PAGE_POOL_STATS). */
export interface PagePoolStats {
  fast: number;
  slow: number;
  slow_high_order: number;
  empty: number;
  refill: number;
  waive: number;
  cached: number;
  cache_full: number;
  ring: number;
  ring_full: number;
  released_refcnt: number;
}

/** struct page_pool */
export class PagePool {
  readonly order: number;
  /** pool->p.nid: NUMA_NO_NODE or a node. */
  readonly nid: number;
  readonly cpu: number;
  /** ptr_ring size. */
  readonly ring_qsize: number;
  /** pool->alloc: a stack of pfns. */
  readonly alloc_cache = new Int32Array(PP_ALLOC_CACHE_SIZE);
  alloc_count = 0;
  /** pool->ring: a FIFO of pfns, ring_count entries from ring_head. */
  readonly ring: Int32Array;
  ring_head = 0;
  ring_count = 0;
  /** Pages taken from the page allocator (pages_state_hold_cnt) and given back (release_cnt). */
  hold_cnt = 0;
  release_cnt = 0;
  /** Pages handed to the driver and not yet put back (the pool's in-flight pages outside it). */
  readonly in_use = new Set<number>();
  readonly stats: PagePoolStats = {
    fast: 0,
    slow: 0,
    slow_high_order: 0,
    empty: 0,
    refill: 0,
    waive: 0,
    cached: 0,
    cache_full: 0,
    ring: 0,
    ring_full: 0,
    released_refcnt: 0,
  };
  /** page_pool_destroy() was called; `freed` once the struct itself is gone. */
  destroyed = false;
  freed = false;
  /** Handles of the kzalloc'ed struct page_pool and of the ring's queue. */
  readonly pool_handle: number;
  readonly ring_handle: number;

  constructor(
    order: number,
    nid: number,
    cpu: number,
    ring_qsize: number,
    pool_handle: number,
    ring_handle: number,
  ) {
    this.order = order;
    this.nid = nid;
    this.cpu = cpu;
    this.ring_qsize = ring_qsize;
    this.ring = new Int32Array(ring_qsize);
    this.pool_handle = pool_handle;
    this.ring_handle = ring_handle;
  }

  /** page_pool_inflight(): pages held from the page allocator, cached ones included. */
  get inflight(): number {
    return this.hold_cnt - this.release_cnt;
  }
}

/**
 * kernel: net/core/page_pool.c page_pool_create() -> page_pool_create_percpu() + page_pool_init()
 * kzalloc_node() the pool, then ptr_ring_init() its ring (kvmalloc_array(ring_qsize, 8,
 * GFP_KERNEL | __GFP_ZERO)). Returns the pool, or null (the kernel's ERR_PTR(-ENOMEM)).
 */
export function page_pool_create(mm: MM, params: PagePoolParams = {}): PagePool | null {
  const order = params.order ?? 0;
  const nid = params.nid ?? NUMA_NO_NODE;
  const cpu = params.cpu ?? 0;
  const pool_size = params.pool_size ?? 0;
  const ring_qsize = pool_size ? Math.min(pool_size, PP_RING_MAX) : PP_RING_DEFAULT;
  const pool_handle = __kmalloc_node(mm, SIZEOF_PAGE_POOL, GFP_KERNEL, nid, cpu);
  if (pool_handle === NULL) return null;
  const ring_handle = kvmalloc_node(mm, ring_qsize * 8, GFP_KERNEL, NUMA_NO_NODE, cpu, 'page_pool_init');
  if (ring_handle === NULL) {
    kfree(mm, pool_handle, cpu);
    return null;
  }
  return new PagePool(order, nid, cpu, ring_qsize, pool_handle, ring_handle);
}

/** The node pages are preferred from: pool->p.nid, or the NAPI CPU's (numa_mem_id()). */
function pref_nid(mm: MM, pool: PagePool): number {
  return pool.nid === NUMA_NO_NODE ? mm.cpu_to_node[pool.cpu] : pool.nid;
}

/**
 * kernel: net/core/page_pool.c page_pool_return_page()
 * Back to the page allocator: the pool no longer holds the page.
 */
function page_pool_return_page(mm: MM, pool: PagePool, pfn: number): void {
  pool.release_cnt++;
  __free_pages(mm, pfn, pool.order, pool.cpu);
}

/**
 * kernel: net/core/page_pool.c page_pool_refill_alloc_cache()
 * Move up to PP_ALLOC_CACHE_REFILL pages from the ring to the alloc cache, stopping at a page of
 * another node than the preferred one (it is freed, and the caller goes to the page allocator);
 * pop one. Returns a pfn or -1.
 */
function page_pool_refill_alloc_cache(mm: MM, pool: PagePool): number {
  if (pool.ring_count === 0) {
    pool.stats.empty++;
    return -1;
  }
  const nid = pref_nid(mm, pool);
  do {
    if (pool.ring_count === 0) break;
    const pfn = pool.ring[pool.ring_head];
    pool.ring_head = (pool.ring_head + 1) % pool.ring_qsize;
    pool.ring_count--;
    if (mm.page_zone(pfn)!.nid === nid) {
      pool.alloc_cache[pool.alloc_count++] = pfn;
    } else {
      page_pool_return_page(mm, pool, pfn);
      pool.stats.waive++;
      break;
    }
  } while (pool.alloc_count < PP_ALLOC_CACHE_REFILL);
  if (pool.alloc_count > 0) {
    pool.stats.refill++;
    return pool.alloc_cache[--pool.alloc_count];
  }
  return -1;
}

/**
 * kernel: net/core/page_pool.c __page_pool_alloc_netmems_slow() and
 * __page_pool_alloc_page_order()
 * Both caches are empty: GFP_ATOMIC requests get __GFP_NOWARN; an order > 0 pool allocates one
 * compound page; an order-0 pool bulk-allocates PP_ALLOC_CACHE_REFILL pages into the alloc cache
 * and returns the last. Returns a pfn or -1.
 */
function __page_pool_alloc_pages_slow(mm: MM, pool: PagePool, gfp: number): number {
  if ((gfp & GFP_ATOMIC) === GFP_ATOMIC) gfp |= __GFP_NOWARN;
  const nid = pref_nid(mm, pool);
  if (pool.order) {
    const pfn = __alloc_pages(mm, gfp | __GFP_COMP, pool.order, nid, pool.cpu);
    if (pfn < 0) return -1;
    pool.stats.slow_high_order++;
    pool.hold_cnt++;
    return pfn;
  }
  // The alloc cache is empty: alloc_pages_bulk() fills its first slots.
  const nr_pages = alloc_pages_bulk(mm, gfp, nid, PP_ALLOC_CACHE_REFILL, pool.alloc_cache, 0, pool.cpu);
  if (nr_pages === 0) return -1;
  pool.alloc_count = nr_pages;
  pool.hold_cnt += nr_pages;
  pool.stats.slow++;
  return pool.alloc_cache[--pool.alloc_count];
}

/**
 * kernel: net/core/page_pool.c page_pool_alloc_pages() (page_pool_alloc_netmems())
 * A page of the pool's order for the driver: from the alloc cache, else refilled from the ring,
 * else from the page allocator. Returns its pfn, or -1.
 */
export function page_pool_alloc_pages(mm: MM, pool: PagePool, gfp: number): number {
  if (pool.destroyed) throw new Error('page_pool_alloc_pages: the pool was destroyed');
  let pfn: number;
  if (pool.alloc_count > 0) {
    pfn = pool.alloc_cache[--pool.alloc_count];
    pool.stats.fast++;
  } else {
    pfn = page_pool_refill_alloc_cache(mm, pool);
    if (pfn < 0) pfn = __page_pool_alloc_pages_slow(mm, pool, gfp);
  }
  if (pfn >= 0) pool.in_use.add(pfn);
  return pfn;
}

/**
 * kernel: net/core/page_pool.c page_pool_put_unrefed_netmem() -> __page_pool_put_page()
 * The driver gives back a page it got from this pool (its last reference, as
 * page_pool_put_full_page()): onto the alloc cache if the caller runs in the pool's NAPI context
 * (`allow_direct`) and the cache has room, else into the ring, else to the page allocator.
 * Throws on a pfn the pool did not hand out (the kernel would corrupt its accounting).
 */
export function page_pool_put_page(mm: MM, pool: PagePool, pfn: number, allow_direct: boolean): void {
  if (!pool.in_use.delete(pfn))
    throw new Error(`page_pool_put_page: pfn ${pfn} is not in use from this pool`);
  if (pool.destroyed) {
    // page_pool_disable_direct_recycling(); the release work empties the ring: free it now.
    page_pool_return_page(mm, pool, pfn);
    if (pool.inflight === 0) __page_pool_destroy(mm, pool);
    return;
  }
  if (allow_direct) {
    if (pool.alloc_count < PP_ALLOC_CACHE_SIZE) {
      pool.alloc_cache[pool.alloc_count++] = pfn;
      pool.stats.cached++;
      return;
    }
    pool.stats.cache_full++;
  }
  if (pool.ring_count < pool.ring_qsize) {
    pool.ring[(pool.ring_head + pool.ring_count) % pool.ring_qsize] = pfn;
    pool.ring_count++;
    pool.stats.ring++;
    return;
  }
  pool.stats.ring_full++;
  page_pool_return_page(mm, pool, pfn);
}

/** kernel: net/core/page_pool.c __page_pool_destroy(): free the ring's queue and the pool. */
function __page_pool_destroy(mm: MM, pool: PagePool): void {
  kvfree(mm, pool.ring_handle, pool.cpu);
  kfree(mm, pool.pool_handle, pool.cpu);
  pool.freed = true;
}

/**
 * kernel: net/core/page_pool.c page_pool_destroy() -> page_pool_release() -> page_pool_scrub()
 * Free every cached page (the alloc cache, then the ring); if no page is still with the driver,
 * free the pool, else it lingers until the last one is put back.
 */
export function page_pool_destroy(mm: MM, pool: PagePool): void {
  if (pool.destroyed) throw new Error('page_pool_destroy: the pool was already destroyed');
  pool.destroyed = true;
  while (pool.alloc_count > 0) page_pool_return_page(mm, pool, pool.alloc_cache[--pool.alloc_count]);
  while (pool.ring_count > 0) {
    const pfn = pool.ring[pool.ring_head];
    pool.ring_head = (pool.ring_head + 1) % pool.ring_qsize;
    pool.ring_count--;
    page_pool_return_page(mm, pool, pfn);
  }
  if (pool.inflight === 0) __page_pool_destroy(mm, pool);
}

/**
 * The pool's consistency: held pages = cached + ring + in use, each an allocated block of the
 * pool's order (compound for order > 0).
 */
export function page_pool_check(mm: MM, pool: PagePool): string[] {
  const errors: string[] = [];
  if (pool.freed) return errors;
  const held = pool.alloc_count + pool.ring_count + pool.in_use.size;
  if (held !== pool.inflight)
    errors.push(`page_pool: ${pool.inflight} pages held but ${held} cached, in the ring or in use`);
  const f = mm.frames;
  const check = (pfn: number, where: string): void => {
    const want = PGI_alloc | (pool.order ? PG_head : 0);
    if ((f.flags[pfn] & (PGI_alloc | PG_head)) !== want || f.order[pfn] !== pool.order)
      errors.push(`page_pool: pfn ${pfn} (${where}) is not an allocated order-${pool.order} page`);
  };
  for (let i = 0; i < pool.alloc_count; i++) check(pool.alloc_cache[i], 'alloc cache');
  for (let i = 0; i < pool.ring_count; i++) check(pool.ring[(pool.ring_head + i) % pool.ring_qsize], 'ring');
  for (const pfn of pool.in_use) check(pfn, 'in use');
  if (pool.order > MAX_PAGE_ORDER) errors.push(`page_pool: order ${pool.order} above MAX_PAGE_ORDER`);
  return errors;
}
