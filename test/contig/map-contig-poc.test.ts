/**
 * mmap(MAP_CONTIG) under the `rfc-poc` policy: the 2017 proof of concept's semantics (its patches
 * 1/3 to 3/3, /work/shared/research/seed-and-successors.md §a.2) — anonymous private mappings
 * only, populated and locked at mmap from one zeroed buddy block of get_order(length) on the local
 * node, the tail freed, ENOMEM above MAX_PAGE_ORDER or when the block cannot be had, mlock's
 * permission and limit, no growth, an ordinary mapping in a fork child. And what the POC left
 * open: nothing keeps the pages from being migrated.
 */
import { describe, expect, it } from 'vitest';
import { GFP_KERNEL } from '../../src/mm/gfp.ts';
import { Machine } from '../../src/sim/machine.ts';
import {
  MAP_ANONYMOUS,
  MAP_CONTIG,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_MAYMOVE,
  O_CREAT,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { VM_CONTIG, VM_LOCKED } from '../../src/vm/vma.ts';
import { errno, MiB, NO_EARLY, PG, pte, vmstat } from '../vm/helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const CONTIG = MAP_PRIVATE | MAP_ANONYMOUS | MAP_CONTIG;

function boot(map_contig: 'rfc-poc' | 'linux' = 'rfc-poc') {
  const m = Machine.boot({ memory: '1G', cpus: 2, early: NO_EARLY, map_contig });
  return { m, p: m.spawn() };
}

/** The pfns backing [addr, addr + len), -1 where nothing is mapped. */
function pfns(m: Machine, p: ReturnType<Machine['spawn']>, addr: number, len: number): number[] {
  return Array.from({ length: len / PG }, (_, i) => pte(m, p, addr + i * PG)?.pfn ?? -1);
}

const contiguous = (xs: number[]): boolean => xs.every((x, i) => x >= 0 && x === xs[0] + i);
const freePages = (m: Machine): number => m.mm.zones.reduce((s, z) => s + z.vm_stat[0], 0);

describe('MAP_CONTIG, rfc-poc', () => {
  it('backs the whole mapping with contiguous, zeroed pages, populated and locked at mmap', () => {
    const { m, p } = boot();
    m.kernel.drain_all_pages();
    const free = freePages(m);
    const a = p.mmap(0, 700 * 1024, RW, CONTIG);
    const got = pfns(m, p, a, 700 * 1024);
    expect(contiguous(got)).toBe(true);
    // One order-8 (1 MiB) block, naturally aligned; the 76 pages past 700 KiB went straight back.
    expect(got[0] % 256).toBe(0);
    m.kernel.drain_all_pages();
    expect(free - freePages(m)).toBeGreaterThanOrEqual(175);
    expect(free - freePages(m)).toBeLessThan(175 + 16); // and a few page-table pages
    // VM_DONTEXPAND is VM_SPECIAL, and mmap_region() clears VM_LOCKED of a special mapping: the
    // POC's mapping ends up unlocked (and out of locked_vm), though mlock's checks ran.
    const vma = p.mm.mt.walk(a);
    expect(m.vm.vmas.vm_flags[vma] & (VM_CONTIG | VM_LOCKED)).toBe(VM_CONTIG);
    // Populated: touching takes no fault.
    expect(p.touch(a, 700 * 1024, { write: true })).toBe(0);
    expect(vmstat(m, 'pgfault')).toBeGreaterThanOrEqual(175);
    m.checkInvariants();
    p.munmap(a, 700 * 1024);
    m.kernel.drain_all_pages();
    expect(freePages(m)).toBeGreaterThan(free - 16);
    m.checkInvariants();
  });

  it('fails as the POC does: EINVAL unless anonymous and private, ENOMEM above 4 MiB', () => {
    const { m, p } = boot();
    const fd = p.open('/data/f', O_CREAT | O_RDWR);
    p.ftruncate(fd, MiB);
    expect(errno(() => p.mmap(0, MiB, RW, MAP_PRIVATE | MAP_CONTIG, fd, 0))).toBe('EINVAL');
    expect(errno(() => p.mmap(0, MiB, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_CONTIG))).toBe('EINVAL');
    expect(errno(() => p.mmap(0, 4 * MiB, RW, CONTIG))).toBe('ok');
    expect(errno(() => p.mmap(0, 4 * MiB + PG, RW, CONTIG))).toBe('ENOMEM');
    m.checkInvariants();
  });

  it("obeys mlock's permission and limit: EPERM with RLIMIT_MEMLOCK 0, EAGAIN above it", () => {
    const m = Machine.boot({ memory: '1G', cpus: 2, early: NO_EARLY });
    const none = m.spawn({ uid: 1000, rlimits: { memlock: 0 } });
    expect(errno(() => none.mmap(0, MiB, RW, CONTIG))).toBe('EPERM');
    const small = m.spawn({ uid: 1000, rlimits: { memlock: 512 * 1024 } });
    expect(errno(() => small.mmap(0, MiB, RW, CONTIG))).toBe('EAGAIN');
    expect(errno(() => small.mmap(0, 256 * 1024, RW, CONTIG))).toBe('ok');
  });

  it('ENOMEM when no free block of the order is left, and nothing is mapped', () => {
    const { m, p } = boot();
    // Take every free block of order 8 or more: the page allocator has none to give.
    for (let o = 10; o >= 8; o--) while (m.kernel.alloc_pages(GFP_KERNEL, o) >= 0);
    const maps = m.readFile(`/proc/${p.pid}/maps`);
    expect(errno(() => p.mmap(0, MiB, RW, CONTIG))).toBe('ENOMEM');
    expect(m.readFile(`/proc/${p.pid}/maps`)).toBe(maps);
    m.checkInvariants();
  });

  it('a fork child gets an ordinary mapping; the mapping never grows', () => {
    const { m, p } = boot();
    const a = p.mmap(0, MiB, RW, CONTIG);
    const mine = pfns(m, p, a, MiB);
    const c = p.fork();
    const vma = c.mm.mt.walk(a);
    expect(m.vm.vmas.vm_flags[vma] & (VM_CONTIG | VM_LOCKED)).toBe(0);
    // The child's first write copies into an ordinary page; the parent keeps its block.
    c.touch(a, PG, { write: true });
    expect(pte(m, c, a)!.pfn).not.toBe(mine[0]);
    expect(pfns(m, p, a, MiB)).toEqual(mine);
    expect(errno(() => p.mremap(a, MiB, 2 * MiB, MREMAP_MAYMOVE))).toBe('EFAULT');
    m.checkInvariants();
  });

  it('a partial munmap keeps the rest backed by the same pages', () => {
    const { m, p } = boot();
    const a = p.mmap(0, MiB, RW, CONTIG);
    const mine = pfns(m, p, a, MiB);
    p.munmap(a, 64 * PG);
    expect(pfns(m, p, a + 64 * PG, MiB - 64 * PG)).toEqual(mine.slice(64));
    m.checkInvariants();
  });

  it('does not keep the pages in place: compaction migrates them away (the POC left this open)', () => {
    const { m, p } = boot();
    const a = p.mmap(0, MiB, RW, CONTIG);
    const mine = pfns(m, p, a, MiB);
    // They are ordinary LRU pages (VM_SPECIAL keeps them off the unevictable list), low in the
    // zone where the migrate scanner starts: a full compaction moves them one by one.
    m.writeFile('/proc/sys/vm/compact_memory', '1');
    const now = pfns(m, p, a, MiB);
    expect(now.some((pfn, i) => pfn !== mine[i])).toBe(true);
    expect(contiguous(now)).toBe(false);
    m.checkInvariants();
  });

  it('under the `linux` policy the flag is ignored, as 6.18 ignores unknown flags', () => {
    const { m, p } = boot('linux');
    const a = p.mmap(0, MiB, RW, CONTIG);
    expect(pte(m, p, a)).toBeNull();
    expect(m.vm.vmas.vm_flags[p.mm.mt.walk(a)] & VM_CONTIG).toBe(0);
  });
});
