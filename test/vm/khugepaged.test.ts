/** khugepaged: registration, scan passes on the clock, collapse rules, counters, alloc back-off. */
import { describe, expect, it } from 'vitest';
import { __GFP_MOVABLE } from '../../src/mm/gfp.ts';
import { PGI_alloc } from '../../src/mm/page-flags.ts';
import type { Machine } from '../../src/sim/machine.ts';
import { huge_pmd_entry } from '../../src/vm/huge_memory.ts';
import { khugepaged_state } from '../../src/vm/khugepaged.ts';
import type { Process } from '../../src/vm/process.ts';
import {
  MADV_DONTNEED,
  MADV_HUGEPAGE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { alignedMapping, bootThp, delta, MiB, meminfo, PG, pte, vmstat } from './helpers.ts';

const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const RW = PROT_READ | PROT_WRITE;
const KH = '/sys/kernel/mm/transparent_hugepage/khugepaged';

const boot = (mode: 'always' | 'madvise' | 'never' = 'madvise', memory = '512M') => bootThp(mode, memory);

const aligned = (p: Process, len: number): number => alignedMapping(p, len);

function huge(m: Machine, p: Process, addr: number): boolean {
  return huge_pmd_entry(m.vm, p.mm, addr / PG) >= 0;
}

function hugeCount(m: Machine, p: Process, a: number, len: number): number {
  let n = 0;
  for (let x = a; x < a + len; x += 2 * MiB) if (huge(m, p, x)) n++;
  return n;
}

function knob(m: Machine, name: string): number {
  return Number(m.readFile(`${KH}/${name}`));
}

/** `len` bytes faulted in 4 KiB pages (no MADV_HUGEPAGE yet), then madvised, without time passing. */
function faultedSmall(m: Machine, p: Process, len: number, touched = 2 * MiB): number {
  return m.instantly(() => {
    const a = aligned(p, len);
    for (let x = a; x < a + len; x += 2 * MiB) p.touch(x, touched, { write: true });
    p.madvise(a, len, MADV_HUGEPAGE);
    return a;
  });
}

describe('khugepaged collapse', () => {
  it('MADV_HUGEPAGE wakes khugepaged: 8 ranges (pages_to_scan 4096) per pass, one pass per 10 s', () => {
    const { m, p } = boot('madvise');
    const len = 12 * 2 * MiB;
    const a = faultedSmall(m, p, len);
    expect(hugeCount(m, p, a, len)).toBe(0);
    expect(khugepaged_state(m.vm).mm_head).toContain(p.mm);
    const anon = vmstat(m, 'nr_anon_pages');
    const old: number[] = [];
    for (let x = a; x < a + len; x += 4 * PG) old.push(pte(m, p, x)!.pfn);
    const pids = p.kernel_ns;
    m.advance('1ms');
    expect(hugeCount(m, p, a, len)).toBe(8);
    expect(knob(m, 'pages_collapsed')).toBe(8);
    expect(vmstat(m, 'thp_collapse_alloc')).toBe(8);
    m.advance('9s');
    expect(hugeCount(m, p, a, len)).toBe(8);
    m.advance('1s');
    expect(hugeCount(m, p, a, len)).toBe(12);
    expect(knob(m, 'pages_collapsed')).toBe(12);
    expect(knob(m, 'full_scans')).toBe(1);
    // The old pages were freed: the same memory is in use, now as THPs.
    expect(vmstat(m, 'nr_anon_pages')).toBe(anon);
    expect(vmstat(m, 'nr_anon_transparent_hugepages')).toBe(12);
    expect(meminfo(m, 'AnonHugePages')).toBe(12 * 2048);
    for (const pfn of old) expect(m.mm.frames.flags[pfn] & PGI_alloc).toBe(0);
    expect(m.readFile(`/proc/${p.pid}/status`)).toMatch(/RssAnon:\s+24576 kB/);
    // The work is khugepaged's: 512 copies per collapse on its account, none on the task's.
    expect(m.mm.khugepaged.cpu_ns).toBeGreaterThanOrEqual(12 * 512 * m.mm.cost.copy_page);
    expect(p.kernel_ns).toBe(pids);
    // A write to the collapsed range faults no more.
    expect(delta(m, ['pgfault'], () => p.touch(a, 2 * MiB, { write: true })).pgfault).toBe(0);
    m.checkInvariants();
  });

  it('enabled=never: no thread, no collapse; enabling it later starts the thread', () => {
    const { m, p } = boot('never');
    const a = faultedSmall(m, p, 2 * MiB);
    m.advance('30s');
    expect(khugepaged_state(m.vm).started).toBe(false);
    expect(huge(m, p, a)).toBe(false);
    expect(vmstat(m, 'thp_collapse_alloc')).toBe(0);
    m.writeFile('/sys/kernel/mm/transparent_hugepage/enabled', 'madvise');
    expect(khugepaged_state(m.vm).started).toBe(true);
    // The address space registered nowhere while THP was off: MADV_HUGEPAGE again registers it.
    p.madvise(a, 2 * MiB, MADV_HUGEPAGE);
    m.advance('1ms');
    expect(huge(m, p, a)).toBe(true);
    m.writeFile('/sys/kernel/mm/transparent_hugepage/enabled', 'never');
    expect(khugepaged_state(m.vm).started).toBe(false);
    m.checkInvariants();
  });

  it('enabled=always registers at mmap; the pass before the faults finds nothing, the next collapses', () => {
    const { m, p } = boot('never');
    m.writeFile('/sys/kernel/mm/transparent_hugepage/enabled', 'always');
    const raw = p.mmap(0, 4 * MiB, RW, ANON);
    expect(khugepaged_state(m.vm).mm_head).toContain(p.mm);
    const a = Math.ceil(raw / (2 * MiB)) * 2 * MiB;
    m.advance('1ms');
    // A 4 KiB-aligned piece of the range: written in pages from the unaligned head (not THP-able).
    m.instantly(() => {
      m.writeFile('/sys/kernel/mm/transparent_hugepage/enabled', 'never');
      p.touch(a, 2 * MiB, { write: true });
      m.writeFile('/sys/kernel/mm/transparent_hugepage/enabled', 'always');
    });
    expect(huge(m, p, a)).toBe(false);
    m.advance('10s');
    expect(huge(m, p, a)).toBe(true);
    m.checkInvariants();
  });

  it('respects max_ptes_none; one touched page is enough by default (511 holes zeroed)', () => {
    const { m, p } = boot('madvise');
    m.writeFile(`${KH}/max_ptes_none`, '255');
    const a = faultedSmall(m, p, 2 * MiB, 256 * PG);
    const d = delta(m, ['thp_scan_exceed_none_pte', 'thp_collapse_alloc'], () => m.advance('1ms'));
    expect(d).toEqual({ thp_scan_exceed_none_pte: 1, thp_collapse_alloc: 0 });
    expect(huge(m, p, a)).toBe(false);
    m.writeFile(`${KH}/max_ptes_none`, '256');
    m.advance('10s');
    expect(huge(m, p, a)).toBe(true);
    expect(m.readFile(`/proc/${p.pid}/status`)).toMatch(/RssAnon:\s+2048 kB/);
    // Default 511: a single page becomes a THP.
    m.writeFile(`${KH}/max_ptes_none`, '511');
    const b = m.instantly(() => {
      const b = aligned(p, 2 * MiB);
      p.touch(b, PG, { write: true });
      p.madvise(b, 2 * MiB, MADV_HUGEPAGE);
      return b;
    });
    const cpu = m.mm.khugepaged.cpu_ns;
    m.advance('10s');
    expect(huge(m, p, b)).toBe(true);
    const c = m.mm.cost;
    expect(m.mm.khugepaged.cpu_ns - cpu).toBeGreaterThanOrEqual(511 * c.clear_page + c.copy_page);
    m.checkInvariants();
  });

  it('max_ptes_shared: pages shared with a fork child stop the collapse (in both)', () => {
    const { m, p } = boot('madvise');
    const a = faultedSmall(m, p, 2 * MiB);
    m.instantly(() => {
      m.writeFile(`${KH}/max_ptes_shared`, '0');
      p.fork();
    });
    const d = delta(m, ['thp_scan_exceed_share_pte', 'thp_collapse_alloc'], () => m.advance('1ms'));
    // The child was registered at fork: its range is scanned too.
    expect(d).toEqual({ thp_scan_exceed_share_pte: 2, thp_collapse_alloc: 0 });
    expect(huge(m, p, a)).toBe(false);
    m.checkInvariants();
  });

  it('an exited address space leaves the list; a forked child of a registered one joins it', () => {
    const { m, p } = boot('madvise');
    faultedSmall(m, p, 2 * MiB);
    const child = p.fork();
    const k = khugepaged_state(m.vm);
    expect(k.mm_head).toEqual([p.mm, child.mm]);
    child.exit();
    expect(k.mm_head).toEqual([p.mm]);
    p.exit();
    m.advance('20s');
    expect(k.mm_head).toEqual([]);
    m.checkInvariants();
  });

  it('a PTE-mapped THP (PMD split by mprotect) is collapsed back into a new THP', () => {
    const { m, p } = boot('always');
    const a = m.instantly(() => {
      const a = aligned(p, 2 * MiB);
      p.touch(a, 2 * MiB, { write: true });
      p.mprotect(a, PG, PROT_READ);
      p.mprotect(a, PG, RW);
      return a;
    });
    expect(huge(m, p, a)).toBe(false);
    const old = pte(m, p, a)!.pfn;
    m.advance('10s');
    expect(huge(m, p, a)).toBe(true);
    expect(m.vm.pt.pfn[huge_pmd_entry(m.vm, p.mm, a / PG)]).not.toBe(old);
    expect(vmstat(m, 'nr_anon_transparent_hugepages')).toBe(1);
    expect(vmstat(m, 'nr_anon_pages')).toBe(512);
    m.checkInvariants();
  });

  it('max_ptes_shared counts every PTE of a large folio any part of which is shared', () => {
    const { m, p } = boot('always');
    m.instantly(() => {
      const a = aligned(p, 2 * MiB);
      p.touch(a, 2 * MiB, { write: true });
      // PTE-map the THP, share it with a child, and let the child copy 300 of its pages: 212 of
      // the parent's PTEs still map pages the child maps too, but the folio is shared.
      p.mprotect(a, PG, PROT_READ);
      p.mprotect(a, PG, RW);
      p.fork().touch(a, 300 * PG, { write: true });
    });
    // Counted per page, neither side would reach 256 shared PTEs (212 each); per folio, the
    // parent's 512 do. (The child's range collapses; after that the parent's folio is no longer
    // shared, and a later pass collapses it too.)
    const d = delta(m, ['thp_scan_exceed_share_pte'], () => m.advance('10s'));
    expect(d.thp_scan_exceed_share_pte).toBeGreaterThan(0);
    m.checkInvariants();
  });

  it('on a fragmented machine the allocation fails, sleeps alloc_sleep_millisecs, retries next pass', () => {
    const { m, p } = boot('never', '256M');
    const a = m.instantly(() => {
      const len = Math.floor((meminfo(m, 'MemFree') * 1024 - 8 * MiB) / (2 * MiB)) * 2 * MiB;
      const a = aligned(p, len);
      p.touch(a, len, { write: true });
      for (let off = 0; off < len; off += 2 * PG) p.madvise(a + off, PG, MADV_DONTNEED);
      while (m.kernel.alloc_pages(__GFP_MOVABLE, 9) >= 0);
      // GFP_TRANSHUGE_LIGHT: no reclaim or compaction for khugepaged.
      m.writeFile(`${KH}/defrag`, '0');
      m.writeFile('/sys/kernel/mm/transparent_hugepage/enabled', 'madvise');
      p.madvise(a, 2 * MiB, MADV_HUGEPAGE);
      return a;
    });
    const t0 = m.now;
    m.advance('1ms');
    expect(vmstat(m, 'thp_collapse_alloc_failed')).toBe(1);
    const k = khugepaged_state(m.vm);
    expect(k.waiting).toBe('alloc');
    expect(k.wait_until - t0).toBeGreaterThanOrEqual(60e9);
    expect(k.wait_until - t0).toBeLessThan(60.1e9);
    const tries = (): number => vmstat(m, 'thp_collapse_alloc_failed') + vmstat(m, 'thp_collapse_alloc');
    m.advance('59s');
    expect(k.waiting).toBe('alloc');
    // The pass resumes after the failed range: nothing else to collapse, so it ends and sleeps.
    m.advance('1s');
    expect(k.waiting).toBe('scan');
    expect(tries()).toBe(1);
    m.advance('10s');
    expect(tries()).toBe(2);
    expect(huge(m, p, a)).toBe(vmstat(m, 'thp_collapse_alloc') === 1);
    m.checkInvariants();
  });
});

describe('khugepaged sysfs', () => {
  it('knobs validate; the sleep knobs end the current sleep', () => {
    const { m, p } = boot('madvise');
    const a = faultedSmall(m, p, 2 * MiB);
    m.advance('1ms');
    expect(huge(m, p, a)).toBe(true);
    const b = faultedSmall(m, p, 2 * MiB);
    expect(khugepaged_state(m.vm).waiting).toBe('scan');
    // Shortening the sleep wakes the thread: it scans now.
    m.writeFile(`${KH}/scan_sleep_millisecs`, '100');
    m.advance('1ms');
    expect(huge(m, p, b)).toBe(true);
    expect(khugepaged_state(m.vm).wait_until - m.now).toBeLessThanOrEqual(100e6);
    for (const [name, bad] of [
      ['pages_to_scan', '0'],
      ['max_ptes_none', '512'],
      ['max_ptes_swap', '512'],
      ['max_ptes_shared', 'x'],
    ])
      expect(() => m.writeFile(`${KH}/${name}`, bad)).toThrow(/EINVAL/);
  });
});
