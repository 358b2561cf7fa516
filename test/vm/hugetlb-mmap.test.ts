/** MAP_HUGETLB: reservations, faults, SIGBUS, munmap, fork, exit, and a property test. */
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import type { Machine } from '../../src/sim/machine.ts';
import {
  _PAGE_PRESENT,
  _PAGE_PROTNONE,
  _PAGE_RW,
  PTRS_PER_TABLE,
  pgd_index,
  pmd_index,
  pud_index,
} from '../../src/vm/pgtable.ts';
import {
  MADV_DONTNEED,
  MADV_FREE,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_HUGE_1GB,
  MAP_HUGE_2MB,
  MAP_HUGETLB,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { bootHugetlb, errno, hugePool, MiB } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const HP = 2 * MiB;
const pool = hugePool;
const boot = bootHugetlb;

describe('MAP_HUGETLB', () => {
  it('reserves at mmap, takes a pool page per huge page at fault, and munmap returns it', () => {
    const m = boot();
    const p = m.spawn();
    const a = p.mmap(0, 3 * MiB, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
    expect(a % HP).toBe(0);
    expect(pool(m)).toEqual([4, 4, 2, 0]); // length rounded up to 2 huge pages
    expect(p.touch(a, 4096, { write: true })).toBe(1);
    expect(pool(m)).toEqual([4, 3, 1, 0]);
    expect(p.touch(a + 4096, 4096, { write: true })).toBe(0); // same huge page: no new page
    expect(pool(m)).toEqual([4, 3, 1, 0]);
    m.checkInvariants();
    expect(errno(() => p.munmap(a, 4096))).toBe('EINVAL');
    p.munmap(a, 4 * MiB);
    expect(pool(m)).toEqual([4, 4, 0, 0]);
    m.checkInvariants();
  });

  it('ENOMEM when the pool cannot cover the reservation, unless MAP_NORESERVE; then SIGBUS', () => {
    const m = boot(2);
    const p = m.spawn();
    expect(errno(() => p.mmap(0, 3 * HP, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB))).toBe('ENOMEM');
    expect(pool(m)).toEqual([2, 2, 0, 0]);
    const a = p.mmap(0, 3 * HP, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_NORESERVE);
    p.touch(a, 2 * HP, { write: true });
    expect(() => p.touch(a + 2 * HP, 4096, { write: true })).toThrow(/SIGBUS/);
    m.checkInvariants();
  });

  it('overcommit: surplus pages grow the pool and go back to the buddy allocator', () => {
    const m = boot(1);
    m.writeFile('/proc/sys/vm/nr_overcommit_hugepages', '2');
    const p = m.spawn();
    const a = p.mmap(0, 3 * HP, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB);
    expect(pool(m)).toEqual([3, 3, 3, 2]);
    p.touch(a, 3 * HP, { write: true });
    expect(pool(m)).toEqual([3, 0, 0, 2]);
    p.munmap(a, 3 * HP);
    expect(pool(m)).toEqual([1, 1, 0, 0]);
    m.checkInvariants();
  });

  it('MAP_HUGE_1GB needs 1 GiB pages; a bad size is EINVAL; MAP_FIXED must be aligned', () => {
    const m = boot();
    const p = m.spawn();
    expect(errno(() => p.mmap(0, HP, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_1GB))).toBe(
      'ENOMEM',
    );
    expect(errno(() => p.mmap(0, HP, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (25 << 26)))).toBe(
      'EINVAL',
    );
    expect(
      errno(() => p.mmap(0x40001000, HP, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_FIXED)),
    ).toBe('EINVAL');
    expect(p.mmap(0, HP, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB) % HP).toBe(0);
  });

  it('fork: shared pages are shared, private ones copied on write; exit returns everything', () => {
    const m = boot(4);
    const p = m.spawn();
    const s = p.mmap(0, HP, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB);
    const a = p.mmap(0, HP, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
    p.touch(s, HP, { write: true });
    p.touch(a, HP, { write: true });
    const c = p.fork();
    expect(pool(m)).toEqual([4, 2, 0, 0]);
    c.touch(s, 4096, { write: true });
    expect(pool(m)).toEqual([4, 2, 0, 0]);
    c.touch(a, 4096, { write: true }); // copy-on-write takes a page
    expect(pool(m)).toEqual([4, 1, 0, 0]);
    m.checkInvariants();
    c.exit();
    expect(pool(m)).toEqual([4, 2, 0, 0]);
    p.exit();
    expect(pool(m)).toEqual([4, 4, 0, 0]);
    m.checkInvariants();
  });

  it('an owner that cannot copy takes its page back from the child, which gets SIGBUS (unmap_ref_private)', () => {
    const m = boot(1);
    const p = m.spawn();
    const a = p.mmap(0, HP, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
    p.touch(a, HP, { write: true });
    const c = p.fork();
    expect(pool(m)).toEqual([1, 0, 0, 0]);
    // No page to copy into: the parent, which owns the reservation, keeps writing its page ...
    expect(() => p.touch(a, 4096, { write: true })).not.toThrow();
    expect(pool(m)).toEqual([1, 0, 0, 0]);
    // ... and the child, whose mapping lost it, is killed at its next access there.
    expect(() => c.touch(a, 4096)).toThrow(/SIGBUS/);
    m.checkInvariants();
    c.exit();
    p.exit();
    expect(pool(m)).toEqual([1, 1, 0, 0]);
  });

  test.prop(
    [
      fc.array(
        fc.record({
          op: fc.constantFrom('mmap', 'touch', 'munmap', 'fork', 'exit', 'resize', 'overcommit'),
          n: fc.integer({ min: 0, max: 6 }),
          flags: fc.constantFrom(
            MAP_PRIVATE,
            MAP_SHARED,
            MAP_PRIVATE | MAP_NORESERVE,
            MAP_SHARED | MAP_NORESERVE,
          ),
        }),
        { maxLength: 25 },
      ),
    ],
    { numRuns: 15 },
  )('random hugetlb operations keep the invariants', (ops) => {
    const m = boot(3);
    let procs = [m.spawn()];
    const maps: Array<{ pi: number; a: number; len: number }> = [];
    for (const { op, n, flags } of ops) {
      const pi = n % procs.length;
      const p = procs[pi];
      try {
        if (op === 'mmap') {
          const len = (1 + (n % 3)) * HP;
          maps.push({ pi, a: p.mmap(0, len, RW, flags | MAP_ANONYMOUS | MAP_HUGETLB), len });
        } else if (op === 'touch' && maps.length) {
          const x = maps[n % maps.length];
          const q = procs[x.pi];
          if (q && !q.exited) q.touch(x.a, x.len, { write: n % 2 === 0 });
        } else if (op === 'munmap' && maps.length) {
          const [x] = maps.splice(n % maps.length, 1);
          const q = procs[x.pi];
          if (q && !q.exited) q.munmap(x.a, x.len);
        } else if (op === 'fork' && procs.length < 4) {
          procs.push(p.fork());
        } else if (op === 'exit' && procs.length > 1) {
          p.exit();
          procs = procs.filter((q) => q !== p);
          maps.length = 0;
        } else if (op === 'resize') {
          m.writeFile('/proc/sys/vm/nr_hugepages', String(n));
        } else if (op === 'overcommit') {
          m.writeFile('/proc/sys/vm/nr_overcommit_hugepages', String(n % 3));
        }
      } catch (e) {
        if (!/ENOMEM|SIGBUS/.test(String(e))) throw e;
      }
      m.checkInvariants();
    }
    for (const p of procs) p.exit();
    const [, free, resv] = pool(m);
    expect(resv).toBe(0);
    expect(free).toBe(pool(m)[0]);
    m.checkInvariants();
  });
});

describe('mprotect, madvise and /proc/<pid>/status on hugetlb mappings', () => {
  const leaf = (m: Machine, p: ReturnType<Machine['spawn']>, addr: number): number => {
    const pt = m.vm.pt;
    const vpn = addr / 4096;
    let t = pt.child(p.mm.pgd, pgd_index(vpn));
    if (t >= 0) t = pt.child(t, pud_index(vpn));
    return t < 0 ? 0 : pt.bits[t * PTRS_PER_TABLE + pmd_index(vpn)];
  };
  const hugetlbKb = (m: Machine, p: ReturnType<Machine['spawn']>): number =>
    Number(/HugetlbPages:\s+(\d+) kB/.exec(m.readFile(`/proc/${p.pid}/status`))![1]);

  it('mprotect rewrites the leaves (private: read-only until the next write) and splits only at 2 MiB', () => {
    const m = boot();
    const p = m.spawn();
    const a = p.mmap(0, 2 * HP, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
    p.touch(a, 2 * HP, { write: true });
    expect(leaf(m, p, a) & _PAGE_RW).toBe(_PAGE_RW);
    expect(errno(() => p.mprotect(a, 4096, PROT_READ))).toBe('EINVAL');
    expect(errno(() => p.mprotect(a + 4096, HP, PROT_READ))).toBe('EINVAL');
    p.mprotect(a, HP, PROT_READ);
    expect(leaf(m, p, a) & _PAGE_RW).toBe(0);
    expect(leaf(m, p, a + HP) & _PAGE_RW).toBe(_PAGE_RW);
    p.mprotect(a, HP, PROT_NONE);
    expect(leaf(m, p, a) & (_PAGE_PRESENT | _PAGE_PROTNONE)).toBe(_PAGE_PROTNONE);
    p.mprotect(a, HP, RW);
    expect(leaf(m, p, a) & (_PAGE_PRESENT | _PAGE_RW)).toBe(_PAGE_PRESENT);
    expect(pool(m)).toEqual([4, 2, 0, 0]);
    p.touch(a, 4096, { write: true }); // the only mapping: reused, no new page
    expect(leaf(m, p, a) & _PAGE_RW).toBe(_PAGE_RW);
    expect(pool(m)).toEqual([4, 2, 0, 0]);
    m.checkInvariants();
    // A shared writable mapping gets writable leaves back at once.
    const s = p.mmap(0, HP, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB);
    p.touch(s, 4096, { write: true });
    p.mprotect(s, HP, PROT_READ);
    expect(leaf(m, p, s) & _PAGE_RW).toBe(0);
    p.mprotect(s, HP, RW);
    expect(leaf(m, p, s) & _PAGE_RW).toBe(_PAGE_RW);
    m.checkInvariants();
  });

  it('MADV_DONTNEED zaps whole huge pages (end rounded down); unaligned start and MADV_FREE: EINVAL', () => {
    const m = boot();
    const p = m.spawn();
    const a = p.mmap(0, 3 * HP, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
    p.touch(a, 3 * HP, { write: true });
    expect(pool(m)).toEqual([4, 1, 0, 0]);
    expect(hugetlbKb(m, p)).toBe(3 * 2048);
    expect(errno(() => p.madvise(a + 4096, HP, MADV_DONTNEED))).toBe('EINVAL');
    expect(errno(() => p.madvise(a, HP, MADV_FREE))).toBe('EINVAL');
    p.madvise(a, HP + 4096, MADV_DONTNEED); // the second huge page stays
    expect(leaf(m, p, a)).toBe(0);
    expect(leaf(m, p, a + HP)).not.toBe(0);
    expect(pool(m)).toEqual([4, 2, 0, 0]);
    expect(hugetlbKb(m, p)).toBe(2 * 2048);
    p.madvise(a + HP, 4096, MADV_DONTNEED); // rounds down to nothing
    expect(leaf(m, p, a + HP)).not.toBe(0);
    m.checkInvariants();
    // The zapped page faults in again (no reservation left: from the free pool).
    p.touch(a, 4096, { write: true });
    expect(pool(m)).toEqual([4, 1, 0, 0]);
    const q = p.fork();
    expect(hugetlbKb(m, q)).toBe(3 * 2048);
    q.exit();
    p.munmap(a, 3 * HP);
    expect(hugetlbKb(m, p)).toBe(0);
    expect(pool(m)).toEqual([4, 4, 0, 0]);
    m.checkInvariants();
  });
});
