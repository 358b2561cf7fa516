/**
 * Tracepoints (include/trace/events/kmem.h, compaction.h). Each is null until a consumer attaches a probe, so a
 * disabled tracepoint costs one comparison, as in the kernel.
 */
export interface Tracepoints {
  /** kmem:mm_page_alloc */
  mm_page_alloc: ((pfn: number, order: number, gfp: number, mt: number) => void) | null;
  /** kmem:mm_page_free */
  mm_page_free: ((pfn: number, order: number) => void) | null;
  /** kmem:mm_page_alloc_extfrag: a fallback to another type's free block. */
  mm_page_alloc_extfrag:
    | ((
        pfn: number,
        alloc_order: number,
        fallback_order: number,
        alloc_mt: number,
        fallback_mt: number,
        claimed: boolean,
      ) => void)
    | null;
  /**
   * page_isolation:test_pages_isolated: the result of test_pages_isolated(); `fin_pfn` < `end_pfn`
   * is the first pfn that was not free (the kernel prints "fin_pfn=0x... ret=fail").
   */
  test_pages_isolated: ((start_pfn: number, end_pfn: number, fin_pfn: number) => void) | null;
  /** compaction:mm_compaction_kcompactd_sleep: kcompactd waits (each turn of its loop). */
  mm_compaction_kcompactd_sleep: ((nid: number) => void) | null;
  /** compaction:mm_compaction_wakeup_kcompactd: kcompactd is woken (order -1: proactive trigger). */
  mm_compaction_wakeup_kcompactd: ((nid: number, order: number, highest_zoneidx: number) => void) | null;
  /** compaction:mm_compaction_kcompactd_wake: kcompactd compacts for an order (kcompactd_do_work). */
  mm_compaction_kcompactd_wake: ((nid: number, order: number, highest_zoneidx: number) => void) | null;
  /**
   * compaction:mm_compaction_begin: compact_zone() passed its suitability checks and starts
   * scanning. The kernel prints the scanner pfns; the model passes the zone and order instead,
   * which is what a consumer needs to tell runs apart (order -1: compact_memory/proactive).
   */
  mm_compaction_begin: ((nid: number, zoneidx: number, order: number, sync: boolean) => void) | null;
  /** compaction:mm_compaction_end: the run that mm_compaction_begin announced ends with `status` (COMPACT_*). */
  mm_compaction_end: ((nid: number, zoneidx: number, order: number, status: number) => void) | null;
}

export function no_tracepoints(): Tracepoints {
  return {
    mm_page_alloc: null,
    mm_page_free: null,
    mm_page_alloc_extfrag: null,
    test_pages_isolated: null,
    mm_compaction_kcompactd_sleep: null,
    mm_compaction_wakeup_kcompactd: null,
    mm_compaction_kcompactd_wake: null,
    mm_compaction_begin: null,
    mm_compaction_end: null,
  };
}
