/** The allocator's internal alloc_flags (mm/internal.h, mainline since 6.3). */
export const ALLOC_WMARK_MIN = 0; // WMARK_MIN
export const ALLOC_WMARK_LOW = 1; // WMARK_LOW
export const ALLOC_WMARK_HIGH = 2; // WMARK_HIGH
export const ALLOC_WMARK_MASK = 0x03;
export const ALLOC_NO_WATERMARKS = 0x04;
export const ALLOC_OOM = 0x08;
export const ALLOC_NON_BLOCK = 0x10;
export const ALLOC_MIN_RESERVE = 0x20;
export const ALLOC_CPUSET = 0x40;
export const ALLOC_CMA = 0x80;
export const ALLOC_NOFRAGMENT = 0x100;
export const ALLOC_HIGHATOMIC = 0x200;
export const ALLOC_TRYLOCK = 0x400;
export const ALLOC_KSWAPD = 0x800; // == __GFP_KSWAPD_RECLAIM
export const ALLOC_RESERVES = ALLOC_NON_BLOCK | ALLOC_MIN_RESERVE | ALLOC_HIGHATOMIC | ALLOC_OOM;

/** FPI_* flags of the free path (mm/page_alloc.c). */
export const FPI_NONE = 0;
export const FPI_SKIP_REPORT_NOTIFY = 1 << 0;
export const FPI_TO_TAIL = 1 << 1;
