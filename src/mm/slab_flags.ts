/**
 * Cache flags (include/linux/slab.h), apart from slab.ts so that slab_common.ts's tables can use
 * them while the modules that import each other are still being loaded. The names are the
 * kernel's; the bit numbers are the model's (the kernel's depend on its configuration).
 */
/** Align objects on a cache line (as far as the object size warrants). */
export const SLAB_HWCACHE_ALIGN = 1 << 0;
/** Slabs from ZONE_DMA (GFP_DMA). */
export const SLAB_CACHE_DMA = 1 << 1;
/** Slabs from ZONE_DMA32 (GFP_DMA32). */
export const SLAB_CACHE_DMA32 = 1 << 2;
/** Panic if kmem_cache_create() fails. */
export const SLAB_PANIC = 1 << 3;
/** Slab pages are freed after an RCU grace period; objects may be reused meanwhile. */
export const SLAB_TYPESAFE_BY_RCU = 1 << 4;
/** Objects are charged to the allocating memcg (memcg is not modelled). */
export const SLAB_ACCOUNT = 1 << 5;
/** Objects are reclaimable by a shrinker: slabs are __GFP_RECLAIMABLE, counted in nr_slab_reclaimable. */
export const SLAB_RECLAIM_ACCOUNT = 1 << 6;
/** A kmalloc cache. */
export const SLAB_KMALLOC = 1 << 7;
/** Never merge this cache with another. */
export const SLAB_NO_MERGE = 1 << 8;
