/**
 * lib/scatterlist.c: the scatter-gather table the kernel builds from an array of pages
 * (sg_alloc_append_table_from_pages(), sg_alloc_table_from_pages_segment()), as RDMA memory
 * registration (ib_umem_get) and V4L2 USERPTR buffers (vb2_dc_get_userptr) do.
 *
 * Pages are merged into one entry while each page's pfn is the previous one's + 1 and the entry
 * stays within max_segment (rounded down to whole pages). With max_segment = 64 KiB (the
 * dma_get_max_seg_size() default), 40 contiguous pages give 3 entries: 16 + 16 + 8 pages.
 *
 * A table is a struct of typed arrays sized for the worst case (one entry per page), so building
 * one allocates once. The model keeps the entries, not the chained scatterlist chunks.
 */
import { errnos } from '../lib/errno.ts';
import { PAGE_SIZE } from '../mm/mmzone.ts';

const EINVAL = -errnos.EINVAL;
/** UINT_MAX: max_segment of sg_alloc_table_from_pages() and of drivers that set no limit. */
export const UINT_MAX = 0xffffffff;
/** dma_get_max_seg_size() of a device whose driver never called dma_set_max_seg_size(). */
export const DMA_DEFAULT_MAX_SEG_SIZE = 65536;

/** struct sg_append_table with its entries: page (pfn), offset and length per entry. */
export class SgTable {
  /** Entries in use (sgt.nents). */
  nents = 0;
  /** Index of the last entry (sgt_append->prv), -1 before the first append. */
  prv = -1;
  /** Per entry: pfn of its first page (sg_page). */
  readonly page: Int32Array;
  /** Per entry: offset into its first page. */
  readonly offset: Uint32Array;
  /** Per entry: length in bytes (an unsigned int in the kernel; at most UINT_MAX). */
  readonly length: Float64Array;

  /** A table with room for `capacity` entries (the pages that will be appended). */
  constructor(capacity: number) {
    this.page = new Int32Array(capacity);
    this.offset = new Uint32Array(capacity);
    this.length = new Float64Array(capacity);
  }

  /** sg_phys() + offset: the bus address of entry i without an IOMMU (dma-direct). */
  dma_address(i: number): number {
    return this.page[i] * PAGE_SIZE + this.offset[i];
  }
}

/**
 * kernel: lib/scatterlist.c sg_alloc_append_table_from_pages()
 * Append pages pfns[first .. first + n_pages) to `t`: `offset` into the first page, `size`
 * valid bytes, entries of at most max_segment bytes (rounded down to PAGE_SIZE), `left_pages`
 * still to come. Pages contiguous with the last entry are merged into it first (an append with
 * an offset is refused). Returns 0 or -EINVAL (max_segment below a page; offset on an append).
 */
export function sg_alloc_append_table_from_pages(
  t: SgTable,
  pfns: ArrayLike<number>,
  first: number,
  n_pages: number,
  offset: number,
  size: number,
  max_segment: number,
  _left_pages: number,
): number {
  max_segment = Math.floor(max_segment / PAGE_SIZE) * PAGE_SIZE; // ALIGN_DOWN(max_segment, PAGE_SIZE)
  if (max_segment < PAGE_SIZE) return EINVAL;
  if (t.nents + n_pages > t.page.length) throw new RangeError('SgTable: more entries than its capacity');
  let cur = first;
  const end = first + n_pages;
  if (t.prv >= 0) {
    if (offset) return EINVAL;
    const prv = t.prv;
    // Merge contiguous pages into the last SG.
    const next_pfn = Math.floor((t.dma_address(prv) + t.length[prv]) / PAGE_SIZE);
    if (pfns[cur] === next_pfn) {
      let last_pg = next_pfn - 1;
      while (cur < end && pfns[cur] === last_pg + 1) {
        if (t.length[prv] + PAGE_SIZE > max_segment) break;
        t.length[prv] += PAGE_SIZE;
        last_pg = pfns[cur];
        cur++;
      }
      if (cur === end) return 0;
    }
  }
  // Merging chunks and putting them into the scatterlist (the kernel counts the chunks first,
  // only to size its allocation).
  while (cur < end) {
    // Look for the end of the current chunk.
    let seg_len = 0;
    let j = cur + 1;
    for (; j < end; j++) {
      seg_len += PAGE_SIZE;
      if (seg_len >= max_segment || pfns[j] !== pfns[j - 1] + 1) break;
    }
    const chunk_size = (j - cur) * PAGE_SIZE - offset;
    const s = t.nents++;
    t.page[s] = pfns[cur];
    t.offset[s] = offset;
    t.length[s] = Math.min(size, chunk_size);
    // size is an unsigned long: past the last valid byte it wraps, leaving later entries whole.
    size = size >= chunk_size ? size - chunk_size : Number.POSITIVE_INFINITY;
    offset = 0;
    cur = j;
  }
  t.prv = t.nents - 1;
  return 0;
}

function check_pages(pfns: ArrayLike<number>, what: string): void {
  if (pfns.length === 0) throw new RangeError(`${what}: no pages`);
  for (let i = 0; i < pfns.length; i++) {
    const p = pfns[i];
    if (!Number.isInteger(p) || p < 0 || p > 0x7fffffff)
      throw new RangeError(
        `${what}: page ${i} has pfn ${p}; every page must be resident (fault it in or pin it first)`,
      );
  }
}

function check_max_segment(max_segment: number, what: string): void {
  if (!Number.isInteger(max_segment) || max_segment < PAGE_SIZE || max_segment > UINT_MAX)
    throw new RangeError(
      `${what}: max_segment ${max_segment} must be an integer in [${PAGE_SIZE}, ${UINT_MAX}] (an unsigned int of at least one page)`,
    );
}

/**
 * kernel: lib/scatterlist.c sg_alloc_table_from_pages_segment()
 * The SG table of all `pfns` in one call: `offset` into the first page, `size` bytes.
 * RangeError for a non-resident page, a bad max_segment, or an offset/size outside the pages.
 */
export function sg_table_from_pages(
  pfns: ArrayLike<number>,
  offset: number,
  size: number,
  max_segment: number,
): SgTable {
  check_pages(pfns, 'sg_table_from_pages');
  check_max_segment(max_segment, 'sg_table_from_pages');
  if (!Number.isInteger(offset) || offset < 0 || offset >= PAGE_SIZE)
    throw new RangeError(`sg_table_from_pages: offset ${offset} must be in [0, ${PAGE_SIZE})`);
  if (!Number.isInteger(size) || size <= 0 || offset + size > pfns.length * PAGE_SIZE)
    throw new RangeError(
      `sg_table_from_pages: size ${size} does not fit ${pfns.length} pages after offset ${offset}`,
    );
  const t = new SgTable(pfns.length);
  sg_alloc_append_table_from_pages(t, pfns, 0, pfns.length, offset, size, max_segment, 0);
  return t;
}

/**
 * Number of SG entries for whole pages `pfns` at `max_segment` (what sg_table_from_pages(pfns,
 * 0, pages * PAGE_SIZE, max_segment).nents gives), without building the table.
 */
export function sg_nents(pfns: ArrayLike<number>, max_segment: number): number {
  check_pages(pfns, 'sg_nents');
  check_max_segment(max_segment, 'sg_nents');
  const max_pages = Math.floor(max_segment / PAGE_SIZE);
  let n = 1;
  let len = 1;
  for (let i = 1; i < pfns.length; i++) {
    if (len < max_pages && pfns[i] === pfns[i - 1] + 1) len++;
    else {
      n++;
      len = 1;
    }
  }
  return n;
}
