/**
 * Per-frame flag bits (include/linux/page-flags.h), packed in one Uint32 per frame.
 * Kernel flags keep their kernel names. PageBuddy is a page type in the kernel, not a flag,
 * but it is one bit here. The PGI_ bits are the model's own bookkeeping, which the kernel gets
 * from other struct page fields; /proc/kpageflags never shows them.
 */
export const PG_locked = 1 << 0;
export const PG_referenced = 1 << 1;
export const PG_uptodate = 1 << 2;
export const PG_dirty = 1 << 3;
export const PG_lru = 1 << 4;
export const PG_active = 1 << 5;
export const PG_slab = 1 << 6;
export const PG_writeback = 1 << 7;
export const PG_reserved = 1 << 8;
export const PG_head = 1 << 9;
export const PG_tail = 1 << 10;
export const PG_swapbacked = 1 << 11;
export const PG_unevictable = 1 << 12;
export const PG_mlocked = 1 << 13;
export const PG_anon = 1 << 14;
export const PG_buddy = 1 << 15;
export const PG_table = 1 << 16;
export const PG_hugetlb = 1 << 17;
export const PG_reclaim = 1 << 18;
export const PG_isolated = 1 << 19;
export const PG_movable_ops = 1 << 20;
/** Evicted recently and faulted back, or deactivated while in use (workingset detection). */
export const PG_workingset = 1 << 21;
/** PG_readahead shares its bit with PG_reclaim in the kernel: the async readahead mark. */
export const PG_readahead = PG_reclaim;
/** In the swap cache (PG_owner_priv_1 of a swap-backed page in the kernel). */
export const PG_swapcache = 1 << 22;

/** No struct page: a hole between RAM ranges (KPF_NOPAGE). */
export const PGI_nopage = 1 << 24;
/** Head of an allocated block; `order[pfn]` holds the allocation order. */
export const PGI_alloc = 1 << 25;
/** Head of a block parked on a per-cpu list; `order[pfn]` holds its order. */
export const PGI_pcp = 1 << 26;

/**
 * Flags a freed page may still carry and loses (PAGE_FLAGS_CHECK_AT_PREP less those checked at
 * free): use marks from its last life.
 */
export const PAGE_FLAGS_CLEAR_AT_FREE =
  PG_referenced |
  PG_uptodate |
  PG_dirty |
  PG_swapbacked |
  PG_anon |
  PG_reclaim |
  PG_workingset |
  PG_swapcache;

/** Flags a page must not carry when it enters the buddy allocator (page_expected_state). */
export const PAGE_FLAGS_CHECK_AT_FREE =
  PG_lru | PG_locked | PG_slab | PG_active | PG_unevictable | PG_mlocked | PG_writeback | PG_table | PG_buddy;
