/**
 * madvise(2) on anonymous memory: Linux 6.18's errnos (measured on our machines), zapping with
 * page-table reclaim (CONFIG_PT_RECLAIM), lazyfree pages on the file LRU, cold and pageout
 * without swap, the VMA flags (fork behaviour, THP hints) with splits and merges, and population.
 */
import { describe, expect, it } from 'vitest';
import { PG_active, PG_swapbacked } from '../../src/mm/page-flags.ts';
import {
  MADV_COLD,
  MADV_DODUMP,
  MADV_DOFORK,
  MADV_DONTDUMP,
  MADV_DONTFORK,
  MADV_DONTNEED,
  MADV_DONTNEED_LOCKED,
  MADV_FREE,
  MADV_HUGEPAGE,
  MADV_HWPOISON,
  MADV_KEEPONFORK,
  MADV_MERGEABLE,
  MADV_NOHUGEPAGE,
  MADV_NORMAL,
  MADV_PAGEOUT,
  MADV_POPULATE_READ,
  MADV_POPULATE_WRITE,
  MADV_RANDOM,
  MADV_REMOVE,
  MADV_SEQUENTIAL,
  MADV_WILLNEED,
  MADV_WIPEONFORK,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_LOCKED,
  MAP_POPULATE,
  MAP_PRIVATE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import {
  VM_DONTCOPY,
  VM_DONTDUMP,
  VM_HUGEPAGE,
  VM_NOHUGEPAGE,
  VM_RAND_READ,
  VM_SEQ_READ,
  VM_WIPEONFORK,
} from '../../src/vm/vma.ts';
import { boot, delta, errno, MiB, meminfo, PG, pte, vmas } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const FIXED = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
const A = 0x40000000;

describe('madvise() errnos', () => {
  const { m, p } = boot();
  p.mmap(A, 8 * PG, RW, FIXED | MAP_POPULATE);
  p.mmap(A + 16 * PG, 8 * PG, RW, FIXED | MAP_LOCKED);
  const L = A + 16 * PG;
  it.each([
    ['unknown advice 999', 'EINVAL', () => p.madvise(A, PG, 999)],
    ['unknown advice 5', 'EINVAL', () => p.madvise(A, PG, 5)],
    ['unaligned address', 'EINVAL', () => p.madvise(A + 1, PG, MADV_DONTNEED)],
    ['length 0', 'ok', () => p.madvise(A, 0, MADV_DONTNEED)],
    ['length 0 with unknown advice', 'EINVAL', () => p.madvise(A, 0, 999)],
    ['a wrapping length', 'EINVAL', () => p.madvise(A, 2 ** 64 - PG, MADV_DONTNEED)],
    ['an unmapped range', 'ENOMEM', () => p.madvise(0x50000000, PG, MADV_NORMAL)],
    ['MADV_REMOVE on private anonymous memory', 'EINVAL', () => p.madvise(A, PG, MADV_REMOVE)],
    ['MADV_DONTNEED on a locked VMA', 'EINVAL', () => p.madvise(L, PG, MADV_DONTNEED)],
    ['MADV_FREE on a locked VMA', 'EINVAL', () => p.madvise(L, PG, MADV_FREE)],
    ['MADV_COLD on a locked VMA', 'EINVAL', () => p.madvise(L, PG, MADV_COLD)],
    ['MADV_PAGEOUT on a locked VMA', 'EINVAL', () => p.madvise(L, PG, MADV_PAGEOUT)],
    ['MADV_DONTNEED_LOCKED on a locked VMA', 'ok', () => p.madvise(L, PG, MADV_DONTNEED_LOCKED)],
    ['MADV_WILLNEED (no swap: nothing to do)', 'ok', () => p.madvise(A, PG, MADV_WILLNEED)],
    ['MADV_MERGEABLE (KSM is not modelled)', 'ENOSYS', () => p.madvise(A, PG, MADV_MERGEABLE)],
    [
      'MADV_HWPOISON without CAP_SYS_ADMIN',
      'EPERM',
      () => m.spawn({ uid: 1000 }).madvise(A, PG, MADV_HWPOISON),
    ],
  ])('%s → %s', (_name, code, fn) => {
    expect(errno(fn)).toBe(code);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('applies to every mapped part of a range with holes, then fails with ENOMEM', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED | MAP_POPULATE);
    p.munmap(A + 4 * PG, PG);
    expect(errno(() => p.madvise(A, 8 * PG, MADV_DONTNEED))).toBe('ENOMEM');
    expect(p.mm.rss[1]).toBe(0);
    expect(errno(() => p.madvise(A - 4 * PG, 12 * PG, MADV_HUGEPAGE))).toBe('ENOMEM');
    expect(vmas(m, p).map(([, , f]) => f & VM_HUGEPAGE)).toEqual([VM_HUGEPAGE, VM_HUGEPAGE]);
  });
});

describe('MADV_DONTNEED', () => {
  it('zaps the pages: they come back zero-filled on the next access', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED | MAP_POPULATE);
    p.madvise(A + 2 * PG, 4 * PG, MADV_DONTNEED);
    expect(p.mm.rss[1]).toBe(4);
    expect(pte(m, p, A + 2 * PG)).toBeNull();
    p.touch(A + 2 * PG, PG);
    expect(pte(m, p, A + 2 * PG)!.pfn).toBe(m.mm.zero_pfn);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('frees the PTE tables a VMA covers whole (CONFIG_PT_RECLAIM), not PMD tables', () => {
    const { m, p } = boot();
    const base = m.vm.pt.owned(p.mm.id);
    p.mmap(0x80000000, 64 * MiB, RW, FIXED | MAP_POPULATE);
    expect(m.vm.pt.owned(p.mm.id) - base).toBe(32 + 2); // PTE tables + PUD and PMD tables
    p.madvise(0x80000000, 64 * MiB, MADV_DONTNEED);
    expect(m.vm.pt.owned(p.mm.id) - base).toBe(2);
    p.madvise(0x80000000, 64 * MiB, MADV_POPULATE_WRITE);
    p.madvise(0x80000000 + PG, 64 * MiB - 2 * PG, MADV_DONTNEED);
    expect(m.vm.pt.owned(p.mm.id) - base).toBe(4); // the tables at either end stay
    expect(m.invariantViolations()).toEqual([]);
  });

  it('keeps a PTE table shared by two VMAs (each zap covers only part of it)', () => {
    const { m, p } = boot();
    p.mmap(0x80000000, 2 * MiB, RW, FIXED | MAP_POPULATE);
    p.mprotect(0x80000000, MiB, PROT_READ);
    const tables = m.vm.pt.count;
    p.madvise(0x80000000, 2 * MiB, MADV_DONTNEED);
    expect(m.vm.pt.count).toBe(tables);
    expect(p.mm.rss[1]).toBe(0);
  });

  it('MADV_DONTNEED_LOCKED munlocks what it zaps; faults bring locked pages back', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED | MAP_LOCKED);
    const d = delta(m, ['unevictable_pgs_munlocked', 'unevictable_pgs_mlocked'], () => {
      p.madvise(A, 8 * PG, MADV_DONTNEED_LOCKED);
      p.touch(A, PG, { write: true });
    });
    expect(d).toEqual({ unevictable_pgs_munlocked: 8, unevictable_pgs_mlocked: 1 });
    expect(meminfo(m, 'Mlocked')).toBe(4);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('MADV_FREE, MADV_COLD and MADV_PAGEOUT', () => {
  const N = 1024;

  it('MADV_FREE moves clean pages to the inactive file list, not swap-backed', () => {
    const { m, p } = boot();
    p.mmap(A, N * PG, RW, FIXED | MAP_POPULATE);
    const file = meminfo(m, 'Inactive(file)');
    const d = delta(m, ['pglazyfree'], () => p.madvise(A, N * PG, MADV_FREE));
    expect(d.pglazyfree).toBe(N);
    expect(meminfo(m, 'Inactive(file)') - file).toBe(N * 4);
    expect(meminfo(m, 'AnonPages')).toBe(N * 4); // still anonymous pages
    expect(m.mm.frames.flags[pte(m, p, A)!.pfn] & PG_swapbacked).toBe(0);
    expect(delta(m, ['pglazyfree'], () => p.madvise(A, N * PG, MADV_FREE)).pglazyfree).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('MADV_PAGEOUT discards clean lazyfree pages and keeps redirtied ones (made swap-backed, active)', () => {
    const { m, p } = boot();
    p.mmap(A, N * PG, RW, FIXED | MAP_POPULATE);
    p.madvise(A, N * PG, MADV_FREE);
    p.touch(A, 10 * PG, { write: true }); // no fault: the MMU sets the dirty bit
    const d = delta(m, ['pglazyfreed', 'pgactivate'], () => p.madvise(A, N * PG, MADV_PAGEOUT));
    expect(d).toEqual({ pglazyfreed: N - 10, pgactivate: 10 });
    expect(p.mm.rss[1]).toBe(10);
    const f = m.mm.frames.flags[pte(m, p, A)!.pfn];
    expect(f & (PG_swapbacked | PG_active)).toBe(PG_swapbacked | PG_active);
    expect(pte(m, p, A + 10 * PG)).toBeNull();
    expect(m.vm.pt.owned(p.mm.id)).toBeGreaterThan(1); // no page-table reclaim here
    expect(m.invariantViolations()).toEqual([]);
  });

  it('MADV_PAGEOUT without swap activates anonymous pages; MADV_COLD deactivates them', () => {
    const { m, p } = boot();
    p.mmap(A, N * PG, RW, FIXED | MAP_POPULATE);
    let d = delta(m, ['pgactivate', 'pgdeactivate'], () => p.madvise(A, N * PG, MADV_PAGEOUT));
    expect(d).toEqual({ pgactivate: N, pgdeactivate: 0 });
    expect(meminfo(m, 'Active(anon)')).toBe(N * 4);
    expect(p.mm.rss[1]).toBe(N);
    // Measured: a second MADV_PAGEOUT counts them all again.
    expect(delta(m, ['pgactivate'], () => p.madvise(A, N * PG, MADV_PAGEOUT)).pgactivate).toBe(N);
    d = delta(m, ['pgactivate', 'pgdeactivate'], () => p.madvise(A, N * PG, MADV_COLD));
    expect(d).toEqual({ pgactivate: 0, pgdeactivate: N });
    expect(meminfo(m, 'Inactive(anon)')).toBe(N * 4);
    expect(delta(m, ['pgdeactivate'], () => p.madvise(A, N * PG, MADV_COLD)).pgdeactivate).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('pages shared with a child: MADV_FREE still frees them lazily (not dirty), MADV_COLD leaves them', () => {
    const { m, p } = boot();
    p.mmap(A, N * PG, RW, FIXED | MAP_POPULATE);
    p.madvise(A, N * PG, MADV_PAGEOUT);
    const child = p.fork();
    expect(delta(m, ['pgdeactivate'], () => p.madvise(A, N * PG, MADV_COLD)).pgdeactivate).toBe(0);
    expect(delta(m, ['pglazyfree'], () => p.madvise(A, N * PG, MADV_FREE)).pglazyfree).toBe(N);
    child.exit();
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('flag advice', () => {
  it('sets and clears the VMA flags, splitting and merging', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED);
    const flags = (): number[] => vmas(m, p).map(([, , f]) => f);
    p.madvise(A + PG, 2 * PG, MADV_DONTFORK);
    expect(flags().map((f) => f & VM_DONTCOPY)).toEqual([0, VM_DONTCOPY, 0]);
    p.madvise(A + PG, 2 * PG, MADV_DOFORK);
    expect(flags()).toHaveLength(1);
    for (const [advice, set, clear] of [
      [MADV_HUGEPAGE, VM_HUGEPAGE, VM_NOHUGEPAGE],
      [MADV_NOHUGEPAGE, VM_NOHUGEPAGE, VM_HUGEPAGE],
      [MADV_RANDOM, VM_RAND_READ, VM_SEQ_READ],
      [MADV_SEQUENTIAL, VM_SEQ_READ, VM_RAND_READ],
      [MADV_NORMAL, 0, VM_SEQ_READ | VM_RAND_READ],
      [MADV_DONTDUMP, VM_DONTDUMP, 0],
      [MADV_DODUMP, 0, VM_DONTDUMP],
      [MADV_WIPEONFORK, VM_WIPEONFORK, 0],
      [MADV_KEEPONFORK, 0, VM_WIPEONFORK],
    ]) {
      p.madvise(A, 8 * PG, advice);
      expect(flags()[0] & (set | clear)).toBe(set);
    }
    expect(m.invariantViolations()).toEqual([]);
  });

  it('fails with EAGAIN when a split would pass vm.max_map_count', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED);
    m.vm.sysctl.max_map_count = 1;
    expect(errno(() => p.madvise(A + PG, PG, MADV_DONTFORK))).toBe('EAGAIN');
  });

  it('MADV_DONTFORK keeps a range out of the child; MADV_WIPEONFORK gives it an empty one', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED | MAP_POPULATE);
    p.madvise(A, 2 * PG, MADV_DONTFORK);
    p.madvise(A + 4 * PG, 2 * PG, MADV_WIPEONFORK);
    const child = p.fork();
    expect(vmas(m, child).map(([s, e]) => [(s - A) / PG, (e - A) / PG])).toEqual([
      [2, 4],
      [4, 6],
      [6, 8],
    ]);
    expect(child.mm.rss[1]).toBe(4);
    expect(pte(m, child, A + 4 * PG)).toBeNull();
    child.touch(A + 4 * PG, PG);
    expect(pte(m, child, A + 4 * PG)!.pfn).toBe(m.mm.zero_pfn);
    expect(m.invariantViolations()).toEqual([]);
    child.exit();
  });
});

describe('MADV_POPULATE_READ and MADV_POPULATE_WRITE', () => {
  it('fault the range in, with EINVAL where the access is not allowed and ENOMEM at a hole', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED);
    p.madvise(A, 4 * PG, MADV_POPULATE_READ);
    expect(pte(m, p, A)!.pfn).toBe(m.mm.zero_pfn);
    p.madvise(A, 8 * PG, MADV_POPULATE_WRITE);
    expect(p.mm.rss[1]).toBe(8);
    p.mmap(A + 16 * PG, 4 * PG, PROT_READ, FIXED);
    p.mmap(A + 20 * PG, 4 * PG, PROT_NONE, FIXED);
    expect(errno(() => p.madvise(A + 16 * PG, 4 * PG, MADV_POPULATE_WRITE))).toBe('EINVAL');
    expect(errno(() => p.madvise(A + 20 * PG, 4 * PG, MADV_POPULATE_READ))).toBe('EINVAL');
    expect(errno(() => p.madvise(A, 16 * PG, MADV_POPULATE_READ))).toBe('ENOMEM');
    expect(m.invariantViolations()).toEqual([]);
  });
});
