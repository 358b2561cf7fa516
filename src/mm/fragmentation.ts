/**
 * Fragmentation at a glance, read from the frame table (for reports and samples, not a kernel file): free blocks by order, the longest run of
 * physically contiguous free memory, and pageblocks by type. What a person asks before asking
 * for a contiguous buffer: "is there room, and is it in one piece?"
 */
import type { MM } from './mm.ts';
import { MIGRATE_MOVABLE, MIGRATE_TYPES, NR_PAGE_ORDERS, pageblock_order } from './mmzone.ts';
import { PG_buddy, PG_lru, PGI_alloc, PGI_nopage, PGI_pcp } from './page-flags.ts';
import { get_pfnblock_migratetype } from './pageblock.ts';
import { NR_FREE_PAGES } from './vmstat_items.ts';

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

/** 2 MiB blocks by the worst they hold (blockCensus()). */
export interface BlockCensus {
  free: number;
  movable: number;
  pinned: number;
  kernel: number;
  /** Of `kernel`, the blocks whose pageblock type is MIGRATE_MOVABLE. */
  mixed: number;
  /** 1 GiB-aligned ranges holding nothing but free and movable blocks. */
  gigantic: number;
}

/**
 * The 2 MiB blocks of RAM by what stands between them and being one free block: nothing (free),
 * movable pages only (on the LRU lists: page cache, anonymous and tmpfs pages, which migration
 * or reclaim could move out), pages pinned for DMA (movable pages that must stay put while
 * pinned), or kernel memory (slab, page tables, vmalloc, network buffers, boot reservations),
 * which never moves. A block counts under the worst it holds; blocks with holes are left out.
 */
export function blockCensus(mm: MM): BlockCensus {
  const FREE = 0;
  const MOVABLE = 1;
  const PINNED = 2;
  const KERNEL = 3;
  const HOLE = 4;
  const f = mm.frames;
  const fl = f.flags;
  const ord = f.order;
  const pins = mm.pincount;
  const nr = f.nr_frames;
  const block = 1 << pageblock_order;
  const worst = new Uint8Array((nr >> pageblock_order) + 1);
  for (let pfn = 0; pfn < nr; ) {
    const x = fl[pfn];
    let n = 1;
    let cls = KERNEL;
    if (x & (PG_buddy | PGI_pcp)) {
      n = 1 << ord[pfn];
      cls = FREE;
    } else if (x & PGI_alloc) {
      n = 1 << ord[pfn];
      if (pins !== null && pins[pfn] > 0) cls = PINNED;
      else if (x & PG_lru) cls = MOVABLE;
    } else if (x & PGI_nopage) {
      cls = HOLE;
    }
    const end = Math.min(pfn + n, nr);
    for (let b = pfn >> pageblock_order; b <= (end - 1) >> pageblock_order; b++)
      if (cls > worst[b]) worst[b] = cls;
    // Nothing in the rest of a block can make it worse than kernel memory: skip to the next.
    pfn = cls >= KERNEL ? Math.max(end, ((pfn >> pageblock_order) + 1) * block) : end;
  }
  const counts = [0, 0, 0, 0, 0];
  // The last, partial block is not a 2 MiB block.
  for (let b = 0; b < f.nr_frames >> pageblock_order; b++) counts[worst[b]]++;
  // Kernel memory in a block typed movable: what compaction cannot empty and the allocator
  // meant to keep clear (page_owner's "mixed" blocks, the unmovable-in-movable kind).
  let mixed = 0;
  for (let b = 0; b < f.nr_frames >> pageblock_order; b++)
    if (worst[b] === KERNEL && get_pfnblock_migratetype(mm, b << pageblock_order) === MIGRATE_MOVABLE)
      mixed++;
  // 1 GiB-aligned ranges of only free and movable blocks: a gigantic page alloc_contig_range()
  // could have by migrating, if nothing else moves in first.
  const per_gib = 1 << (18 - pageblock_order);
  let gigantic = 0;
  for (let g = 0; g + per_gib <= nr >> pageblock_order; g += per_gib) {
    let b = g;
    while (b < g + per_gib && worst[b] <= MOVABLE) b++;
    if (b === g + per_gib) gigantic++;
  }
  return {
    free: counts[FREE],
    movable: counts[MOVABLE],
    pinned: counts[PINNED],
    kernel: counts[KERNEL],
    mixed,
    gigantic,
  };
}
