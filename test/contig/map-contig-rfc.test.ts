/**
 * mmap(MAP_CONTIG) under the `rfc` policy: the RFC's full design (docs/map-contig.md). Any size
 * through alloc_contig_pages(), exactly the length kept, zeroed, populated and locked; the
 * mapping holds its pages (pinned, never migrated or reclaimed, never dropped by advice, not
 * copied at fork) until they leave it; MAP_CONTIG_BEST_EFFORT never fails for fragmentation.
 */
import { describe, expect, it } from 'vitest';
import { count_segments } from '../../src/contig/segments.ts';
import { GFP_ATOMIC, GFP_KERNEL, GFP_NOWAIT } from '../../src/mm/gfp.ts';
import { Machine } from '../../src/sim/machine.ts';
import { FaultError } from '../../src/vm/process.ts';
import {
  MADV_COLD,
  MADV_DOFORK,
  MADV_DONTFORK,
  MADV_DONTNEED,
  MADV_FREE,
  MADV_HUGEPAGE,
  MADV_PAGEOUT,
  MADV_WILLNEED,
  MADV_WIPEONFORK,
  MAP_ANONYMOUS,
  MAP_CONTIG,
  MAP_CONTIG_BEST_EFFORT,
  MAP_PRIVATE,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { VM_CONTIG, VM_DONTCOPY, VM_LOCKED } from '../../src/vm/vma.ts';
import { errno, MiB, meminfo, NO_EARLY, PG, pte, vmstat } from '../vm/helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const CONTIG = MAP_PRIVATE | MAP_ANONYMOUS | MAP_CONTIG;
const BEST = CONTIG | MAP_CONTIG_BEST_EFFORT;

function boot(memory = '1G') {
  const m = Machine.boot({ memory, cpus: 2, early: NO_EARLY, map_contig: 'rfc' });
  return { m, p: m.spawn({ rlimits: { memlock: Number.POSITIVE_INFINITY } }) };
}

type P = ReturnType<Machine['spawn']>;

/** The pfns backing [addr, addr + len), -1 where nothing is mapped. */
function pfns(m: Machine, p: P, addr: number, len: number): number[] {
  return Array.from({ length: len / PG }, (_, i) => pte(m, p, addr + i * PG)?.pfn ?? -1);
}

const contiguous = (xs: number[]): boolean => xs.every((x, i) => x >= 0 && x === xs[0] + i);

/** Free pages, pcp lists drained. */
function free(m: Machine): number {
  m.kernel.drain_all_pages();
  return meminfo(m, 'MemFree') / 4;
}

/** Kernel pages in every 2 MiB block: nothing larger than 2 MiB can be freed up. */
function pinEvery2M(m: Machine): void {
  const taken: number[] = [];
  // GFP_NOWAIT: all that is free above the watermarks, without reclaim or the OOM killer.
  for (let pfn = m.kernel.alloc_pages(GFP_NOWAIT, 0); pfn >= 0; pfn = m.kernel.alloc_pages(GFP_NOWAIT, 0))
    taken.push(pfn);
  // What is left below the watermarks is kept whole, so no free 4 MiB range remains anywhere.
  for (let o = 10; o >= 0; o--) while (m.kernel.alloc_pages(GFP_ATOMIC, o) >= 0);
  for (const pfn of taken) if (pfn % 512 !== 0) m.kernel.free_pages(pfn, 0);
}

describe('MAP_CONTIG, rfc: the RFC as designed', () => {
  it('700 MiB out of a 1 GiB range: exactly the length kept, contiguous, populated, locked, pinned', () => {
    const { m, p } = boot('2G');
    const before = free(m);
    const pins = vmstat(m, 'nr_foll_pin_acquired');
    const t = p.kernel_ns;
    const a = p.mmap(0, 700 * MiB, RW, CONTIG);
    const got = pfns(m, p, a, 700 * MiB);
    expect(contiguous(got)).toBe(true);
    // The rest of the 1 GiB-aligned search range went back: 179,200 pages and a few page tables.
    expect(before - free(m)).toBeGreaterThanOrEqual(179_200);
    expect(before - free(m)).toBeLessThan(179_200 + 400);
    expect(vmstat(m, 'nr_foll_pin_acquired') - pins).toBe(179_200);
    // Zeroing alone is 179,200 × clear_page.
    expect(p.kernel_ns - t).toBeGreaterThan(179_200 * m.mm.cost.clear_page);
    const vma = p.mm.mt.walk(a);
    expect(m.vm.vmas.vm_flags[vma] & (VM_CONTIG | VM_LOCKED | VM_DONTCOPY)).toBe(
      VM_CONTIG | VM_LOCKED | VM_DONTCOPY,
    );
    expect(p.mm.locked_vm).toBe(179_200);
    expect(p.touch(a, 700 * MiB, { write: true })).toBe(0);
    m.checkInvariants();
  });

  it('succeeds where the POC cannot: above 4 MiB', () => {
    const m = Machine.boot({ memory: '1G', cpus: 2, early: NO_EARLY, map_contig: 'rfc-poc' });
    const p = m.spawn({ rlimits: { memlock: Number.POSITIVE_INFINITY } });
    expect(errno(() => p.mmap(0, 64 * MiB, RW, CONTIG))).toBe('ENOMEM');
    const { p: q } = boot();
    expect(errno(() => q.mmap(0, 64 * MiB, RW, CONTIG))).toBe('ok');
  });

  it('keeps its pages in place: compaction, alloc_contig_range and reclaim leave them alone', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 8 * MiB, RW, CONTIG);
    const mine = pfns(m, p, a, 8 * MiB);
    m.writeFile('/proc/sys/vm/compact_memory', '1');
    expect(pfns(m, p, a, 8 * MiB)).toEqual(mine);
    expect(m.kernel.alloc_contig_range(mine[0], mine[0] + 512, 0, GFP_KERNEL)).toBe(-16); // -EBUSY
    // Memory pressure: the rest of memory filled and more asked for; the pages stay.
    const q = m.spawn();
    const b = q.mmap(0, 900 * MiB, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    try {
      q.touch(b, 900 * MiB, { write: true });
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
    }
    expect(pfns(m, p, a, 8 * MiB)).toEqual(mine);
    m.checkInvariants();
  });

  it('ENOMEM, with nothing mapped or charged, when no range can be freed up', () => {
    const { m, p } = boot();
    pinEvery2M(m);
    const committed = meminfo(m, 'Committed_AS');
    const maps = m.readFile(`/proc/${p.pid}/maps`);
    // (ZONE_DMA, which lowmem_reserve kept free, still has a 4 MiB range: ask for more.)
    expect(errno(() => p.mmap(0, 32 * MiB, RW, CONTIG))).toBe('ENOMEM');
    expect(m.readFile(`/proc/${p.pid}/maps`)).toBe(maps);
    expect(meminfo(m, 'Committed_AS')).toBe(committed);
    m.checkInvariants();
  });

  it("obeys mlock's permission and limit, as the POC does", () => {
    const m = Machine.boot({ memory: '1G', cpus: 2, early: NO_EARLY, map_contig: 'rfc' });
    expect(errno(() => m.spawn({ uid: 1000, rlimits: { memlock: 0 } }).mmap(0, MiB, RW, CONTIG))).toBe(
      'EPERM',
    );
    const small = m.spawn({ uid: 1000, rlimits: { memlock: 512 * 1024 } });
    expect(errno(() => small.mmap(0, MiB, RW, CONTIG))).toBe('EAGAIN');
    expect(errno(() => small.mmap(0, 512 * 1024, RW, CONTIG))).toBe('ok');
  });

  it('partial munmap frees exactly the pages unmapped; the rest stay where they were', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 4 * MiB, RW, CONTIG);
    const mine = pfns(m, p, a, 4 * MiB);
    const before = free(m);
    p.munmap(a + MiB, MiB);
    expect(free(m) - before).toBe(256);
    expect(pfns(m, p, a, MiB)).toEqual(mine.slice(0, 256));
    expect(pfns(m, p, a + 2 * MiB, 2 * MiB)).toEqual(mine.slice(512));
    m.checkInvariants();
    p.munmap(a, 4 * MiB);
    // And the page tables that mapped them.
    expect(free(m) - before).toBeGreaterThanOrEqual(1024);
    expect(free(m) - before).toBeLessThanOrEqual(1024 + 5);
    expect(m.vm.contig_backings.filter(Boolean)).toHaveLength(0);
    m.checkInvariants();
  });

  it('mprotect changes access, not pages; a write to a read-only part faults', () => {
    const { m, p } = boot();
    const a = p.mmap(0, MiB, RW, CONTIG);
    const mine = pfns(m, p, a, MiB);
    p.mprotect(a, 64 * PG, PROT_READ);
    expect(() => p.touch(a, PG, { write: true })).toThrow(FaultError);
    p.mprotect(a, 64 * PG, RW);
    expect(pfns(m, p, a, MiB)).toEqual(mine);
    // The split parts never merge with anything else: their offsets index one backing.
    m.checkInvariants();
  });

  it('mremap: no growth (EFAULT), no MREMAP_DONTUNMAP (EINVAL); shrink frees the tail, a move keeps the pages', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 2 * MiB, RW, CONTIG);
    const mine = pfns(m, p, a, 2 * MiB);
    expect(errno(() => p.mremap(a, 2 * MiB, 4 * MiB, MREMAP_MAYMOVE))).toBe('EFAULT');
    expect(errno(() => p.mremap(a, 2 * MiB, 2 * MiB, MREMAP_MAYMOVE | MREMAP_DONTUNMAP))).toBe('EINVAL');
    const before = free(m);
    p.mremap(a, 2 * MiB, MiB);
    expect(free(m) - before).toBe(256);
    const to = p.mmap(0, 8 * MiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS) + 4 * MiB;
    const b = p.mremap(a, MiB, MiB, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    expect(b).toBe(to);
    expect(pfns(m, p, b, MiB)).toEqual(mine.slice(0, 256));
    m.checkInvariants();
  });

  it('munlock succeeds and changes nothing: the mapping stays locked and held', () => {
    const { m, p } = boot();
    const a = p.mmap(0, MiB, RW, CONTIG);
    p.munlock(a, MiB);
    p.munlockall();
    expect(m.vm.vmas.vm_flags[p.mm.mt.walk(a)] & VM_LOCKED).toBe(VM_LOCKED);
    expect(p.mm.locked_vm).toBe(256);
    m.checkInvariants();
  });

  it('refuses advice that would drop, age, collapse or re-fork its pages (EINVAL)', () => {
    const { m, p } = boot();
    const a = p.mmap(0, MiB, RW, CONTIG);
    for (const advice of [
      MADV_DONTNEED,
      MADV_FREE,
      MADV_COLD,
      MADV_PAGEOUT,
      MADV_DOFORK,
      MADV_WIPEONFORK,
      MADV_HUGEPAGE,
    ])
      expect(
        errno(() => p.madvise(a, MiB, advice)),
        `advice ${advice}`,
      ).toBe('EINVAL');
    expect(errno(() => p.madvise(a, MiB, MADV_WILLNEED))).toBe('ok');
    expect(errno(() => p.madvise(a, MiB, MADV_DONTFORK))).toBe('ok');
    m.checkInvariants();
  });

  it('fork: the child does not get the mapping (as if MADV_DONTFORK); the parent keeps its pages', () => {
    const { m, p } = boot();
    const a = p.mmap(0, MiB, RW, CONTIG);
    const mine = pfns(m, p, a, MiB);
    const c = p.fork();
    expect(c.mm.mt.walk(a)).toBeLessThan(0);
    expect(() => c.touch(a, PG)).toThrow(FaultError);
    p.touch(a, MiB, { write: true });
    expect(pfns(m, p, a, MiB)).toEqual(mine);
    c.exit();
    m.checkInvariants();
  });

  it('exit frees every page and pin', () => {
    const { m, p } = boot();
    const before = free(m);
    p.mmap(0, 16 * MiB, RW, CONTIG);
    p.mmap(0, 3 * MiB, RW, BEST);
    p.exit();
    expect(free(m)).toBeGreaterThanOrEqual(before);
    expect(vmstat(m, 'nr_foll_pin_released')).toBe(vmstat(m, 'nr_foll_pin_acquired'));
    m.checkInvariants();
  });

  it('an RDMA registration of the buffer outlives munmap; the pages go with the last holder', () => {
    const { m, p } = boot();
    const a = p.mmap(0, MiB, RW, CONTIG);
    const umem = p.ib_umem_get(a, MiB, true);
    const before = free(m);
    p.munmap(a, MiB);
    expect(free(m) - before).toBeLessThan(256);
    m.checkInvariants();
    p.ib_umem_release(umem);
    expect(free(m) - before).toBeGreaterThanOrEqual(256);
    m.checkInvariants();
  });

  it('a mapping keeps the semantics of the policy that made it when the machine switches', () => {
    const { m, p } = boot();
    const a = p.mmap(0, MiB, RW, CONTIG);
    const rfc = m.vm.map_contig;
    m.vm.map_contig = null;
    expect(errno(() => p.madvise(a, MiB, MADV_DONTNEED))).toBe('EINVAL');
    p.munmap(a, MiB);
    m.vm.map_contig = rfc;
    m.checkInvariants();
  });
});

describe('MAP_CONTIG_BEST_EFFORT', () => {
  it('never fails for fragmentation: the fewest, largest runs to be had, in pfn order', () => {
    const { m, p } = boot();
    pinEvery2M(m);
    expect(errno(() => p.mmap(0, 64 * MiB, RW, CONTIG))).toBe('ENOMEM');
    const a = p.mmap(0, 64 * MiB, RW, BEST);
    const got = pfns(m, p, a, 64 * MiB);
    expect(got.every((x) => x >= 0)).toBe(true);
    // 511 free pages in each 2 MiB block: runs of at most 511 pages, 2 blocks or fewer per run.
    const segs = count_segments(got);
    expect(segs).toBeGreaterThanOrEqual(Math.ceil(got.length / 511));
    expect(segs).toBeLessThan(got.length / 100);
    expect([...got].sort((x, y) => x - y)).toEqual(got);
    m.checkInvariants();
  });

  it('gives one run when one is free, and ENOMEM only when memory is out', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 3 * MiB, RW, BEST);
    expect(count_segments(pfns(m, p, a, 3 * MiB))).toBeLessThanOrEqual(2);
    expect(errno(() => p.mmap(0, 1100 * MiB, RW, BEST))).toBe('ENOMEM');
    m.checkInvariants();
  });

  it('is an unknown flag to the POC, which allocates strictly', () => {
    const m = Machine.boot({ memory: '1G', cpus: 2, early: NO_EARLY, map_contig: 'rfc-poc' });
    const p = m.spawn({ rlimits: { memlock: Number.POSITIVE_INFINITY } });
    expect(errno(() => p.mmap(0, 8 * MiB, RW, BEST))).toBe('ENOMEM');
    expect(errno(() => p.mmap(0, MiB, RW, BEST))).toBe('ok');
  });
});

describe('/proc/<pid>/contig', () => {
  it('lists each MAP_CONTIG mapping with its segments; PFNs only for CAP_SYS_ADMIN', () => {
    const { m, p } = boot();
    const a = p.mmap(0, MiB, RW, CONTIG);
    const first = pte(m, p, a)!.pfn;
    p.munmap(a + 64 * PG, 64 * PG);
    const hex = (n: number) => n.toString(16).padStart(8, '0');
    const pfn = (n: number) => n.toString(16).padStart(10, '0');
    expect(m.readFile(`/proc/${p.pid}/contig`)).toBe(
      `${hex(a)}-${hex(a + 64 * PG)} policy=rfc pages=64 segments=1\n  ${pfn(first)} 64\n` +
        `${hex(a + 128 * PG)}-${hex(a + MiB)} policy=rfc pages=128 segments=1\n  ${pfn(first + 128)} 128\n`,
    );
    const user = m.spawn({ uid: 1000 });
    expect(errno(() => m.readFile(`/proc/${p.pid}/contig`, user))).toBe('EACCES');
    const self = m.spawn({ uid: 1000, rlimits: { memlock: MiB } });
    self.mmap(0, 8 * PG, RW, BEST);
    expect(m.readFile(`/proc/${self.pid}/contig`, self)).toMatch(
      /policy=rfc pages=8 segments=1\n {2}0000000000 8\n$/,
    );
  });
});
