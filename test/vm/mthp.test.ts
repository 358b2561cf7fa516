/**
 * Anonymous mTHP (orders 2..8): alloc_anon_folio()'s per-size orders, fallback, deferred split of
 * partially mapped folios, migration by compaction and alloc_contig_range, fork + COW.
 */
import { describe, expect, it } from 'vitest';
import { __GFP_MOVABLE, GFP_KERNEL } from '../../src/mm/gfp.ts';
import { thp } from '../../src/mm/huge_memory.ts';
import { PG_head, PG_tail } from '../../src/mm/page-flags.ts';
import type { Machine } from '../../src/sim/machine.ts';
import type { Process } from '../../src/vm/process.ts';
import {
  MADV_DONTNEED,
  MADV_HUGEPAGE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { alignedMapping, bootThp, delta, MiB, meminfo, PG, pte } from './helpers.ts';

const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const RW = PROT_READ | PROT_WRITE;
const DIR = '/sys/kernel/mm/transparent_hugepage';

const boot = (mode: 'always' | 'madvise' | 'never' = 'never', memory = '256M') => bootThp(mode, memory);

const aligned = (p: Process, len: number): number => alignedMapping(p, len, MiB);

function setSize(m: Machine, kB: number, mode: string): void {
  m.writeFile(`${DIR}/hugepages-${kB}kB/enabled`, mode);
}

function stat(m: Machine, kB: number, name: string): number {
  return Number(m.readFile(`${DIR}/hugepages-${kB}kB/stats/${name}`));
}

/** The order of the folio mapped at `addr` (its head's order; 0 for an order-0 page). */
function folioAt(m: Machine, p: Process, addr: number): { head: number; order: number } {
  const e = pte(m, p, addr)!;
  const f = m.mm.frames;
  let head = e.pfn;
  if (f.flags[head] & PG_tail) while (!(f.flags[head] & PG_head)) head--;
  return { head, order: f.flags[head] & PG_head ? f.order[head] : 0 };
}

/** Every 64 KiB of [a, a + len) is one order-4 folio: contiguous, aligned pfns in order. */
function expectOrder4(m: Machine, p: Process, a: number, len: number): void {
  for (let x = a; x < a + len; x += 16 * PG) {
    const first = pte(m, p, x)!.pfn;
    expect(first % 16).toBe(0);
    expect(m.mm.frames.order[first]).toBe(4);
    expect(m.mm.frames.flags[first] & PG_head).toBe(PG_head);
    for (let i = 1; i < 16; i++) expect(pte(m, p, x + i * PG)!.pfn).toBe(first + i);
  }
}

describe('mTHP fault (alloc_anon_folio)', () => {
  it('hugepages-64kB=always: a write fault in a fresh 1 MiB maps order-4 folios', () => {
    const { m, p } = boot('never');
    setSize(m, 64, 'always');
    const a = aligned(p, MiB);
    const d = delta(m, ['pgfault', 'thp_fault_alloc', 'nr_anon_pages'], () =>
      p.touch(a, MiB, { write: true }),
    );
    // One fault per 64 KiB: set_ptes() maps all 16 PTEs at once.
    expect(d).toEqual({ pgfault: 16, thp_fault_alloc: 0, nr_anon_pages: 256 });
    expectOrder4(m, p, a, MiB);
    expect(stat(m, 64, 'anon_fault_alloc')).toBe(16);
    expect(stat(m, 64, 'anon_fault_fallback')).toBe(0);
    expect(stat(m, 64, 'nr_anon')).toBe(16);
    expect(stat(m, 2048, 'anon_fault_alloc')).toBe(0);
    // AnonHugePages counts PMD-mapped THPs only.
    expect(meminfo(m, 'AnonHugePages')).toBe(0);
    expect(m.readFile(`/proc/${p.pid}/status`)).toMatch(/RssAnon:\s+1024 kB/);
    m.checkInvariants();
    p.munmap(a, MiB);
    expect(stat(m, 64, 'nr_anon')).toBe(0);
    m.checkInvariants();
  });

  it('inherit follows the top-level mode; madvise needs MADV_HUGEPAGE', () => {
    const order = (top: 'always' | 'madvise' | 'never', size: string, madv: boolean): number => {
      const { m, p } = boot(top);
      setSize(m, 64, size);
      const a = aligned(p, MiB);
      if (madv) p.madvise(a, MiB, MADV_HUGEPAGE);
      p.touch(a, PG, { write: true });
      m.checkInvariants();
      return folioAt(m, p, a).order;
    };
    expect(order('always', 'inherit', false)).toBe(4);
    expect(order('madvise', 'inherit', false)).toBe(0);
    expect(order('madvise', 'inherit', true)).toBe(4);
    expect(order('never', 'inherit', true)).toBe(0);
    expect(order('never', 'madvise', false)).toBe(0);
    expect(order('never', 'madvise', true)).toBe(4);
    expect(order('never', 'never', true)).toBe(0);
    expect(order('always', 'never', false)).toBe(0);
  });

  it('read faults map the zero page; the highest order whose range is all none wins', () => {
    const { m, p } = boot('never');
    const a = aligned(p, MiB);
    p.touch(a + 3 * PG, PG, { write: true }); // every size is never: order 0
    for (const kB of [64, 32, 16]) setSize(m, kB, 'always');
    p.touch(a + 8 * PG, PG, { write: true }); // 64K range holds a PTE; 32K [8, 16) is none
    expect(folioAt(m, p, a + 8 * PG).order).toBe(3);
    p.touch(a + 4 * PG, PG, { write: true }); // 16K [4, 8) is none
    expect(folioAt(m, p, a + 4 * PG).order).toBe(2);
    p.touch(a, PG, { write: true }); // 16K [0, 4) holds page 3: order 0
    expect(folioAt(m, p, a).order).toBe(0);
    // A read maps the zero page; the write after it copies one page (the PTE is not none).
    p.touch(a + 16 * PG, PG);
    p.touch(a + 16 * PG, PG, { write: true });
    expect(folioAt(m, p, a + 16 * PG).order).toBe(0);
    expect(stat(m, 32, 'anon_fault_alloc')).toBe(1);
    expect(stat(m, 16, 'anon_fault_alloc')).toBe(1);
    expect(stat(m, 64, 'anon_fault_fallback')).toBe(0);
    m.checkInvariants();
    // Where a THP could go, a read maps the huge zero page: every PTE of the 2 MiB is the zero
    // page once it is split, so later writes get order 0 (6.18: pte_range_none() fails).
    m.writeFile(`${DIR}/hugepages-2048kB/enabled`, 'always');
    const z = p.mmap(0, 4 * MiB, RW, ANON);
    const zb = Math.ceil(z / (2 * MiB)) * 2 * MiB;
    p.touch(zb + PG, PG);
    expect(pte(m, p, zb + 100 * PG)!.pfn).toBe(m.mm.zero_pfn);
    p.touch(zb + 64 * PG, PG, { write: true });
    expect(folioAt(m, p, zb + 64 * PG).order).toBe(0);
    m.writeFile(`${DIR}/hugepages-2048kB/enabled`, 'inherit');
    m.checkInvariants();
    // A VMA smaller than 64 KiB gets no 64 KiB folio.
    const b = aligned(p, 32 * PG);
    p.munmap(b + 8 * PG, 24 * PG);
    p.touch(b, PG, { write: true });
    expect(folioAt(m, p, b).order).toBe(3);
    m.checkInvariants();
  });

  it('on a fragmented machine the fault falls back order by order (anon_fault_fallback)', () => {
    const { m, p } = boot('never');
    // Fill memory with 4 KiB pages, then free every other one: no free block of order >= 1.
    const len = Math.floor((meminfo(m, 'MemFree') * 1024 - 8 * MiB) / MiB) * MiB;
    const a = aligned(p, len);
    p.touch(a, len, { write: true });
    for (let off = 0; off < len; off += 2 * PG) p.madvise(a + off, PG, MADV_DONTNEED);
    while (m.kernel.alloc_pages(__GFP_MOVABLE, 2) >= 0);
    setSize(m, 64, 'always');
    setSize(m, 32, 'always');
    const b = aligned(p, MiB);
    p.touch(b, PG, { write: true });
    expect(folioAt(m, p, b).order).toBe(0);
    expect(stat(m, 64, 'anon_fault_fallback')).toBe(1);
    expect(stat(m, 32, 'anon_fault_fallback')).toBe(1);
    expect(stat(m, 64, 'anon_fault_alloc')).toBe(0);
    m.checkInvariants();
  });
});

describe('mTHP split, migration, fork', () => {
  it('partial munmap deferred-splits; the shrinker frees the unmapped pages', () => {
    const { m, p } = boot('never');
    setSize(m, 64, 'always');
    const a = aligned(p, MiB);
    p.touch(a, MiB, { write: true });
    const { head } = folioAt(m, p, a);
    const d = delta(m, ['thp_deferred_split_page', 'thp_split_page', 'nr_anon_pages'], () => {
      p.munmap(a + 4 * PG, 4 * PG);
      p.madvise(a + 20 * PG, 2 * PG, MADV_DONTNEED);
    });
    expect(d).toEqual({ thp_deferred_split_page: 0, thp_split_page: 0, nr_anon_pages: -6 });
    expect(stat(m, 64, 'split_deferred')).toBe(2);
    expect(stat(m, 64, 'nr_anon_partially_mapped')).toBe(2);
    expect(m.mm.frames.order[head]).toBe(4);
    m.checkInvariants();
    m.writeFile('/proc/sys/vm/drop_caches', '2');
    expect(stat(m, 64, 'split')).toBe(2);
    expect(stat(m, 64, 'nr_anon_partially_mapped')).toBe(0);
    expect(stat(m, 64, 'nr_anon')).toBe(14);
    expect(m.mm.frames.order[head]).toBe(0);
    // The unmapped pages went back to the page allocator.
    for (let i = 4; i < 8; i++) expect(m.mm.frames.mapping[head + i]).toBe(0);
    expect(pte(m, p, a + 3 * PG)!.pfn).toBe(head + 3);
    m.checkInvariants();
  });

  it('alloc_contig_range migrates an mTHP whole to a new order-4 folio', () => {
    const { m, p } = boot('never');
    setSize(m, 64, 'always');
    // 4 MiB: the folio at 3 MiB sits in a pageblock of mTHPs only (no page tables beside it).
    const a = aligned(p, 4 * MiB);
    p.touch(a, 4 * MiB, { write: true });
    const { head } = folioAt(m, p, a + 3 * MiB);
    const d = delta(m, ['pgmigrate_success', 'thp_migration_success'], () => {
      expect(m.kernel.alloc_contig_range(head, head + 16, 0, GFP_KERNEL)).toBe(0);
    });
    expect(d).toEqual({ pgmigrate_success: 16, thp_migration_success: 0 });
    const moved = folioAt(m, p, a + 3 * MiB);
    expect(moved.head).not.toBe(head);
    expect(moved.order).toBe(4);
    expectOrder4(m, p, a, 4 * MiB);
    m.checkInvariants();
    m.kernel.free_contig_range(head, 16);
    m.checkInvariants();
  });

  it('compaction migrates mTHPs whole to order-4 targets, or splits those it finds none for', () => {
    const { m, p } = boot('never', '128M');
    setSize(m, 64, 'always');
    // Interleave order-4 folios with 4 KiB pages that are freed afterwards: holes to compact.
    const a = aligned(p, 16 * MiB);
    const b = aligned(p, 16 * MiB);
    for (let off = 0; off < 16 * MiB; off += 64 * 1024) {
      p.touch(a + off, PG, { write: true });
      setSize(m, 64, 'never');
      p.touch(b + off, 16 * PG, { write: true });
      setSize(m, 64, 'always');
    }
    p.munmap(b, 16 * MiB);
    expectOrder4(m, p, a, 16 * MiB);
    const before = new Map<number, number>();
    for (let x = a; x < a + 16 * MiB; x += 16 * PG) before.set(x, pte(m, p, x)!.pfn);
    const d = delta(m, ['pgmigrate_success', 'thp_migration_success'], () =>
      m.writeFile('/proc/sys/vm/compact_memory', '1'),
    );
    expect(d.pgmigrate_success).toBeGreaterThan(0);
    expect(d.thp_migration_success).toBe(0); // PMD-sized folios only
    let moved = 0;
    for (const [x, old] of before) {
      const { head, order } = folioAt(m, p, x);
      if (order === 4) {
        // Moved or not, a folio is still 16 contiguous, aligned pages.
        expectOrder4(m, p, x, 16 * PG);
        if (head !== old) moved++;
      } else expect(order).toBe(0);
    }
    expect(moved).toBeGreaterThan(0);
    // Every folio is still large or was split (try_split_folio() without an order-4 target).
    expect(stat(m, 64, 'nr_anon') + stat(m, 64, 'split')).toBe(256);
    m.checkInvariants();
  });

  it('fork shares the PTEs; a write copies one page and the folio stays large', () => {
    const { m, p } = boot('never');
    setSize(m, 64, 'always');
    const a = aligned(p, MiB);
    p.touch(a, MiB, { write: true });
    const { head } = folioAt(m, p, a);
    const c = p.fork();
    c.touch(a + PG, PG, { write: true });
    expect(pte(m, c, a + PG)!.pfn).not.toBe(head + 1);
    expect(m.mm.frames.order[head]).toBe(4);
    expect(m.mm.frames.mapcount[head + 1]).toBe(1);
    expect(m.mm.frames.mapcount[head]).toBe(2);
    m.checkInvariants();
    c.exit();
    // mlock splits the folios it covers (docs/decisions.md).
    p.mlock(a, 16 * PG);
    expect(m.mm.frames.order[head]).toBe(0);
    expect(thp(m.mm).nr_anon[4]).toBe(15);
    m.checkInvariants();
    p.exit();
    m.checkInvariants();
  });
});
