/**
 * /dev/contig<N> (src/contig/contig_dev.ts, docs/devices.md), Hocko's per-device mmap: file
 * permissions, per-device limits and their errnos, each fallback, ioctl errnos, mapping semantics
 * (remap_pfn_range: VM_IO | VM_PFNMAP, special PTEs, no RSS; partial munmap, no growth, fork
 * copies the PTEs), the buffer freed exactly when its last VMA goes, sysfs, and random sequences.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { buffer_layout } from '../../src/contig/buffer_layout.ts';
import { count_segments } from '../../src/contig/segments.ts';
import { __GFP_MEMALLOC, GFP_ATOMIC, GFP_KERNEL, GFP_NOWAIT } from '../../src/mm/gfp.ts';
import { Machine } from '../../src/sim/machine.ts';
import { _PAGE_RW, _PAGE_SPECIAL } from '../../src/vm/pgtable.ts';
import type { Process } from '../../src/vm/process.ts';
import {
  DMA_HEAP_IOCTL_ALLOC,
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_MAYMOVE,
  O_RDONLY,
  O_RDWR,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { VM_DONTDUMP, VM_DONTEXPAND, VM_IO, VM_PFNMAP } from '../../src/vm/vma.ts';
import { errno, hugePool, MiB, meminfo, NO_EARLY, PG, pte } from '../vm/helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const DEV_FLAGS = VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;

type Dev = {
  name: string;
  mode?: number;
  uid?: number;
  gid?: number;
  max_mapping_bytes?: number | string;
  max_total_bytes?: number | string;
  fallback?: 'strict' | 'best-effort' | 'hugetlb';
};

function boot(devices?: Dev[], extra: { hugetlb?: string; memory?: string } = {}): Machine {
  return Machine.boot({
    memory: extra.memory ?? '512M',
    cpus: 2,
    early: NO_EARLY,
    ...(devices ? { contig_devices: devices } : {}),
    ...(extra.hugetlb ? { hugetlb: extra.hugetlb } : {}),
  });
}

/** Free pages, pcp lists drained. */
function free(m: Machine): number {
  m.kernel.drain_all_pages();
  return meminfo(m, 'MemFree') / 4;
}

function sys(m: Machine, dev: string, attr: string): string {
  return m.readFile(`/sys/class/contig/${dev}/${attr}`).trim();
}

/** The pfns behind [addr, addr + len). */
function pfns(m: Machine, p: Process, addr: number, len: number): Int32Array {
  return buffer_layout(m.vm, p.mm, addr, len).pfns;
}

/** Kernel pages in every 2 MiB block: no contiguous run above 2 MiB can be freed up. */
function pinEvery2M(m: Machine): void {
  const taken: number[] = [];
  for (let pfn = m.kernel.alloc_pages(GFP_NOWAIT, 0); pfn >= 0; pfn = m.kernel.alloc_pages(GFP_NOWAIT, 0))
    taken.push(pfn);
  for (let o = 10; o >= 0; o--) while (m.kernel.alloc_pages(GFP_ATOMIC, o) >= 0);
  // Even the reserves below the min watermark lose their 2 MiB blocks.
  for (let o = 10; o >= 9; o--) while (m.kernel.alloc_pages(GFP_ATOMIC | __GFP_MEMALLOC, o) >= 0);
  for (const pfn of taken) if (pfn % 512 !== 0) m.kernel.free_pages(pfn, 0);
}

describe('/dev/contig0: the default device', () => {
  it('is root:root 0660 with the documented limits and sysfs files', () => {
    const m = boot();
    expect(sys(m, 'contig0', 'max_mapping_bytes')).toBe(String(2 ** 30));
    expect(sys(m, 'contig0', 'max_total_bytes')).toBe(String(4 * 2 ** 30));
    expect(sys(m, 'contig0', 'fallback')).toBe('strict');
    expect(sys(m, 'contig0', 'in_use_bytes')).toBe('0');
    const root = m.spawn();
    expect(errno(() => root.open('/dev/contig0', O_RDWR))).toBe('ok');
    // Others have no bits; the group (gid 0) has rw.
    const user = m.spawn({ uid: 1000, gid: 1000 });
    expect(errno(() => user.open('/dev/contig0', O_RDWR))).toBe('EACCES');
    expect(errno(() => user.open('/dev/contig0', O_RDONLY))).toBe('EACCES');
    const wheel = m.spawn({ uid: 1000, gid: 0 });
    expect(errno(() => wheel.open('/dev/contig0', O_RDWR))).toBe('ok');
    // The node cannot be removed, read or written; lseek is ESPIPE.
    expect(errno(() => root.unlink('/dev/contig0'))).toBe('EPERM');
    const fd = root.open('/dev/contig0', O_RDWR);
    expect(errno(() => root.read(fd, 10))).toBe('EINVAL');
    expect(errno(() => root.write(fd, 10))).toBe('EINVAL');
    expect(errno(() => root.lseek(fd, 0, 0))).toBe('ESPIPE');
    m.checkInvariants();
  });

  it('configured owners and modes are honoured; no devices with []', () => {
    const m = boot([
      { name: 'contig0', mode: 0o600, uid: 1000, gid: 1000 },
      { name: 'contig1', mode: 0o666 },
    ]);
    const owner = m.spawn({ uid: 1000, gid: 1000 });
    const other = m.spawn({ uid: 2000, gid: 2000 });
    expect(errno(() => owner.open('/dev/contig0', O_RDWR))).toBe('ok');
    expect(errno(() => other.open('/dev/contig0', O_RDWR))).toBe('EACCES');
    expect(errno(() => other.open('/dev/contig1', O_RDWR))).toBe('ok');
    // CAP_DAC_OVERRIDE bypasses the bits, as for any file.
    expect(errno(() => m.spawn({ uid: 2000, gid: 2000, caps: [1] }).open('/dev/contig0', O_RDWR))).toBe('ok');
    const none = boot([]);
    expect(errno(() => none.spawn().open('/dev/contig0', O_RDWR))).toBe('ENOENT');
    expect(() => boot([{ name: 'contig0' }, { name: 'contig0' }])).toThrow(/configured twice/);
    expect(() => boot([{ name: 'dev0' }])).toThrow(/contig<N>/);
  });
});

describe('mmap of /dev/contig0', () => {
  it('maps one contiguous, zeroed buffer as device memory: special PTEs, no RSS, maps line', () => {
    const m = boot();
    const p = m.spawn();
    const fd = p.open('/dev/contig0', O_RDWR);
    const before = free(m);
    const a = p.mmap(0, 8 * MiB, RW, MAP_SHARED, fd);
    const vma = p.mm.mt.walk(a);
    expect(m.vm.vmas.vm_flags[vma] & DEV_FLAGS).toBe(DEV_FLAGS);
    const got = pfns(m, p, a, 8 * MiB);
    expect(count_segments(got)).toBe(1);
    expect(got.every((x) => x >= 0)).toBe(true);
    const e = pte(m, p, a)!;
    expect(e.bits & _PAGE_SPECIAL).toBe(_PAGE_SPECIAL);
    expect(e.bits & _PAGE_RW).toBe(_PAGE_RW);
    // Populated at mmap: touching takes no fault; nothing in RSS; the pages are not on the LRU.
    expect(p.touch(a, 8 * MiB, { write: true })).toBe(0);
    expect(p.mm.rss.reduce((s, x) => s + x, 0)).toBe(0);
    expect(before - free(m)).toBeGreaterThanOrEqual(2048);
    expect(sys(m, 'contig0', 'in_use_bytes')).toBe(String(8 * MiB));
    expect(sys(m, 'contig0', 'allocs')).toBe('1');
    const line = m.readFile(`/proc/${p.pid}/maps`).split('\n')[0];
    expect(line).toMatch(
      new RegExp(`^${a.toString(16)}-${(a + 8 * MiB).toString(16)} rw-s 00000000 00:05 \\d+ +/dev/contig0$`),
    );
    // Compaction leaves the pages alone; alloc_contig_range over them fails (unmovable).
    m.writeFile('/proc/sys/vm/compact_memory', '1');
    expect(pfns(m, p, a, 8 * MiB)).toEqual(got);
    expect(m.kernel.alloc_contig_range(got[0], got[0] + 512, 0, GFP_KERNEL)).toBeLessThan(0);
    // GUP refuses VM_PFNMAP (EFAULT); MADV_DONTNEED is EINVAL.
    expect(errno(() => p.pin_user_pages(a, PG))).toBe('EFAULT');
    expect(errno(() => p.madvise(a, PG, MADV_DONTNEED))).toBe('EINVAL');
    m.checkInvariants();
    p.munmap(a, 8 * MiB);
    expect(sys(m, 'contig0', 'in_use_bytes')).toBe('0');
    p.close(fd);
    m.checkInvariants();
  });

  it('the buffer lives while any VMA refers to it: partial munmap, close, mremap move', () => {
    const m = boot();
    const p = m.spawn();
    const fd = p.open('/dev/contig0', O_RDWR);
    const before = free(m);
    const a = p.mmap(0, 4 * MiB, RW, MAP_SHARED, fd);
    const used = before - free(m);
    p.munmap(a + MiB, MiB); // a hole: two VMAs
    m.checkInvariants();
    expect(sys(m, 'contig0', 'in_use_bytes')).toBe(String(4 * MiB));
    p.close(fd); // the VMAs hold the buffer's own file
    expect(sys(m, 'contig0', 'in_use_bytes')).toBe(String(4 * MiB));
    expect(before - free(m)).toBe(used);
    // Growth is refused (VM_DONTEXPAND); a move keeps the pages.
    expect(errno(() => p.mremap(a, MiB, 2 * MiB, MREMAP_MAYMOVE))).toBe('EFAULT');
    const first = pfns(m, p, a, MiB);
    const b = p.mremap(a, MiB, MiB, MREMAP_MAYMOVE | 2, a + 64 * MiB);
    expect(pfns(m, p, b, MiB)).toEqual(first);
    m.checkInvariants();
    p.munmap(b, MiB);
    expect(sys(m, 'contig0', 'in_use_bytes')).toBe(String(4 * MiB));
    p.munmap(a + 2 * MiB, 2 * MiB); // the last VMA: the buffer goes
    expect(sys(m, 'contig0', 'in_use_bytes')).toBe('0');
    expect(sys(m, 'contig0', 'buffers')).toBe('0');
    // Only page tables may stay allocated.
    expect(before - free(m)).toBeLessThan(8);
    m.checkInvariants();
  });

  it('mprotect keeps the entries special; PROT_NONE and back', () => {
    const m = boot();
    const p = m.spawn();
    const fd = p.open('/dev/contig0', O_RDWR);
    const a = p.mmap(0, MiB, RW, MAP_SHARED, fd);
    const pfn = pte(m, p, a)!.pfn;
    p.mprotect(a, MiB, PROT_READ);
    expect(pte(m, p, a)!.bits & (_PAGE_SPECIAL | _PAGE_RW)).toBe(_PAGE_SPECIAL);
    p.mprotect(a, MiB, PROT_NONE);
    m.checkInvariants();
    p.mprotect(a, MiB, RW);
    expect(pte(m, p, a)).toEqual({ pfn, bits: expect.any(Number) });
    expect(p.touch(a, MiB, { write: true })).toBe(0);
    m.checkInvariants();
  });

  it('fork copies the PTEs (vma_needs_copy for VM_PFNMAP); the buffer outlives the parent mapping', () => {
    const m = boot();
    const p = m.spawn();
    const fd = p.open('/dev/contig0', O_RDWR);
    const before = free(m);
    const a = p.mmap(0, 2 * MiB, RW, MAP_SHARED, fd);
    const got = pfns(m, p, a, 2 * MiB);
    const c = p.fork();
    m.checkInvariants();
    expect(pfns(m, c, a, 2 * MiB)).toEqual(got);
    expect(c.touch(a, 2 * MiB, { write: true })).toBe(0);
    p.munmap(a, 2 * MiB);
    p.close(fd);
    expect(sys(m, 'contig0', 'in_use_bytes')).toBe(String(2 * MiB));
    c.exit();
    expect(sys(m, 'contig0', 'in_use_bytes')).toBe('0');
    expect(before - free(m)).toBeLessThan(8);
    m.checkInvariants();
  });

  it('refuses what the driver does not support, with the errnos documented', () => {
    const m = boot();
    const p = m.spawn();
    const fd = p.open('/dev/contig0', O_RDWR);
    expect(errno(() => p.mmap(0, MiB, RW, MAP_PRIVATE, fd))).toBe('EINVAL');
    expect(errno(() => p.mmap(0, MiB, RW, MAP_SHARED, fd, MiB))).toBe('EINVAL');
    const ro = p.open('/dev/contig0', O_RDONLY);
    expect(errno(() => p.mmap(0, MiB, RW, MAP_SHARED, ro))).toBe('EACCES');
    expect(errno(() => p.mmap(0, MiB, PROT_READ, MAP_SHARED, ro))).toBe('ok');
    expect(sys(m, 'contig0', 'failures')).toBe('2');
    // ioctl: ENOTTY for the device and a regular file, EBADF for a closed fd.
    expect(errno(() => p.ioctl(fd, DMA_HEAP_IOCTL_ALLOC, {}))).toBe('ENOTTY');
    const reg = p.open('/tmp-file', O_RDWR | 0o100);
    expect(errno(() => p.ioctl(reg, 0x5401))).toBe('ENOTTY');
    expect(errno(() => p.ioctl(99, 0x5401))).toBe('EBADF');
    p.close(fd);
    expect(errno(() => p.ioctl(fd, 0x5401))).toBe('EBADF');
    expect(errno(() => p.ioctl(ro, -1))).toBe('EINVAL');
    // An anonymous mapping next to a device one never merges with it.
    const x = p.mmap(0, MiB, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    expect(x).toBeGreaterThan(0);
    m.checkInvariants();
  });
});

describe('per-device limits', () => {
  it('a mapping over max_mapping_bytes is EINVAL, past max_total_bytes ENOMEM; sysfs writes', () => {
    const m = boot([{ name: 'contig0', max_mapping_bytes: '4M', max_total_bytes: '6M' }]);
    const p = m.spawn();
    const fd = p.open('/dev/contig0', O_RDWR);
    expect(errno(() => p.mmap(0, 5 * MiB, RW, MAP_SHARED, fd))).toBe('EINVAL');
    const a = p.mmap(0, 4 * MiB, RW, MAP_SHARED, fd);
    expect(errno(() => p.mmap(0, 4 * MiB, RW, MAP_SHARED, fd))).toBe('ENOMEM');
    expect(errno(() => p.mmap(0, 2 * MiB, RW, MAP_SHARED, fd))).toBe('ok');
    expect(sys(m, 'contig0', 'failures')).toBe('2');
    expect(sys(m, 'contig0', 'allocs')).toBe('2');
    // The admin raises the cap; a user cannot.
    expect(
      errno(() =>
        m.writeFile('/sys/class/contig/contig0/max_total_bytes', '8388608', { uid: 1000, gid: 1000 }),
      ),
    ).toBe('EACCES');
    expect(errno(() => m.writeFile('/sys/class/contig/contig0/max_total_bytes', 'lots'))).toBe('EINVAL');
    expect(errno(() => m.writeFile('/sys/class/contig/contig0/fallback', 'maybe'))).toBe('EINVAL');
    m.writeFile('/sys/class/contig/contig0/max_total_bytes', '10485760\n');
    expect(errno(() => p.mmap(0, 4 * MiB, RW, MAP_SHARED, fd))).toBe('ok');
    p.munmap(a, 4 * MiB);
    expect(sys(m, 'contig0', 'in_use_bytes')).toBe(String(6 * MiB));
    m.checkInvariants();
  });

  it('two devices account separately', () => {
    const m = boot([
      { name: 'contig0', max_total_bytes: '2M' },
      { name: 'contig1', max_total_bytes: '4M' },
    ]);
    const p = m.spawn();
    const d0 = p.open('/dev/contig0', O_RDWR);
    const d1 = p.open('/dev/contig1', O_RDWR);
    p.mmap(0, 2 * MiB, RW, MAP_SHARED, d0);
    expect(errno(() => p.mmap(0, 2 * MiB, RW, MAP_SHARED, d0))).toBe('ENOMEM');
    p.mmap(0, 4 * MiB, RW, MAP_SHARED, d1);
    expect(sys(m, 'contig0', 'in_use_bytes')).toBe(String(2 * MiB));
    expect(sys(m, 'contig1', 'in_use_bytes')).toBe(String(4 * MiB));
    expect(sys(m, 'contig1', 'dev')).toBe('10:254');
    p.exit();
    expect(sys(m, 'contig0', 'in_use_bytes')).toBe('0');
    expect(sys(m, 'contig1', 'in_use_bytes')).toBe('0');
    m.checkInvariants();
  });
});

describe('fallbacks when no contiguous run can be had', () => {
  // After pinEvery2M() no free or freeable run is longer than 4 MiB: 8 MiB must fall back.
  it('strict fails with ENOMEM', () => {
    const m = boot([{ name: 'contig0' }]);
    pinEvery2M(m);
    const p = m.spawn();
    const fd = p.open('/dev/contig0', O_RDWR);
    const before = free(m);
    expect(errno(() => p.mmap(0, 8 * MiB, RW, MAP_SHARED, fd))).toBe('ENOMEM');
    expect(sys(m, 'contig0', 'failures')).toBe('1');
    expect(sys(m, 'contig0', 'in_use_bytes')).toBe('0');
    expect(free(m)).toBeGreaterThanOrEqual(before - 8);
    m.checkInvariants();
  });

  it('best-effort takes the fewest, largest blocks', () => {
    const m = boot([{ name: 'contig0', fallback: 'best-effort' }]);
    pinEvery2M(m);
    const p = m.spawn();
    const fd = p.open('/dev/contig0', O_RDWR);
    const a = p.mmap(0, 8 * MiB, RW, MAP_SHARED, fd);
    const segs = count_segments(pfns(m, p, a, 8 * MiB));
    expect(segs).toBeGreaterThan(1);
    expect(segs).toBeLessThanOrEqual(32);
    expect(sys(m, 'contig0', 'fallback_allocs')).toBe('1');
    m.checkInvariants();
    const before = free(m);
    p.munmap(a, 8 * MiB);
    expect(free(m) - before).toBeGreaterThanOrEqual(2048);
    m.checkInvariants();
  });

  it('hugetlb takes whole huge pages from the pool, all or nothing, and gives them back', () => {
    const m = boot([{ name: 'contig0', fallback: 'hugetlb' }], { hugetlb: 'hugepages=5' });
    pinEvery2M(m);
    const p = m.spawn();
    const fd = p.open('/dev/contig0', O_RDWR);
    const a = p.mmap(0, 7 * MiB, RW, MAP_SHARED, fd);
    expect(hugePool(m)[1]).toBe(1);
    expect(sys(m, 'contig0', 'in_use_bytes')).toBe(String(8 * MiB));
    expect(sys(m, 'contig0', 'fallback_allocs')).toBe('1');
    const got = pfns(m, p, a, 7 * MiB);
    expect(count_segments(got)).toBeLessThanOrEqual(4);
    expect(got[0] % 512).toBe(0);
    // 6 MiB more would need 3 huge pages; 1 is free: nothing is taken.
    expect(errno(() => p.mmap(0, 6 * MiB, RW, MAP_SHARED, fd))).toBe('ENOMEM');
    expect(hugePool(m)[1]).toBe(1);
    // Held pages are not migratable: alloc_contig_range over one fails.
    expect(m.kernel.alloc_contig_range(got[0], got[0] + 512, 0, GFP_KERNEL)).toBeLessThan(0);
    m.checkInvariants();
    p.munmap(a, 7 * MiB);
    expect(hugePool(m)[1]).toBe(5);
    expect(sys(m, 'contig0', 'in_use_bytes')).toBe('0');
    m.checkInvariants();
  });
});

describe('random device mappings keep every invariant (property)', () => {
  type Op =
    | { k: 'mmap'; dev: number; pages: number }
    | { k: 'munmap'; i: number; from: number; pages: number }
    | { k: 'close'; i: number }
    | { k: 'fork' }
    | { k: 'exit' };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({
      k: fc.constant('mmap' as const),
      dev: fc.integer({ min: 0, max: 1 }),
      pages: fc.integer({ min: 1, max: 700 }),
    }),
    fc.record({
      k: fc.constant('munmap' as const),
      i: fc.nat(),
      from: fc.nat(),
      pages: fc.integer({ min: 1, max: 300 }),
    }),
    fc.record({ k: fc.constant('close' as const), i: fc.nat() }),
    fc.constant({ k: 'fork' as const }),
    fc.constant({ k: 'exit' as const }),
  );

  test.prop([fc.array(op, { minLength: 1, maxLength: 14 })], { numRuns: 12 })(
    'alloc / mmap / munmap / close / fork / exit',
    (ops) => {
      const m = boot([
        { name: 'contig0', max_total_bytes: '6M', fallback: 'best-effort' },
        { name: 'contig1', max_mapping_bytes: '1M', fallback: 'strict' },
      ]);
      const base = free(m);
      const procs: Process[] = [m.spawn()];
      const maps: Array<{ p: Process; a: number; len: number }> = [];
      const fds: Array<{ p: Process; fd: number }> = [];
      for (const o of ops) {
        const p = procs[procs.length - 1];
        if (o.k === 'mmap' && !p.exited) {
          const fd = p.open(`/dev/contig${o.dev}`, O_RDWR);
          fds.push({ p, fd });
          try {
            maps.push({ p, a: p.mmap(0, o.pages * PG, RW, MAP_SHARED, fd), len: o.pages * PG });
          } catch (e) {
            expect(['EINVAL', 'ENOMEM']).toContain((e as { code: string }).code);
          }
        } else if (o.k === 'munmap' && maps.length) {
          const mp = maps[o.i % maps.length];
          if (!mp.p.exited) {
            const from = (o.from % Math.max(1, mp.len / PG)) * PG;
            mp.p.munmap(mp.a + from, Math.min(o.pages * PG, mp.len - from));
          }
        } else if (o.k === 'close' && fds.length) {
          const f = fds.splice(o.i % fds.length, 1)[0];
          if (!f.p.exited) f.p.close(f.fd);
        } else if (o.k === 'fork' && !p.exited && procs.length < 4) {
          procs.push(p.fork());
        } else if (o.k === 'exit' && procs.length > 1) {
          procs.pop()!.exit();
        }
        m.checkInvariants();
        const held = Number(sys(m, 'contig0', 'in_use_bytes')) + Number(sys(m, 'contig1', 'in_use_bytes'));
        expect(Number(sys(m, 'contig0', 'in_use_bytes'))).toBeLessThanOrEqual(6 * MiB);
        expect(held / PG).toBeLessThanOrEqual(base - free(m));
      }
      for (const p of procs) p.exit();
      m.checkInvariants();
      expect(sys(m, 'contig0', 'in_use_bytes')).toBe('0');
      expect(sys(m, 'contig1', 'in_use_bytes')).toBe('0');
      expect(sys(m, 'contig0', 'buffers')).toBe('0');
      // Everything came back but the page tables and slab the processes grew.
      expect(base - free(m)).toBeLessThan(64);
    },
  );
});
