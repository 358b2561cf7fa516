/**
 * dma-buf heaps (src/contig/dma_heap.ts): /dev/dma_heap/system and the default CMA area's heaps,
 * DMA_HEAP_IOCTL_ALLOC and its errnos, the system heap's order 8/4/0 blocks, the CMA heap taking
 * from the area (CmaFree), mmap semantics, and the buffer freed when the fd and the mappings are
 * all gone.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { buffer_layout } from '../../src/contig/buffer_layout.ts';
import { physical_segments } from '../../src/contig/segments.ts';
import { Machine } from '../../src/sim/machine.ts';
import { _PAGE_SPECIAL } from '../../src/vm/pgtable.ts';
import type { Process } from '../../src/vm/process.ts';
import {
  DMA_BUF_IOCTL_SYNC,
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_RW,
  DMA_HEAP_IOCTL_ALLOC,
  MAP_PRIVATE,
  MAP_SHARED,
  O_CLOEXEC,
  O_RDONLY,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
  SEEK_END,
} from '../../src/vm/uapi.ts';
import { VM_DONTDUMP, VM_DONTEXPAND, VM_IO, VM_PFNMAP } from '../../src/vm/vma.ts';
import { errno, MiB, meminfo, NO_EARLY, PG, pte } from '../vm/helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const DEV_FLAGS = VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;

function boot(cma?: string): Machine {
  return Machine.boot({ memory: '512M', cpus: 2, early: NO_EARLY, ...(cma ? { cma } : {}) });
}

function free(m: Machine): number {
  m.kernel.drain_all_pages();
  return meminfo(m, 'MemFree') / 4;
}

/** CmaFree, kB, pcp lists drained (released CMA pages may sit there). */
function cmaFreeKb(m: Machine): number {
  m.kernel.drain_all_pages();
  return meminfo(m, 'CmaFree');
}

/** DMA_HEAP_IOCTL_ALLOC on `heap`: the dma-buf fd. */
function alloc(p: Process, heap: number, len: number, fd_flags = O_RDWR): number {
  const arg = { len, fd: 0, fd_flags, heap_flags: 0 };
  expect(p.ioctl(heap, DMA_HEAP_IOCTL_ALLOC, arg)).toBe(0);
  return arg.fd;
}

describe('/dev/dma_heap', () => {
  it('has the system heap always, the CMA heaps with cma=, root-only by default', () => {
    const m = boot();
    const root = m.spawn();
    expect(errno(() => root.open('/dev/dma_heap/system', O_RDWR))).toBe('ok');
    expect(errno(() => root.open('/dev/dma_heap/reserved', O_RDWR))).toBe('ENOENT');
    expect(errno(() => m.spawn({ uid: 1000, gid: 1000 }).open('/dev/dma_heap/system', O_RDONLY))).toBe(
      'EACCES',
    );
    const c = boot('64M');
    expect(errno(() => c.spawn().open('/dev/dma_heap/reserved', O_RDWR))).toBe('ok');
    expect(errno(() => c.spawn().open('/dev/dma_heap/default_cma_region', O_RDWR))).toBe('ok');
    const open = Machine.boot({ memory: '512M', dma_heap: { mode: 0o666 } });
    expect(errno(() => open.spawn({ uid: 1000, gid: 1000 }).open('/dev/dma_heap/system', O_RDWR))).toBe('ok');
  });

  it('DMA_HEAP_IOCTL_ALLOC is _IOWR("H", 0, 24); bad requests and arguments get dma-heap.c errnos', () => {
    expect(DMA_HEAP_IOCTL_ALLOC).toBe(0xc0184800);
    const m = boot();
    const p = m.spawn();
    const h = p.open('/dev/dma_heap/system', O_RDWR);
    const bad = (arg: unknown, req = DMA_HEAP_IOCTL_ALLOC) => errno(() => p.ioctl(h, req, arg));
    expect(bad({ len: 0, fd: 0, fd_flags: O_RDWR, heap_flags: 0 })).toBe('EINVAL');
    expect(bad({ len: PG, fd: 3, fd_flags: O_RDWR, heap_flags: 0 })).toBe('EINVAL');
    expect(bad({ len: PG, fd: 0, fd_flags: 0o100, heap_flags: 0 })).toBe('EINVAL');
    expect(bad({ len: PG, fd: 0, fd_flags: O_RDWR, heap_flags: 1 })).toBe('EINVAL');
    expect(bad(undefined)).toBe('EFAULT');
    // Only number 0 exists: any other number is EINVAL (dma_heap_ioctl never says ENOTTY).
    expect(bad({ len: PG, fd: 0, fd_flags: O_RDWR, heap_flags: 0 }, DMA_HEAP_IOCTL_ALLOC + 1)).toBe('EINVAL');
    expect(errno(() => p.ioctl(77, DMA_HEAP_IOCTL_ALLOC, {}))).toBe('EBADF');
    // The heap node itself cannot be mapped (no ->mmap): ENODEV.
    expect(errno(() => p.mmap(0, PG, RW, MAP_SHARED, h))).toBe('ENODEV');
    // fd_flags may carry O_CLOEXEC; an unaligned length is rounded up to pages.
    const fd = alloc(p, h, 5000, O_RDWR | O_CLOEXEC);
    expect(p.lseek(fd, 0, SEEK_END)).toBe(2 * PG);
    expect(errno(() => p.lseek(fd, 1, SEEK_END))).toBe('EINVAL');
    // dma-buf ioctls: DMA_BUF_IOCTL_SYNC checks its flags; others are ENOTTY.
    expect(p.ioctl(fd, DMA_BUF_IOCTL_SYNC, { flags: DMA_BUF_SYNC_RW })).toBe(0);
    expect(p.ioctl(fd, DMA_BUF_IOCTL_SYNC, { flags: DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END })).toBe(0);
    expect(errno(() => p.ioctl(fd, DMA_BUF_IOCTL_SYNC, { flags: 0 }))).toBe('EINVAL');
    expect(errno(() => p.ioctl(fd, DMA_BUF_IOCTL_SYNC, { flags: 64 }))).toBe('EINVAL');
    expect(errno(() => p.ioctl(fd, DMA_BUF_IOCTL_SYNC))).toBe('EFAULT');
    expect(errno(() => p.ioctl(fd, DMA_HEAP_IOCTL_ALLOC, {}))).toBe('ENOTTY');
    expect(errno(() => p.read(fd, 10))).toBe('EINVAL');
    m.checkInvariants();
  });
});

describe('the system heap', () => {
  it('builds the buffer from order 8, 4 and 0 blocks, largest first, and maps them at mmap', () => {
    const m = boot();
    const p = m.spawn();
    const h = p.open('/dev/dma_heap/system', O_RDWR);
    const before = free(m);
    // 2 MiB + 64 KiB + 12 KiB: two order-8 blocks, one order-4, three order-0 pages.
    const len = 2 * MiB + 64 * 1024 + 3 * PG;
    const fd = alloc(p, h, len);
    expect(before - free(m)).toBeGreaterThanOrEqual(len / PG);
    const a = p.mmap(0, len, RW, MAP_SHARED, fd);
    expect(m.vm.vmas.vm_flags[p.mm.mt.walk(a)] & DEV_FLAGS).toBe(DEV_FLAGS);
    expect(pte(m, p, a)!.bits & _PAGE_SPECIAL).toBe(_PAGE_SPECIAL);
    const layout = buffer_layout(m.vm, p.mm, a, len);
    const heap = m.dma_heaps[0];
    expect(heap.name).toBe('system');
    // The blocks as allocated: the segments can only be these or merges of neighbours.
    const buf = m.vm.files.file(m.vm.vmas.vm_file[p.mm.mt.walk(a)]).f_op as unknown as { orders: Uint8Array };
    expect([...buf.orders]).toEqual([8, 8, 4, 0, 0, 0]);
    expect(physical_segments(layout.pfns).count).toBeLessThanOrEqual(6);
    expect(p.touch(a, len, { write: true })).toBe(0);
    expect(m.readFile(`/proc/${p.pid}/maps`).split('\n')[0]).toMatch(/ rw-s 00000000 00:0c \d+ +\/dmabuf:$/);
    m.checkInvariants();
    // MAP_PRIVATE and a mapping past the end are refused.
    expect(errno(() => p.mmap(0, len, RW, MAP_PRIVATE, fd))).toBe('EINVAL');
    expect(errno(() => p.mmap(0, 2 * PG, RW, MAP_SHARED, fd, len - PG))).toBe('EINVAL');
    // An offset mapping starts at that page of the buffer.
    const b = p.mmap(0, PG, PROT_READ, MAP_SHARED, fd, 512 * PG);
    expect(pte(m, p, b)!.pfn).toBe(layout.pfns[512]);
    // Closing the fd keeps the buffer (the mappings hold it); the last munmap frees it.
    p.close(fd);
    p.munmap(a, len);
    expect(heap.buffers).toBe(1);
    p.munmap(b, PG);
    expect(heap.buffers).toBe(0);
    expect(before - free(m)).toBeLessThan(8);
    m.checkInvariants();
  });

  it('a buffer unmapped first is freed at close; a fork child keeps it alive', () => {
    const m = boot();
    const p = m.spawn();
    const h = p.open('/dev/dma_heap/system', O_RDWR);
    const before = free(m);
    const fd = alloc(p, h, MiB);
    const a = p.mmap(0, MiB, RW, MAP_SHARED, fd);
    p.munmap(a, MiB);
    expect(m.dma_heaps[0].buffers).toBe(1);
    p.close(fd);
    expect(m.dma_heaps[0].buffers).toBe(0);
    const fd2 = alloc(p, h, MiB);
    const b = p.mmap(0, MiB, RW, MAP_SHARED, fd2);
    const c = p.fork();
    expect(pte(m, c, b)).toEqual(pte(m, p, b));
    p.exit();
    expect(m.dma_heaps[0].buffers).toBe(1);
    c.exit();
    expect(m.dma_heaps[0].buffers).toBe(0);
    expect(before - free(m)).toBeLessThan(8);
    m.checkInvariants();
  });
});

describe('the CMA heap', () => {
  it('takes one aligned run from the CMA area, faults it in, and gives it back', () => {
    const m = boot('64M');
    const p = m.spawn();
    const h = p.open('/dev/dma_heap/reserved', O_RDWR);
    const cmaFree = cmaFreeKb(m);
    const fd = alloc(p, h, 3 * MiB);
    expect(cmaFree - cmaFreeKb(m)).toBe(3 * 1024);
    expect(errno(() => p.mmap(0, 3 * MiB, RW, MAP_PRIVATE, fd))).toBe('EINVAL');
    const a = p.mmap(0, 3 * MiB, RW, MAP_SHARED, fd);
    // Nothing mapped until touched (cma_heap_vm_fault → vmf_insert_pfn).
    expect(pte(m, p, a)).toBeNull();
    expect(p.touch(a, 3 * MiB, { write: true })).toBe((3 * MiB) / PG);
    const layout = buffer_layout(m.vm, p.mm, a, 3 * MiB);
    expect(physical_segments(layout.pfns).count).toBe(1);
    // Aligned to min(get_order(3 MiB), 8) = 256 pages.
    expect(layout.pfns[0] % 256).toBe(0);
    expect(p.mm.rss.reduce((s, x) => s + x, 0)).toBe(0);
    m.checkInvariants();
    // The area runs dry: ENOMEM, nothing taken.
    const before = cmaFreeKb(m);
    expect(
      errno(() =>
        p.ioctl(h, DMA_HEAP_IOCTL_ALLOC, { len: 128 * MiB, fd: 0, fd_flags: O_RDWR, heap_flags: 0 }),
      ),
    ).toBe('ENOMEM');
    expect(cmaFreeKb(m)).toBe(before);
    p.close(fd);
    expect(cmaFreeKb(m)).toBe(before);
    p.munmap(a, 3 * MiB);
    expect(cmaFreeKb(m)).toBe(cmaFree);
    m.checkInvariants();
  });
});

describe('random heap buffers keep every invariant (property)', () => {
  type Op =
    | { k: 'alloc'; heap: number; pages: number }
    | { k: 'mmap'; i: number; from: number; pages: number }
    | { k: 'munmap'; i: number; from: number; pages: number }
    | { k: 'close'; i: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({
      k: fc.constant('alloc' as const),
      heap: fc.integer({ min: 0, max: 1 }),
      pages: fc.integer({ min: 1, max: 600 }),
    }),
    fc.record({
      k: fc.constant('mmap' as const),
      i: fc.nat(),
      from: fc.nat(),
      pages: fc.integer({ min: 1, max: 600 }),
    }),
    fc.record({
      k: fc.constant('munmap' as const),
      i: fc.nat(),
      from: fc.nat(),
      pages: fc.integer({ min: 1, max: 300 }),
    }),
    fc.record({ k: fc.constant('close' as const), i: fc.nat() }),
  );

  test.prop([fc.array(op, { minLength: 1, maxLength: 16 })], { numRuns: 12 })(
    'alloc / mmap / munmap / close',
    (ops) => {
      const m = boot('32M');
      const p = m.spawn();
      const heaps = [p.open('/dev/dma_heap/system', O_RDWR), p.open('/dev/dma_heap/reserved', O_RDWR)];
      const base = free(m);
      const cmaFree = cmaFreeKb(m);
      const bufs: Array<{ fd: number; pages: number }> = [];
      const maps: Array<{ a: number; len: number }> = [];
      for (const o of ops) {
        if (o.k === 'alloc') {
          try {
            bufs.push({ fd: alloc(p, heaps[o.heap], o.pages * PG), pages: o.pages });
          } catch (e) {
            expect((e as { code: string }).code).toBe('ENOMEM');
          }
        } else if (o.k === 'mmap' && bufs.length) {
          const b = bufs[o.i % bufs.length];
          const from = o.from % b.pages;
          const pages = Math.min(o.pages, b.pages - from);
          maps.push({ a: p.mmap(0, pages * PG, RW, MAP_SHARED, b.fd, from * PG), len: pages * PG });
          p.touch(maps[maps.length - 1].a, pages * PG, { write: true });
        } else if (o.k === 'munmap' && maps.length) {
          const mp = maps[o.i % maps.length];
          const from = (o.from % (mp.len / PG)) * PG;
          p.munmap(mp.a + from, Math.min(o.pages * PG, mp.len - from));
        } else if (o.k === 'close' && bufs.length) {
          p.close(bufs.splice(o.i % bufs.length, 1)[0].fd);
        }
        m.checkInvariants();
      }
      for (const b of bufs) p.close(b.fd);
      for (const mp of maps) p.munmap(mp.a, mp.len);
      m.checkInvariants();
      expect(m.dma_heaps.every((h) => h.buffers === 0)).toBe(true);
      expect(cmaFreeKb(m)).toBe(cmaFree);
      expect(base - free(m)).toBeLessThan(64);
    },
  );
});
