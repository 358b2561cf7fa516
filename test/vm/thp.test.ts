/** Anonymous THP: the PMD fault, defrag modes, split_huge_pmd, deferred split, fork + COW, sysfs. */
import { describe, expect, it } from 'vitest';
import { __GFP_MOVABLE } from '../../src/mm/gfp.ts';
import { HPAGE_PMD_NR, thp } from '../../src/mm/huge_memory.ts';
import type { Machine } from '../../src/sim/machine.ts';
import { huge_pmd_entry } from '../../src/vm/huge_memory.ts';
import {
  MADV_DONTNEED,
  MADV_HUGEPAGE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { alignedMapping, bootThp, delta, errno, MiB, meminfo, PG, pte, vmstat } from './helpers.ts';

const _ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const _RW = PROT_READ | PROT_WRITE;

const boot = (mode: 'always' | 'madvise' | 'never' = 'always', memory = '512M') => bootThp(mode, memory);

const aligned = (p: ReturnType<Machine['spawn']>, len: number): number => alignedMapping(p, len);

function huge(m: Machine, p: ReturnType<Machine['spawn']>, addr: number): boolean {
  return huge_pmd_entry(m.vm, p.mm, addr / PG) >= 0;
}

describe('THP fault', () => {
  it('enabled=always: a write fault maps one order-9 folio with a PMD', () => {
    const { m, p } = boot('always');
    const a = aligned(p, 4 * MiB);
    const d = delta(m, ['thp_fault_alloc', 'thp_fault_fallback', 'pgfault'], () => {
      p.touch(a, PG, { write: true });
    });
    expect(d).toEqual({ thp_fault_alloc: 1, thp_fault_fallback: 0, pgfault: 1 });
    expect(huge(m, p, a)).toBe(true);
    expect(pte(m, p, a)).toBeNull(); // no PTE table for the range
    expect(meminfo(m, 'AnonHugePages')).toBe(2048);
    expect(vmstat(m, 'nr_anon_transparent_hugepages')).toBe(1);
    expect(m.readFile(`/proc/${p.pid}/status`)).toMatch(/RssAnon:\s+2048 kB/);
    // The rest of the 2 MiB is mapped already: touching it takes no fault.
    expect(delta(m, ['pgfault'], () => p.touch(a, 2 * MiB, { write: true })).pgfault).toBe(0);
    m.checkInvariants();
  });

  it('enabled=never and madvise without MADV_HUGEPAGE use 4 KiB pages; madvise with it maps a THP', () => {
    for (const mode of ['never', 'madvise'] as const) {
      const { m, p } = boot(mode);
      const a = aligned(p, 2 * MiB);
      p.touch(a, PG, { write: true });
      expect(huge(m, p, a)).toBe(false);
      expect(vmstat(m, 'thp_fault_alloc')).toBe(0);
      m.checkInvariants();
    }
    const { m, p } = boot('madvise');
    const a = aligned(p, 2 * MiB);
    p.madvise(a, 2 * MiB, MADV_HUGEPAGE);
    p.touch(a, PG, { write: true });
    expect(huge(m, p, a)).toBe(true);
    m.checkInvariants();
  });

  it('a VMA that does not cover an aligned 2 MiB gets no THP; a read fault maps the zero page', () => {
    const { m, p } = boot('always');
    const a = aligned(p, 2 * MiB);
    p.munmap(a + 2 * MiB - PG, PG);
    p.touch(a, PG, { write: true });
    expect(huge(m, p, a)).toBe(false);
    const b = aligned(p, 2 * MiB);
    p.touch(b, PG);
    expect(huge(m, p, b)).toBe(false);
    expect(pte(m, p, b)!.pfn).toBe(m.mm.zero_pfn);
    // Without the huge zero page, a read fault allocates a THP as a write does.
    m.writeFile('/sys/kernel/mm/transparent_hugepage/use_zero_page', '0');
    const c = aligned(p, 2 * MiB);
    const alloc = vmstat(m, 'thp_fault_alloc');
    p.touch(c, PG);
    expect(huge(m, p, c)).toBe(true);
    expect(vmstat(m, 'thp_fault_alloc')).toBe(alloc + 1);
  });

  it('defrag modes give vma_thp_gfp_mask()', async () => {
    const { vma_thp_gfp_mask } = await import('../../src/mm/huge_memory.ts');
    const { GFP_TRANSHUGE, GFP_TRANSHUGE_LIGHT, __GFP_NORETRY, __GFP_KSWAPD_RECLAIM, __GFP_DIRECT_RECLAIM } =
      await import('../../src/mm/gfp.ts');
    const { m } = boot('always');
    const expect_ = (defrag: string, mad: number, other: number): void => {
      m.writeFile('/sys/kernel/mm/transparent_hugepage/defrag', defrag);
      expect(vma_thp_gfp_mask(m.mm, true)).toBe(mad);
      expect(vma_thp_gfp_mask(m.mm, false)).toBe(other);
    };
    expect_('always', GFP_TRANSHUGE, GFP_TRANSHUGE | __GFP_NORETRY);
    expect_('defer', GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM, GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM);
    expect_(
      'defer+madvise',
      GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM,
      GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM,
    );
    expect_('madvise', GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM, GFP_TRANSHUGE_LIGHT);
    expect_('never', GFP_TRANSHUGE_LIGHT, GFP_TRANSHUGE_LIGHT);
  });

  it('on a fragmented machine the fault falls back (thp_fault_fallback); defrag=always compacts', () => {
    const run = (defrag: string): { fallback: number; stall: number; huge: boolean } => {
      const { m, p } = boot('never', '256M');
      // Fill memory with 4 KiB pages, then free every other one: no free 2 MiB block remains.
      const len = Math.floor((meminfo(m, 'MemFree') * 1024 - 8 * MiB) / (2 * MiB)) * 2 * MiB;
      const a = aligned(p, len);
      p.touch(a, len, { write: true });
      for (let off = 0; off < len; off += 2 * PG) p.madvise(a + off, PG, MADV_DONTNEED);
      // The few free blocks of order >= 9 left go to the kernel (movable, as page cache would).
      while (m.kernel.alloc_pages(__GFP_MOVABLE, 9) >= 0);
      m.writeFile('/sys/kernel/mm/transparent_hugepage/enabled', 'always');
      m.writeFile('/sys/kernel/mm/transparent_hugepage/defrag', defrag);
      const b = aligned(p, 2 * MiB);
      const d = delta(m, ['thp_fault_fallback', 'compact_stall'], () => p.touch(b, PG, { write: true }));
      m.checkInvariants();
      return { fallback: d.thp_fault_fallback, stall: d.compact_stall, huge: huge(m, p, b) };
    };
    const never = run('never');
    expect(never).toEqual({ fallback: 1, stall: 0, huge: false });
    const always = run('always');
    expect(always.stall).toBeGreaterThan(0);
  });
});

describe('split', () => {
  it('partial munmap splits the PMD, queues a deferred split; the shrinker frees the unmapped half', () => {
    const { m, p } = boot('always');
    const a = aligned(p, 2 * MiB);
    p.touch(a, 2 * MiB, { write: true });
    const d = delta(m, ['thp_split_pmd', 'thp_deferred_split_page', 'thp_split_page'], () =>
      p.munmap(a + MiB, MiB),
    );
    expect(d).toEqual({ thp_split_pmd: 1, thp_deferred_split_page: 1, thp_split_page: 0 });
    expect(huge(m, p, a)).toBe(false);
    expect(pte(m, p, a)).not.toBeNull();
    expect(meminfo(m, 'AnonHugePages')).toBe(0);
    expect(m.readFile(`/proc/${p.pid}/status`)).toMatch(/RssAnon:\s+1024 kB/);
    // Still one folio: the unmapped half is not freed yet.
    expect(vmstat(m, 'nr_anon_pages')).toBe(256);
    const head = pte(m, p, a)!.pfn;
    expect(m.mm.frames.order[head]).toBe(9);
    m.checkInvariants();
    // drop_caches=2 runs the slab shrinkers, the deferred split one among them.
    const s = delta(m, ['thp_split_page'], () => m.writeFile('/proc/sys/vm/drop_caches', '2'));
    expect(s.thp_split_page).toBe(1);
    expect(m.mm.frames.order[head]).toBe(0);
    // The 256 unmapped pages went back to the page allocator.
    expect(m.mm.frames.flags[head + 300] & (1 << 14)).toBe(0);
    m.checkInvariants();
  });

  it('munmap of the whole PMD frees the folio; MADV_DONTNEED on part splits', () => {
    const { m, p } = boot('always');
    const a = aligned(p, 4 * MiB);
    p.touch(a, 4 * MiB, { write: true });
    expect(vmstat(m, 'nr_anon_transparent_hugepages')).toBe(2);
    p.munmap(a, 2 * MiB);
    expect(vmstat(m, 'nr_anon_transparent_hugepages')).toBe(1);
    expect(vmstat(m, 'nr_anon_pages')).toBe(512);
    p.madvise(a + 2 * MiB, 64 * 1024, MADV_DONTNEED);
    expect(vmstat(m, 'thp_split_pmd')).toBe(1);
    expect(pte(m, p, a + 2 * MiB)).toBeNull();
    expect(pte(m, p, a + 2 * MiB + 64 * 1024)).not.toBeNull();
    m.checkInvariants();
    p.exit();
    m.checkInvariants();
  });

  it('mprotect of part of a THP splits its PMD; mlock splits the folio', () => {
    const { m, p } = boot('always');
    const a = aligned(p, 2 * MiB);
    p.touch(a, 2 * MiB, { write: true });
    p.mprotect(a, MiB, PROT_READ);
    expect(vmstat(m, 'thp_split_pmd')).toBe(1);
    expect(pte(m, p, a)!.bits & 2).toBe(0);
    m.checkInvariants();
    p.mlock(a + MiB, PG);
    expect(vmstat(m, 'thp_split_page')).toBe(1);
    m.checkInvariants();
  });
});

describe('fork', () => {
  it('the child shares the PMD read-only; a write splits the PMD and copies one page', () => {
    const { m, p } = boot('always');
    const a = aligned(p, 2 * MiB);
    p.touch(a, 2 * MiB, { write: true });
    const c = p.fork();
    expect(huge(m, c, a)).toBe(true);
    expect(meminfo(m, 'AnonHugePages')).toBe(2048);
    m.checkInvariants();
    const d = delta(m, ['thp_split_pmd', 'thp_fault_alloc'], () => c.touch(a + 5 * PG, PG, { write: true }));
    expect(d).toEqual({ thp_split_pmd: 1, thp_fault_alloc: 0 });
    expect(pte(m, c, a + 5 * PG)!.pfn).not.toBe(pte(m, c, a + 6 * PG)!.pfn - 1);
    expect(huge(m, p, a)).toBe(true);
    m.checkInvariants();
    c.exit();
    // The parent's PMD is exclusive again: its write reuses the THP.
    p.touch(a, PG, { write: true });
    expect(huge(m, p, a)).toBe(true);
    m.checkInvariants();
  });
});

describe('pagemap', () => {
  it('reports the subpage pfns of a PMD-mapped THP', () => {
    const { m, p } = boot('always');
    const a = aligned(p, 2 * MiB);
    p.touch(a, PG, { write: true });
    const head = m.vm.pt.pfn[huge_pmd_entry(m.vm, p.mm, a / PG)];
    expect(thp(m.mm).entire_mapcount[head / HPAGE_PMD_NR]).toBe(1);
  });
});

describe('sysfs', () => {
  it('formats and write rules', () => {
    const { m } = boot('madvise');
    const dir = '/sys/kernel/mm/transparent_hugepage';
    expect(m.readFile(`${dir}/enabled`)).toBe('always [madvise] never\n');
    expect(m.readFile(`${dir}/defrag`)).toBe('always defer defer+madvise [madvise] never\n');
    expect(m.readFile(`${dir}/hpage_pmd_size`)).toBe('2097152\n');
    expect(m.readFile(`${dir}/use_zero_page`)).toBe('1\n');
    expect(m.readFile(`${dir}/khugepaged/pages_to_scan`)).toBe('4096\n');
    expect(m.readFile(`${dir}/khugepaged/max_ptes_none`)).toBe('511\n');
    expect(m.readFile(`${dir}/khugepaged/max_ptes_swap`)).toBe('64\n');
    expect(m.readFile(`${dir}/khugepaged/max_ptes_shared`)).toBe('256\n');
    expect(m.readFile(`${dir}/khugepaged/scan_sleep_millisecs`)).toBe('10000\n');
    expect(m.readFile(`${dir}/khugepaged/alloc_sleep_millisecs`)).toBe('60000\n');
    m.writeFile(`${dir}/enabled`, 'always\n');
    expect(m.readFile(`${dir}/enabled`)).toBe('[always] madvise never\n');
    m.writeFile(`${dir}/defrag`, 'defer+madvise');
    expect(m.readFile(`${dir}/defrag`)).toBe('always defer [defer+madvise] madvise never\n');
    expect(errno(() => m.writeFile(`${dir}/enabled`, 'sometimes'))).toBe('EINVAL');
    expect(errno(() => m.writeFile(`${dir}/defrag`, ' always'))).toBe('EINVAL');
    expect(errno(() => m.writeFile(`${dir}/use_zero_page`, '2'))).toBe('EINVAL');
    expect(errno(() => m.writeFile(`${dir}/khugepaged/max_ptes_none`, '512'))).toBe('EINVAL');
    expect(errno(() => m.writeFile(`${dir}/khugepaged/pages_to_scan`, '0'))).toBe('EINVAL');
    m.writeFile(`${dir}/khugepaged/max_ptes_none`, '0');
    expect(m.readFile(`${dir}/khugepaged/max_ptes_none`)).toBe('0\n');
  });
});
