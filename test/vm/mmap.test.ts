/**
 * mmap(2)/munmap(2) on anonymous private memory: argument checks with Linux's errnos, placement,
 * merging and splitting of VMAs, MAP_FIXED and MAP_FIXED_NOREPLACE, limits.
 */
import { describe, expect, it } from 'vitest';
import { ErrnoError } from '../../src/lib/errno.ts';
import { Machine } from '../../src/sim/machine.ts';
import { DEFAULT_MMAP_BASE } from '../../src/vm/mm_struct.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
  MAP_LOCKED,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_SHARED_VALIDATE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const MiB = 2 ** 20;

function setup() {
  const m = Machine.boot({
    memory: '2G',
    cpus: 2,
    early: { unmovable: 0, reclaimable: 0, transient_fraction: 0 },
  });
  return { m, p: m.spawn({ cpu: 1 }) };
}

function errno(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ErrnoError) return e.code;
    throw e;
  }
  return 'ok';
}

describe('mmap() argument checks', () => {
  const { p } = setup();
  it.each([
    ['length 0', () => p.mmap(0, 0, RW, ANON), 'EINVAL'],
    ['no MAP_SHARED or MAP_PRIVATE', () => p.mmap(0, 4096, RW, MAP_ANONYMOUS), 'EINVAL'],
    ['unaligned offset', () => p.mmap(0, 4096, RW, ANON, -1, 100), 'EINVAL'],
    ['unaligned MAP_FIXED address', () => p.mmap(0x10000001, 4096, RW, ANON | MAP_FIXED), 'EINVAL'],
    [
      'MAP_FIXED below mmap_min_addr without CAP_SYS_RAWIO',
      () =>
        setup()
          .m.spawn({ uid: 1000 })
          .mmap(4096, 4096, RW, ANON | MAP_FIXED),
      'EPERM',
    ],
    ['length beyond the address space', () => p.mmap(0, 2 ** 48, RW, ANON), 'ENOMEM'],
    ['a file mapping of a closed fd', () => p.mmap(0, 4096, RW, MAP_PRIVATE, 3), 'EBADF'],
    [
      'unknown flags with MAP_SHARED_VALIDATE',
      () => p.mmap(0, 4096, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS | 0x400000),
      'EOPNOTSUPP',
    ],
    ['MAP_GROWSDOWN (documented as refused)', () => p.mmap(0, 4096, RW, ANON | MAP_GROWSDOWN), 'EINVAL'],
    ['a file descriptor that is not open', () => p.mmap(0, 4096, RW, MAP_SHARED, 7), 'EBADF'],
  ])('%s → %s', (_name, fn, code) => {
    expect(errno(fn)).toBe(code);
  });

  it('refuses a locked mapping past RLIMIT_MEMLOCK without CAP_IPC_LOCK (EAGAIN)', () => {
    const { m } = setup();
    const user = m.spawn({ uid: 1000, rlimits: { memlock: 64 * 1024 } });
    expect(errno(() => user.mmap(0, 128 * 1024, RW, ANON | MAP_LOCKED))).toBe('EAGAIN');
    expect(errno(() => user.mmap(0, 64 * 1024, RW, ANON | MAP_LOCKED))).toBe('ok');
    expect(user.mm.locked_vm).toBe(16);
  });

  it('refuses past RLIMIT_AS and vm.max_map_count (ENOMEM)', () => {
    const { m } = setup();
    const q = m.spawn({ rlimits: { as: 8 * MiB } });
    expect(errno(() => q.mmap(0, 16 * MiB, RW, ANON))).toBe('ENOMEM');
    // do_mmap() refuses once map_count is past the limit, so one mapping more than the limit
    // fits (measured on 6.18.44 with a C program).
    m.vm.sysctl.max_map_count = 3;
    const r = m.spawn();
    for (let i = 0; i < 4; i++) r.mmap(0, 4096, i % 2 ? PROT_READ : RW, ANON);
    expect(r.mm.map_count).toBe(4);
    expect(errno(() => r.mmap(0, 4096, PROT_NONE, ANON))).toBe('ENOMEM');
  });
});

describe('placement and VMAs', () => {
  it('places mappings top-down below mmap_base and merges compatible neighbours', () => {
    const { p } = setup();
    const a = p.mmap(0, 1 * MiB, RW, ANON);
    expect(a).toBe(DEFAULT_MMAP_BASE - MiB);
    const b = p.mmap(0, 1 * MiB, RW, ANON);
    expect(b).toBe(a - MiB);
    expect(p.mm.map_count).toBe(1);
    const c = p.mmap(0, 1 * MiB, PROT_READ, ANON);
    expect(c).toBe(b - MiB);
    expect(p.mm.map_count).toBe(2);
  });

  it('uses a free hint, and MAP_FIXED replaces what was there', () => {
    const { p } = setup();
    const hint = 0x100000000;
    expect(p.mmap(hint, 64 * 1024, RW, ANON)).toBe(hint);
    p.touch(hint, 64 * 1024, { write: true });
    expect(p.mm.rss[1]).toBe(16);
    expect(p.mmap(hint + 16384, 16384, PROT_READ, ANON | MAP_FIXED)).toBe(hint + 16384);
    expect(p.mm.rss[1]).toBe(12);
    expect(p.mm.map_count).toBe(3);
    expect(errno(() => p.mmap(hint, 4096, RW, ANON | MAP_FIXED_NOREPLACE))).toBe('EEXIST');
  });

  it('munmap at vm.max_map_count trims an end but refuses to punch a hole (6.18)', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 16 * 4096, RW, ANON);
    m.vm.sysctl.max_map_count = p.mm.map_count;
    p.munmap(a, 4096); // trims the head: no new VMA
    p.munmap(a + 15 * 4096, 4096); // trims the tail
    expect(errno(() => p.munmap(a + 4 * 4096, 4096))).toBe('ENOMEM');
    expect(p.mm.map_count).toBe(1);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('munmap splits a VMA and frees the pages and page tables of the hole', () => {
    const { m, p } = setup();
    const a = p.mmap(0x40000000, 64 * MiB, RW, ANON | MAP_POPULATE | MAP_FIXED);
    expect(p.mm.rss[1]).toBe(16384);
    const tablesBefore = m.vm.pt.count;
    p.munmap(a + 16 * MiB, 32 * MiB);
    expect(p.mm.map_count).toBe(2);
    expect(p.mm.rss[1]).toBe(8192);
    expect(tablesBefore - m.vm.pt.count).toBe(16); // 32 MiB of PTE tables, 2 MiB each
    expect(errno(() => p.munmap(a + 1, 4096))).toBe('EINVAL');
    expect(errno(() => p.munmap(a, 0))).toBe('EINVAL');
    p.munmap(a, 64 * MiB); // unmapping holes too is fine
    expect(p.mm.map_count).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('exit', () => {
  it('returns every page, page table and VMA', () => {
    const { m } = setup();
    m.kernel.drain_all_pages();
    const before = m.readFile('/proc/buddyinfo');
    const tables = m.vm.pt.count;
    const vmas = m.vm.vmas.count;
    const p = m.spawn();
    p.mmap(0, 32 * MiB, RW, ANON | MAP_POPULATE);
    p.mmap(0x200000000, 8 * MiB, PROT_READ, ANON | MAP_POPULATE);
    p.exit();
    m.kernel.drain_all_pages();
    expect(m.vm.pt.count).toBe(tables);
    expect(m.vm.vmas.count).toBe(vmas);
    expect(m.readFile('/proc/buddyinfo')).toBe(before);
    expect(errno(() => p.mmap(0, 4096, RW, ANON))).toBe('ESRCH');
    expect(m.invariantViolations()).toEqual([]);
  });
});
