/** THP migration: alloc_contig_range moves THPs whole, or splits them when no order-9 target exists. */
import { describe, expect, it } from 'vitest';
import { GFP_HIGHUSER_MOVABLE, GFP_KERNEL } from '../../src/mm/gfp.ts';
import { folio_isolate_lru, MIGRATE_SYNC, migrate_pages } from '../../src/mm/migrate.ts';
import { __alloc_pages, __free_pages } from '../../src/mm/page_alloc/alloc_pages.ts';
import { Machine } from '../../src/sim/machine.ts';
import { huge_pmd_entry } from '../../src/vm/huge_memory.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/vm/uapi.ts';
import { delta, MiB, PG, vmstat } from '../vm/helpers.ts';

function boot(): { m: Machine; p: ReturnType<Machine['spawn']> } {
  const m = Machine.boot({
    memory: '256M',
    cpus: 2,
    thp: 'always',
    early: { unmovable: 0, reclaimable: 0, transient_fraction: 0 },
  });
  return { m, p: m.spawn() };
}

function thpAt(m: Machine, p: ReturnType<Machine['spawn']>, len: number): { a: number; head: number } {
  const raw = p.mmap(0, len + 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const a = Math.ceil(raw / (2 * MiB)) * 2 * MiB;
  p.touch(a, len, { write: true });
  const e = huge_pmd_entry(m.vm, p.mm, a / PG);
  expect(e).toBeGreaterThanOrEqual(0);
  return { a, head: m.vm.pt.pfn[e] };
}

describe('THP migration', () => {
  it('alloc_contig_range migrates a THP whole to a new order-9 folio', () => {
    const { m, p } = boot();
    const { a, head } = thpAt(m, p, 2 * MiB);
    const d = delta(m, ['thp_migration_success', 'thp_migration_split', 'pgmigrate_success'], () => {
      expect(m.kernel.alloc_contig_range(head, head + 512, 0, GFP_KERNEL)).toBe(0);
    });
    expect(d).toEqual({ thp_migration_success: 1, thp_migration_split: 0, pgmigrate_success: 512 });
    const e = huge_pmd_entry(m.vm, p.mm, a / PG);
    expect(e).toBeGreaterThanOrEqual(0);
    const moved = m.vm.pt.pfn[e];
    expect(moved).not.toBe(head);
    expect(m.mm.frames.order[moved]).toBe(9);
    expect(vmstat(m, 'nr_anon_transparent_hugepages')).toBe(1);
    m.checkInvariants();
    m.kernel.free_contig_range(head, 512);
    m.checkInvariants();
  });

  it('a PTE-mapped THP migrates whole, its PTEs repointed', () => {
    const { m, p } = boot();
    const { a, head } = thpAt(m, p, 2 * MiB);
    p.munmap(a + MiB, PG); // split the PMD, leave the folio large
    expect(m.mm.frames.order[head]).toBe(9);
    expect(m.kernel.alloc_contig_range(head, head + 512, 0, GFP_KERNEL)).toBe(0);
    expect(vmstat(m, 'thp_migration_success')).toBe(1);
    m.checkInvariants();
  });

  it('a target allocator with only order-0 pages splits the THP and migrates its pages', () => {
    const { m, p } = boot();
    const { a, head } = thpAt(m, p, 2 * MiB);
    p.munmap(a + MiB, MiB); // 256 pages stay mapped
    const mm = m.mm;
    expect(folio_isolate_lru(mm, head)).toBe(true);
    const ops = {
      cpu: 0,
      pf_memalloc: false,
      get_new_folio: () => __alloc_pages(mm, GFP_HIGHUSER_MOVABLE, 0, 0, 0),
      put_new_folio: (dst: number) => __free_pages(mm, dst, mm.frames.order[dst], 0),
    };
    const d = delta(
      m,
      ['thp_migration_split', 'thp_migration_fail', 'thp_split_page', 'pgmigrate_success'],
      () => {
        const r = migrate_pages(mm, [head], ops, MIGRATE_SYNC);
        expect(r.err).toBe(0);
      },
    );
    expect(d).toEqual({
      thp_migration_split: 1,
      thp_migration_fail: 1,
      thp_split_page: 1,
      pgmigrate_success: 256,
    });
    expect(vmstat(m, 'nr_anon_pages')).toBe(256);
    m.checkInvariants();
  });
});
