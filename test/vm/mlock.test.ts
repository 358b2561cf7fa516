/**
 * mlock(2), mlock2(2), munlock(2), mlockall(2), munlockall(2): Linux 6.18's errnos and
 * RLIMIT_MEMLOCK rules (measured on our machines), VM_LOCKED / VM_LOCKONFAULT on split and merged
 * VMAs, locked_vm, and the pages: PG_mlocked on the unevictable list, with the kernel's
 * unevictable_pgs_* events and the Mlocked / Unevictable lines of /proc/meminfo.
 */
import { describe, expect, it } from 'vitest';
import { PG_mlocked, PG_unevictable } from '../../src/mm/page-flags.ts';
import { FaultError } from '../../src/vm/process.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_LOCKED,
  MAP_POPULATE,
  MAP_PRIVATE,
  MCL_CURRENT,
  MCL_FUTURE,
  MCL_ONFAULT,
  MLOCK_ONFAULT,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { VM_LOCKED, VM_LOCKONFAULT } from '../../src/vm/vma.ts';
import { boot, delta, errno, MiB, meminfo, PG, pte, vmas } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const FIXED = ANON | MAP_FIXED;
const A = 0x40000000;
const EVENTS = [
  'unevictable_pgs_mlocked',
  'unevictable_pgs_munlocked',
  'unevictable_pgs_culled',
  'unevictable_pgs_rescued',
  'unevictable_pgs_cleared',
];

function lockFlags(f: number): number {
  return f & (VM_LOCKED | VM_LOCKONFAULT);
}

describe('mlock() and munlock() errnos', () => {
  it.each([
    ['an unmapped range', 'ENOMEM', (p: P) => p.mlock(0x50000000, PG)],
    ['length 0', 'ok', (p: P) => p.mlock(A, 0)],
    ['an unaligned address (rounded out)', 'ok', (p: P) => p.mlock(A + 5, 10)],
    ['mlock2 with unknown flags', 'EINVAL', (p: P) => p.mlock2(A, PG, 2)],
    ['mlock2 with no flags', 'ok', (p: P) => p.mlock2(A, PG, 0)],
    ['a wrapping length, with CAP_IPC_LOCK', 'EINVAL', (p: P) => p.mlock(A, 2 ** 64 - PG)],
    ['munlock of a wrapping length', 'EINVAL', (p: P) => p.munlock(A, 2 ** 64 - PG)],
    ['munlock of an unmapped range', 'ENOMEM', (p: P) => p.munlock(0x50000000, PG)],
  ])('%s → %s', (_name, code, fn) => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED);
    expect(errno(() => fn(p))).toBe(code);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('locks the VMAs before a hole, unpopulated, and fails with ENOMEM', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED);
    p.munmap(A + 4 * PG, PG);
    expect(errno(() => p.mlock(A, 8 * PG))).toBe('ENOMEM');
    expect(vmas(m, p).map(([, , f]) => lockFlags(f))).toEqual([VM_LOCKED, 0]);
    expect(p.mm.locked_vm).toBe(4);
    expect(p.mm.rss[1]).toBe(0); // measured: Locked 0 kB, Rss 0 kB
    expect(errno(() => p.munlock(A, 8 * PG))).toBe('ENOMEM');
    expect(p.mm.locked_vm).toBe(0);
    expect(errno(() => p.mlock(A + 4 * PG, 4 * PG))).toBe('ENOMEM');
    expect(p.mm.locked_vm).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('locks a PROT_NONE mapping (and the pages it keeps) but reports ENOMEM: it cannot be faulted in', () => {
    const { m, p } = boot();
    p.mmap(A, 4 * PG, RW, FIXED | MAP_POPULATE);
    p.mprotect(A, 4 * PG, PROT_NONE);
    const d = delta(m, EVENTS, () => expect(errno(() => p.mlock(A, 4 * PG))).toBe('ENOMEM'));
    expect(d.unevictable_pgs_mlocked).toBe(4);
    expect(lockFlags(vmas(m, p)[0][2])).toBe(VM_LOCKED);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('lets a read-only mapping be locked without pages (the zero page is never mlocked)', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, PROT_READ, FIXED);
    const d = delta(m, EVENTS, () => p.mlock(A, 8 * PG));
    expect(d.unevictable_pgs_mlocked).toBe(0);
    expect(pte(m, p, A)!.pfn).toBe(m.mm.zero_pfn);
  });
});

type P = ReturnType<typeof boot>['p'];

describe('RLIMIT_MEMLOCK and CAP_IPC_LOCK', () => {
  function user() {
    const { m } = boot();
    const u = m.spawn({ uid: 1000, rlimits: { memlock: 64 * 1024 } });
    u.mmap(A, 64 * PG, RW, FIXED);
    return { m, u };
  }

  it('counts pages already locked in the range only once (count_mm_mlocked_page_nr)', () => {
    const { m, u } = user();
    expect(errno(() => u.mlock(A, 16 * PG))).toBe('ok');
    expect(errno(() => u.mlock(A, 16 * PG))).toBe('ok');
    expect(errno(() => u.mlock(A + 8 * PG, 16 * PG))).toBe('ENOMEM');
    u.munlock(A, 8 * PG);
    expect(errno(() => u.mlock(A + 8 * PG, 16 * PG))).toBe('ok');
    expect(u.mm.locked_vm).toBe(16);
    expect(errno(() => u.mlock(A, 2 ** 64 - PG))).toBe('ENOMEM');
    expect(m.invariantViolations()).toEqual([]);
  });

  it('gives EPERM when the limit is 0, for mlock, mlockall and MAP_LOCKED but not munlock', () => {
    const { m } = boot();
    const u = m.spawn({ uid: 1000, rlimits: { memlock: 0 } });
    u.mmap(A, 4 * PG, RW, FIXED);
    expect(errno(() => u.mlock(A, PG))).toBe('EPERM');
    expect(errno(() => u.mlockall(MCL_CURRENT))).toBe('EPERM');
    expect(errno(() => u.mmap(0, PG, PROT_READ, ANON | MAP_LOCKED))).toBe('EPERM');
    expect(errno(() => u.munlock(A, PG))).toBe('ok');
    expect(errno(() => u.munlockall())).toBe('ok');
  });

  it('lets CAP_IPC_LOCK lock beyond the limit', () => {
    const { m } = boot();
    const u = m.spawn({ uid: 1000, caps: [14], rlimits: { memlock: 0 } });
    u.mmap(A, 64 * PG, RW, FIXED);
    expect(errno(() => u.mlock(A, 64 * PG))).toBe('ok');
    expect(u.mm.locked_vm).toBe(64);
  });
});

describe('locked pages', () => {
  it('are mlocked and unevictable, with 6.18’s events, and unlocked again by munlock and munmap', () => {
    const { m, p } = boot();
    p.mmap(A, 256 * PG, RW, FIXED | MAP_POPULATE);
    const mlocked = meminfo(m, 'Mlocked');
    let d = delta(m, EVENTS, () => p.mlock(A, 256 * PG));
    expect(d).toEqual({
      unevictable_pgs_mlocked: 256,
      unevictable_pgs_munlocked: 0,
      unevictable_pgs_culled: 256,
      unevictable_pgs_rescued: 0,
      unevictable_pgs_cleared: 0,
    });
    expect(meminfo(m, 'Mlocked') - mlocked).toBe(1024);
    expect(meminfo(m, 'Unevictable')).toBe(1024);
    const f = m.mm.frames.flags[pte(m, p, A)!.pfn];
    expect(f & (PG_mlocked | PG_unevictable)).toBe(PG_mlocked | PG_unevictable);
    expect(p.mm.locked_vm).toBe(256);
    d = delta(m, EVENTS, () => p.munlock(A, 256 * PG));
    expect(d.unevictable_pgs_munlocked).toBe(256);
    expect(d.unevictable_pgs_rescued).toBe(256);
    expect(meminfo(m, 'Mlocked')).toBe(mlocked);
    p.mlock(A, 256 * PG);
    d = delta(m, EVENTS, () => p.munmap(A, 256 * PG));
    expect(d.unevictable_pgs_munlocked).toBe(256);
    expect(d.unevictable_pgs_rescued).toBe(256);
    expect(d.unevictable_pgs_cleared).toBe(0);
    expect(p.mm.locked_vm).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('are faulted in by mlock(), each counted as mlocked and culled', () => {
    const { m, p } = boot();
    p.mmap(A, 256 * PG, RW, FIXED);
    const d = delta(m, EVENTS, () => p.mlock(A, 256 * PG));
    expect(d.unevictable_pgs_mlocked).toBe(256);
    expect(d.unevictable_pgs_culled).toBe(256);
    expect(p.mm.rss[1]).toBe(256);
  });

  it('with MLOCK_ONFAULT: only present pages at once, the rest as they fault', () => {
    const { m, p } = boot();
    p.mmap(A, 256 * PG, RW, FIXED);
    p.touch(A, 16 * PG, { write: true });
    let d = delta(m, EVENTS, () => p.mlock2(A, 256 * PG, MLOCK_ONFAULT));
    expect(d.unevictable_pgs_mlocked).toBe(16);
    expect(p.mm.rss[1]).toBe(16);
    expect(lockFlags(vmas(m, p)[0][2])).toBe(VM_LOCKED | VM_LOCKONFAULT);
    expect(p.mm.locked_vm).toBe(256);
    d = delta(m, EVENTS, () => p.touch(A + 16 * PG, 16 * PG, { write: true }));
    expect(d.unevictable_pgs_mlocked).toBe(16);
    d = delta(m, EVENTS, () => p.touch(A + 40 * PG, PG)); // the zero page
    expect(d.unevictable_pgs_mlocked).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('mlock2(MLOCK_ONFAULT) of a locked VMA only changes its flags', () => {
    const { m, p } = boot();
    p.mmap(A, 64 * PG, RW, FIXED);
    p.mlock(A, 64 * PG);
    const d = delta(m, EVENTS, () => p.mlock2(A, 64 * PG, MLOCK_ONFAULT));
    expect(Object.values(d)).toEqual([0, 0, 0, 0, 0]);
    expect(lockFlags(vmas(m, p)[0][2])).toBe(VM_LOCKED | VM_LOCKONFAULT);
    expect(p.mm.locked_vm).toBe(64);
  });

  it('split the VMA when part is locked and merge it back when unlocked', () => {
    const { m, p } = boot();
    p.mmap(A, 16 * PG, RW, FIXED | MAP_POPULATE);
    p.mlock(A + 4 * PG, 4 * PG);
    expect(vmas(m, p).map(([s, e, f]) => [(s - A) / PG, (e - A) / PG, lockFlags(f)])).toEqual([
      [0, 4, 0],
      [4, 8, VM_LOCKED],
      [8, 16, 0],
    ]);
    expect(p.mm.locked_vm).toBe(4);
    p.mlock(A, 8 * PG);
    expect(vmas(m, p)).toHaveLength(2);
    p.munlock(A, 16 * PG);
    expect(vmas(m, p)).toHaveLength(1);
    expect(p.mm.locked_vm).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('stay mlocked while any VM_LOCKED mapping remains (fork shares them unlocked)', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED | MAP_LOCKED | MAP_POPULATE);
    p.mprotect(A, 8 * PG, PROT_READ); // so that locking in the child does not break COW
    const child = p.fork();
    expect(child.mm.locked_vm).toBe(0);
    expect(lockFlags(vmas(m, child)[0][2])).toBe(0);
    const pfn = pte(m, p, A)!.pfn;
    expect(pte(m, child, A)!.pfn).toBe(pfn);
    const d = delta(m, EVENTS, () => child.mlock(A, 8 * PG)); // the shared pages gain a second lock
    expect(d.unevictable_pgs_mlocked).toBe(0);
    expect(pte(m, child, A)!.pfn).toBe(pfn);
    p.munlock(A, 8 * PG);
    expect(m.mm.frames.flags[pfn] & PG_mlocked).toBe(PG_mlocked);
    child.munlock(A, 8 * PG);
    expect(m.mm.frames.flags[pfn] & PG_mlocked).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
    child.exit();
  });

  it('a writable locked range breaks COW when locked: mlock() faults it in for writing', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED | MAP_POPULATE);
    const child = p.fork();
    const pfn = pte(m, p, A)!.pfn;
    child.mlock(A, 8 * PG);
    expect(pte(m, child, A)!.pfn).not.toBe(pfn);
    expect(m.mm.frames.flags[pfn] & PG_mlocked).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
    child.exit();
  });

  it('a COW copy in a locked VMA is mlocked; the page left to the unlocked child is not', () => {
    const { m, p } = boot();
    p.mmap(A, 8 * PG, RW, FIXED | MAP_LOCKED | MAP_POPULATE);
    const child = p.fork();
    const old = pte(m, p, A)!.pfn;
    const d = delta(m, EVENTS, () => p.touch(A, PG, { write: true }));
    expect(d).toMatchObject({
      unevictable_pgs_mlocked: 1,
      unevictable_pgs_munlocked: 1,
      unevictable_pgs_rescued: 1,
    });
    expect(m.mm.frames.flags[pte(m, p, A)!.pfn] & PG_mlocked).toBe(PG_mlocked);
    expect(m.mm.frames.flags[old] & PG_mlocked).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
    child.exit();
  });
});

describe('mlockall() and munlockall()', () => {
  it.each([
    [0, 'EINVAL'],
    [MCL_ONFAULT, 'EINVAL'],
    [MCL_CURRENT | 8, 'EINVAL'],
    [MCL_CURRENT, 'ok'],
    [MCL_FUTURE | MCL_ONFAULT, 'ok'],
  ])('flags %d → %s', (flags, code) => {
    const { p } = boot();
    expect(errno(() => p.mlockall(flags))).toBe(code);
  });

  it('MCL_CURRENT locks and populates everything; ENOMEM when total_vm exceeds the limit', () => {
    const { m } = boot();
    const u = m.spawn({ uid: 1000, rlimits: { memlock: 64 * 1024 } });
    u.mmap(A, 8 * PG, RW, FIXED);
    u.mmap(A + 16 * PG, 4 * PG, PROT_NONE, FIXED); // cannot be populated: ignored
    expect(errno(() => u.mlockall(MCL_CURRENT))).toBe('ok');
    expect(u.mm.locked_vm).toBe(12);
    expect(u.mm.rss[1]).toBe(8);
    u.munlockall();
    u.mmap(A + 32 * PG, 8 * PG, RW, FIXED);
    expect(errno(() => u.mlockall(MCL_CURRENT))).toBe('ENOMEM');
    expect(errno(() => u.mlockall(MCL_FUTURE))).toBe('ok'); // no total_vm check without MCL_CURRENT
    expect(m.invariantViolations()).toEqual([]);
  });

  it('MCL_FUTURE locks later mappings (EAGAIN past the limit); munlockall cancels it', () => {
    const { m } = boot();
    const u = m.spawn({ uid: 1000, rlimits: { memlock: 64 * 1024 } });
    u.mlockall(MCL_FUTURE);
    expect(errno(() => u.mmap(0, 128 * 1024, RW, ANON))).toBe('EAGAIN');
    const a = u.mmap(0, 32 * 1024, RW, ANON);
    expect(u.mm.locked_vm).toBe(8);
    expect(u.mm.rss[1]).toBe(8);
    const d = delta(m, EVENTS, () => u.munlockall());
    expect(d.unevictable_pgs_munlocked).toBe(8);
    expect(u.mm.def_flags).toBe(0);
    u.mmap(a + 32 * 1024, PG, RW, ANON | MAP_FIXED);
    expect(u.mm.locked_vm).toBe(0);
  });

  it('MCL_FUTURE | MCL_ONFAULT maps locked-on-fault without populating; calls do not stack', () => {
    const { m, p } = boot();
    p.mlockall(MCL_FUTURE | MCL_ONFAULT);
    const a = p.mmap(0, 16 * PG, RW, ANON);
    expect(p.mm.rss[1]).toBe(0);
    expect(lockFlags(vmas(m, p)[0][2])).toBe(VM_LOCKED | VM_LOCKONFAULT);
    p.touch(a, PG, { write: true });
    expect(m.mm.frames.flags[pte(m, p, a)!.pfn] & PG_mlocked).toBe(PG_mlocked);
    p.mlockall(MCL_CURRENT); // without MCL_FUTURE: def_flags cleared
    expect(p.mm.def_flags).toBe(0);
    expect(lockFlags(vmas(m, p)[0][2])).toBe(VM_LOCKED);
    expect(p.mm.rss[1]).toBe(16);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('is not inherited by a fork() child', () => {
    const { p } = boot();
    p.mlockall(MCL_CURRENT | MCL_FUTURE);
    p.mmap(0, 4 * PG, RW, ANON);
    const child = p.fork();
    expect(child.mm.def_flags).toBe(0);
    expect(child.mm.locked_vm).toBe(0);
    child.mmap(0, PG, RW, ANON);
    expect(child.mm.locked_vm).toBe(0);
    child.exit();
  });

  it('exits cleanly with everything locked', () => {
    const { m, p } = boot();
    m.kernel.drain_all_pages();
    const before = m.readFile('/proc/buddyinfo');
    const q = m.spawn();
    q.mlockall(MCL_CURRENT | MCL_FUTURE);
    q.mmap(0, 4 * MiB, RW, ANON);
    expect(() => q.touch(0, 1)).toThrow(FaultError);
    q.exit();
    m.kernel.drain_all_pages();
    expect(meminfo(m, 'Mlocked')).toBe(0);
    expect(m.readFile('/proc/buddyinfo')).toBe(before);
    expect(m.invariantViolations()).toEqual([]);
    void p;
  });
});
