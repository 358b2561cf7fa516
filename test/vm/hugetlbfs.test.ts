/** hugetlbfs files and memfd_create(MFD_HUGETLB): page cache of huge pages, reservations, mremap. */
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import type { Machine } from '../../src/sim/machine.ts';
import { hugetlbfs_nr_pages } from '../../src/vm/hugetlbfs.ts';
import { PTRS_PER_TABLE, pgd_index, pmd_index, pud_index } from '../../src/vm/pgtable.ts';
import type { Process } from '../../src/vm/process.ts';
import {
  MAP_FIXED,
  MAP_HUGE_1GB,
  MAP_HUGETLB,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_CLOEXEC,
  MFD_HUGE_1GB,
  MFD_HUGE_2MB,
  MFD_HUGE_SHIFT,
  MFD_HUGETLB,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  O_CREAT,
  O_RDONLY,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { bootHugetlb, errno, hugePool, MiB } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const HP = 2 * MiB;
const pool = hugePool;
const boot = bootHugetlb;
/** The pfn a 2 MiB hugetlb leaf of `p` maps at `addr`, or -1. */
function leaf(m: Machine, p: Process, addr: number): number {
  const pt = m.vm.pt;
  const vpn = addr / 4096;
  const pud = pt.child(p.mm.pgd, pgd_index(vpn));
  const pmd = pud < 0 ? -1 : pt.child(pud, pud_index(vpn));
  if (pmd < 0) return -1;
  const e = pmd * PTRS_PER_TABLE + pmd_index(vpn);
  return pt.bits[e] ? pt.pfn[e] : -1;
}
const pgfault = (m: Machine): number => Number(/^pgfault (\d+)$/m.exec(m.readFile('/proc/vmstat'))![1]);

describe('memfd_create(MFD_HUGETLB)', () => {
  it("follows 6.18's flag rules: EINVAL for size bits without MFD_HUGETLB or unknown flags, ENODEV for a size with no hstate", () => {
    const m = boot();
    const p = m.spawn();
    expect(errno(() => p.memfd_create('a', MFD_HUGE_2MB))).toBe('EINVAL');
    expect(errno(() => p.memfd_create('a', MFD_HUGETLB | 0x20))).toBe('EINVAL');
    expect(errno(() => p.memfd_create('a', MFD_HUGETLB | (20 << MFD_HUGE_SHIFT)))).toBe('ENODEV');
    expect(errno(() => p.memfd_create('a', MFD_HUGETLB | MFD_CLOEXEC))).toBe('ok');
    expect(errno(() => p.memfd_create('a', MFD_HUGETLB | MFD_HUGE_2MB))).toBe('ok');
    expect(errno(() => p.memfd_create('a', MFD_HUGETLB | MFD_HUGE_1GB))).toBe('ok');
    expect(pool(m)).toEqual([4, 4, 0, 0]); // size 0, VM_NORESERVE: nothing reserved
    m.checkInvariants();
  });

  it('ftruncate must be huge page aligned; write() is EINVAL; read() stops at i_size', () => {
    const m = boot();
    const p = m.spawn();
    const fd = p.memfd_create('buf', MFD_HUGETLB);
    expect(errno(() => p.ftruncate(fd, 4096))).toBe('EINVAL');
    p.ftruncate(fd, 2 * HP);
    expect(errno(() => p.write(fd, 4096))).toBe('EINVAL');
    expect(p.pread(fd, 8192, 2 * HP - 4096)).toBe(4096);
    expect(p.read(fd, 4096)).toBe(4096);
    expect(pool(m)).toEqual([4, 4, 0, 0]); // truncating up reserves nothing
  });

  it('mmap MAP_SHARED reserves the range; faults take pool pages into the page cache, one fault per huge page', () => {
    const m = boot();
    const p = m.spawn();
    const fd = p.memfd_create('buf', MFD_HUGETLB);
    p.ftruncate(fd, 2 * HP);
    const a = p.mmap(0, 2 * HP, RW, MAP_SHARED, fd);
    expect(a % HP).toBe(0);
    expect(pool(m)).toEqual([4, 4, 2, 0]);
    expect(m.readFile(`/proc/${p.pid}/maps`)).toMatch(/\/memfd:buf \(deleted\)/);
    const before = pgfault(m);
    expect(p.touch(a, HP, { write: true })).toBe(1);
    expect(pgfault(m) - before).toBe(1);
    expect(pool(m)).toEqual([4, 3, 1, 0]);
    expect(p.touch(a, 2 * HP)).toBe(1);
    expect(pool(m)).toEqual([4, 2, 0, 0]);
    m.checkInvariants();
    // munmap: the pages stay in the file.
    p.munmap(a, 2 * HP);
    expect(pool(m)).toEqual([4, 2, 0, 0]);
    m.checkInvariants();
    // Mapped again: the same pages, no new faults' allocations.
    const b = p.mmap(0, 2 * HP, RW, MAP_SHARED, fd);
    p.touch(b, 2 * HP, { write: true });
    expect(pool(m)).toEqual([4, 2, 0, 0]);
    // The last close of the unnamed file (with no mapping left) frees them.
    p.munmap(b, 2 * HP);
    p.close(fd);
    expect(pool(m)).toEqual([4, 4, 0, 0]);
    m.checkInvariants();
  });

  it('ENOMEM when the pool cannot cover the mapping; MAP_NORESERVE maps and SIGBUSes when the pool is empty', () => {
    const m = boot(2);
    const p = m.spawn();
    const fd = p.memfd_create('big', MFD_HUGETLB);
    p.ftruncate(fd, 3 * HP);
    expect(errno(() => p.mmap(0, 3 * HP, RW, MAP_SHARED, fd))).toBe('ENOMEM');
    expect(pool(m)).toEqual([2, 2, 0, 0]);
    const a = p.mmap(0, 3 * HP, RW, MAP_SHARED | MAP_NORESERVE, fd);
    expect(pool(m)).toEqual([2, 2, 0, 0]);
    p.touch(a, 2 * HP, { write: true });
    expect(pool(m)).toEqual([2, 0, 0, 0]);
    expect(() => p.touch(a + 2 * HP, 4096)).toThrow(/SIGBUS/);
    m.checkInvariants();
  });

  it('offset and MAP_FIXED address must be huge page aligned (EINVAL); a length is rounded up', () => {
    const m = boot();
    const p = m.spawn();
    const fd = p.memfd_create('x', MFD_HUGETLB);
    p.ftruncate(fd, 4 * HP);
    expect(errno(() => p.mmap(0, HP, RW, MAP_SHARED, fd, 4096))).toBe('EINVAL');
    expect(errno(() => p.mmap(0x40001000, HP, RW, MAP_SHARED | MAP_FIXED, fd))).toBe('EINVAL');
    expect(pool(m)).toEqual([4, 4, 0, 0]);
    const a = p.mmap(0, 4096, RW, MAP_SHARED, fd, HP);
    expect(pool(m)).toEqual([4, 4, 1, 0]);
    p.touch(a, 4096, { write: true });
    expect(m.vm.mm.frames.index[leaf(m, p, a)]).toBe(1);
    // MAP_HUGETLB with a hugetlbfs file is allowed (its MAP_HUGE_ bits ignored).
    expect(errno(() => p.mmap(0, HP, RW, MAP_SHARED | MAP_HUGETLB | MAP_HUGE_1GB, fd))).toBe('ok');
    m.checkInvariants();
  });

  it('SIGBUS past i_size; shrinking unmaps and frees the pages past the new end and their reservations', () => {
    const m = boot();
    const p = m.spawn();
    const fd = p.memfd_create('x', MFD_HUGETLB);
    p.ftruncate(fd, HP);
    // A read-only mapping does not extend i_size (a writable one would).
    const a = p.mmap(0, 3 * HP, PROT_READ, MAP_SHARED, fd);
    expect(pool(m)).toEqual([4, 4, 3, 0]);
    p.touch(a, 4096);
    expect(() => p.touch(a + HP, 4096)).toThrow(/SIGBUS/);
    p.ftruncate(fd, 3 * HP);
    p.touch(a, 3 * HP);
    expect(pool(m)).toEqual([4, 1, 0, 0]);
    p.ftruncate(fd, HP);
    expect(pool(m)).toEqual([4, 3, 0, 0]);
    expect(leaf(m, p, a + HP)).toBe(-1);
    expect(() => p.touch(a + 2 * HP, 4096)).toThrow(/SIGBUS/);
    m.checkInvariants();
    p.ftruncate(fd, 0);
    expect(pool(m)).toEqual([4, 4, 0, 0]);
    expect(leaf(m, p, a)).toBe(-1);
    m.checkInvariants();
  });

  it('a writable mapping past i_size extends it', () => {
    const m = boot();
    const p = m.spawn();
    const fd = p.memfd_create('x', MFD_HUGETLB);
    const a = p.mmap(0, 2 * HP, RW, MAP_SHARED, fd);
    expect(p.lseek(fd, 0, 2)).toBe(2 * HP);
    p.touch(a, 2 * HP, { write: true });
    expect(pool(m)).toEqual([4, 2, 0, 0]);
  });
});

describe('hugetlbfs at /dev/hugepages', () => {
  it('processes mapping the same file share its pages; unlink + last close + munmap frees them', () => {
    const m = boot();
    const p = m.spawn();
    const q = m.spawn();
    const fd = p.open('/dev/hugepages/x', O_CREAT | O_RDWR, 0o666);
    p.ftruncate(fd, 2 * HP);
    const a = p.mmap(0, 2 * HP, RW, MAP_SHARED, fd);
    p.touch(a, 2 * HP, { write: true });
    expect(pool(m)).toEqual([4, 2, 0, 0]);
    const qfd = q.open('/dev/hugepages/x', O_RDWR);
    const b = q.mmap(0, 2 * HP, RW, MAP_SHARED, qfd);
    expect(pool(m)).toEqual([4, 2, 0, 0]); // regions exist: nothing new reserved
    q.touch(b, 2 * HP);
    expect(leaf(m, q, b)).toBe(leaf(m, p, a));
    expect(leaf(m, q, b + HP)).toBe(leaf(m, p, a + HP));
    expect(pool(m)).toEqual([4, 2, 0, 0]);
    expect(m.vm.mm.frames.mapcount[leaf(m, p, a)]).toBe(2);
    m.checkInvariants();
    p.munmap(a, 2 * HP);
    p.close(fd);
    q.close(qfd);
    p.unlink('/dev/hugepages/x');
    expect(pool(m)).toEqual([4, 2, 0, 0]); // q still maps it
    const inode = m.vm.files.inode_of(m.vm.files.file(m.vm.vmas.vm_file[q.mm.mt.walk(b)]).inode.mapping)!;
    expect(hugetlbfs_nr_pages(m.vm, inode)).toBe(2);
    q.munmap(b, 2 * HP);
    expect(pool(m)).toEqual([4, 4, 0, 0]);
    m.checkInvariants();
  });

  it('a named file keeps its pages with no process; O_TRUNC and unlink free them', () => {
    const m = boot();
    const p = m.spawn();
    const fd = p.open('/dev/hugepages/y', O_CREAT | O_RDWR, 0o600);
    const a = p.mmap(0, HP, RW, MAP_SHARED, fd);
    p.touch(a, 4096, { write: true });
    p.exit();
    expect(pool(m)).toEqual([4, 3, 0, 0]);
    const q = m.spawn();
    q.close(q.open('/dev/hugepages/y', O_RDWR | 0o1000)); // O_TRUNC
    expect(pool(m)).toEqual([4, 4, 0, 0]);
    const fd2 = q.open('/dev/hugepages/y', O_RDWR);
    const b = q.mmap(0, HP, RW, MAP_SHARED, fd2);
    q.touch(b, 4096, { write: true });
    q.munmap(b, HP);
    q.close(fd2);
    expect(pool(m)).toEqual([4, 3, 0, 0]);
    q.unlink('/dev/hugepages/y');
    expect(pool(m)).toEqual([4, 4, 0, 0]);
    m.checkInvariants();
  });

  it('MAP_PRIVATE reads the cached page and copies it on write; its reservation covers the copy', () => {
    const m = boot();
    const p = m.spawn();
    const fd = p.open('/dev/hugepages/z', O_CREAT | O_RDWR, 0o600);
    const s = p.mmap(0, HP, RW, MAP_SHARED, fd);
    p.touch(s, 4096, { write: true });
    const cached = leaf(m, p, s);
    expect(pool(m)).toEqual([4, 3, 0, 0]);
    const a = p.mmap(0, HP, RW, MAP_PRIVATE, fd);
    expect(pool(m)).toEqual([4, 3, 1, 0]);
    p.touch(a, 4096);
    expect(leaf(m, p, a)).toBe(cached);
    expect(pool(m)).toEqual([4, 3, 1, 0]);
    p.touch(a, 4096, { write: true });
    expect(leaf(m, p, a)).not.toBe(cached);
    expect(pool(m)).toEqual([4, 2, 0, 0]);
    m.checkInvariants();
    p.munmap(a, HP);
    expect(pool(m)).toEqual([4, 3, 0, 0]);
    p.munmap(s, HP);
    p.close(fd);
    p.unlink('/dev/hugepages/z');
    expect(pool(m)).toEqual([4, 4, 0, 0]);
    m.checkInvariants();
  });

  it('read-only open: MAP_SHARED with PROT_WRITE is EACCES, PROT_READ maps', () => {
    const m = boot();
    const p = m.spawn();
    p.close(p.open('/dev/hugepages/r', O_CREAT | O_RDWR, 0o644));
    const fd = p.open('/dev/hugepages/r', O_RDONLY);
    expect(errno(() => p.mmap(0, HP, RW, MAP_SHARED, fd))).toBe('EACCES');
    expect(errno(() => p.ftruncate(fd, HP))).toBe('EINVAL');
    expect(errno(() => p.mmap(0, HP, PROT_READ, MAP_SHARED, fd))).toBe('ok');
    expect(pool(m)).toEqual([4, 4, 1, 0]);
  });
});

describe('mremap of hugetlb mappings', () => {
  it("6.18's align_hugetlb(): unaligned addresses and growth are EINVAL; shrinking frees the tail", () => {
    const m = boot();
    const p = m.spawn();
    const a = p.mmap(0, 3 * HP, RW, MAP_PRIVATE | 0x20 | MAP_HUGETLB);
    p.touch(a, 3 * HP, { write: true });
    expect(pool(m)).toEqual([4, 1, 0, 0]);
    expect(errno(() => p.mremap(a, 3 * HP, 4 * HP, MREMAP_MAYMOVE))).toBe('EINVAL');
    expect(errno(() => p.mremap(a + 4096, HP, HP))).toBe('EINVAL');
    expect(errno(() => p.mremap(a, 3 * HP, HP, MREMAP_MAYMOVE | MREMAP_FIXED, 0x7000_0000_1000))).toBe(
      'EINVAL',
    );
    // Sizes round up to the huge page size: 4 MiB + 1 page is 6 MiB, no change.
    expect(p.mremap(a, 3 * HP, 2 * HP + 4096)).toBe(a);
    expect(pool(m)).toEqual([4, 1, 0, 0]);
    expect(p.mremap(a, 3 * HP, HP + 4096)).toBe(a);
    expect(pool(m)).toEqual([4, 2, 0, 0]);
    expect(() => p.touch(a + 2 * HP, 4096)).toThrow(/SIGSEGV/);
    m.checkInvariants();
  });

  it('MREMAP_FIXED moves the leaves and the reservations with them', () => {
    const m = boot();
    const p = m.spawn();
    const a = p.mmap(0, 2 * HP, RW, MAP_PRIVATE | 0x20 | MAP_HUGETLB);
    p.touch(a, 4096, { write: true });
    const pfn = leaf(m, p, a);
    expect(pool(m)).toEqual([4, 3, 1, 0]);
    const to = 0x7000_0000_0000;
    expect(p.mremap(a, 2 * HP, 2 * HP, MREMAP_MAYMOVE | MREMAP_FIXED, to)).toBe(to);
    expect(leaf(m, p, to)).toBe(pfn);
    expect(leaf(m, p, a)).toBe(-1);
    expect(pool(m)).toEqual([4, 3, 1, 0]);
    expect(p.touch(to + HP, 4096, { write: true })).toBe(1);
    expect(pool(m)).toEqual([4, 2, 0, 0]);
    m.checkInvariants();
    // A shared file mapping moves too: the pages stay in the file.
    const fd = p.memfd_create('m', MFD_HUGETLB);
    const s = p.mmap(0, HP, RW, MAP_SHARED, fd);
    p.touch(s, 4096, { write: true });
    const spfn = leaf(m, p, s);
    expect(p.mremap(s, HP, HP, MREMAP_MAYMOVE | MREMAP_FIXED, to + 4 * HP)).toBe(to + 4 * HP);
    expect(leaf(m, p, to + 4 * HP)).toBe(spfn);
    p.munmap(to, 2 * HP);
    expect(pool(m)).toEqual([4, 3, 0, 0]);
    m.checkInvariants();
    p.exit();
    expect(pool(m)).toEqual([4, 4, 0, 0]);
    m.checkInvariants();
  });
});

describe('hugetlbfs properties', () => {
  const op = fc.oneof(
    fc.record({ k: fc.constant('create' as const), hugetlb: fc.boolean() }),
    fc.record({ k: fc.constant('truncate' as const), f: fc.nat(3), n: fc.nat(3) }),
    fc.record({
      k: fc.constant('map' as const),
      f: fc.nat(3),
      p: fc.nat(1),
      off: fc.nat(2),
      n: fc.integer({ min: 1, max: 3 }),
      priv: fc.boolean(),
      noreserve: fc.boolean(),
    }),
    fc.record({ k: fc.constant('touch' as const), v: fc.nat(7), write: fc.boolean() }),
    fc.record({ k: fc.constant('unmap' as const), v: fc.nat(7) }),
    fc.record({ k: fc.constant('close' as const), f: fc.nat(3) }),
    fc.record({ k: fc.constant('fork' as const) }),
  );
  test.prop([fc.array(op, { minLength: 1, maxLength: 25 })], { numRuns: 15 })(
    'pool counters, reservations and page tables stay consistent; everything freed at the end',
    (ops) => {
      const m = boot(6);
      const procs = [m.spawn(), m.spawn()];
      const files: Array<{ p: number; fd: number } | null> = [];
      const maps: Array<{ p: number; a: number; len: number }> = [];
      let named = 0;
      for (const o of ops) {
        try {
          if (o.k === 'create') {
            const p = procs[0];
            const fd = o.hugetlb
              ? p.memfd_create('f', MFD_HUGETLB)
              : p.open(`/dev/hugepages/f${named++}`, O_CREAT | O_RDWR, 0o600);
            files.push({ p: 0, fd });
          } else if (o.k === 'truncate' || o.k === 'close') {
            const f = files[o.f];
            if (!f) continue;
            if (o.k === 'truncate') procs[f.p].ftruncate(f.fd, o.n * HP);
            else {
              procs[f.p].close(f.fd);
              files[o.f] = null;
            }
          } else if (o.k === 'map') {
            const f = files[o.f];
            if (!f) continue;
            const flags = (o.priv ? MAP_PRIVATE : MAP_SHARED) | (o.noreserve ? MAP_NORESERVE : 0);
            const a = procs[f.p].mmap(0, o.n * HP, RW, flags, f.fd, o.off * HP);
            maps.push({ p: f.p, a, len: o.n * HP });
          } else if (o.k === 'touch' || o.k === 'unmap') {
            const mp = maps[o.v];
            if (!mp) continue;
            if (o.k === 'unmap') {
              procs[mp.p].munmap(mp.a, mp.len);
              maps.splice(o.v, 1);
            } else procs[mp.p].touch(mp.a, mp.len, { write: o.write });
          } else if (o.k === 'fork') {
            const child = procs[0].fork();
            procs[1].exit();
            procs[1] = child;
            for (let i = maps.length - 1; i >= 0; i--) if (maps[i].p === 1) maps.splice(i, 1);
            for (const mp of [...maps]) if (mp.p === 0) maps.push({ ...mp, p: 1 });
          }
        } catch (e) {
          if (
            !(e instanceof Error) ||
            !/ENOMEM|SIGBUS|EINVAL/.test(e.message + String((e as { code?: string }).code))
          )
            throw e;
        }
        m.checkInvariants();
        const [total, free, rsvd] = pool(m);
        expect(free).toBeLessThanOrEqual(total);
        expect(rsvd).toBeLessThanOrEqual(free);
      }
      for (const p of procs) p.exit();
      for (let i = 0; i < named; i++) errno(() => m.spawn().unlink(`/dev/hugepages/f${i}`));
      m.checkInvariants();
      expect(pool(m)).toEqual([6, 6, 0, 0]);
    },
  );
});
