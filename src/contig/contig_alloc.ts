/**
 * The shared in-kernel helper behind every contender that hands out contiguous user memory
 * (MAP_CONTIG's `rfc` and `bounded` policies, the /dev/contig<N> devices): zeroed order-0 pages,
 * either one physically contiguous run of exactly the size asked (strict) or the fewest, largest
 * runs to be had (best effort). The caller owns the pages and frees each with __free_pages().
 */
import { __GFP_DIRECT_RECLAIM, __GFP_NORETRY, __GFP_NOWARN, __GFP_ZERO, GFP_HIGHUSER } from '../mm/gfp.ts';
import type { MM } from '../mm/mm.ts';
import { get_order, MAX_PAGE_ORDER, PAGE_SIZE } from '../mm/mmzone.ts';
import { __alloc_pages, __free_pages } from '../mm/page_alloc/alloc_pages.ts';
import { alloc_contig_pages } from '../mm/page_alloc/contig.ts';
import { split_page } from '../mm/vmalloc.ts';

/** strict: one run or nothing; best-effort: never fails for fragmentation, only for want of memory. */
export type ContigMode = 'strict' | 'best-effort';

/** Simulated time best effort may spend in direct compaction before it takes what is free. */
export const BEST_EFFORT_COMPACT_BUDGET_NS = 100e6;

/** Zeroed user pages that are not movable (their holders pin them): ZONE_NORMAL and below. */
const GFP_CONTIG = GFP_HIGHUSER | __GFP_ZERO;

/** `nr` consecutive pfns from `pfn`. */
export function pfn_run(pfn: number, nr: number): Int32Array {
  const pfns = new Int32Array(nr);
  for (let i = 0; i < nr; i++) pfns[i] = pfn + i;
  return pfns;
}

/**
 * `pages` zeroed order-0 pages from node `nid` first, as a pfn per page in ascending runs, or
 * null. Strict follows Anshuman Khandual's chain from the thread: a buddy block when the size
 * allows one (the tail freed at once), else alloc_contig_pages() of exactly `pages` (isolation
 * and migration; the rest of the range goes back to the pools).
 */
export function contig_alloc(
  mm: MM,
  pages: number,
  mode: ContigMode,
  nid: number,
  cpu: number,
): Int32Array | null {
  if (mode === 'best-effort') return contig_alloc_best_effort(mm, pages, nid, cpu);
  const order = get_order(pages * PAGE_SIZE);
  if (order <= MAX_PAGE_ORDER) {
    // One try with light compaction; a miss leaves the heavy lifting to alloc_contig_pages().
    const pfn = __alloc_pages(mm, GFP_CONTIG | __GFP_NORETRY | __GFP_NOWARN, order, nid, cpu);
    if (pfn >= 0) {
      split_page(mm, pfn, order);
      for (let p = pfn + pages; p < pfn + (1 << order); p++) __free_pages(mm, p, 0, cpu);
      return pfn_run(pfn, pages);
    }
  }
  const pfn = alloc_contig_pages(mm, pages, GFP_CONTIG, nid, null, { cpu });
  return pfn < 0 ? null : pfn_run(pfn, pages);
}

/**
 * Best effort: buddy blocks from the largest order down, with direct compaction (one try,
 * __GFP_NORETRY) while the budget of simulated time lasts, then only what is free. The blocks
 * are laid out in pfn order, so neighbours become one segment.
 */
function contig_alloc_best_effort(mm: MM, pages: number, nid: number, cpu: number): Int32Array | null {
  const blocks: number[] = [];
  const orders: number[] = [];
  const deadline = mm.kernel_ns + BEST_EFFORT_COMPACT_BUDGET_NS;
  let left = pages;
  let order = Math.min(MAX_PAGE_ORDER, Math.floor(Math.log2(pages)));
  while (left > 0) {
    while (1 << order > left) order--;
    // Order 0 may reclaim as any user page does; higher orders compact only within the budget.
    const gfp =
      order === 0
        ? GFP_CONTIG
        : (mm.kernel_ns < deadline ? GFP_CONTIG | __GFP_NORETRY : GFP_CONTIG & ~__GFP_DIRECT_RECLAIM) |
          __GFP_NOWARN;
    const pfn = __alloc_pages(mm, gfp, order, nid, cpu);
    if (pfn < 0) {
      if (order === 0) break;
      order--;
      continue;
    }
    split_page(mm, pfn, order);
    blocks.push(pfn);
    orders.push(order);
    left -= 1 << order;
  }
  if (left > 0) {
    for (let b = 0; b < blocks.length; b++)
      for (let i = 0; i < 1 << orders[b]; i++) __free_pages(mm, blocks[b] + i, 0, cpu);
    return null;
  }
  const pfns = new Int32Array(pages);
  const byPfn = blocks.map((_, b) => b).sort((a, b) => blocks[a] - blocks[b]);
  let i = 0;
  for (const b of byPfn) for (let k = 0; k < 1 << orders[b]; k++) pfns[i++] = blocks[b] + k;
  return pfns;
}
