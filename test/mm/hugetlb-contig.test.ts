/**
 * alloc_contig_range() and cma_alloc() over hugetlb pool pages (6.18): a free pool page is
 * dissolved and replaced, an in-use 2 MiB page is migrated (its PMD follows it), a 1 GiB page
 * stops the range at once (-ENOMEM, isolate_or_dissolve_huge_folio()).
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { GFP_KERNEL } from '../../src/mm/gfp.ts';
import { try_grab_folio } from '../../src/mm/gup.ts';
import type { Hstate } from '../../src/mm/hstate.ts';
import { PG_hugetlb } from '../../src/mm/page-flags.ts';
import { Machine } from '../../src/sim/machine.ts';
import { PTRS_PER_TABLE, pgd_index, pmd_index, pud_index } from '../../src/vm/pgtable.ts';
import type { Process } from '../../src/vm/process.ts';
import {
  MAP_ANONYMOUS,
  MAP_HUGE_1GB,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { MiB, NO_EARLY, vmstat } from '../vm/helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const HPAGE = 512;

function h2m(m: Machine): Hstate {
  return m.mm.hugetlb.hstates.find((h) => h.order === 9)!;
}

/** Head pfns of the hstate's pages: [free, in use]. */
function pool_pages(m: Machine, h: Hstate): [number[], number[]] {
  const f = m.mm.frames;
  const free = h.hugepage_freelists.flat();
  const used: number[] = [];
  for (let pfn = 0; pfn < f.nr_frames; pfn++) {
    if (!(f.flags[pfn] & PG_hugetlb)) continue;
    if (f.order[pfn] === h.order && !free.includes(pfn)) used.push(pfn);
    pfn += 2 ** f.order[pfn] - 1;
  }
  return [free.sort((a, b) => a - b), used];
}

/** The pfn a 2 MiB leaf (PMD with _PAGE_PSE) of `p` maps at `addr`, or -1. */
function pmd_leaf(m: Machine, p: Process, addr: number): number {
  const pt = m.vm.pt;
  const vpn = addr / 4096;
  let t = pt.child(p.mm.pgd, pgd_index(vpn));
  if (t < 0) return -1;
  t = pt.child(t, pud_index(vpn));
  if (t < 0) return -1;
  const e = t * PTRS_PER_TABLE + pmd_index(vpn);
  return pt.bits[e] === 0 ? -1 : pt.pfn[e];
}

function boot(nr = 4): Machine {
  const m = Machine.boot({ memory: '1G', early: NO_EARLY });
  m.writeFile('/proc/sys/vm/nr_hugepages', String(nr));
  return m;
}

describe('alloc_contig_range over hugetlb pages', () => {
  it('dissolves a free pool page and replaces it elsewhere: the pool keeps its size', () => {
    const m = boot();
    const h = h2m(m);
    const [free] = pool_pages(m, h);
    const victim = free[0];
    const ok0 = vmstat(m, 'htlb_buddy_alloc_success');
    expect(m.kernel.alloc_contig_range(victim + 100, victim + 300, 0, GFP_KERNEL)).toBe(0);
    expect(h.nr_huge_pages).toBe(4);
    expect(h.free_huge_pages).toBe(4);
    expect(pool_pages(m, h)[0]).not.toContain(victim);
    // The replacement came from the buddy allocator (alloc_fresh_hugetlb_folio()).
    expect(vmstat(m, 'htlb_buddy_alloc_success')).toBe(ok0 + 1);
    m.checkInvariants();
    m.kernel.free_contig_range(victim + 100, 200);
    m.checkInvariants();
  });

  it('migrates an in-use 2 MiB page: its PMD maps the new page, the old range is taken', () => {
    const m = boot(2);
    const h = h2m(m);
    const p = m.spawn();
    const a = p.mmap(0, 2 * MiB, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
    p.touch(a, 4096, { write: true });
    const old = pmd_leaf(m, p, a);
    expect(pool_pages(m, h)[1]).toEqual([old]);
    const ok0 = vmstat(m, 'pgmigrate_success');
    expect(m.kernel.alloc_contig_range(old, old + HPAGE, 0, GFP_KERNEL)).toBe(0);
    const now = pmd_leaf(m, p, a);
    expect(now).not.toBe(old);
    expect(now).toBeGreaterThanOrEqual(0);
    expect(m.mm.frames.mapcount[now]).toBe(1);
    expect(pool_pages(m, h)[1]).toEqual([now]);
    // The target was the other free pool page; the source went back to the pool inside the
    // range and replace_free_hugepage_folios() replaced it: still 2 pages, 1 free.
    expect([h.nr_huge_pages, h.free_huge_pages, h.surplus_huge_pages]).toEqual([2, 1, 0]);
    expect(vmstat(m, 'pgmigrate_success')).toBe(ok0 + HPAGE);
    expect(vmstat(m, 'nr_hugetlb')).toBe(HPAGE);
    m.checkInvariants();
    // Unmapping returns the new page to the pool.
    p.munmap(a, 2 * MiB);
    expect([h.nr_huge_pages, h.free_huge_pages]).toEqual([2, 2]);
    m.kernel.free_contig_range(old, HPAGE);
    m.checkInvariants();
  });

  it('a temporary target when the pool has no free page; it leaves the pool with the source', () => {
    const m = boot(1);
    const h = h2m(m);
    const p = m.spawn();
    const a = p.mmap(0, 2 * MiB, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB);
    p.touch(a, 4096, { write: true });
    const q = p.fork();
    const old = pmd_leaf(m, p, a);
    expect(pmd_leaf(m, q, a)).toBe(old);
    expect(m.kernel.alloc_contig_range(old, old + HPAGE, 0, GFP_KERNEL)).toBe(0);
    const now = pmd_leaf(m, p, a);
    expect(now).not.toBe(old);
    expect(pmd_leaf(m, q, a)).toBe(now); // both mappings of the shared page moved
    expect(m.mm.frames.mapcount[now]).toBe(2);
    expect([h.nr_huge_pages, h.free_huge_pages, h.surplus_huge_pages]).toEqual([1, 0, 0]);
    expect(m.mm.hugetlb.temporary.size).toBe(0);
    m.checkInvariants();
    q.exit();
    p.exit();
    expect([h.nr_huge_pages, h.free_huge_pages]).toEqual([1, 1]);
    m.checkInvariants();
  });

  it('a pinned hugetlb page makes the range -EBUSY and stays where it is', () => {
    const m = boot(2);
    const p = m.spawn();
    const a = p.mmap(0, 2 * MiB, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
    p.touch(a, 4096, { write: true });
    const old = pmd_leaf(m, p, a);
    try_grab_folio(m.mm, old);
    expect(m.kernel.alloc_contig_range(old, old + HPAGE, 0, GFP_KERNEL)).toBe(-16);
    expect(pmd_leaf(m, p, a)).toBe(old);
    expect(m.mm.hugetlb.isolated.size).toBe(0);
    m.mm.pincount![old]--; // (unpin_folio() would take the unmapped-looking head for an orphan)
    m.checkInvariants();
  });

  it('a 1 GiB page, free or in use, stops the range at once with -ENOMEM', () => {
    const m = Machine.boot({ memory: '8G', early: NO_EARLY, hugetlb: 'hugepagesz=1G hugepages=2' });
    const g = m.mm.hugetlb.hstates.find((h) => h.order === 18)!;
    const [free] = pool_pages(m, g);
    expect(free.length).toBe(2);
    expect(m.kernel.alloc_contig_range(free[0] + 1024, free[0] + 2048, 0, GFP_KERNEL)).toBe(-12);
    expect([g.nr_huge_pages, g.free_huge_pages]).toEqual([2, 2]);
    const p = m.spawn();
    const a = p.mmap(0, 1024 * MiB, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_1GB);
    p.touch(a, 4096, { write: true });
    const [, used] = pool_pages(m, g);
    expect(m.kernel.alloc_contig_range(used[0], used[0] + 512, 0, GFP_KERNEL)).toBe(-12);
    expect(pool_pages(m, g)[1]).toEqual(used);
    m.checkInvariants();
  });

  it('alloc_contig_pages() never picks a range holding hugetlb pages', () => {
    const m = boot(400);
    const h = h2m(m);
    const before = h.nr_huge_pages;
    const pfn = m.kernel.alloc_contig_pages(HPAGE, GFP_KERNEL);
    if (pfn >= 0) {
      for (let i = 0; i < HPAGE; i++) expect(m.mm.frames.flags[pfn + i] & PG_hugetlb).toBe(0);
      m.kernel.free_contig_range(pfn, HPAGE);
    }
    expect(h.nr_huge_pages).toBe(before);
    m.checkInvariants();
  });
});

describe('cma_alloc over hugetlb pages', () => {
  it('takes back a CMA area that pool pages borrowed: free ones dissolved, in-use ones migrated', () => {
    const m = Machine.boot({ memory: '1G', cpus: 2, early: NO_EARLY, seed: 5, cma: '128M' });
    const area = m.kernel.cma_areas()[0];
    const base = area.ranges[0].base_pfn;
    const end = base + area.count;
    // A pool that fills most of memory: 2 MiB pages are movable and borrow the CMA area.
    m.writeFile('/proc/sys/vm/nr_hugepages', '450');
    const h = h2m(m);
    const p = m.spawn();
    const a = p.mmap(0, 8 * MiB, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
    p.touch(a, 8 * MiB, { write: true });
    const inCma = (pfn: number): boolean => pfn >= base && pfn < end;
    const [free, used] = pool_pages(m, h);
    expect(free.some(inCma) || used.some(inCma)).toBe(true);
    m.writeFile('/proc/sys/vm/nr_hugepages', '380');
    const total = h.nr_huge_pages;
    const got = m.kernel.cma_alloc(area.name, area.count, 9);
    expect(got).toBe(base);
    expect(h.nr_huge_pages).toBe(total);
    const [free2, used2] = pool_pages(m, h);
    expect(free2.some(inCma) || used2.some(inCma)).toBe(false);
    for (let i = 0; i < 4; i++) expect(inCma(pmd_leaf(m, p, a + i * 2 * MiB))).toBe(false);
    m.checkInvariants();
    m.kernel.cma_release(area.name, got, area.count);
    m.checkInvariants();
  });
});

describe('property: alloc_contig_range with hugetlb mappings', () => {
  test.prop(
    [
      fc.array(
        fc.oneof(
          fc.record({ op: fc.constant('map' as const), shared: fc.boolean() }),
          fc.record({ op: fc.constant('unmap' as const), i: fc.nat(7) }),
          fc.record({
            op: fc.constant('contig' as const),
            i: fc.nat(15),
            len: fc.integer({ min: 1, max: 1024 }),
          }),
          fc.record({ op: fc.constant('resize' as const), n: fc.nat(12) }),
        ),
        { maxLength: 14 },
      ),
    ],
    { numRuns: 12 },
  )('pools, page tables and buddy lists stay consistent', (ops) => {
    const m = boot(6);
    const h = h2m(m);
    const p = m.spawn();
    const maps: number[] = [];
    const held: Array<[number, number]> = [];
    for (const o of ops) {
      if (o.op === 'map') {
        try {
          const a = p.mmap(
            0,
            2 * MiB,
            RW,
            (o.shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_HUGETLB,
          );
          p.touch(a, 4096, { write: true });
          maps.push(a);
        } catch {
          // ENOMEM: the pool is used up.
        }
      } else if (o.op === 'unmap' && maps.length) {
        const a = maps.splice(o.i % maps.length, 1)[0];
        p.munmap(a, 2 * MiB);
      } else if (o.op === 'contig') {
        const [free, used] = pool_pages(m, h);
        const all = [...free, ...used];
        if (!all.length) continue;
        const start = all[o.i % all.length] + (o.i % 3) * 100;
        const zone = m.mm.page_zone(start)!;
        const end = Math.min(start + o.len, zone.zone_start_pfn + zone.spanned_pages);
        if (m.mm.page_zone(end - 1) !== zone) continue;
        if (m.kernel.alloc_contig_range(start, end, 0, GFP_KERNEL) === 0) held.push([start, end - start]);
        for (const a of maps) expect(pmd_leaf(m, p, a)).toBeGreaterThanOrEqual(0);
      } else if (o.op === 'resize') {
        m.writeFile('/proc/sys/vm/nr_hugepages', String(o.n));
      }
      m.checkInvariants();
    }
    for (const [pfn, n] of held) m.kernel.free_contig_range(pfn, n);
    m.checkInvariants();
  });
});
