/**
 * brk(2) as the raw system call (it returns the new break, or the old one when refused) with the
 * heap at DEFAULT_START_BRK, and getrlimit(2)/setrlimit(2) for RLIMIT_AS, RLIMIT_DATA and
 * RLIMIT_MEMLOCK with soft and hard limits. Behaviour as measured on 6.18 (`setarch -R`).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_START_BRK } from '../../src/vm/mm_struct.ts';
import { RLIM_INFINITY } from '../../src/vm/process.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MCL_FUTURE,
  PROT_READ,
  PROT_WRITE,
  RLIMIT_AS,
  RLIMIT_DATA,
  RLIMIT_MEMLOCK,
  RLIMIT_NOFILE,
  RLIMIT_STACK,
} from '../../src/vm/uapi.ts';
import { VM_LOCKED } from '../../src/vm/vma.ts';
import { boot, errno, PG, vmas } from './helpers.ts';

const B = DEFAULT_START_BRK;
const FIXED = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

function heap(m: ReturnType<typeof boot>['m'], p: ReturnType<typeof boot>['p']): Array<[number, number]> {
  return vmas(m, p, B, B + 2 ** 30).map(([s, e]) => [s - B, e - B]);
}

describe('brk()', () => {
  it('starts empty at start_brk; brk(0) and requests below it return the current break', () => {
    const { m, p } = boot();
    expect(p.brk(0)).toBe(B);
    expect(p.brk(B - PG)).toBe(B);
    expect(heap(m, p)).toEqual([]);
  });

  it('keeps the exact break and maps whole pages up to it, shrinking and growing', () => {
    const { m, p } = boot();
    expect(p.brk(B + 1)).toBe(B + 1);
    expect(heap(m, p)).toEqual([[0, PG]]);
    expect(p.brk(B + 5000)).toBe(B + 5000);
    expect(heap(m, p)).toEqual([[0, 2 * PG]]);
    p.touch(B, 5000, { write: true });
    expect(p.brk(B + 3)).toBe(B + 3);
    expect(heap(m, p)).toEqual([[0, PG]]);
    expect(p.mm.rss[1]).toBe(1);
    expect(p.brk(B)).toBe(B);
    expect(heap(m, p)).toEqual([]);
    expect(p.mm.data_vm).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('stays a page away from the next mapping', () => {
    const { m, p } = boot();
    p.mmap(B + 0x10000, PG, PROT_READ, FIXED);
    expect(p.brk(B + 0x10000)).toBe(B);
    expect(p.brk(B + 0xf000)).toBe(B + 0xf000);
    expect(p.brk(B + 0xf001)).toBe(B + 0xf000);
    expect(heap(m, p)).toEqual([
      [0, 0xf000],
      [0x10000, 0x11000],
    ]);
  });

  it('shrinks across holes the program punched, and fails when nothing is left to shrink', () => {
    const { m, p } = boot();
    p.brk(B + 8 * PG);
    p.munmap(B + 2 * PG, PG);
    expect(p.brk(B + PG)).toBe(B + PG);
    expect(heap(m, p)).toEqual([[0, PG]]);
    p.munmap(B, PG);
    expect(p.brk(B)).toBe(B + PG); // no VMA in [B, B + PG): refused
  });

  it('grows the heap VMA rather than adding one, until its flags differ', () => {
    const { m, p } = boot();
    p.brk(B + 4 * PG);
    p.brk(B + 8 * PG);
    expect(heap(m, p)).toEqual([[0, 8 * PG]]);
    p.mprotect(B, 8 * PG, PROT_READ);
    p.brk(B + 12 * PG);
    expect(heap(m, p)).toEqual([
      [0, 8 * PG],
      [8 * PG, 12 * PG],
    ]);
    expect(p.mm.map_count).toBe(2);
  });

  it('obeys RLIMIT_DATA, RLIMIT_AS and, after mlockall(MCL_FUTURE), RLIMIT_MEMLOCK (and populates)', () => {
    const { m } = boot();
    const u = m.spawn({ uid: 1000, rlimits: { data: 64 * 1024, memlock: 32 * 1024 } });
    expect(u.brk(B + 128 * 1024)).toBe(B);
    expect(u.brk(B + 64 * 1024)).toBe(B + 64 * 1024);
    u.brk(B);
    u.mlockall(MCL_FUTURE);
    expect(u.brk(B + 64 * 1024)).toBe(B);
    expect(u.brk(B + 32 * 1024)).toBe(B + 32 * 1024);
    expect(u.mm.rss[1]).toBe(8);
    expect(vmas(m, u)[0][2] & VM_LOCKED).toBe(VM_LOCKED);
    expect(u.mm.locked_vm).toBe(8);
    const v = m.spawn({ rlimits: { as: 16 * 1024 } });
    expect(v.brk(B + 32 * 1024)).toBe(B);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('is inherited by a fork() child', () => {
    const { m, p } = boot();
    p.brk(B + 3 * PG + 7);
    p.touch(B, PG, { write: true });
    const child = p.fork();
    expect(child.brk(0)).toBe(B + 3 * PG + 7);
    expect(child.brk(B + 10 * PG)).toBe(B + 10 * PG);
    expect(p.brk(0)).toBe(B + 3 * PG + 7);
    expect(m.invariantViolations()).toEqual([]);
    child.exit();
  });
});

describe('getrlimit() and setrlimit()', () => {
  it('report the defaults: 8 MiB of MEMLOCK, unlimited AS and DATA', () => {
    const { p } = boot();
    expect(p.getrlimit(RLIMIT_MEMLOCK)).toEqual({ rlim_cur: 8 * 2 ** 20, rlim_max: 8 * 2 ** 20 });
    expect(p.getrlimit(RLIMIT_AS)).toEqual({ rlim_cur: RLIM_INFINITY, rlim_max: RLIM_INFINITY });
    expect(p.getrlimit(RLIMIT_DATA)).toEqual({ rlim_cur: RLIM_INFINITY, rlim_max: RLIM_INFINITY });
  });

  it('as on 6.18: EINVAL for soft above hard or an unknown resource, EPERM for raising the hard limit', () => {
    const { m } = boot();
    const u = m.spawn({ uid: 1000, rlimits: { memlock: 64 * 1024 } });
    const set = (cur: number, max: number, r = RLIMIT_MEMLOCK) =>
      errno(() => u.setrlimit(r, { rlim_cur: cur, rlim_max: max }));
    expect(set(64 * 1024, 128 * 1024)).toBe('EPERM');
    expect(set(128 * 1024, 64 * 1024)).toBe('EINVAL');
    expect(set(32 * 1024, 32 * 1024)).toBe('ok');
    expect(set(64 * 1024, 64 * 1024)).toBe('EPERM'); // lowered hard limits stay lowered
    expect(set(0, 32 * 1024)).toBe('ok');
    expect(set(0, 0, 99)).toBe('EINVAL');
    expect(set(-1, 0)).toBe('EINVAL');
    expect(errno(() => u.getrlimit(16))).toBe('EINVAL');
    expect(errno(() => u.getrlimit(RLIMIT_STACK))).toBe('ENOSYS');
    expect(u.getrlimit(RLIMIT_NOFILE)).toEqual({ rlim_cur: 1024, rlim_max: 4096 });
    expect(u.getrlimit(RLIMIT_MEMLOCK)).toEqual({ rlim_cur: 0, rlim_max: 32 * 1024 });
    expect(errno(() => u.mlock(0, PG))).toBe('EPERM');
  });

  it('lets CAP_SYS_RESOURCE raise hard limits, and fork() children inherit the limits', () => {
    const { p } = boot();
    p.setrlimit(RLIMIT_MEMLOCK, { rlim_cur: 2 ** 30, rlim_max: RLIM_INFINITY });
    const child = p.fork();
    expect(child.getrlimit(RLIMIT_MEMLOCK)).toEqual({ rlim_cur: 2 ** 30, rlim_max: RLIM_INFINITY });
    child.exit();
  });

  it('accepts separate hard limits at spawn', () => {
    const { m } = boot();
    const u = m.spawn({ uid: 1000, rlimits: { memlock: 0 }, rlimits_max: { memlock: 64 * 1024 } });
    expect(u.getrlimit(RLIMIT_MEMLOCK)).toEqual({ rlim_cur: 0, rlim_max: 64 * 1024 });
    u.setrlimit(RLIMIT_MEMLOCK, { rlim_cur: 64 * 1024, rlim_max: 64 * 1024 });
    u.mmap(0x40000000, 4 * PG, PROT_READ | PROT_WRITE, FIXED);
    expect(errno(() => u.mlock(0x40000000, 4 * PG))).toBe('ok');
  });
});
