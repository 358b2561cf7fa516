/**
 * Pinning (pin_user_pages, FOLL_LONGTERM, ib_umem_get) and the migration it relies on: pinned
 * pages outlive their mappings, resist reclaim and migration; long-term pins first move pages
 * out of ZONE_MOVABLE, and pages faulted in for them are allocated unmovable.
 */
import { describe, expect, it } from 'vitest';
import { MIGRATE_UNMOVABLE, ZONE_MOVABLE } from '../../src/mm/mmzone.ts';
import { PG_head, PG_tail } from '../../src/mm/page-flags.ts';
import { get_pfnblock_migratetype } from '../../src/mm/pageblock.ts';
import { Machine } from '../../src/sim/machine.ts';
import { FOLL_LONGTERM, FOLL_WRITE } from '../../src/vm/gup.ts';
import {
  MADV_DONTNEED,
  MADV_PAGEOUT,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  O_CREAT,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { alignedMapping, bootThp, errno, meminfo, NO_EARLY, vmstat } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const MiB = 2 ** 20;
const early = NO_EARLY;

describe('pin_user_pages()', () => {
  it('pins faulted-in pages, which stay allocated after munmap until unpinned', () => {
    const m = Machine.boot({ memory: '512M', cpus: 2, early });
    const p = m.spawn();
    const a = p.mmap(0, 4 * MiB, RW, ANON);
    const pages = p.pin_user_pages(a, 4 * MiB, FOLL_WRITE);
    expect(pages).toHaveLength(1024);
    expect(new Set(pages).size).toBe(1024); // write pins fault in real pages, not the zero page
    expect(vmstat(m, 'nr_foll_pin_acquired')).toBe(1024);
    p.munmap(a, 4 * MiB);
    m.kernel.drain_all_pages();
    const f = m.mm.frames;
    expect(pages.every((pfn) => f.mapcount[pfn] === 0 && f.flags[pfn] !== 0)).toBe(true);
    expect(m.invariantViolations()).toEqual([]);
    const before = m.readFile('/proc/meminfo');
    p.unpin_user_pages(pages);
    m.kernel.drain_all_pages();
    const free = (t: string) => Number(/^MemFree:\s+(\d+)/m.exec(t)![1]);
    expect(free(m.readFile('/proc/meminfo')) - free(before)).toBe(4096);
    expect(vmstat(m, 'nr_foll_pin_released')).toBe(1024);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('splits a THP that is only PTE-mapped before pinning one of its pages', () => {
    // The clone test's shrunk case (FC_SEED=1080532329): MADV_DONTNEED of one page split the
    // PMD, leaving no huge PMD at all but an order-9 folio mapped by PTEs.
    const { m, p } = bootThp('always');
    const a = alignedMapping(p, 4 * MiB);
    p.touch(a, 4 * MiB, { write: true });
    p.madvise(a, 4096, MADV_DONTNEED);
    p.madvise(a + 2 * MiB, 4096, MADV_DONTNEED);
    const [pfn] = p.pin_user_pages(a + 2 * MiB + 8 * 4096, 4096, FOLL_WRITE | FOLL_LONGTERM);
    expect(m.invariantViolations()).toEqual([]);
    // The model pins order-0 pages only: the folio was split, not pinned through a tail page.
    expect(m.mm.frames.flags[pfn] & (PG_head | PG_tail)).toBe(0);
    p.munmap(a, 4 * MiB);
    expect(m.invariantViolations()).toEqual([]);
    p.unpin_user_pages([pfn]);
    expect(vmstat(m, 'nr_foll_pin_released')).toBe(1);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('splits an mTHP the pin itself faults in', () => {
    const { m, p } = bootThp('never');
    m.writeFile('/sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled', 'always');
    const a = alignedMapping(p, MiB, MiB);
    const pages = p.pin_user_pages(a + 4096, 2 * 4096, FOLL_WRITE);
    expect(pages.every((pfn) => (m.mm.frames.flags[pfn] & (PG_head | PG_tail)) === 0)).toBe(true);
    expect(m.invariantViolations()).toEqual([]);
    p.unpin_user_pages(pages);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('refuses holes, PROT_NONE and writes to read-only mappings with EFAULT', () => {
    const m = Machine.boot({ memory: '512M', cpus: 2, early });
    const p = m.spawn();
    const a = p.mmap(0, MiB, PROT_READ, ANON);
    expect(errno(() => p.pin_user_pages(a, MiB, FOLL_WRITE))).toBe('EFAULT');
    expect(errno(() => p.pin_user_pages(a + MiB, 4096))).toBe('EFAULT');
    expect(p.pin_user_pages(a, 4096)).toEqual([m.mm.zero_pfn]); // a read pin of untouched memory
    expect(vmstat(m, 'nr_foll_pin_acquired')).toBe(0); // the zero page is never counted
  });

  it('FOLL_LONGTERM migrates pages out of ZONE_MOVABLE and allocates new ones unmovable', () => {
    const m = Machine.boot({ memory: '2G', cpus: 2, movablecore: '1G', early });
    const p = m.spawn();
    const a = p.mmap(0, 32 * MiB, RW, ANON);
    p.touch(a, 16 * MiB, { write: true });
    const zone = (pfn: number) => m.mm.page_zone(pfn)!.zone_idx;
    const pages = p.pin_user_pages(a, 32 * MiB, FOLL_LONGTERM | FOLL_WRITE);
    expect(pages.every((pfn) => zone(pfn) !== ZONE_MOVABLE)).toBe(true);
    expect(vmstat(m, 'pgmigrate_success')).toBe(4096); // the 16 MiB touched before the pin
    // The 16 MiB faulted in by the pin itself came from unmovable pageblocks (PF_MEMALLOC_PIN).
    const faulted = pages.slice(4096);
    expect(faulted.every((pfn) => get_pfnblock_migratetype(m.mm, pfn) === MIGRATE_UNMOVABLE)).toBe(true);
    expect(m.invariantViolations()).toEqual([]);
    // The process still sees its data at the same addresses: the PTEs follow the migration.
    expect(p.touch(a, 32 * MiB, { write: true })).toBe(0);
    p.unpin_user_pages(pages);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('FOLL_LONGTERM migrates pages read back from swap with their swap-cache entries', () => {
    const m = Machine.boot({ memory: '512M', swap: '256M', movablecore: '256M', cpus: 2, early });
    const p = m.spawn();
    const a = p.mmap(0, MiB, RW, ANON);
    p.touch(a, MiB, { write: true });
    p.madvise(a, MiB, MADV_PAGEOUT);
    p.touch(a, MiB); // read back: in ZONE_MOVABLE and in the swap cache
    expect(meminfo(m, 'SwapCached')).toBe(1024);
    const zone = (pfn: number) => m.mm.page_zone(pfn)!.zone_idx;
    const pages = p.pin_user_pages(a, MiB, FOLL_LONGTERM);
    expect(vmstat(m, 'pgmigrate_success')).toBe(256);
    expect(pages.every((pfn) => zone(pfn) !== ZONE_MOVABLE)).toBe(true);
    // The new pages cache the same swap slots: still SwapCached, no second copy.
    expect(meminfo(m, 'SwapCached')).toBe(1024);
    expect(meminfo(m, 'SwapTotal') - meminfo(m, 'SwapFree')).toBe(1024);
    expect(m.invariantViolations()).toEqual([]);
    p.unpin_user_pages(pages);
    p.munmap(a, MiB);
    expect(meminfo(m, 'SwapCached')).toBe(0);
    expect(meminfo(m, 'SwapFree')).toBe(meminfo(m, 'SwapTotal'));
    // The freed pages are reused cleanly.
    const b = p.mmap(0, 64 * MiB, RW, ANON);
    p.touch(b, 64 * MiB, { write: true });
    expect(meminfo(m, 'SwapCached')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('refuses a long-term writable pin of a shared disk-file mapping, allows tmpfs', () => {
    const m = Machine.boot({ memory: '512M', cpus: 2, early });
    const p = m.spawn();
    const fd = p.open('/data/f', O_CREAT | O_RDWR);
    p.ftruncate(fd, MiB);
    const a = p.mmap(0, MiB, RW, MAP_SHARED, fd, 0);
    expect(errno(() => p.pin_user_pages(a, MiB, FOLL_LONGTERM | FOLL_WRITE))).toBe('EFAULT');
    expect(p.pin_user_pages(a, MiB, FOLL_WRITE)).toHaveLength(256); // short-term: allowed
    const shm = p.open('/dev/shm/g', O_CREAT | O_RDWR);
    p.ftruncate(shm, MiB);
    const b = p.mmap(0, MiB, RW, MAP_SHARED, shm, 0);
    expect(p.pin_user_pages(b, MiB, FOLL_LONGTERM | FOLL_WRITE)).toHaveLength(256);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('keeps pinned page cache through reclaim and truncation', () => {
    const m = Machine.boot({ memory: '512M', cpus: 2, early });
    const p = m.spawn();
    const fd = p.open('/data/f', O_CREAT | O_RDWR);
    p.write(fd, 8 * MiB);
    p.fsync(fd);
    const a = p.mmap(0, 8 * MiB, PROT_READ, MAP_SHARED, fd, 0);
    const pages = p.pin_user_pages(a, 8 * MiB);
    p.munmap(a, 8 * MiB);
    const other = p.open('/data/other', O_CREAT | O_RDWR);
    p.write(other, 100 * MiB);
    p.fsync(other);
    const hog = p.mmap(0, 400 * MiB, RW, ANON);
    p.touch(hog, 400 * MiB, { write: true });
    expect(vmstat(m, 'pgsteal_file')).toBeGreaterThan(0);
    const f = m.mm.frames;
    // Still cached and in place: reclaim may not free a pinned page.
    expect(pages.every((pfn) => f.mapping[pfn] !== 0)).toBe(true);
    p.ftruncate(fd, 0);
    // Out of the cache, but still allocated for the pin holder.
    expect(pages.every((pfn) => f.mapping[pfn] === 0 && f.flags[pfn] !== 0)).toBe(true);
    expect(m.invariantViolations()).toEqual([]);
    p.unpin_user_pages(pages);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('ib_umem_get()', () => {
  it('counts pinned_vm against RLIMIT_MEMLOCK and releases at exit', () => {
    const m = Machine.boot({ memory: '512M', cpus: 2, early });
    const u = m.spawn({ uid: 1000, rlimits: { memlock: 2 * MiB } });
    const a = u.mmap(0, 4 * MiB, RW, ANON);
    expect(errno(() => u.ib_umem_get(a, 3 * MiB, true))).toBe('ENOMEM');
    expect(u.mm.pinned_vm).toBe(0);
    const mr = u.ib_umem_get(a, 2 * MiB, true);
    expect(mr.pages).toHaveLength(512);
    expect(m.readFile(`/proc/${u.pid}/status`)).toMatch(/^VmPin:\s+2048 kB$/m);
    expect(errno(() => u.ib_umem_get(a + 2 * MiB, 4096, true))).toBe('ENOMEM');
    u.ib_umem_release(mr);
    expect(u.mm.pinned_vm).toBe(0);
    const mr2 = u.ib_umem_get(a, MiB, false);
    u.exit();
    expect(mr2.released).toBe(true);
    expect(vmstat(m, 'nr_foll_pin_acquired')).toBe(vmstat(m, 'nr_foll_pin_released'));
    expect(m.invariantViolations()).toEqual([]);
  });

  it('lets CAP_IPC_LOCK register beyond RLIMIT_MEMLOCK', () => {
    const m = Machine.boot({ memory: '512M', cpus: 2, early });
    const p = m.spawn({ rlimits: { memlock: 0 } });
    const a = p.mmap(0, 4 * MiB, RW, ANON);
    expect(p.ib_umem_get(a, 4 * MiB, true).pages).toHaveLength(1024);
  });
});
