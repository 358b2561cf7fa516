/**
 * Physical segments of a buffer: the maximal runs of pages, in virtual order, whose pfns follow
 * each other (pfn[i] = pfn[i - 1] + 1). This is the contiguity a device without an IOMMU sees;
 * a run is what one DMA descriptor could cover if the device had no segment-size limit.
 *
 * pfns [7, 8, 9, 20, 21, 5] are three segments: 3 pages at pfn 7, 2 at 20, 1 at 5. A page that
 * is not resident (-1) ends a segment and belongs to none.
 */

/** The runs of a pfn array. */
export interface PhysicalSegments {
  /** Number of segments. */
  readonly count: number;
  /** Pages in the largest segment (0 if none). */
  readonly largest_pages: number;
  /** Per segment: index of its first page in the buffer. */
  readonly first_page: Int32Array;
  /** Per segment: its pfn. */
  readonly pfn: Int32Array;
  /** Per segment: its length in pages. */
  readonly pages: Int32Array;
}

/** Number of physical segments (no allocation). */
export function count_segments(pfns: ArrayLike<number>): number {
  let n = 0;
  let prev = -2;
  for (let i = 0; i < pfns.length; i++) {
    const p = pfns[i];
    if (p >= 0 && p !== prev + 1) n++;
    prev = p < 0 ? -2 : p;
  }
  return n;
}

/** The physical segments of a pfn array, in virtual order. */
export function physical_segments(pfns: ArrayLike<number>): PhysicalSegments {
  const count = count_segments(pfns);
  const first_page = new Int32Array(count);
  const pfn = new Int32Array(count);
  const pages = new Int32Array(count);
  let s = -1;
  let prev = -2;
  let largest = 0;
  for (let i = 0; i < pfns.length; i++) {
    const p = pfns[i];
    if (p < 0) {
      prev = -2;
      continue;
    }
    if (p !== prev + 1) {
      s++;
      first_page[s] = i;
      pfn[s] = p;
    }
    pages[s]++;
    if (pages[s] > largest) largest = pages[s];
    prev = p;
  }
  return { count, largest_pages: largest, first_page, pfn, pages };
}

/**
 * Segment sizes as a histogram by order: entry k counts segments of [2^k, 2^(k+1)) pages
 * (k = 0 is single pages, k = 9 is 2 MiB to just under 4 MiB).
 */
export function segment_order_histogram(segs: PhysicalSegments): number[] {
  const h: number[] = [];
  for (let i = 0; i < segs.count; i++) {
    const k = 31 - Math.clz32(segs.pages[i]);
    while (h.length <= k) h.push(0);
    h[k]++;
  }
  return h;
}
