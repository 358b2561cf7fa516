/**
 * Page isolation and contiguous allocation (mm/page_isolation.c; alloc_contig_range,
 * alloc_contig_pages and free_contig_range of mm/page_alloc.c, v6.18): exactly the requested
 * range is taken and the rest of its pageblocks given back; boundary pageblocks (free buddies
 * split by isolation, whole-pageblock checks); each errno (-EBUSY for unmovable, pinned and
 * already isolated pages, -ENOMEM without migration targets, -EINTR on a fatal signal, -EINVAL
 * for bad gfp flags and compound requests); anonymous, mlocked and page-cache pages moved or
 * dropped with their mappings intact; 1 GiB from alloc_contig_pages on a fresh machine, and
 * none on a machine with slab pages scattered through it.
 */
import { describe, expect, it } from 'vitest';
import {
  __GFP_COMP,
  __GFP_HIGH,
  __GFP_NOFAIL,
  __GFP_NORETRY,
  __GFP_NOWARN,
  __GFP_ZERO,
  GFP_HIGHUSER_MOVABLE,
  GFP_KERNEL,
} from '../../src/mm/gfp.ts';
import {
  MIGRATE_CMA,
  MIGRATE_ISOLATE,
  MIGRATE_MOVABLE,
  MIGRATE_UNMOVABLE,
  pageblock_nr_pages,
  ZONE_DMA32,
  ZONE_MOVABLE,
} from '../../src/mm/mmzone.ts';
import { ACR_FLAGS_CMA, ACR_FLAGS_NONE } from '../../src/mm/page_alloc/contig.ts';
import { find_large_buddy } from '../../src/mm/page_alloc/isolate.ts';
import {
  has_unmovable_pages,
  PB_ISOLATE_MODE_CMA_ALLOC,
  PB_ISOLATE_MODE_OTHER,
  start_isolate_page_range,
  test_pages_isolated,
  undo_isolate_page_range,
} from '../../src/mm/page_isolation.ts';
import { PG_buddy, PG_head, PG_lru, PG_mlocked, PG_tail, PGI_alloc } from '../../src/mm/page-flags.ts';
import {
  get_pageblock_migratetype_raw,
  get_pfnblock_migratetype,
  set_pageblock_migratetype,
} from '../../src/mm/pageblock.ts';
import { NR_FREE_PAGES } from '../../src/mm/vmstat_items.ts';
import { Machine } from '../../src/sim/machine.ts';
import { FOLL_LONGTERM, FOLL_WRITE } from '../../src/vm/gup.ts';
import type { Process } from '../../src/vm/process.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
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
const EINTR = -4;
const ENOMEM = -12;
const EBUSY = -16;
const EINVAL = -22;

function boot(memory = '512M', over: Record<string, unknown> = {}): Machine {
  const m = Machine.boot({ memory, cpus: 2, early: NO_EARLY, seed: 7, ...over });
  m.kernel.drain_all_pages();
  return m;
}

/** Whether `pfn` lies in a free buddy block. */
function isFree(m: Machine, pfn: number): boolean {
  const f = m.mm.frames;
  for (let o = 0; o <= 10; o++) {
    const h = pfn - (pfn % 2 ** o);
    if (f.flags[h] & PG_buddy) return f.order[h] >= o;
  }
  return false;
}

/** Pageblocks with the isolate bit, over all zones. */
function isolatedBlocks(m: Machine): number {
  return m.mm.zones.reduce((s, z) => s + z.nr_isolate_pageblock, 0);
}

function freePages(m: Machine): number {
  return m.mm.zones.reduce((s, z) => s + z.vm_stat[NR_FREE_PAGES], 0);
}

/** The first pfn of a free order-10 block of DMA32, `skip` such blocks in. */
function freeMaxBlock(m: Machine, skip = 8): number {
  const zone = m.mm.zones[ZONE_DMA32];
  const f = m.mm.frames;
  for (let pfn = zone.zone_start_pfn; pfn < zone.zone_end_pfn; pfn += 1024) {
    if (f.flags[pfn] & PG_buddy && f.order[pfn] === 10 && skip-- === 0) return pfn;
  }
  throw new Error('no free order-10 block');
}

/** A process with `len` bytes of anonymous memory written, and its mapping. */
function anon(m: Machine, len: number): { p: Process; a: number } {
  const p = m.spawn();
  const a = p.mmap(0, len, RW, ANON);
  p.touch(a, len, { write: true });
  return { p, a };
}

/** The first pageblock holding one of `pfns` and nothing unmovable, and that pfn. */
function movableBlock(m: Machine, pfns: number[]): { start: number; pfn: number } {
  for (const pfn of pfns) {
    const start = pfn - (pfn % pageblock_nr_pages);
    if (has_unmovable_pages(m.mm, start, start + pageblock_nr_pages, PB_ISOLATE_MODE_OTHER) < 0)
      return { start, pfn };
  }
  throw new Error('no movable pageblock');
}

/** The pfns mapping [a, a + len) of `p`, one per page (-1 where none). */
function mapped(m: Machine, p: Process, a: number, len: number): number[] {
  const out: number[] = [];
  for (let off = 0; off < len; off += PAGE) out.push(pte(m, p, a + off)?.pfn ?? -1);
  return out;
}

describe('alloc_contig_range(): what it takes and what it gives back', () => {
  it('allocates exactly [start, end) inside a free block and returns the rest of the pageblocks', () => {
    const m = boot();
    const f = m.mm.frames;
    const base = freeMaxBlock(m);
    const boot_buddy = m.readFile('/proc/buddyinfo');
    const before = freePages(m);
    const start = base + 100;
    const end = start + 300;
    expect(m.kernel.alloc_contig_range(start, end, ACR_FLAGS_NONE, GFP_KERNEL)).toBe(0);
    for (let pfn = start; pfn < end; pfn++) {
      expect(f.flags[pfn] & (PGI_alloc | PG_buddy | PG_head | PG_tail)).toBe(PGI_alloc);
      expect(f.order[pfn]).toBe(0);
    }
    for (let pfn = base; pfn < start; pfn++) expect(isFree(m, pfn)).toBe(true);
    for (let pfn = end; pfn < base + 1024; pfn++) expect(isFree(m, pfn)).toBe(true);
    expect(freePages(m)).toBe(before - 300);
    expect(isolatedBlocks(m)).toBe(0);
    expect(get_pfnblock_migratetype(m.mm, base)).toBe(MIGRATE_MOVABLE);
    expect(m.invariantViolations()).toEqual([]);
    m.kernel.free_contig_range(start, 300);
    m.kernel.drain_all_pages();
    expect(m.readFile('/proc/buddyinfo')).toBe(boot_buddy);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('takes ranges across pageblocks and max-order blocks, unaligned at both ends', () => {
    const m = boot();
    const base = freeMaxBlock(m);
    const boot_buddy = m.readFile('/proc/buddyinfo');
    // From the second pageblock of one order-10 block into the first of the next two.
    const start = base + 512 + 37;
    const end = base + 2048 + 3;
    expect(m.kernel.alloc_contig_range(start, end, ACR_FLAGS_NONE, GFP_KERNEL)).toBe(0);
    const f = m.mm.frames;
    for (let pfn = start; pfn < end; pfn++) expect(f.flags[pfn] & PGI_alloc).toBe(PGI_alloc);
    // The untouched first pageblock was split off as a free order-9 block.
    expect(f.flags[base] & PG_buddy).toBe(PG_buddy);
    expect(f.order[base]).toBe(9);
    for (let pfn = end; pfn < base + 3072; pfn++) expect(isFree(m, pfn)).toBe(true);
    expect(isolatedBlocks(m)).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
    m.kernel.free_contig_range(start, end - start);
    m.kernel.drain_all_pages();
    expect(m.readFile('/proc/buddyinfo')).toBe(boot_buddy);
  });

  it('with __GFP_COMP makes one compound page of an aligned power-of-two range', () => {
    const m = boot();
    const base = freeMaxBlock(m);
    const f = m.mm.frames;
    expect(m.kernel.alloc_contig_range(base, base + 1024, ACR_FLAGS_NONE, GFP_KERNEL | __GFP_COMP)).toBe(0);
    expect(f.flags[base] & (PGI_alloc | PG_head)).toBe(PGI_alloc | PG_head);
    expect(f.order[base]).toBe(10);
    expect(f.flags[base + 1023] & PG_tail).toBe(PG_tail);
    expect(m.invariantViolations()).toEqual([]);
    // A size other than the folio's is refused with a warning, and nothing is freed.
    m.kernel.free_contig_range(base, 512);
    expect(m.mm.klog.at(-1)).toMatch(/^WARNING: CPU: 0 at mm\/page_alloc.c:7203 free_contig_range/);
    expect(f.flags[base] & PGI_alloc).toBe(PGI_alloc);
    m.kernel.free_contig_range(base, 1024);
    expect(isFree(m, base)).toBe(true);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('empties the range of anonymous, mlocked and page-cache pages, keeping every mapping', () => {
    const m = boot('512M');
    const f = m.mm.frames;
    const { p, a } = anon(m, 64 * MiB);
    p.mlock(a, 4 * MiB);
    // A file: its first 8 MiB written back (clean), the rest dirty; all of it mapped shared.
    const fd = p.open('/data/f', O_CREAT | O_RDWR);
    p.write(fd, 8 * MiB);
    p.fsync(fd);
    p.pwrite(fd, 8 * MiB, 8 * MiB);
    const fm = p.mmap(0, 16 * MiB, PROT_READ, MAP_SHARED, fd, 0);
    p.touch(fm, 16 * MiB);
    const anon_before = mapped(m, p, a, 64 * MiB);
    const file_before = mapped(m, p, fm, 16 * MiB);
    // A range covering the pageblocks of the first anonymous pages, the mlocked ones among them.
    const lo = Math.min(...anon_before.slice(0, 1024));
    const start = lo - (lo % pageblock_nr_pages);
    const end = start + 4 * pageblock_nr_pages;
    const inRange = (pfn: number) => pfn >= start && pfn < end;
    const moved = anon_before.filter(inRange).length;
    expect(moved).toBeGreaterThan(0);
    const migrated = vmstat(m, 'pgmigrate_success');
    expect(m.kernel.alloc_contig_range(start, end, ACR_FLAGS_NONE, GFP_KERNEL)).toBe(0);
    expect(vmstat(m, 'pgmigrate_success') - migrated).toBeGreaterThanOrEqual(moved);
    const anon_after = mapped(m, p, a, 64 * MiB);
    expect(anon_after.some(inRange)).toBe(false);
    expect(anon_after.every((pfn) => pfn >= 0)).toBe(true);
    // Pages that did not live in the range kept their frames.
    for (let i = 0; i < anon_before.length; i++)
      if (!inRange(anon_before[i])) expect(anon_after[i]).toBe(anon_before[i]);
    // The mlocked pages moved still mlocked.
    for (let i = 0; i < 1024; i++) expect(f.flags[anon_after[i]] & PG_mlocked).toBe(PG_mlocked);
    expect(m.invariantViolations()).toEqual([]);
    m.kernel.free_contig_range(start, end - start);

    // The page-cache pages: clean ones are dropped (reclaimed, unmapped), dirty ones migrated.
    const clean = file_before[0];
    const dirty = file_before[3000];
    for (const target of [clean, dirty]) {
      const s = target - (target % pageblock_nr_pages);
      expect(m.kernel.alloc_contig_range(s, s + pageblock_nr_pages, ACR_FLAGS_NONE, GFP_KERNEL)).toBe(0);
      expect(m.invariantViolations()).toEqual([]);
      m.kernel.free_contig_range(s, pageblock_nr_pages);
    }
    const file_after = mapped(m, p, fm, 16 * MiB);
    expect(file_after[0]).toBe(-1); // reclaimed: the next access faults it back in
    expect(file_after[3000]).toBeGreaterThanOrEqual(0);
    expect(file_after[3000]).not.toBe(dirty);
    expect(p.touch(fm, 16 * MiB)).toBeGreaterThan(0);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('alloc_contig_range() errors', () => {
  it('-EBUSY for an unmovable page in the range, or anywhere in a boundary pageblock', () => {
    const m = boot();
    const kpage = m.kernel.alloc_pages(GFP_KERNEL, 0);
    const block = kpage - (kpage % pageblock_nr_pages);
    expect(get_pfnblock_migratetype(m.mm, kpage)).toBe(MIGRATE_UNMOVABLE);
    expect(m.kernel.alloc_contig_range(kpage, kpage + 1, ACR_FLAGS_NONE, GFP_KERNEL)).toBe(EBUSY);
    // A range of free pages that only shares a boundary pageblock with the kernel page: 6.18
    // checks the boundary pageblocks whole.
    const other = kpage < block + 256 ? block + 300 : block + 10;
    expect(isFree(m, other)).toBe(true);
    expect(m.kernel.alloc_contig_range(other, other + 5, ACR_FLAGS_NONE, GFP_KERNEL)).toBe(EBUSY);
    // In a middle pageblock: the pageblocks isolated before it are given back.
    expect(m.kernel.alloc_contig_range(block - 1024, block + 1024, ACR_FLAGS_NONE, GFP_KERNEL)).toBe(EBUSY);
    expect(isolatedBlocks(m)).toBe(0);
    expect(get_pfnblock_migratetype(m.mm, kpage)).toBe(MIGRATE_UNMOVABLE);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('-EBUSY for a pinned page (FOLL_PIN or FOLL_LONGTERM), which never moves; fine once unpinned', () => {
    for (const gup of [FOLL_WRITE, FOLL_WRITE | FOLL_LONGTERM]) {
      const m = boot();
      const { p, a } = anon(m, 8 * MiB);
      const { pfn: target } = movableBlock(m, mapped(m, p, a, 8 * MiB));
      const idx = mapped(m, p, a, 8 * MiB).indexOf(target);
      const [pinned] = p.pin_user_pages(a + idx * PAGE, PAGE, gup);
      expect(pinned).toBe(target);
      const start = pinned - (pinned % pageblock_nr_pages);
      const end = start + pageblock_nr_pages;
      let busy = -1;
      m.mm.trace.test_pages_isolated = (_s, _e, fin) => {
        busy = fin;
      };
      const before = mapped(m, p, a, 8 * MiB);
      expect(m.kernel.alloc_contig_range(start, end, ACR_FLAGS_NONE, GFP_KERNEL)).toBe(EBUSY);
      // The others moved; test_pages_isolated() stopped at the pinned page.
      expect(busy).toBe(pinned);
      const after = mapped(m, p, a, 8 * MiB);
      expect(after[idx]).toBe(pinned);
      expect(after.filter((pfn, i) => pfn !== before[i]).length).toBeGreaterThan(0);
      expect(isolatedBlocks(m)).toBe(0);
      expect(m.invariantViolations()).toEqual([]);
      p.unpin_user_pages([pinned]);
      expect(m.kernel.alloc_contig_range(start, end, ACR_FLAGS_NONE, GFP_KERNEL)).toBe(0);
      expect(pte(m, p, a + idx * PAGE)!.pfn).not.toBe(pinned);
      expect(m.invariantViolations()).toEqual([]);
    }
  });

  it('-EBUSY after 5 tries when a page-cache page is pinned (it is isolated but will not migrate)', () => {
    const m = boot();
    const p = m.spawn();
    const fd = p.open('/data/f', O_CREAT | O_RDWR);
    p.write(fd, 8 * MiB); // dirty: not reclaimed, migrated
    const fm = p.mmap(0, 8 * MiB, RW, MAP_SHARED, fd, 0);
    p.touch(fm, 8 * MiB);
    const pages = mapped(m, p, fm, 8 * MiB);
    const { start, pfn: target } = movableBlock(m, pages);
    const at = fm + pages.indexOf(target) * PAGE;
    const [pinned] = p.pin_user_pages(at, PAGE, FOLL_WRITE);
    expect(pinned).toBe(target);
    const fails = vmstat(m, 'pgmigrate_fail');
    expect(m.kernel.alloc_contig_range(start, start + pageblock_nr_pages, ACR_FLAGS_NONE, GFP_KERNEL)).toBe(
      EBUSY,
    );
    // Five migrate_pages() calls on the same list, each failing the pinned page.
    expect(vmstat(m, 'pgmigrate_fail') - fails).toBe(5);
    expect(pte(m, p, at)!.pfn).toBe(pinned);
    expect(f_lru(m, pinned)).toBe(true);
    // The first batch of 32 moved but for the pinned page; the rest of the range was never
    // scanned: -EBUSY ends __alloc_contig_migrate_range() at once.
    const inRange = (list: number[]) => list.filter((pfn) => pfn >= start && pfn < start + 512).length;
    expect(inRange(pages) - inRange(mapped(m, p, fm, 8 * MiB))).toBe(31);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('-EBUSY when a pageblock is already isolated (and, as in 6.18, the undo clears it)', () => {
    const m = boot();
    const base = freeMaxBlock(m);
    expect(start_isolate_page_range(m.mm, base, base + 1024, PB_ISOLATE_MODE_OTHER)).toBe(0);
    expect(isolatedBlocks(m)).toBe(2);
    expect(get_pfnblock_migratetype(m.mm, base)).toBe(MIGRATE_ISOLATE);
    expect(m.invariantViolations()).toEqual([]);
    expect(m.kernel.alloc_contig_range(base + 600, base + 700, ACR_FLAGS_NONE, GFP_KERNEL)).toBe(EBUSY);
    // alloc_contig_range() undoes the isolation of its whole range on every exit path.
    expect(get_pfnblock_migratetype(m.mm, base + 512)).toBe(MIGRATE_MOVABLE);
    expect(get_pfnblock_migratetype(m.mm, base)).toBe(MIGRATE_ISOLATE);
    undo_isolate_page_range(m.mm, base, base + 1024);
    expect(isolatedBlocks(m)).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('-ENOMEM when migration finds no target page', () => {
    const m = boot('256M');
    const { p, a } = anon(m, 8 * MiB);
    // Take every free page the allocator will give without reclaim.
    const held: Array<[number, number]> = [];
    for (let order = 10; order >= 0; order--) {
      for (;;) {
        const pfn = m.kernel.alloc_pages(__GFP_NOWARN | __GFP_HIGH, order);
        if (pfn < 0) break;
        held.push([pfn, order]);
      }
    }
    m.kernel.drain_all_pages();
    const before = mapped(m, p, a, 8 * MiB);
    const { start } = movableBlock(m, before);
    // No reclaim flags: the migration target allocations fail at once.
    expect(m.kernel.alloc_contig_range(start, start + pageblock_nr_pages, ACR_FLAGS_NONE, __GFP_NOWARN)).toBe(
      ENOMEM,
    );
    expect(mapped(m, p, a, 8 * MiB)).toEqual(before);
    expect(isolatedBlocks(m)).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
    for (const [pfn, order] of held) m.kernel.free_pages(pfn, order);
    expect(m.kernel.alloc_contig_range(start, start + pageblock_nr_pages, ACR_FLAGS_NONE, GFP_KERNEL)).toBe(
      0,
    );
    expect(m.invariantViolations()).toEqual([]);
  });

  it('-EINTR when a fatal signal is pending, before anything moves', () => {
    const m = boot();
    const { p, a } = anon(m, 4 * MiB);
    const before = mapped(m, p, a, 4 * MiB);
    const { start } = movableBlock(m, before);
    const fatal_signal_pending = () => true;
    const r = m.kernel.alloc_contig_range(start, start + 512, ACR_FLAGS_NONE, GFP_KERNEL, {
      fatal_signal_pending,
    });
    expect(r).toBe(EINTR);
    expect(mapped(m, p, a, 4 * MiB)).toEqual(before);
    expect(isolatedBlocks(m)).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
    // A signal that arrives after the first batch stops the migration half-way.
    let asked = 0;
    const later = () => ++asked > 1;
    expect(
      m.kernel.alloc_contig_range(start, start + 512, ACR_FLAGS_NONE, GFP_KERNEL, {
        fatal_signal_pending: later,
      }),
    ).toBe(EINTR);
    expect(vmstat(m, 'pgmigrate_success')).toBeGreaterThan(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('-EINVAL for gfp flags outside reclaim and the allowed action flags; zone and mobility hints are ignored', () => {
    const m = boot();
    const base = freeMaxBlock(m);
    for (const bad of [__GFP_NOFAIL, __GFP_NORETRY, __GFP_HIGH])
      expect(m.kernel.alloc_contig_range(base, base + 8, ACR_FLAGS_NONE, GFP_KERNEL | bad)).toBe(EINVAL);
    expect(isolatedBlocks(m)).toBe(0);
    expect(
      m.kernel.alloc_contig_range(base, base + 8, ACR_FLAGS_NONE, GFP_HIGHUSER_MOVABLE | __GFP_ZERO),
    ).toBe(0);
    m.kernel.free_contig_range(base, 8);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('-EINVAL for a compound request that is not one aligned power-of-two block (the pages stay taken)', () => {
    const m = boot();
    const base = freeMaxBlock(m);
    const free = freePages(m);
    expect(m.kernel.alloc_contig_range(base + 3, base + 6, ACR_FLAGS_NONE, GFP_KERNEL | __GFP_COMP)).toBe(
      EINVAL,
    );
    expect(m.mm.klog.slice(-2)).toEqual([
      `PFN range: requested [${base + 3}, ${base + 6}), allocated [${base}, ${base + 512})`,
      'WARNING: CPU: 0 at mm/page_alloc.c:7082 alloc_contig_range_noprof',
    ]);
    // 6.18 leaves the pages it took off the free lists isolated: they are lost.
    expect(freePages(m)).toBe(free - 512);
    expect(isolatedBlocks(m)).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('rejects ranges outside one zone at the API', () => {
    const m = boot();
    const dma32 = m.mm.zones[ZONE_DMA32];
    expect(() =>
      m.kernel.alloc_contig_range(dma32.zone_start_pfn - 1, dma32.zone_start_pfn + 1, 0, GFP_KERNEL),
    ).toThrow(RangeError);
    expect(() => m.kernel.alloc_contig_range(100, 100, 0, GFP_KERNEL)).toThrow(RangeError);
    expect(() => m.kernel.alloc_contig_range(100, 200, 3, GFP_KERNEL)).toThrow(RangeError);
  });
});

function f_lru(m: Machine, pfn: number): boolean {
  return (m.mm.frames.flags[pfn] & PG_lru) !== 0;
}

describe('page isolation', () => {
  it('isolates free pages onto the ISOLATE lists, out of NR_FREE_PAGES, and undo restores the types', () => {
    const m = boot();
    const base = freeMaxBlock(m);
    const free = freePages(m);
    const buddy = m.readFile('/proc/buddyinfo');
    // Isolating the second half of a free order-10 block splits it.
    expect(start_isolate_page_range(m.mm, base + 600, base + 700, PB_ISOLATE_MODE_OTHER)).toBe(0);
    expect(get_pfnblock_migratetype(m.mm, base + 512)).toBe(MIGRATE_ISOLATE);
    expect(get_pageblock_migratetype_raw(m.mm, base + 512)).toBe(MIGRATE_MOVABLE);
    expect(get_pfnblock_migratetype(m.mm, base)).toBe(MIGRATE_MOVABLE);
    expect(freePages(m)).toBe(free - 512);
    expect(test_pages_isolated(m.mm, base + 512, base + 700, PB_ISOLATE_MODE_OTHER)).toBe(0);
    // The walk starts at start_pfn: inside a free block it sees no buddy head (hence find_large_buddy()).
    expect(test_pages_isolated(m.mm, base + 600, base + 700, PB_ISOLATE_MODE_OTHER)).toBe(EBUSY);
    // Not isolated: the first pageblock.
    expect(test_pages_isolated(m.mm, base, base + 700, PB_ISOLATE_MODE_OTHER)).toBe(EBUSY);
    expect(m.invariantViolations()).toEqual([]);
    // Nothing is allocated from an isolated block.
    const got: number[] = [];
    for (let i = 0; i < 2000; i++) got.push(m.kernel.alloc_pages(GFP_HIGHUSER_MOVABLE, 0));
    expect(got.some((pfn) => pfn >= base + 512 && pfn < base + 1024)).toBe(false);
    for (const pfn of got) m.kernel.free_pages(pfn, 0);
    undo_isolate_page_range(m.mm, base + 600, base + 700);
    m.kernel.drain_all_pages();
    expect(freePages(m)).toBe(free);
    // The halves merged again (unset_migratetype_isolate re-frees a pageblock-sized buddy).
    expect(m.readFile('/proc/buddyinfo')).toBe(buddy);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('find_large_buddy() finds the free block straddling a pfn', () => {
    const m = boot();
    const base = freeMaxBlock(m);
    expect(find_large_buddy(m.mm, base + 700)).toBe(base);
    expect(find_large_buddy(m.mm, base)).toBe(base);
    const k = m.kernel.alloc_pages(GFP_KERNEL, 0);
    expect(find_large_buddy(m.mm, k)).toBe(k);
  });

  it('has_unmovable_pages(): CMA blocks only for CMA, ZONE_MOVABLE trusts all but reserved pages', () => {
    const m = boot('1G', { movablecore: '256M' });
    const base = freeMaxBlock(m);
    set_pageblock_migratetype(m.mm, base, MIGRATE_CMA);
    expect(has_unmovable_pages(m.mm, base, base + 512, PB_ISOLATE_MODE_OTHER)).toBe(base);
    expect(has_unmovable_pages(m.mm, base, base + 512, PB_ISOLATE_MODE_CMA_ALLOC)).toBe(-1);
    set_pageblock_migratetype(m.mm, base, MIGRATE_MOVABLE);
    const k = m.kernel.alloc_pages(GFP_KERNEL, 0);
    const kb = k - (k % pageblock_nr_pages);
    expect(has_unmovable_pages(m.mm, kb, kb + 512, PB_ISOLATE_MODE_OTHER)).toBe(k);
    const movable = m.mm.zones.find((z) => z.zone_idx === ZONE_MOVABLE && z.present_pages)!;
    const mp = m.kernel.alloc_pages(GFP_HIGHUSER_MOVABLE | 2 /* __GFP_HIGHMEM */, 0);
    expect(m.mm.page_zone(mp)).toBe(movable);
    // An allocated page off the LRU: unmovable in Normal or DMA32, movable in ZONE_MOVABLE.
    expect(has_unmovable_pages(m.mm, mp, mp + 1, PB_ISOLATE_MODE_OTHER)).toBe(-1);
    expect(has_unmovable_pages(m.mm, k, k + 1, PB_ISOLATE_MODE_OTHER)).toBe(k);
  });

  it('the invariant checker notices a wrong nr_isolate_pageblock', () => {
    const m = boot();
    m.mm.zones[ZONE_DMA32].nr_isolate_pageblock++;
    expect(m.invariantViolations().join()).toMatch(/nr_isolate_pageblock 1 but 0 isolated pageblocks/);
  });
});

describe('alloc_contig_pages()', () => {
  it('finds 1 GiB, aligned to 1 GiB, on a fresh machine; free_contig_range gives it back', () => {
    const m = boot('3G');
    const buddy = m.readFile('/proc/buddyinfo');
    const nr = (1 << 30) / PAGE;
    const pfn = m.kernel.alloc_contig_pages(nr, GFP_KERNEL);
    expect(pfn).toBeGreaterThan(0);
    expect(pfn % nr).toBe(0);
    expect(vmstat(m, 'compact_isolated')).toBe(nr);
    expect(m.invariantViolations()).toEqual([]);
    m.kernel.free_contig_range(pfn, nr);
    m.kernel.drain_all_pages();
    expect(m.readFile('/proc/buddyinfo')).toBe(buddy);
    // As one compound (gigantic) page.
    const huge = m.kernel.alloc_contig_pages(nr, GFP_KERNEL | __GFP_COMP);
    expect(huge).toBe(pfn);
    expect(m.mm.frames.order[huge]).toBe(18);
    expect(m.invariantViolations()).toEqual([]);
    m.kernel.free_contig_range(huge, nr);
    m.kernel.drain_all_pages();
    expect(m.readFile('/proc/buddyinfo')).toBe(buddy);
  });

  it('finds none on a machine with a slab page in every 1 GiB range', () => {
    const m = boot('3G');
    const nr = (1 << 30) / PAGE;
    // Hold all free memory, then for each candidate range free one pageblock in it and allocate
    // kmalloc objects until one lands there.
    const held: Array<[number, number]> = [];
    for (let order = 10; order >= 0; order--) {
      for (;;) {
        const pfn = m.kernel.alloc_pages(GFP_HIGHUSER_MOVABLE | __GFP_NOWARN, order);
        if (pfn < 0) break;
        held.push([pfn, order]);
      }
    }
    const objs: number[] = [];
    const dma32 = m.mm.zones[ZONE_DMA32];
    for (let c = nr; c + nr <= dma32.zone_end_pfn; c += nr) {
      const i = held.findIndex(([pfn, order]) => order === 10 && pfn >= c + nr / 2 && pfn < c + nr);
      expect(i).toBeGreaterThanOrEqual(0);
      const [pfn] = held.splice(i, 1)[0];
      m.kernel.free_pages(pfn, 10);
      m.kernel.drain_all_pages();
      for (let n = 0; ; n++) {
        expect(n).toBeLessThan(10000);
        const obj = m.kernel.kmalloc(512, GFP_KERNEL);
        objs.push(obj);
        const page = Math.floor(obj / PAGE);
        if (page >= pfn && page < pfn + 1024) break;
      }
    }
    for (const [pfn, order] of held) m.kernel.free_pages(pfn, order);
    m.kernel.drain_all_pages();
    expect(m.kernel.alloc_contig_pages(nr, GFP_KERNEL)).toBe(-1);
    expect(isolatedBlocks(m)).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
    // Half a gigabyte still fits between them.
    const half = m.kernel.alloc_contig_pages(nr / 4, GFP_KERNEL);
    expect(half).toBeGreaterThan(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('steps over ranges with reserved pages and honours __GFP_THISNODE and the zone limit', () => {
    const m = boot('512M');
    // DMA holds reserved low memory: no range of 1024 there; DMA32 has them.
    const pfn = m.kernel.alloc_contig_pages(1024, GFP_KERNEL);
    expect(m.mm.page_zone(pfn)!.zone_idx).toBe(ZONE_DMA32);
    expect(pfn % 1024).toBe(0);
    // A size that is not a power of two is aligned to nothing in particular.
    const odd = m.kernel.alloc_contig_pages(1000, GFP_KERNEL);
    expect(odd).toBeGreaterThan(0);
    expect(m.invariantViolations()).toEqual([]);
    m.kernel.free_contig_range(pfn, 1024);
    m.kernel.free_contig_range(odd, 1000);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('ACR_FLAGS_CMA', () => {
  it('isolates CMA pageblocks only for CMA', () => {
    const m = boot();
    const base = freeMaxBlock(m);
    expect(start_isolate_page_range(m.mm, base, base + 512, PB_ISOLATE_MODE_CMA_ALLOC)).toBe(0);
    undo_isolate_page_range(m.mm, base, base + 512);
    expect(m.kernel.alloc_contig_range(base, base + 512, ACR_FLAGS_CMA, GFP_KERNEL)).toBe(0);
    m.kernel.free_contig_range(base, 512);
    expect(m.invariantViolations()).toEqual([]);
  });
});
