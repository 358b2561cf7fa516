/**
 * Compaction (mm/compaction.c, v6.18): the rules one by one (deferral arithmetic, the
 * fragmentation index against the kernel's formula, compaction_suitable, suitable migration
 * targets, skip bits and their reset), then whole machines: a zone fragmented by anonymous pages
 * and kernel allocations becomes order-9/10-rich after compact_memory; an order-9 allocation
 * compacts directly (and captures its block); pinned and mlocked pages stay where they are; async
 * compaction leaves pages under writeback that sync compaction moves; the sysctls and debugfs
 * files behave as on Linux.
 */
import { describe, expect, it } from 'vitest';
import { ErrnoError } from '../../src/lib/errno.ts';
import { Prng } from '../../src/lib/prng.ts';
import {
  __compaction_suitable,
  __fragmentation_index,
  __reset_isolation_suitable,
  COMPACT_MAX_DEFER_SHIFT,
  CompactControl,
  compact_gap,
  compact_zone,
  compaction_defer_reset,
  compaction_deferred,
  compaction_restarting,
  compaction_suitable,
  compaction_suitable_result,
  defer_compaction,
  extfrag_for_order,
  fill_contig_page_info,
  fragmentation_index,
  suitable_migration_target,
  try_to_compact_pages,
  unusable_free_index,
} from '../../src/mm/compaction.ts';
import {
  __GFP_COMP,
  __GFP_NOWARN,
  GFP_HIGHUSER_MOVABLE,
  GFP_KERNEL,
  GFP_TRANSHUGE,
  gfp_migratetype,
  gfp_zone,
} from '../../src/mm/gfp.ts';
import { ALLOC_CMA, ALLOC_WMARK_MIN } from '../../src/mm/internal.ts';
import { folio_isolate_lru, MIGRATE_ASYNC, MIGRATE_SYNC, migrate_pages } from '../../src/mm/migrate.ts';
import {
  MIGRATE_MOVABLE,
  MIGRATE_UNMOVABLE,
  NR_PAGE_ORDERS,
  pageblock_nr_pages,
  pageblock_order,
  WMARK_HIGH,
  WMARK_LOW,
  WMARK_MIN,
  ZONE_DMA32,
  ZONE_NORMAL,
  Zone,
} from '../../src/mm/mmzone.ts';
import {
  AllocContext,
  COMPACT_CONTINUE,
  COMPACT_NOT_SUITABLE_ZONE,
  COMPACT_PRIO_SYNC_LIGHT,
  COMPACT_SKIPPED,
  COMPACT_SUCCESS,
  CompactOutcome,
} from '../../src/mm/page_alloc/context.ts';
import { prep_new_page } from '../../src/mm/page_alloc/rmqueue.ts';
import {
  PG_buddy,
  PG_locked,
  PG_lru,
  PG_swapcache,
  PG_writeback,
  PGI_alloc,
} from '../../src/mm/page-flags.ts';
import { wakeup_flusher_threads } from '../../src/mm/page-writeback.ts';
import { get_pageblock_skip, set_pageblock_migratetype, set_pageblock_skip } from '../../src/mm/pageblock.ts';
import { NR_FREE_PAGES } from '../../src/mm/vmstat_items.ts';
import { Machine } from '../../src/sim/machine.ts';
import type { Process } from '../../src/vm/process.ts';
import {
  MADV_DONTNEED,
  MADV_PAGEOUT,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  O_CREAT,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { NO_EARLY, pte, vmstat } from '../vm/helpers.ts';

const PAGE = 4096;
const MiB = 2 ** 20;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const early = NO_EARLY;

function errno(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ErrnoError) return e.code;
    throw e;
  }
  return 'ok';
}

/** Free blocks of pageblock order or more in a zone, in pageblocks. */
function free_pageblocks(zone: Zone): number {
  let n = 0;
  for (let o = pageblock_order; o < NR_PAGE_ORDERS; o++) n += zone.nr_free[o] << (o - pageblock_order);
  return n;
}

/** A detached zone with the given free blocks per order and watermarks, for the formula tests. */
function zone_with(nr_free: number[], wmark = [1000, 1250, 1500]): Zone {
  const z = new Zone(0, ZONE_NORMAL);
  let free = 0;
  nr_free.forEach((n, o) => {
    z.nr_free[o] = n;
    free += n << o;
  });
  z.vm_stat[NR_FREE_PAGES] = free;
  z._watermark[WMARK_MIN] = wmark[0];
  z._watermark[WMARK_LOW] = wmark[1];
  z._watermark[WMARK_HIGH] = wmark[2];
  return z;
}

interface Fragmented {
  m: Machine;
  p: Process;
  chunks: number[];
  /** Unmovable kernel pages still allocated (order 0). */
  kernel: number[];
  /** Blocks of pageblock order or more taken by kernel allocations, [pfn, order]. */
  held: Array<[number, number]>;
}

/**
 * A 512 MiB machine fragmented as a long-running one is: 8 MiB anonymous chunks touched in turn
 * with 16 unmovable kernel pages allocated after each, then about half of the anonymous pages
 * (chosen by a seeded PRNG) and half of the kernel pages freed, and every remaining free block
 * of pageblock order or more taken by kernel allocations that never compact. Every pageblock of
 * DMA32 is then partly used, and no order-9 allocation succeeds without compaction.
 */
function fragmented(seed = 3, chunks = 48): Fragmented {
  const m = Machine.boot({ memory: '512M', cpus: 2, early, seed });
  const p = m.spawn();
  const r = new Prng(seed);
  const kernel: number[] = [];
  const list: number[] = [];
  for (let i = 0; i < chunks; i++) {
    const a = p.mmap(0, 8 * MiB, RW, ANON);
    p.touch(a, 8 * MiB, { write: true });
    list.push(a);
    for (let k = 0; k < 16; k++) {
      const pfn = m.kernel.alloc_pages(GFP_KERNEL, 0);
      if (pfn >= 0) kernel.push(pfn);
    }
  }
  for (const a of list)
    for (let off = 0; off < 8 * MiB; off += PAGE) if (r.below(2)) p.madvise(a + off, PAGE, MADV_DONTNEED);
  const kept: number[] = [];
  kernel.forEach((pfn, i) => {
    if (i % 2) kept.push(pfn);
    else m.kernel.free_pages(pfn, 0);
  });
  m.kernel.drain_all_pages();
  const held: Array<[number, number]> = [];
  for (const o of [10, 9]) {
    for (;;) {
      // No __GFP_DIRECT_RECLAIM: these never compact.
      const pfn = m.kernel.alloc_pages(__GFP_NOWARN, o);
      if (pfn < 0) break;
      held.push([pfn, o]);
    }
  }
  m.kernel.drain_all_pages();
  return { m, p, chunks: list, kernel: kept, held };
}

/** The pfns mapped by the pages of the chunks (present PTEs only). */
function mapped_pfns(fr: Fragmented): number[] {
  const out: number[] = [];
  for (const a of fr.chunks) {
    for (let off = 0; off < 8 * MiB; off += PAGE) {
      const e = pte(fr.m, fr.p, a + off);
      if (e) out.push(e.pfn);
    }
  }
  return out;
}

describe('deferral (defer_compaction, compaction_deferred, compaction_defer_reset)', () => {
  it('skips 1 << compact_defer_shift attempts after each failure, at most 64', () => {
    const z = new Zone(0, ZONE_NORMAL);
    expect(compaction_deferred(z, 9)).toBe(false); // never failed: order 9 >= order_failed 0 though
    expect(z.compact_considered).toBe(1);
    defer_compaction(z, 9);
    expect([z.compact_considered, z.compact_defer_shift, z.compact_order_failed]).toEqual([0, 1, 0]);
    // Shift 1: the first attempt is skipped, the second goes ahead.
    expect(compaction_deferred(z, 9)).toBe(true);
    expect(compaction_deferred(z, 9)).toBe(false);
    expect(compaction_deferred(z, 9)).toBe(false); // and so do all after it, until the next deferral
    defer_compaction(z, 9);
    // Shift 2: three skipped, then one allowed.
    const seen = [1, 2, 3, 4].map(() => compaction_deferred(z, 9));
    expect(seen).toEqual([true, true, true, false]);
    for (let i = 0; i < 10; i++) defer_compaction(z, 9);
    expect(z.compact_defer_shift).toBe(COMPACT_MAX_DEFER_SHIFT);
    let skipped = 0;
    while (compaction_deferred(z, 9)) skipped++;
    expect(skipped).toBe(63);
    expect(z.compact_considered).toBe(64);
    expect(compaction_restarting(z, 9)).toBe(true);
  });

  it('never defers orders below compact_order_failed, and a success resets', () => {
    const z = new Zone(0, ZONE_NORMAL);
    compaction_defer_reset(z, 5, false); // compaction of order 5 should work: orders <= 5 never defer
    expect(z.compact_order_failed).toBe(6);
    defer_compaction(z, 9);
    expect(z.compact_order_failed).toBe(6); // only lowered by a failure of a lower order
    expect(compaction_deferred(z, 5)).toBe(false);
    expect(z.compact_considered).toBe(0); // not even counted
    expect(compaction_deferred(z, 9)).toBe(true);
    defer_compaction(z, 3);
    expect(z.compact_order_failed).toBe(3);
    expect(z.compact_defer_shift).toBe(2);
    compaction_defer_reset(z, 9, true);
    expect([z.compact_considered, z.compact_defer_shift, z.compact_order_failed]).toEqual([0, 0, 10]);
    expect(compaction_restarting(z, 9)).toBe(false);
  });
});

describe('fragmentation index (mm/vmstat.c)', () => {
  it('matches the kernel formula 1000 - (1000 + free * 1000 / 2^order) / blocks', () => {
    // 1000 free pages and 100 free order-1 blocks: 1200 pages in 1100 blocks, none of order 9.
    const z = zone_with([1000, 100]);
    // 1200 * 1000 / 512 = 2343 (integer); (1000 + 2343) / 1100 = 3; 1000 - 3 = 997.
    expect(fragmentation_index(z, 9)).toBe(997);
    // Order 1: 100 suitable blocks, so the allocation would not fail.
    expect(fragmentation_index(z, 1)).toBe(-1000);
    // Order 2: 1200 * 1000 / 4 = 300000; (1000 + 300000) / 1100 = 273; 1000 - 273 = 727.
    expect(fragmentation_index(z, 2)).toBe(727);
    // Few free pages in large blocks: a lack of memory (towards 0).
    // 4 blocks of order 8: 1024 pages; 1024000 / 1024 = 1000; (1000 + 1000) / 4 = 500; 500.
    expect(fragmentation_index(zone_with([0, 0, 0, 0, 0, 0, 0, 0, 4]), 10)).toBe(500);
    expect(fragmentation_index(zone_with([]), 9)).toBe(0);
  });

  it('gives extfrag_for_order and unusable_free_index as percentages and thousandths', () => {
    const z = zone_with([100, 50, 0, 10]); // 100 + 100 + 80 = 280 pages
    // Order 1: 50 + 10*4 = 90 blocks, 180 pages usable; 100 of 280 unusable.
    expect(extfrag_for_order(z, 1)).toBe(Math.floor((100 * 100) / 280));
    const info = { free_pages: 0, free_blocks_total: 0, free_blocks_suitable: 0 };
    fill_contig_page_info(z, 1, info);
    expect(info).toEqual({ free_pages: 280, free_blocks_total: 160, free_blocks_suitable: 90 });
    expect(unusable_free_index(1, info)).toBe(Math.floor((100 * 1000) / 280));
    fill_contig_page_info(z, 3, info);
    expect(unusable_free_index(3, info)).toBe(Math.floor((200 * 1000) / 280));
    expect(__fragmentation_index(3, info)).toBe(-1000);
    fill_contig_page_info(zone_with([]), 0, info);
    expect(unusable_free_index(0, info)).toBe(1000);
  });
});

describe('compaction_suitable()', () => {
  const m = Machine.boot({ memory: '512M', cpus: 1, early });

  it('wants the watermark plus compact_gap, and the low-min gap for costly orders', () => {
    const wmark = [1000, 1250, 1500];
    // Order 2 at the min watermark: free pages must exceed 1000 + 2 << 2 = 1008.
    expect(compact_gap(2)).toBe(8);
    expect(__compaction_suitable(m.mm, zone_with([1008], wmark), 2, 1000, ZONE_NORMAL, 1008)).toBe(false);
    expect(__compaction_suitable(m.mm, zone_with([1009], wmark), 2, 1000, ZONE_NORMAL, 1009)).toBe(true);
    // Order 9: 1000 + 1024 + (1250 - 1000) = 2274.
    expect(__compaction_suitable(m.mm, zone_with([2274], wmark), 9, 1000, ZONE_NORMAL, 2274)).toBe(false);
    expect(__compaction_suitable(m.mm, zone_with([2275], wmark), 9, 1000, ZONE_NORMAL, 2275)).toBe(true);
  });

  it('refuses costly orders whose failure is a lack of memory (fragindex <= extfrag_threshold)', () => {
    const wmark = [100, 125, 150];
    // 3000 free pages in 6 order-9 blocks minus... : 2 order-8 blocks + 2488 order-0 pages.
    const lack = zone_with([0, 0, 0, 0, 0, 0, 0, 0, 12], wmark); // 3072 pages in 12 blocks
    // fragindex(9) = 1000 - (1000 + 3072000 / 512) / 12 = 1000 - 7000 / 12 = 1000 - 583 = 417
    expect(fragmentation_index(lack, 9)).toBe(417);
    expect(compaction_suitable(m.mm, lack, 9, 100, ZONE_NORMAL)).toBe(false);
    expect(compaction_suitable_result(m.mm, lack, 9, 100, ZONE_NORMAL)).toBe(COMPACT_NOT_SUITABLE_ZONE);
    // Non-costly orders ignore the index; a lower threshold lets the costly one through.
    expect(compaction_suitable(m.mm, lack, 3, 100, ZONE_NORMAL)).toBe(true);
    m.writeFile('/proc/sys/vm/extfrag_threshold', '400');
    expect(compaction_suitable(m.mm, lack, 9, 100, ZONE_NORMAL)).toBe(true);
    m.writeFile('/proc/sys/vm/extfrag_threshold', '500');
    // Fragmentation (index near 1000): compact.
    const frag = zone_with([3000], wmark);
    expect(fragmentation_index(frag, 9)).toBe(998); // 1000 - (1000 + 5859) / 3000
    expect(compaction_suitable_result(m.mm, frag, 9, 100, ZONE_NORMAL)).toBe(COMPACT_CONTINUE);
    // Too few free pages: skipped.
    expect(compaction_suitable_result(m.mm, zone_with([1100], wmark), 9, 100, ZONE_NORMAL)).toBe(
      COMPACT_SKIPPED,
    );
  });
});

describe('suitable_migration_target()', () => {
  it('takes free pages from MOVABLE blocks only, never a block heading a free block of the order', () => {
    const m = Machine.boot({ memory: '512M', cpus: 1, early });
    const mm = m.mm;
    const f = mm.frames;
    const zone = mm.zones[ZONE_DMA32];
    const cc = new CompactControl();
    cc.reset(mm, zone, 0);
    cc.order = 4;
    // A free order-10 block in the middle of DMA32: its first pageblock starts with the free
    // block's head, already what compaction makes; the second starts inside it.
    let head = zone.zone_start_pfn + 64 * pageblock_nr_pages;
    while (!(f.flags[head] & PG_buddy && f.order[head] === 10)) head += 2 * pageblock_nr_pages;
    expect(suitable_migration_target(cc, head)).toBe(false);
    cc.order = -1; // a full compaction compares with pageblock_order
    expect(suitable_migration_target(cc, head)).toBe(false);
    const second = head + pageblock_nr_pages;
    expect(suitable_migration_target(cc, second)).toBe(true);
    set_pageblock_migratetype(mm, second, MIGRATE_UNMOVABLE);
    expect(suitable_migration_target(cc, second)).toBe(false);
    // The lowest priority ignores block types.
    cc.ignore_block_suitable = true;
    expect(suitable_migration_target(cc, second)).toBe(true);
    set_pageblock_migratetype(mm, second, MIGRATE_MOVABLE);
  });
});

describe('compact_memory', () => {
  it('turns a fragmented zone order-9/10-rich, moving only movable pages, and counts it', () => {
    const fr = fragmented();
    const { m } = fr;
    const dma32 = m.mm.zones[ZONE_DMA32];
    expect(free_pageblocks(dma32)).toBe(0);
    const before = mapped_pfns(fr);
    const lru = (): number =>
      ['nr_inactive_anon', 'nr_active_anon', 'nr_inactive_file', 'nr_active_file'].reduce(
        (s, n) => s + vmstat(m, n),
        0,
      );
    const lru_before = lru();
    const free_before = dma32.vm_stat[NR_FREE_PAGES];
    m.writeFile('/proc/sys/vm/compact_memory', '1');
    m.kernel.drain_all_pages();
    expect(m.invariantViolations()).toEqual([]);
    // About half of DMA32's ~100k pages are free: most of that comes back as whole pageblocks.
    expect(free_pageblocks(dma32)).toBeGreaterThan(60);
    expect(dma32.vm_stat[NR_FREE_PAGES]).toBe(free_before);
    const after = mapped_pfns(fr);
    expect(after.length).toBe(before.length);
    const moved = after.filter((pfn, i) => pfn !== before[i]).length;
    expect(moved).toBeGreaterThan(10000);
    expect(vmstat(m, 'pgmigrate_success')).toBe(moved);
    expect(lru()).toBe(lru_before);
    // Kernel pages stay put and allocated.
    const f = m.mm.frames;
    expect(fr.kernel.every((pfn) => f.flags[pfn] & PGI_alloc)).toBe(true);
    expect(vmstat(m, 'compact_migrate_scanned')).toBeGreaterThan(moved);
    expect(vmstat(m, 'compact_free_scanned')).toBeGreaterThan(moved);
    // Isolated: every migrated page, plus every free page taken as a target.
    expect(vmstat(m, 'compact_isolated')).toBeGreaterThanOrEqual(2 * moved);
    // A full compaction is not an allocation stall.
    expect(vmstat(m, 'compact_stall')).toBe(0);
    // The process still finds every page it kept, through the moved PTEs.
    for (const a of fr.chunks) fr.p.touch(a, 8 * MiB, { write: false });
    expect(m.invariantViolations()).toEqual([]);
  });

  it('keeps pinned pages in place: they spoil only their own pageblocks', () => {
    const fr = fragmented(5);
    const { m, p } = fr;
    const mm = m.mm;
    const f = mm.frames;
    // Pin one mapped page in each of 8 pageblocks low in DMA32 (where the migrate scanner runs).
    const pages: Array<{ addr: number; pfn: number }> = [];
    for (const a of fr.chunks) {
      for (let off = 0; off < 8 * MiB; off += PAGE) {
        const e = pte(m, p, a + off);
        if (e) pages.push({ addr: a + off, pfn: e.pfn });
      }
    }
    pages.sort((x, y) => x.pfn - y.pfn);
    const blocks = new Map<number, { addr: number; pfn: number }>();
    for (const pg of pages) {
      const b = Math.floor(pg.pfn / pageblock_nr_pages);
      if (!blocks.has(b) && blocks.size < 8 && pg.pfn > 8 * pageblock_nr_pages) blocks.set(b, pg);
    }
    const pinned = [...blocks.values()];
    for (const pg of pinned) expect(p.pin_user_pages(pg.addr, PAGE)).toEqual([pg.pfn]);
    m.writeFile('/proc/sys/vm/compact_memory', '1');
    m.kernel.drain_all_pages();
    expect(m.invariantViolations()).toEqual([]);
    for (const pg of pinned) {
      // Not migrated: the same page still backs the address.
      expect(pte(m, p, pg.addr)!.pfn).toBe(pg.pfn);
      // The rest of its pageblock emptied out: only the pinned page is left in use.
      const start = pg.pfn - (pg.pfn % pageblock_nr_pages);
      let used = 0;
      for (let q = start; q < start + pageblock_nr_pages; ) {
        if (f.flags[q] & PG_buddy) q += 1 << f.order[q];
        else {
          used++;
          q++;
        }
      }
      expect(used).toBe(1);
    }
    expect(free_pageblocks(mm.zones[ZONE_DMA32])).toBeGreaterThan(50);
    for (const pg of pinned) p.unpin_user_pages([pg.pfn]);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('/sys/devices/system/node/nodeN/compact compacts that node on any write, and cannot be read', () => {
    const fr = fragmented();
    const { m } = fr;
    const dma32 = m.mm.zones[ZONE_DMA32];
    expect(free_pageblocks(dma32)).toBe(0);
    expect(errno(() => m.readFile('/sys/devices/system/node/node0/compact'))).toBe('EACCES');
    expect(errno(() => m.writeFile('/sys/devices/system/node/node1/compact', '1'))).toBe('ENOENT');
    // compact_store() ignores what is written (measured: `echo foo` succeeds on 6.18.44).
    m.writeFile('/sys/devices/system/node/node0/compact', 'foo');
    m.kernel.drain_all_pages();
    expect(free_pageblocks(dma32)).toBeGreaterThan(60);
    expect(vmstat(m, 'compact_stall')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('moves mlocked pages only while compact_unevictable_allowed is 1', () => {
    const fr = fragmented(7, 40);
    const { m, p } = fr;
    // mlock the first (lowest) chunk's remaining pages.
    const a = fr.chunks[0];
    p.mlock(a, 8 * MiB);
    const locked = (): number[] => {
      const out: number[] = [];
      for (let off = 0; off < 8 * MiB; off += PAGE) {
        const e = pte(m, p, a + off);
        if (e) out.push(e.pfn);
      }
      return out;
    };
    const before = locked();
    expect(m.readFile('/proc/sys/vm/compact_unevictable_allowed')).toBe('1\n');
    m.writeFile('/proc/sys/vm/compact_unevictable_allowed', '0');
    m.writeFile('/proc/sys/vm/compact_memory', '1');
    expect(locked()).toEqual(before);
    expect(m.invariantViolations()).toEqual([]);
    m.writeFile('/proc/sys/vm/compact_unevictable_allowed', '1');
    m.writeFile('/proc/sys/vm/compact_memory', '1');
    const after = locked();
    expect(after.filter((pfn, i) => pfn !== before[i]).length).toBeGreaterThan(0);
    expect(vmstat(m, 'nr_mlock')).toBe(after.length);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('migration by compaction', () => {
  it('moves swap-cache pages with their swap slots', () => {
    const m = Machine.boot({ memory: '512M', cpus: 2, swap: '256M', early, seed: 17 });
    const p = m.spawn();
    const a = p.mmap(0, 320 * MiB, RW, ANON);
    p.touch(a, 320 * MiB, { write: true });
    // Out to swap and read back in: clean pages in the swap cache, mapped again.
    p.madvise(a, 64 * MiB, MADV_PAGEOUT);
    p.touch(a, 64 * MiB, { write: false });
    const r = new Prng(17);
    for (let off = 0; off < 320 * MiB; off += PAGE) if (r.below(2)) p.madvise(a + off, PAGE, MADV_DONTNEED);
    m.kernel.drain_all_pages();
    const f = m.mm.frames;
    const cached = (): number[] => {
      const out: number[] = [];
      for (let pfn = 0; pfn < f.nr_frames; pfn++) if (f.flags[pfn] & PG_swapcache) out.push(pfn);
      return out;
    };
    const before = cached();
    expect(before.length).toBeGreaterThan(5000);
    expect(vmstat(m, 'nr_swapcached')).toBe(before.length);
    m.writeFile('/proc/sys/vm/compact_memory', '1');
    const after = cached();
    expect(after.length).toBe(before.length);
    const moved = new Set(before);
    expect(after.filter((pfn) => !moved.has(pfn)).length).toBeGreaterThan(1000);
    expect(vmstat(m, 'nr_swapcached')).toBe(before.length);
    // swap_check(): every slot's cached page is a swap-cached anonymous page, and back.
    expect(m.invariantViolations()).toEqual([]);
    const majors = vmstat(m, 'pgmajfault');
    p.touch(a, 64 * MiB, { write: true });
    expect(vmstat(m, 'pgmajfault')).toBe(majors); // nothing was lost from the swap cache
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('migrate_pages()', () => {
  /** A process with `n` faulted anonymous pages, isolated from the LRU for migration. */
  function isolated(n: number) {
    const m = Machine.boot({ memory: '512M', cpus: 2, early, seed: 5 });
    const p = m.spawn();
    const a = p.mmap(0, n * PAGE, RW, ANON);
    p.touch(a, n * PAGE, { write: true });
    const pfns = Array.from({ length: n }, (_, i) => pte(m, p, a + i * PAGE)!.pfn);
    for (const pfn of pfns) expect(folio_isolate_lru(m.mm, pfn)).toBe(true);
    return { m, p, a, pfns };
  }

  it('takes every target of a batch before moving any page (migrate_pages_batch)', () => {
    const { m, p, a, pfns } = isolated(8);
    const order: string[] = [];
    const targets = Array.from({ length: 8 }, () => m.kernel.alloc_pages(GFP_HIGHUSER_MOVABLE, 0));
    const ops = {
      cpu: 0,
      pf_memalloc: false,
      get_new_folio: (src: number) => {
        order.push(`alloc ${pfns.indexOf(src)}`);
        return targets.shift()!;
      },
      put_new_folio: () => order.push('put'),
    };
    const trace = m.mm.trace;
    trace.mm_page_free = (pfn) => {
      if (pfns.includes(pfn)) order.push(`free ${pfns.indexOf(pfn)}`);
    };
    expect(migrate_pages(m.mm, pfns, ops, MIGRATE_ASYNC)).toEqual({ succeeded: 8, failed: 0, err: 0 });
    trace.mm_page_free = null;
    expect(order.slice(0, 8)).toEqual(pfns.map((_, i) => `alloc ${i}`));
    expect(order.filter((o) => o.startsWith('free')).length).toBe(8);
    for (let i = 0; i < 8; i++) expect(pte(m, p, a + i * PAGE)!.pfn).not.toBe(pfns[i]);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('asks for the target before looking at the page: no memory beats writeback (-ENOMEM)', () => {
    const { m, pfns } = isolated(2);
    m.mm.frames.flags[pfns[0]] |= PG_writeback;
    const none = { cpu: 0, pf_memalloc: false, get_new_folio: () => -1, put_new_folio: () => {} };
    expect(migrate_pages(m.mm, pfns, none, MIGRATE_ASYNC)).toEqual({ succeeded: 0, failed: 1, err: -12 });
    m.mm.frames.flags[pfns[0]] &= ~PG_writeback;
  });

  it('retries a locked page in async mode and fails it after 10 passes, on either target path', () => {
    for (const target of ['ops', 'alloc'] as const) {
      const { m, pfns } = isolated(1);
      m.mm.frames.flags[pfns[0]] |= PG_locked;
      let asked = 0;
      const ops = {
        cpu: 0,
        pf_memalloc: false,
        get_new_folio: () => {
          asked++;
          return m.kernel.alloc_pages(GFP_HIGHUSER_MOVABLE, 0);
        },
        put_new_folio: (dst: number) => m.kernel.free_pages(dst, 0),
      };
      const free = m.mm.zones.reduce((s, z) => s + z.vm_stat[0], 0);
      m.mm.trace.mm_page_alloc = () => asked++;
      const r = migrate_pages(
        m.mm,
        pfns,
        target === 'ops' ? ops : { gfp: GFP_HIGHUSER_MOVABLE, nid: -1, cpu: 0 },
        MIGRATE_ASYNC,
      );
      m.mm.trace.mm_page_alloc = null;
      expect(r).toEqual({ succeeded: 0, failed: 1, err: 0 });
      // A target for each of the 10 tries (the page lock is looked at after the target).
      expect(asked).toBe(target === 'ops' ? 20 : 10);
      m.mm.frames.flags[pfns[0]] &= ~PG_locked;
      m.kernel.drain_all_pages();
      // Every target allocated for a try went back.
      expect(m.mm.zones.reduce((s, z) => s + z.vm_stat[0], 0)).toBeGreaterThanOrEqual(free);
      expect(m.invariantViolations()).toEqual([]);
    }
  });
});

describe('async and sync compaction', () => {
  it('async leaves pages under writeback that sync compaction waits for and moves', () => {
    const m = Machine.boot({ memory: '512M', cpus: 2, early, seed: 11 });
    const p = m.spawn();
    // A file written first sits low in DMA32; anonymous memory above it, half freed, gives the
    // free scanner its targets.
    const fd = p.open('/data/f', O_CREAT | O_RDWR);
    p.write(fd, 16 * MiB);
    const a = p.mmap(0, 320 * MiB, RW, ANON);
    p.touch(a, 320 * MiB, { write: true });
    const r = new Prng(11);
    for (let off = 0; off < 320 * MiB; off += PAGE) if (r.below(2)) p.madvise(a + off, PAGE, MADV_DONTNEED);
    m.kernel.drain_all_pages();
    // Start writeback: the flusher submits every dirty page; they stay under writeback until the
    // device has written them, 40 ms per 1024 pages at 100 MiB/s.
    wakeup_flusher_threads(m.mm);
    m.advance(1);
    const f = m.mm.frames;
    const writeback = (): number[] => {
      const out: number[] = [];
      for (let pfn = 0; pfn < f.nr_frames; pfn++) if (f.flags[pfn] & PG_writeback) out.push(pfn);
      return out;
    };
    const wb = writeback();
    expect(wb.length).toBeGreaterThan(1000);
    const run = (mode: number): void => {
      const cc = new CompactControl();
      cc.reset(m.mm, m.mm.zones[ZONE_DMA32], 0);
      cc.order = -1;
      cc.mode = mode;
      cc.ignore_skip_hint = true;
      cc.whole_zone = true;
      cc.gfp_mask = GFP_KERNEL;
      compact_zone(cc, null);
    };
    run(MIGRATE_ASYNC);
    expect(vmstat(m, 'pgmigrate_success')).toBeGreaterThan(0);
    // Every page under writeback was left alone.
    expect(writeback()).toEqual(wb);
    expect(wb.every((pfn) => f.flags[pfn] & PG_lru)).toBe(true);
    expect(m.invariantViolations()).toEqual([]);
    run(MIGRATE_SYNC);
    // MIGRATE_SYNC waited for the writes and moved the pages.
    const left = writeback();
    expect(left.length).toBeLessThan(wb.length / 10);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('direct compaction', () => {
  it('lets an order-9 allocation succeed on a fragmented machine (compact_stall, compact_success)', () => {
    const fr = fragmented();
    const { m } = fr;
    const gfp = GFP_TRANSHUGE | __GFP_COMP;
    const pfn = m.kernel.alloc_pages(gfp, 9);
    expect(pfn).toBeGreaterThanOrEqual(0);
    expect(pfn % 512).toBe(0);
    expect(vmstat(m, 'compact_stall')).toBe(1);
    expect(vmstat(m, 'compact_success')).toBe(1);
    expect(vmstat(m, 'compact_fail')).toBe(0);
    expect(vmstat(m, 'pgmigrate_success')).toBeGreaterThan(0);
    expect(vmstat(m, 'pgmigrate_success')).toBeLessThanOrEqual(512);
    const zone = m.mm.page_zone(pfn)!;
    // The success reset the zone's deferral for order 9.
    expect(zone.compact_order_failed).toBe(10);
    expect(m.invariantViolations()).toEqual([]);
    m.kernel.free_pages(pfn, 9);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('captures the block it frees (capture_control) and defers a zone where it fails', () => {
    const fr = fragmented(9);
    const { m } = fr;
    const mm = m.mm;
    const gfp = GFP_TRANSHUGE | __GFP_COMP;
    const ac = new AllocContext();
    ac.zonelist = mm.nodes[0].zonelist_fallback;
    ac.highest_zoneidx = gfp_zone(gfp);
    ac.migratetype = gfp_migratetype(gfp);
    ac.preferred_zone = mm.zones[ac.zonelist[0]];
    const out = new CompactOutcome();
    try_to_compact_pages(mm, gfp, 9, ALLOC_WMARK_MIN | ALLOC_CMA, ac, COMPACT_PRIO_SYNC_LIGHT, out);
    expect(out.result).toBe(COMPACT_SUCCESS);
    // The block was handed over as it merged, never reaching a free list.
    expect(out.pfn).toBeGreaterThanOrEqual(0);
    const f = mm.frames;
    expect(f.flags[out.pfn] & (PG_buddy | PGI_alloc)).toBe(0);
    prep_new_page(mm, out.pfn, 9, gfp);
    expect(m.invariantViolations()).toEqual([]);
    m.kernel.free_pages(out.pfn, 9);
    // Make the zone hopeless: pin every mapped page, so nothing can move.
    const pins: number[] = [];
    for (const a of fr.chunks)
      for (let off = 0; off < 8 * MiB; off += PAGE)
        if (pte(m, fr.p, a + off)) pins.push(...fr.p.pin_user_pages(a + off, PAGE));
    const zone = mm.zones[ZONE_DMA32];
    // Take whatever free order-9 blocks the capture left, so compaction has to try.
    const held: number[] = [];
    for (;;) {
      const pfn = m.kernel.alloc_pages(__GFP_NOWARN, 9);
      if (pfn < 0) break;
      held.push(pfn);
    }
    const shift = zone.compact_defer_shift;
    try_to_compact_pages(mm, gfp, 9, ALLOC_WMARK_MIN | ALLOC_CMA, ac, COMPACT_PRIO_SYNC_LIGHT, out);
    expect(out.result).not.toBe(COMPACT_SUCCESS);
    expect(zone.compact_defer_shift).toBe(shift + 1);
    expect(zone.compact_order_failed).toBeLessThanOrEqual(9);
    fr.p.unpin_user_pages(pins);
    for (const pfn of held) m.kernel.free_pages(pfn, 9);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('pageblock skip bits', () => {
  it('are set on blocks the scanners found nothing in, and reset after a full compaction', () => {
    const fr = fragmented(13);
    const { m } = fr;
    const mm = m.mm;
    const zone = mm.zones[ZONE_DMA32];
    const skipped = (): number => {
      let n = 0;
      for (let pfn = zone.zone_start_pfn; pfn < zone.zone_end_pfn; pfn += pageblock_nr_pages)
        if (get_pageblock_skip(mm, pfn)) n++;
      return n;
    };
    expect(skipped()).toBe(0);
    // Direct compaction marks the blocks it isolated from and the ones it found nothing in.
    const pfn = m.kernel.alloc_pages(GFP_TRANSHUGE | __GFP_COMP, 9);
    expect(pfn).toBeGreaterThanOrEqual(0);
    const marked = skipped();
    expect(marked).toBeGreaterThan(0);
    // Without a finished full compaction, no reset.
    __reset_isolation_suitable(mm, zone);
    expect(skipped()).toBe(marked);
    // After one (scanners met in direct compaction), blocks with LRU or free pages are cleared.
    zone.compact_blockskip_flush = true;
    __reset_isolation_suitable(mm, zone);
    expect(zone.compact_blockskip_flush).toBe(false);
    expect(skipped()).toBeLessThan(marked);
    // A block holding only kernel pages keeps its bit.
    const kpfn = fr.held.find(([, o]) => o === 10)?.[0];
    if (kpfn !== undefined) {
      set_pageblock_skip(mm, kpfn, true);
      zone.compact_blockskip_flush = true;
      __reset_isolation_suitable(mm, zone);
      expect(get_pageblock_skip(mm, kpfn)).toBe(true);
    }
    m.kernel.free_pages(pfn, 9);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('sysctls and debugfs files', () => {
  it('have the 6.18 defaults, modes and bounds', () => {
    const m = Machine.boot({ memory: '512M', cpus: 1, early });
    const files = m.listFiles('/proc/sys/vm');
    for (const name of [
      'compact_memory',
      'compaction_proactiveness',
      'extfrag_threshold',
      'compact_unevictable_allowed',
    ])
      expect(files).toContain(`/proc/sys/vm/${name}`);
    expect(m.readFile('/proc/sys/vm/compaction_proactiveness')).toBe('20\n');
    expect(m.readFile('/proc/sys/vm/extfrag_threshold')).toBe('500\n');
    expect(m.readFile('/proc/sys/vm/compact_unevictable_allowed')).toBe('1\n');
    // compact_memory is write-only, even for root.
    expect(errno(() => m.readFile('/proc/sys/vm/compact_memory'))).toBe('EACCES');
    expect(errno(() => m.writeFile('/proc/sys/vm/compaction_proactiveness', '101'))).toBe('EINVAL');
    expect(errno(() => m.writeFile('/proc/sys/vm/compaction_proactiveness', '-1'))).toBe('EINVAL');
    expect(errno(() => m.writeFile('/proc/sys/vm/extfrag_threshold', '1001'))).toBe('EINVAL');
    expect(errno(() => m.writeFile('/proc/sys/vm/compact_unevictable_allowed', '2'))).toBe('EINVAL');
    // Raising proactiveness from 0 triggers a proactive round (order -1), which runs at once.
    const wakes: number[] = [];
    m.mm.trace.mm_compaction_wakeup_kcompactd = (_nid, order) => wakes.push(order);
    m.writeFile('/proc/sys/vm/compaction_proactiveness', '0');
    expect(wakes).toEqual([]);
    m.writeFile('/proc/sys/vm/compaction_proactiveness', '30');
    expect(wakes).toEqual([-1]);
    expect(m.mm.nodes[0].proactive_compact_trigger).toBe(false);
    m.writeFile('/proc/sys/vm/extfrag_threshold', '0x3e8');
    expect(m.readFile('/proc/sys/vm/extfrag_threshold')).toBe('1000\n');
  });

  it('compact_memory wants the stored value to be 1 (measured on 6.18.44)', () => {
    const m = Machine.boot({ memory: '512M', cpus: 1, early });
    // Anything else is refused, after being stored.
    for (const v of ['0', '2', '', ' ', 'abc'])
      expect(errno(() => m.writeFile('/proc/sys/vm/compact_memory', v))).toBe('EINVAL');
    m.writeFile('/proc/sys/vm/compact_memory', '1');
    // Now an empty write compacts again, as do "1 2" (one int is read) and "01" / "0x1".
    for (const v of ['', '1 2', '01', '0x1'])
      expect(errno(() => m.writeFile('/proc/sys/vm/compact_memory', v))).toBe('ok');
    expect(errno(() => m.writeFile('/proc/sys/vm/compact_memory', '0'))).toBe('EINVAL');
    expect(errno(() => m.writeFile('/proc/sys/vm/compact_memory', ''))).toBe('EINVAL');
  });

  it('prints extfrag_index and unusable_index as mm/vmstat.c does, for root only', () => {
    const m = Machine.boot({ memory: '1G', cpus: 1, early });
    const ext = m.readFile('/sys/kernel/debug/extfrag/extfrag_index');
    const unu = m.readFile('/sys/kernel/debug/extfrag/unusable_index');
    const zones = m.mm.zones.filter((z) => z.populated_zone());
    expect(ext.split('\n').length).toBe(zones.length + 1);
    zones.forEach((z, i) => {
      const line = ext.split('\n')[i];
      expect(line.startsWith(`Node 0, zone ${z.name.padStart(8)} `)).toBe(true);
      const cells = line.slice(`Node 0, zone ${z.name.padStart(8)} `.length).split(' ');
      expect(cells.pop()).toBe(''); // each value ends in a space
      expect(cells).toHaveLength(NR_PAGE_ORDERS);
      cells.forEach((c, o) => {
        const idx = fragmentation_index(z, o);
        const want = `${String(Math.trunc(idx / 1000)).padStart(2)}.${String(Math.abs(idx % 1000)).padStart(3, '0')}`;
        expect(c === want || c === want.trim()).toBe(true);
      });
      const uline = unu.split('\n')[i];
      const info = { free_pages: 0, free_blocks_total: 0, free_blocks_suitable: 0 };
      let want = `Node 0, zone ${z.name.padStart(8)} `;
      for (let o = 0; o < NR_PAGE_ORDERS; o++) {
        fill_contig_page_info(z, o, info);
        const idx = unusable_free_index(o, info);
        want += `${Math.trunc(idx / 1000)}.${String(idx % 1000).padStart(3, '0')} `;
      }
      expect(uline).toBe(want);
    });
    // A fresh machine's zones have free max-order blocks: every allocation would succeed.
    expect(ext).toMatch(/^Node 0, zone {4}DMA32 (-1\.000 ){11}$/m);
    expect(unu).toMatch(/^Node 0, zone {4}DMA32 0\.000 /m);
    expect(errno(() => m.readFile('/sys/kernel/debug/extfrag/extfrag_index', { uid: 1000, gid: 1000 }))).toBe(
      'EACCES',
    );
  });
});
