/**
 * mremap(2): Linux 6.18's errnos (measured on our machines), shrinking and growing in place,
 * moving (pages keep their frames and index; page tables move whole where aligned), MREMAP_FIXED
 * (also across several VMAs), MREMAP_DONTUNMAP, locked mappings and the limits.
 */
import { describe, expect, it } from 'vitest';
import { PG_mlocked } from '../../src/mm/page-flags.ts';
import { rmap_walk } from '../../src/vm/rmap.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_LOCKED,
  MAP_POPULATE,
  MAP_PRIVATE,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
  RLIMIT_AS,
} from '../../src/vm/uapi.ts';
import { VM_DONTEXPAND, VM_LOCKED } from '../../src/vm/vma.ts';
import { boot, errno, MiB, PG, pte, vmas } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const FIXED = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
const A = 0x40000000;
const MOVE = MREMAP_MAYMOVE;

describe('mremap() errnos', () => {
  const { m, p } = boot();
  p.mmap(A, 8 * PG, RW, FIXED);
  p.mmap(A + 8 * PG, 2 * PG, PROT_READ, FIXED);
  it.each([
    ['unknown flags', 'EINVAL', () => p.mremap(A, PG, PG, 8)],
    ['unaligned old address', 'EINVAL', () => p.mremap(A + 1, PG, PG)],
    ['new size 0', 'EINVAL', () => p.mremap(A, PG, 0)],
    ['new size beyond the address space', 'EINVAL', () => p.mremap(A, PG, 2 ** 48, MOVE)],
    ['old size 0 (duplicating a private mapping)', 'EINVAL', () => p.mremap(A, 0, PG, MOVE)],
    ['old size 0 without MREMAP_MAYMOVE', 'EINVAL', () => p.mremap(A, 0, PG)],
    ['MREMAP_FIXED without MREMAP_MAYMOVE', 'EINVAL', () => p.mremap(A, PG, PG, MREMAP_FIXED, 0x50000000)],
    ['MREMAP_DONTUNMAP without MREMAP_MAYMOVE', 'EINVAL', () => p.mremap(A, PG, PG, MREMAP_DONTUNMAP)],
    ['MREMAP_DONTUNMAP resizing', 'EINVAL', () => p.mremap(A, PG, 2 * PG, MREMAP_DONTUNMAP | MOVE)],
    ['unaligned new address', 'EINVAL', () => p.mremap(A, PG, PG, MREMAP_FIXED | MOVE, 0x50000001)],
    ['overlapping new range', 'EINVAL', () => p.mremap(A, 4 * PG, 4 * PG, MREMAP_FIXED | MOVE, A + 2 * PG)],
    ['an unmapped old address', 'EFAULT', () => p.mremap(0x50000000, PG, 2 * PG, MOVE)],
    ['an unmapped old address, same size', 'EFAULT', () => p.mremap(0x50000000, PG, PG)],
    ['same size beyond the VMA (a no-op)', 'ok', () => p.mremap(A, 16 * PG, 16 * PG)],
    ['growing in place into the next VMA', 'ENOMEM', () => p.mremap(A, 8 * PG, 12 * PG)],
    ['growing a range that does not end the VMA', 'ENOMEM', () => p.mremap(A, 4 * PG, 6 * PG)],
    ['growing a range that spans two VMAs', 'EFAULT', () => p.mremap(A, 10 * PG, 12 * PG, MOVE)],
    [
      'MREMAP_FIXED below vm.mmap_min_addr',
      'EPERM',
      () => {
        const u = m.spawn({ uid: 1000 });
        u.mmap(A, PG, RW, FIXED);
        return u.mremap(A, PG, PG, MREMAP_FIXED | MOVE, PG);
      },
    ],
  ])('%s → %s', (_name, code, fn) => {
    expect(errno(fn)).toBe(code);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('refuses to grow a VM_DONTEXPAND mapping (EFAULT) or DONTUNMAP it (EINVAL)', () => {
    const { m, p } = boot();
    p.mmap(A, 4 * PG, RW, FIXED);
    m.vm.vmas.vm_flags[p.mm.mt.walk(A)] |= VM_DONTEXPAND;
    expect(errno(() => p.mremap(A, 4 * PG, 8 * PG, MOVE))).toBe('EFAULT');
    expect(errno(() => p.mremap(A, 4 * PG, 4 * PG, MOVE | MREMAP_DONTUNMAP))).toBe('EINVAL');
    expect(p.mremap(A, 4 * PG, 2 * PG)).toBe(A); // shrinking is fine
  });

  it('checks RLIMIT_AS (ENOMEM) and RLIMIT_MEMLOCK for a locked mapping (EAGAIN)', () => {
    const { m } = boot();
    const u = m.spawn({ uid: 1000, rlimits: { memlock: 64 * 1024, as: 128 * 1024 } });
    u.mmap(A, 8 * PG, RW, FIXED | MAP_LOCKED);
    expect(errno(() => u.mremap(A, 8 * PG, 32 * PG, MOVE))).toBe('EAGAIN');
    u.setrlimit(RLIMIT_AS, { rlim_cur: 48 * 1024, rlim_max: 128 * 1024 });
    expect(errno(() => u.mremap(A, 8 * PG, 16 * PG, MOVE))).toBe('ENOMEM');
    expect(errno(() => u.mremap(A, 8 * PG, 12 * PG, MOVE))).toBe('ok');
  });
});

describe('in place', () => {
  it('shrinks (also across VMAs) and grows into free space, merging with the next VMA', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED | MAP_POPULATE);
    p.mmap(A + 8 * PG, 2 * PG, PROT_READ, FIXED);
    expect(p.mremap(A, 10 * PG, 4 * PG)).toBe(A);
    expect(vmas(m, p).map(([s, e]) => [s, e])).toEqual([[A, A + 4 * PG]]);
    expect(p.mm.rss[1]).toBe(4);
    p.mmap(A + 16 * PG, 4 * PG, RW, FIXED);
    const pfn = pte(m, p, A)!.pfn;
    expect(p.mremap(A, 4 * PG, 16 * PG)).toBe(A);
    expect(vmas(m, p).map(([s, e]) => [s, e])).toEqual([[A, A + 20 * PG]]);
    expect(pte(m, p, A)!.pfn).toBe(pfn);
    expect(p.mm.total_vm).toBe(20);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('populates what a locked mapping gains', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED | MAP_LOCKED);
    p.mremap(A, 8 * PG, 16 * PG);
    expect(p.mm.locked_vm).toBe(16);
    expect(p.mm.rss[1]).toBe(16);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('moving', () => {
  it('moves the pages themselves: same frames, same index, old range unmapped', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED | MAP_POPULATE);
    p.mmap(A + 8 * PG, PG, PROT_READ, FIXED);
    const pfns = [0, 1, 2, 3].map((i) => pte(m, p, A + i * PG)!.pfn);
    const b = p.mremap(A, 8 * PG, 16 * PG, MOVE);
    expect(b).not.toBe(A);
    expect([0, 1, 2, 3].map((i) => pte(m, p, b + i * PG)!.pfn)).toEqual(pfns);
    expect(pte(m, p, A)).toBeNull();
    const found: number[] = [];
    rmap_walk(
      m.vm,
      pfns[2],
      (_vm, _mm, _vma, addr) => {
        found.push(addr);
      },
      null,
    );
    expect(found).toEqual([b + 2 * PG]);
    expect(p.mm.total_vm).toBe(17);
    expect(p.touch(b, 8 * PG, { write: true })).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('moves whole PTE tables when both ranges are 2 MiB aligned, PTE by PTE otherwise', () => {
    const { m, p } = boot();
    p.mmap(0x80000000, 8 * MiB, RW, FIXED | MAP_POPULATE);
    const allocated = m.vm.pt.count;
    p.mremap(0x80000000, 8 * MiB, 8 * MiB, MOVE | MREMAP_FIXED, 0x90000000);
    // The same GiB, so the same PMD table: its four PTE tables just move to other entries.
    expect(m.vm.pt.count).toBe(allocated);
    p.mremap(0x90000000, 8 * MiB, 8 * MiB, MOVE | MREMAP_FIXED, 0xa0000000 + PG);
    expect(m.vm.pt.count).toBe(allocated + 1); // 5 PTE tables for an unaligned 8 MiB
    expect(p.mm.rss[1]).toBe(2048);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('with MREMAP_FIXED replaces what the target held, and moves several VMAs keeping their gaps', () => {
    const { m, p } = boot();
    p.mmap(0x45000000, 4 * PG, PROT_READ, FIXED | MAP_POPULATE);
    p.mmap(0x44000000, 2 * PG, RW, FIXED | MAP_POPULATE);
    p.mmap(0x44003000, 2 * PG, PROT_READ, FIXED);
    expect(p.mremap(0x44000000, 5 * PG, 5 * PG, MOVE | MREMAP_FIXED, 0x45000000)).toBe(0x45000000);
    // Each VMA replaces only its own target: the gap keeps a page of the old mapping, which merges
    // with the second moved VMA (as on 6.18).
    expect(vmas(m, p).map(([s, e]) => [s.toString(16), e.toString(16)])).toEqual([
      ['45000000', '45002000'],
      ['45002000', '45005000'],
    ]);
    expect(p.mm.rss[1]).toBe(2);
    expect(errno(() => p.mremap(0x44fff000, 6 * PG, 6 * PG, MOVE | MREMAP_FIXED, 0x46000000))).toBe('EFAULT');
    expect(m.invariantViolations()).toEqual([]);
  });

  it('keeps mlocked pages mlocked and moves locked_vm with the VMA', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED | MAP_LOCKED);
    p.mmap(A + 8 * PG, PG, PROT_READ, FIXED);
    const b = p.mremap(A, 8 * PG, 12 * PG, MOVE);
    expect(p.mm.locked_vm).toBe(12);
    expect(p.mm.rss[1]).toBe(12);
    expect(m.mm.frames.flags[pte(m, p, b)!.pfn] & PG_mlocked).toBe(PG_mlocked);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('MREMAP_DONTUNMAP', () => {
  it('moves the pages and leaves the old VMA mapped and empty', () => {
    const { m, p } = boot();
    p.mmap(A, 2 * PG, RW, FIXED | MAP_POPULATE);
    const pfn = pte(m, p, A)!.pfn;
    const b = p.mremap(A, 2 * PG, 2 * PG, MOVE | MREMAP_DONTUNMAP, 0x4d000000);
    expect(b).toBe(0x4d000000); // the hint is taken
    expect(pte(m, p, b)!.pfn).toBe(pfn);
    expect(pte(m, p, A)).toBeNull();
    expect(vmas(m, p)).toHaveLength(2);
    p.touch(A, PG);
    expect(pte(m, p, A)!.pfn).toBe(m.mm.zero_pfn);
    expect(p.mm.total_vm).toBe(4);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('of a locked VMA: the source loses VM_LOCKED on its whole extent (locked_vm kept consistent)', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED | MAP_LOCKED);
    const b = p.mremap(A + 2 * PG, 2 * PG, 2 * PG, MOVE | MREMAP_DONTUNMAP);
    expect(vmas(m, p, A, A + 8 * PG)).toEqual([[A, A + 8 * PG, expect.any(Number)]]);
    expect(vmas(m, p, A, A + 8 * PG)[0][2] & VM_LOCKED).toBe(0);
    expect(vmas(m, p, b, b + 2 * PG)[0][2] & VM_LOCKED).toBe(VM_LOCKED);
    expect(p.mm.locked_vm).toBe(2); // 6.18 would show 10 (see mremap.ts)
    expect(m.invariantViolations()).toEqual([]);
  });
});
