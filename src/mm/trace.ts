/**
 * Tracepoints (include/trace/events/kmem.h). Each is null until a consumer attaches a probe, so a
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
}

export function no_tracepoints(): Tracepoints {
  return { mm_page_alloc: null, mm_page_free: null, mm_page_alloc_extfrag: null };
}
