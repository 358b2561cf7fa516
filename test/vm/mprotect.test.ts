/**
 * mprotect(2): Linux 6.18's errnos (measured on our machines), splitting and merging VMAs
 * (VM_ACCOUNT included), and the PTE permissions that follow: write-protection, the immediate
 * upgrade of exclusive anonymous pages, PROT_NONE entries, and population of locked mappings.
 */
import { describe, expect, it } from 'vitest';
import { _PAGE_PROTNONE, _PAGE_RW } from '../../src/vm/pgtable.ts';
import { FaultError } from '../../src/vm/process.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_LOCKED,
  MAP_POPULATE,
  MAP_PRIVATE,
  PROT_EXEC,
  PROT_GROWSDOWN,
  PROT_GROWSUP,
  PROT_NONE,
  PROT_READ,
  PROT_SEM,
  PROT_WRITE,
  RLIMIT_DATA,
} from '../../src/vm/uapi.ts';
import { VM_ACCOUNT, VM_EXEC, VM_READ, VM_WRITE } from '../../src/vm/vma.ts';
import { boot, delta, errno, PG, pte, vmas } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const FIXED = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
const A = 0x40000000;

describe('mprotect() errnos', () => {
  const { m, p } = boot();
  p.mmap(A, 8 * PG, RW, FIXED);
  it.each([
    ['unaligned address', 'EINVAL', () => p.mprotect(A + 1, PG, PROT_READ)],
    ['length 0', 'ok', () => p.mprotect(A, 0, PROT_READ)],
    ['length 0 at an unaligned address', 'EINVAL', () => p.mprotect(A + 1, 0, PROT_READ)],
    ['PROT_SEM (accepted, ignored)', 'ok', () => p.mprotect(A, PG, RW | PROT_SEM)],
    ['prot bit 0x10', 'EINVAL', () => p.mprotect(A, PG, 0x10)],
    ['prot bit 0x80000000', 'EINVAL', () => p.mprotect(A, PG, 0x80000000)],
    [
      'PROT_GROWSDOWN on a VMA that does not grow down',
      'EINVAL',
      () => p.mprotect(A, PG, PROT_READ | PROT_GROWSDOWN),
    ],
    ['PROT_GROWSUP (no VM_GROWSUP on x86-64)', 'EINVAL', () => p.mprotect(A, PG, PROT_READ | PROT_GROWSUP)],
    ['both GROWS flags', 'EINVAL', () => p.mprotect(A, PG, PROT_READ | PROT_GROWSUP | PROT_GROWSDOWN)],
    ['a length that wraps', 'ENOMEM', () => p.mprotect(A, 2 ** 64 - PG, PROT_READ)],
    ['beyond the address space', 'ENOMEM', () => p.mprotect(0x7ffffffff000, 2 * PG, PROT_READ)],
    ['an unmapped range', 'ENOMEM', () => p.mprotect(0x50000000, PG, PROT_READ)],
    ['a negative length', 'EINVAL', () => p.mprotect(A, -1, PROT_READ)],
  ])('%s → %s', (_name, code, fn) => {
    expect(errno(fn)).toBe(code);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('changes the VMAs before a hole, then fails with ENOMEM (nothing when it starts in one)', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED);
    p.munmap(A + 4 * PG, PG);
    expect(errno(() => p.mprotect(A, 8 * PG, PROT_READ))).toBe('ENOMEM');
    expect(vmas(m, p).map(([s, e, f]) => [s, e, f & (VM_READ | VM_WRITE)])).toEqual([
      [A, A + 4 * PG, VM_READ],
      [A + 5 * PG, A + 8 * PG, VM_READ | VM_WRITE],
    ]);
    expect(errno(() => p.mprotect(A + 4 * PG, 4 * PG, PROT_NONE))).toBe('ENOMEM');
    expect(vmas(m, p)[1][2] & VM_WRITE).toBe(VM_WRITE);
  });
});

describe('VMAs split and merge', () => {
  it('as on 6.18: R next to RW merges once writable (gaining VM_ACCOUNT), splits in three, merges back', () => {
    const { m, p } = boot();
    p.mmap(A, 4 * PG, PROT_READ, FIXED);
    p.mmap(A + 4 * PG, 4 * PG, RW, FIXED);
    expect(vmas(m, p)).toHaveLength(2);
    p.mprotect(A, 4 * PG, RW);
    expect(vmas(m, p)).toEqual([[A, A + 8 * PG, expect.any(Number)]]);
    expect(vmas(m, p)[0][2] & VM_ACCOUNT).toBe(VM_ACCOUNT);
    p.mprotect(A + 2 * PG, 4 * PG, PROT_READ);
    expect(vmas(m, p).map(([s, e]) => [s - A, e - A])).toEqual([
      [0, 2 * PG],
      [2 * PG, 6 * PG],
      [6 * PG, 8 * PG],
    ]);
    // No anonymous page yet: read-only again drops VM_ACCOUNT; writable again merges back.
    expect(vmas(m, p)[1][2] & VM_ACCOUNT).toBe(0);
    p.mprotect(A + 2 * PG, 4 * PG, RW);
    expect(vmas(m, p)).toHaveLength(1);
    expect(p.mm.map_count).toBe(1);
    p.mprotect(A, PG, PROT_READ | PROT_EXEC);
    expect(vmas(m, p).map(([s, , f]) => [s - A, f & (VM_READ | VM_WRITE | VM_EXEC)])).toEqual([
      [0, VM_READ | VM_EXEC],
      [PG, VM_READ | VM_WRITE],
    ]);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('keeps VM_ACCOUNT on a VMA with pages, so it still merges after a round trip', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED);
    p.touch(A, 8 * PG, { write: true });
    p.mprotect(A + 2 * PG, 2 * PG, PROT_READ);
    expect(vmas(m, p)[1][2] & VM_ACCOUNT).toBe(VM_ACCOUNT);
    p.mprotect(A + 2 * PG, 2 * PG, RW);
    expect(vmas(m, p)).toHaveLength(1);
    expect(p.mm.data_vm).toBe(8);
  });

  it('fails with ENOMEM when a split would pass vm.max_map_count', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED);
    m.vm.sysctl.max_map_count = 1;
    expect(errno(() => p.mprotect(A + PG, PG, PROT_READ))).toBe('ENOMEM');
    expect(vmas(m, p)).toHaveLength(1);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('checks RLIMIT_DATA when a private mapping turns writable', () => {
    const { p } = boot();
    p.setrlimit(RLIMIT_DATA, { rlim_cur: 16 * PG, rlim_max: 16 * PG });
    p.mmap(A, 32 * PG, PROT_READ, FIXED);
    expect(errno(() => p.mprotect(A, 32 * PG, RW))).toBe('ENOMEM');
    expect(errno(() => p.mprotect(A, 16 * PG, RW))).toBe('ok');
    expect(p.mm.data_vm).toBe(16);
  });
});

describe('PTE permissions', () => {
  it('write-protects on RW → R and upgrades exclusive pages at once on R → RW', () => {
    const { m, p } = boot();
    p.mmap(A, 4 * PG, RW, FIXED | MAP_POPULATE);
    const pfn = pte(m, p, A)!.pfn;
    p.mprotect(A, 4 * PG, PROT_READ);
    expect(pte(m, p, A)!.bits & _PAGE_RW).toBe(0);
    expect(() => p.touch(A, 1, { write: true })).toThrow(FaultError);
    p.mprotect(A, 4 * PG, RW);
    expect(pte(m, p, A)!.bits & _PAGE_RW).toBe(_PAGE_RW);
    expect(p.touch(A, 4 * PG, { write: true })).toBe(0); // measured: 0 faults on 6.18
    expect(pte(m, p, A)!.pfn).toBe(pfn);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('leaves the zero page and pages shared with a child read-only', () => {
    const { m, p } = boot();
    p.mmap(A, 4 * PG, RW, FIXED);
    p.touch(A, PG); // zero page
    p.touch(A + PG, PG, { write: true });
    const child = p.fork();
    p.mprotect(A, 4 * PG, PROT_READ);
    p.mprotect(A, 4 * PG, RW);
    expect(pte(m, p, A)!.bits & _PAGE_RW).toBe(0);
    expect(pte(m, p, A + PG)!.bits & _PAGE_RW).toBe(0);
    expect(p.touch(A, 2 * PG, { write: true })).toBe(2); // both copied on write
    child.exit();
    expect(m.invariantViolations()).toEqual([]);
  });

  it('turns PTEs into PROT_NONE entries that keep their pages', () => {
    const { m, p } = boot();
    p.mmap(A, 4 * PG, RW, FIXED | MAP_POPULATE);
    const pfn = pte(m, p, A)!.pfn;
    p.mprotect(A, 4 * PG, PROT_NONE);
    expect(pte(m, p, A)).toEqual({ pfn, bits: expect.any(Number) });
    expect(pte(m, p, A)!.bits & _PAGE_PROTNONE).toBe(_PAGE_PROTNONE);
    expect(p.mm.rss[1]).toBe(4);
    expect(() => p.touch(A, 1)).toThrow(/SEGV_ACCERR/);
    p.mprotect(A, 4 * PG, RW);
    expect(p.touch(A, 4 * PG, { write: true })).toBe(0);
    expect(pte(m, p, A)!.pfn).toBe(pfn);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('populates a locked private mapping that turns writable (breaking COW at once)', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, PROT_READ, FIXED | MAP_LOCKED);
    expect(p.mm.rss[1]).toBe(0); // the zero page only
    const d = delta(m, ['unevictable_pgs_mlocked', 'unevictable_pgs_culled'], () =>
      p.mprotect(A, 8 * PG, RW),
    );
    expect(d).toEqual({ unevictable_pgs_mlocked: 8, unevictable_pgs_culled: 8 });
    expect(p.mm.rss[1]).toBe(8);
    expect(m.invariantViolations()).toEqual([]);
  });
});
