/**
 * Fragmentation at a glance, read from the frame table: free blocks by order, the longest run of
 * physically contiguous free memory, and pageblocks by type. What a person asks before asking
 * for a contiguous buffer: "is there room, and is it in one piece?"
 */
import type { MM } from '../mm/mm.ts';
import { MIGRATE_TYPES, NR_PAGE_ORDERS, pageblock_order } from '../mm/mmzone.ts';
import { PG_buddy } from '../mm/page-flags.ts';
import { get_pfnblock_migratetype } from '../mm/pageblock.ts';
import { NR_FREE_PAGES } from '../mm/vmstat_items.ts';

export interface FragmentationSummary {
  /** Free pages on the buddy lists (not counting pages parked on per-cpu lists). */
  freePages: number;
  /** Free blocks per order, all zones. */
  freeBlocks: number[];
  /** Free 2 MiB-or-larger blocks counted in 2 MiB units. */
  freeHugeBlocks: number;
  /** The longest run of free pages (in pages) that are physically contiguous within one zone. */
  largestFreeRun: number;
  /** Pageblocks per migratetype, all zones. */
  pageblocks: number[];
}

export function fragmentationSummary(mm: MM): FragmentationSummary {
  const freeBlocks = new Array<number>(NR_PAGE_ORDERS).fill(0);
  const pageblocks = new Array<number>(MIGRATE_TYPES).fill(0);
  let freePages = 0;
  for (const zone of mm.zones) {
    if (!zone.present_pages) continue;
    freePages += zone.vm_stat[NR_FREE_PAGES];
    for (let o = 0; o < NR_PAGE_ORDERS; o++) freeBlocks[o] += zone.nr_free[o];
    const end = zone.zone_end_pfn;
    // As pagetypeinfo counts them: every pageblock start in an online section of the zone.
    for (let pfn = zone.zone_start_pfn; pfn < end; pfn = (pfn | ((1 << pageblock_order) - 1)) + 1) {
      if (mm.pfn_online(pfn)) pageblocks[get_pfnblock_migratetype(mm, pfn)]++;
    }
  }
  let freeHugeBlocks = 0;
  for (let o = pageblock_order; o < NR_PAGE_ORDERS; o++)
    freeHugeBlocks += freeBlocks[o] << (o - pageblock_order);
  return { freePages, freeBlocks, freeHugeBlocks, largestFreeRun: largestFreeRun(mm), pageblocks };
}

/** The longest physically contiguous run of free buddy pages inside one zone. */
export function largestFreeRun(mm: MM): number {
  const flags = mm.frames.flags;
  const orders = mm.frames.order;
  let best = 0;
  for (const zone of mm.zones) {
    if (!zone.present_pages) continue;
    let run = 0;
    for (let pfn = zone.zone_start_pfn; pfn < zone.zone_end_pfn; ) {
      if (flags[pfn] & PG_buddy) {
        const nr = 1 << orders[pfn];
        run += nr;
        pfn += nr;
        if (run > best) best = run;
      } else {
        run = 0;
        pfn++;
      }
    }
  }
  return best;
}
