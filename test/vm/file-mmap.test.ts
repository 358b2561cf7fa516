/**
 * mmap(2) of files and shared memory: page-cache pages mapped by read faults (with fault-around
 * and mmap read-around), dirtied by write faults on shared mappings and copied on private ones,
 * shared across fork, SIGBUS past the end of the file, truncation, the permission checks,
 * MAP_SHARED|MAP_ANONYMOUS as shmem, /proc/<pid>/maps, madvise and mlock on file mappings, exit.
 *
 * Cases marked "6.18:" were measured on a real Linux 6.18 kernel with small C programs (root and
 * nobody): errnos on tmpfs files; fault counts (getrusage) and resident pages (mincore) on an
 * ext4 file system mounted data=journal (order-0 folios, as the model's disk) from a loop device
 * with read_ahead_kb 128; meminfo deltas; /proc/self/maps lines.
 */
import { describe, expect, it } from 'vitest';
import { type AddressSpace, filemap_get_folio } from '../../src/mm/filemap.ts';
import { Machine } from '../../src/sim/machine.ts';
import { _PAGE_DIRTY, _PAGE_RW } from '../../src/vm/pgtable.ts';
import { FaultError, type Process } from '../../src/vm/process.ts';
import {
  MADV_DONTNEED,
  MADV_NORMAL,
  MADV_PAGEOUT,
  MADV_RANDOM,
  MADV_REMOVE,
  MADV_SEQUENTIAL,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_LOCKED,
  MAP_PRIVATE,
  MAP_SHARED,
  O_ACCMODE,
  O_CREAT,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
  POSIX_FADV_DONTNEED,
  POSIX_FADV_NOREUSE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  SEEK_DATA,
  SEEK_HOLE,
} from '../../src/vm/uapi.ts';
import { boot, errno, MiB, meminfo, NO_EARLY, PG, pte, vmstat } from './helpers.ts';

type M = ReturnType<typeof boot>['m'];

const RW = PROT_READ | PROT_WRITE;
/** 1 GiB: 2 MiB aligned, so a mapping there starts a page table and fault-around lines up. */
const A = 0x40000000;
const B = 0x80000000;
const C = 0xc0000000;

function mapping(m: M, path: string): AddressSpace {
  const inode = m.vm.files.lookup(path);
  if (!inode) throw new Error(`no file ${path}`);
  return inode.mapping;
}

/** A disk file of `bytes`, written and synced: cached and clean. */
function cleanFile(p: Process, path: string, bytes: number, mode = 0o644): void {
  const fd = p.open(path, O_CREAT | O_RDWR, mode);
  p.write(fd, bytes);
  p.fsync(fd);
  p.close(fd);
}

/** The same, dropped from the page cache: a cold file. */
function coldFile(p: Process, path: string, bytes: number): void {
  cleanFile(p, path, bytes);
  const fd = p.open(path, O_RDONLY);
  p.fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  p.close(fd);
}

/** A /proc/<pid>/status line's value in kB. */
function status(m: M, p: Process, field: string): number {
  const hit = m.readFile(`/proc/${p.pid}/status`).match(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm'));
  if (!hit) throw new Error(`no ${field} in status`);
  return Number(hit[1]);
}

/** The FaultError `fn` raises, or null. */
function fault(fn: () => unknown): FaultError | null {
  try {
    fn();
  } catch (e) {
    if (e instanceof FaultError) return e;
    throw e;
  }
  return null;
}

/** The pages of [addr, addr + pages) that take a fault when touched one by one, in order. */
function faultingPages(p: Process, addr: number, pages: number, write = false): number[] {
  const out: number[] = [];
  for (let i = 0; i < pages; i++) if (p.touch(addr + i * PG, 1, { write })) out.push(i);
  return out;
}

describe('MAP_SHARED file mappings', () => {
  it('read faults map the page-cache pages read-only, 16 per fault: Mapped, RssFile, no new pages (6.18)', () => {
    const { m, p } = boot();
    cleanFile(p, '/data/f', MiB);
    const as = mapping(m, '/data/f');
    const fd = p.open('/data/f', O_RDONLY);
    const cached = meminfo(m, 'Cached');
    p.mmap(A, MiB, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
    const pgfault = vmstat(m, 'pgfault');
    const pgmajfault = vmstat(m, 'pgmajfault');
    expect(p.touch(A, MiB)).toBe(16);
    expect(vmstat(m, 'pgfault') - pgfault).toBe(16);
    expect(vmstat(m, 'pgmajfault')).toBe(pgmajfault);
    expect(meminfo(m, 'Cached')).toBe(cached);
    expect(meminfo(m, 'Mapped')).toBe(1024);
    expect(meminfo(m, 'AnonPages')).toBe(0);
    expect(status(m, p, 'RssFile')).toBe(1024);
    expect(status(m, p, 'RssAnon')).toBe(0);
    for (let i = 0; i < 256; i++) {
      const e = pte(m, p, A + i * PG);
      expect(e?.pfn).toBe(filemap_get_folio(as, i));
      expect(e!.bits & _PAGE_RW).toBe(0);
      expect(m.mm.frames.mapcount[e!.pfn]).toBe(1);
    }
    p.munmap(A, MiB);
    expect(meminfo(m, 'Mapped')).toBe(0);
    expect(meminfo(m, 'Cached')).toBe(cached);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('a cold file: one major fault reads 32 pages around it and maps 16; later faults follow the readahead marks (6.18)', () => {
    const { m, p } = boot();
    coldFile(p, '/data/big', 8 * MiB);
    const fd = p.open('/data/big', O_RDONLY);
    p.mmap(A, 160 * PG, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
    const pgfault = vmstat(m, 'pgfault');
    const pgmajfault = vmstat(m, 'pgmajfault');
    const seen: Array<[number, number]> = [];
    for (let i = 0; i < 160; i++) if (p.touch(A + i * PG, 1)) seen.push([i, meminfo(m, 'Cached') / 4]);
    // 6.18, a 64 KiB-aligned mapping: faults at these pages, and the pages cached in the mapping's
    // range after each (mincore saw 160 at most: the mapping's size).
    expect(seen.map(([i]) => i)).toEqual([0, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144]);
    expect(seen.slice(0, 8).map(([, c]) => Math.min(c, 160))).toEqual([32, 32, 64, 96, 96, 128, 128, 160]);
    expect(vmstat(m, 'pgmajfault') - pgmajfault).toBe(1);
    expect(vmstat(m, 'pgfault') - pgfault).toBe(11);
    expect(status(m, p, 'RssFile')).toBe(160 * 4);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('the fault-around window is aligned to the page table and clamped to the VMA and the end of the file (6.18)', () => {
    const { m, p } = boot();
    cleanFile(p, '/data/f', MiB);
    const fd = p.open('/data/f', O_RDONLY);
    // 6.18: a mapping starting at PTE index 15 faults at pages 0, 16, 17, 33, 49.
    p.mmap(A + 15 * PG, MiB, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
    expect(faultingPages(p, A + 15 * PG, 64)).toEqual([0, 16, 17, 33, 49]);
    // A 4-page mapping: one fault maps it all.
    p.mmap(B, 4 * PG, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 8 * PG);
    expect(p.touch(B, 4 * PG)).toBe(1);
    expect(pte(m, p, B)?.pfn).toBe(filemap_get_folio(mapping(m, '/data/f'), 8));
    // Nothing past the last page of the file.
    cleanFile(p, '/data/short', 5 * PG - 100);
    const s = p.open('/data/short', O_RDONLY);
    p.mmap(C, 16 * PG, PROT_READ, MAP_SHARED | MAP_FIXED, s, 0);
    const rss = status(m, p, 'RssFile');
    expect(p.touch(C, 1)).toBe(1);
    expect(status(m, p, 'RssFile') - rss).toBe(20);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('write faults dirty the page cache through read-only PTEs; after writeback the next write faults and dirties again (6.18)', () => {
    const { m, p } = boot();
    cleanFile(p, '/data/f', 64 * 1024);
    const fd = p.open('/data/f', O_RDWR);
    p.mmap(A, 64 * 1024, RW, MAP_SHARED | MAP_FIXED, fd, 0);
    expect(p.touch(A, 64 * 1024)).toBe(1);
    expect(pte(m, p, A)!.bits & _PAGE_RW).toBe(0);
    expect(meminfo(m, 'Dirty')).toBe(0);
    expect(p.touch(A, 64 * 1024, { write: true })).toBe(16);
    expect(meminfo(m, 'Dirty')).toBe(64);
    expect(pte(m, p, A)!.bits & (_PAGE_RW | _PAGE_DIRTY)).toBe(_PAGE_RW | _PAGE_DIRTY);
    expect(p.touch(A, 64 * 1024, { write: true })).toBe(0);
    // fsync() writes the pages back and write-protects them (folio_mkclean).
    p.fsync(fd);
    expect(meminfo(m, 'Dirty')).toBe(0);
    expect(pte(m, p, A)!.bits & (_PAGE_RW | _PAGE_DIRTY)).toBe(0);
    expect(p.touch(A, 64 * 1024, { write: true })).toBe(16);
    expect(meminfo(m, 'Dirty')).toBe(64);
    // So does the flusher, 30 s later.
    m.advance('40s');
    expect(meminfo(m, 'Dirty')).toBe(0);
    expect(meminfo(m, 'Writeback')).toBe(0);
    expect(p.touch(A, 64 * 1024, { write: true })).toBe(16);
    expect(meminfo(m, 'Dirty')).toBe(64);
    // A write to a page not yet mapped is one fault that maps it writable and dirty.
    const g = p.open('/data/g', O_CREAT | O_RDWR);
    p.ftruncate(g, 4 * PG);
    p.mmap(B, 4 * PG, RW, MAP_SHARED | MAP_FIXED, g, 0);
    expect(p.touch(B, 4 * PG, { write: true })).toBe(4);
    expect(meminfo(m, 'Dirty')).toBe(64 + 16);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('MAP_PRIVATE file mappings', () => {
  it('a write copies the page into anonymous memory; the file page stays cached and clean (6.18)', () => {
    const { m, p } = boot();
    cleanFile(p, '/data/f', MiB);
    const as = mapping(m, '/data/f');
    // 6.18: a writable private mapping of a read-only descriptor is allowed.
    const fd = p.open('/data/f', O_RDONLY);
    p.mmap(A, MiB, RW, MAP_PRIVATE | MAP_FIXED, fd, 0);
    expect(p.touch(A, MiB)).toBe(16);
    expect(p.touch(A, 64 * PG, { write: true })).toBe(64);
    // 6.18: writing 256 private pages grew AnonPages by 1 MiB.
    expect(meminfo(m, 'AnonPages')).toBe(256);
    expect(meminfo(m, 'Dirty')).toBe(0);
    expect(meminfo(m, 'Mapped')).toBe(768);
    expect(status(m, p, 'RssAnon')).toBe(256);
    expect(status(m, p, 'RssFile')).toBe(768);
    expect(as.nrpages).toBe(256);
    for (const i of [0, 63]) {
      const copy = pte(m, p, A + i * PG)!;
      expect(copy.pfn).not.toBe(filemap_get_folio(as, i));
      expect(copy.bits & _PAGE_RW).toBe(_PAGE_RW);
      expect(m.mm.frames.mapcount[filemap_get_folio(as, i)]).toBe(0);
    }
    expect(pte(m, p, A + 64 * PG)?.pfn).toBe(filemap_get_folio(as, 64));
    // A first write to an unmapped page: the copy is made straight away (do_cow_fault).
    p.mmap(B, 4 * PG, RW, MAP_PRIVATE | MAP_FIXED, fd, 100 * PG);
    expect(p.touch(B, 4 * PG, { write: true })).toBe(4);
    expect(meminfo(m, 'AnonPages')).toBe(256 + 16);
    expect(meminfo(m, 'Dirty')).toBe(0);
    p.munmap(A, MiB);
    p.munmap(B, 4 * PG);
    expect(meminfo(m, 'AnonPages')).toBe(0);
    expect(meminfo(m, 'Cached')).toBe(1024);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('fork and file mappings', () => {
  it('a child shares the parent’s page-cache pages: a shared mapping is faulted in again, a private one with copies is copied', () => {
    const { m, p } = boot();
    cleanFile(p, '/data/f', MiB);
    const as = mapping(m, '/data/f');
    const fd = p.open('/data/f', O_RDWR);
    p.mmap(A, MiB, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
    p.touch(A, MiB);
    p.mmap(B, 16 * PG, RW, MAP_PRIVATE | MAP_FIXED, fd, 0);
    p.touch(B, 16 * PG);
    p.touch(B, PG, { write: true });
    const cached = meminfo(m, 'Cached');
    const child = p.fork();
    // vma_needs_copy(): the shared mapping (no anon_vma) is left to faults, the private one
    // (with an anonymous copy) has its PTEs copied, file pages included.
    expect(pte(m, child, A)).toBeNull();
    expect(pte(m, child, B + PG)?.pfn).toBe(filemap_get_folio(as, 1));
    expect(status(m, child, 'RssFile')).toBe(60);
    expect(status(m, child, 'RssAnon')).toBe(4);
    expect(child.touch(A, MiB)).toBe(16);
    for (const i of [0, 100, 255]) expect(pte(m, child, A + i * PG)?.pfn).toBe(filemap_get_folio(as, i));
    expect(m.mm.frames.mapcount[filemap_get_folio(as, 100)]).toBe(2);
    // Page 1: both shared mappings and both private ones.
    expect(m.mm.frames.mapcount[filemap_get_folio(as, 1)]).toBe(4);
    expect(meminfo(m, 'Cached')).toBe(cached);
    // Mapped counts pages, not mappings.
    expect(meminfo(m, 'Mapped')).toBe(1024);
    expect(status(m, child, 'RssFile')).toBe(1024 + 60);
    // The child's write to its private mapping copies again; the parent keeps its own copy.
    child.touch(B, PG, { write: true });
    expect(pte(m, child, B)?.pfn).not.toBe(pte(m, p, B)?.pfn);
    child.exit();
    expect(m.mm.frames.mapcount[filemap_get_folio(as, 100)]).toBe(1);
    expect(meminfo(m, 'Mapped')).toBe(1024);
    expect(meminfo(m, 'AnonPages')).toBe(4);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('the end of the file', () => {
  it('SIGBUS past the last page of the file, for reads and writes, shared and private (6.18)', () => {
    const { m, p } = boot();
    const fd = p.open('/data/s', O_CREAT | O_RDWR);
    p.write(fd, 5000);
    p.mmap(A, 4 * PG, RW, MAP_SHARED | MAP_FIXED, fd, 0);
    p.mmap(B, 4 * PG, RW, MAP_PRIVATE | MAP_FIXED, fd, 0);
    for (const base of [A, B]) {
      expect(fault(() => p.touch(base + PG + 4000, 1))).toBeNull();
      for (const write of [false, true]) {
        const e = fault(() => p.touch(base + 2 * PG + 8, 1, { write }));
        expect(e?.signal).toBe('SIGBUS');
        expect(e?.code).toBe('BUS_ADRERR');
        expect(e?.address).toBe(base + 2 * PG + 8);
      }
    }
    // Past the mapping is SIGSEGV.
    expect(fault(() => p.touch(A + 4 * PG, 1))?.signal).toBe('SIGSEGV');
    // Growing the file makes the page valid (a hole: a zeroed page).
    p.ftruncate(fd, 3 * PG);
    expect(fault(() => p.touch(A + 2 * PG, 1))).toBeNull();
    expect(m.invariantViolations()).toEqual([]);
  });

  it('ftruncate() shrinking unmaps the pages past the new end from every mapping, private copies included (6.18)', () => {
    const { m, p } = boot();
    cleanFile(p, '/data/t', 64 * PG);
    const as = mapping(m, '/data/t');
    const fd = p.open('/data/t', O_RDWR);
    p.mmap(A, 64 * PG, RW, MAP_SHARED | MAP_FIXED, fd, 0);
    p.touch(A, 64 * PG);
    p.mmap(B, 64 * PG, RW, MAP_PRIVATE | MAP_FIXED, fd, 0);
    p.touch(B, 64 * PG);
    p.touch(B + 40 * PG, PG, { write: true });
    p.touch(B + 2 * PG, PG, { write: true });
    const child = p.fork();
    child.touch(A, 64 * PG);
    const keep = filemap_get_folio(as, 3);
    p.ftruncate(fd, 16 * PG);
    for (const q of [p, child]) {
      expect(pte(m, q, A + 16 * PG)).toBeNull();
      expect(pte(m, q, A + 63 * PG)).toBeNull();
      expect(pte(m, q, B + 40 * PG)).toBeNull();
      expect(pte(m, q, A + 3 * PG)?.pfn).toBe(keep);
    }
    expect(as.nrpages).toBe(16);
    expect(meminfo(m, 'Cached')).toBe(64);
    // The copy of page 40 went; the copy of page 2 (inside the file) stays, in both.
    expect(meminfo(m, 'AnonPages')).toBe(4);
    expect(fault(() => p.touch(A + 20 * PG, 1))?.signal).toBe('SIGBUS');
    expect(fault(() => child.touch(B + 40 * PG, 1))?.signal).toBe('SIGBUS');
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('permissions', () => {
  it('EACCES for a writable shared mapping of a read-only descriptor and for any mapping of a write-only one (6.18)', () => {
    const { m, p } = boot();
    const rw = p.open('/dev/shm/f', O_CREAT | O_RDWR);
    p.write(rw, 4 * PG);
    const ro = p.open('/dev/shm/f', O_RDONLY);
    const wo = p.open('/dev/shm/f', O_WRONLY);
    const acc = p.open('/dev/shm/f', O_ACCMODE);
    expect(errno(() => p.mmap(0, PG, RW, MAP_SHARED, ro, 0))).toBe('EACCES');
    expect(errno(() => p.mmap(0, PG, PROT_WRITE, MAP_SHARED, wo, 0))).toBe('EACCES');
    expect(errno(() => p.mmap(0, PG, PROT_READ, MAP_PRIVATE, wo, 0))).toBe('EACCES');
    expect(errno(() => p.mmap(0, PG, PROT_READ, MAP_SHARED, acc, 0))).toBe('EACCES');
    expect(errno(() => p.mmap(0, 0, PROT_READ, MAP_SHARED, ro, 0))).toBe('EINVAL');
    expect(errno(() => p.mmap(0, PG, PROT_READ, MAP_SHARED, ro, 100))).toBe('EINVAL');
    expect(errno(() => p.mmap(0, PG, PROT_READ, MAP_SHARED, 999, 0))).toBe('EBADF');
    expect(errno(() => p.mmap(A, PG, PROT_READ, MAP_SHARED | MAP_FIXED, ro, 0))).toBe('ok');
    expect(errno(() => p.mmap(B, PG, RW, MAP_PRIVATE | MAP_FIXED, ro, 0))).toBe('ok');
    expect(errno(() => p.mmap(C, PG, RW, MAP_SHARED | MAP_FIXED, rw, 0))).toBe('ok');
    // A shared mapping of a read-only descriptor may never become writable; exec is fine.
    expect(errno(() => p.mprotect(A, PG, RW))).toBe('EACCES');
    expect(errno(() => p.mprotect(A, PG, PROT_READ | PROT_EXEC))).toBe('ok');
    expect(errno(() => p.mprotect(B, PG, PROT_READ))).toBe('ok');
    expect(errno(() => p.mprotect(B, PG, RW))).toBe('ok');
    // MADV_REMOVE needs a shared mapping that may write.
    expect(errno(() => p.madvise(A, PG, MADV_REMOVE))).toBe('EACCES');
    expect(errno(() => p.madvise(B, PG, MADV_REMOVE))).toBe('EACCES');
    expect(errno(() => p.madvise(C, PG, MADV_REMOVE))).toBe('ok');
    // It still shows as shared (VM_MAYSHARE): "r-xs".
    expect(m.readFile(`/proc/${p.pid}/maps`)).toMatch(/^40000000-40001000 r-xs /m);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('MADV_PAGEOUT drops page cache only of files the caller could write; another user’s is left alone (6.18)', () => {
    const { m, p } = boot();
    cleanFile(p, '/data/root644', MiB, 0o644);
    const nobody = m.spawn({ uid: 65534, gid: 65534 });
    const fd = nobody.open('/data/root644', O_RDONLY);
    nobody.mmap(A, MiB, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
    nobody.touch(A, MiB);
    nobody.madvise(A, MiB, MADV_PAGEOUT);
    expect(mapping(m, '/data/root644').nrpages).toBe(256);
    expect(status(m, nobody, 'RssFile')).toBe(1024);
    // Root may (6.18: 256 resident pages, then 0).
    const rfd = p.open('/data/root644', O_RDONLY);
    p.mmap(A, MiB, PROT_READ, MAP_SHARED | MAP_FIXED, rfd, 0);
    p.touch(A, MiB);
    nobody.munmap(A, MiB);
    p.madvise(A, MiB, MADV_PAGEOUT);
    expect(mapping(m, '/data/root644').nrpages).toBe(0);
    expect(status(m, p, 'RssFile')).toBe(0);
    expect(meminfo(m, 'Mapped')).toBe(0);
    // So may nobody for its own file.
    cleanFile(nobody, '/data/mine', MiB);
    const own = nobody.open('/data/mine', O_RDONLY);
    nobody.mmap(B, MiB, PROT_READ, MAP_SHARED | MAP_FIXED, own, 0);
    nobody.touch(B, MiB);
    nobody.madvise(B, MiB, MADV_PAGEOUT);
    expect(mapping(m, '/data/mine').nrpages).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('MAP_SHARED | MAP_ANONYMOUS', () => {
  it('is shmem: Shmem and RssShmem, the same pages in a fork child, freed with the last mapping (6.18)', () => {
    const { m, p } = boot();
    p.mmap(A, MiB, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
    p.touch(A, 128 * PG, { write: true });
    expect(meminfo(m, 'Shmem')).toBe(512);
    expect(meminfo(m, 'AnonPages')).toBe(0);
    expect(status(m, p, 'RssShmem')).toBe(512);
    expect(status(m, p, 'RssAnon')).toBe(0);
    const child = p.fork();
    child.touch(A, PG);
    expect(pte(m, child, A)?.pfn).toBe(pte(m, p, A)?.pfn);
    // 6.18: the child's writes are the parent's.
    child.touch(A + 128 * PG, 128 * PG, { write: true });
    expect(meminfo(m, 'Shmem')).toBe(1024);
    p.touch(A + 200 * PG, PG);
    expect(pte(m, p, A + 200 * PG)?.pfn).toBe(pte(m, child, A + 200 * PG)?.pfn);
    expect(meminfo(m, 'Shmem')).toBe(1024);
    const line = m.readFile(`/proc/${p.pid}/maps`).split('\n')[0];
    expect(line.startsWith('40000000-40100000 rw-s 00000000 00:01 ')).toBe(true);
    expect(line.endsWith(' /dev/zero (deleted)')).toBe(true);
    child.exit();
    expect(meminfo(m, 'Shmem')).toBe(1024);
    p.munmap(A, MiB);
    // 6.18: Shmem back to where it was after munmap.
    expect(meminfo(m, 'Shmem')).toBe(0);
    expect(meminfo(m, 'Cached')).toBe(0);
    expect([...m.mm.page_cache.all()]).toEqual([]);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('belongs to its machine: shared memory in one machine is not counted in another', () => {
    const early = NO_EARLY;
    const m1 = Machine.boot({ memory: '256M', early });
    const p1 = m1.spawn();
    p1.mmap(A, 4 * MiB, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
    p1.touch(A, 4 * MiB, { write: true });
    const m2 = Machine.boot({ memory: '256M', early });
    expect(m2.invariantViolations()).toEqual([]);
    const p2 = m2.spawn();
    p2.mmap(A, MiB, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
    p2.touch(A, MiB, { write: true });
    expect(meminfo(m1, 'Shmem')).toBe(4096);
    expect(meminfo(m2, 'Shmem')).toBe(1024);
    expect(m1.invariantViolations()).toEqual([]);
    expect(m2.invariantViolations()).toEqual([]);
    p1.exit();
    p2.exit();
    expect(meminfo(m1, 'Shmem')).toBe(0);
    expect(meminfo(m2, 'Shmem')).toBe(0);
    expect(m1.invariantViolations()).toEqual([]);
    expect(m2.invariantViolations()).toEqual([]);
  });
});

describe('/proc/<pid>/maps', () => {
  it('shows a file mapping’s offset, device, inode and path from column 73, " (deleted)" once unlinked (6.18 line shape)', () => {
    const { m, p } = boot();
    const shm = p.open('/dev/shm/mc_maps', O_CREAT | O_RDWR);
    p.write(shm, 64 * 1024);
    const disk = p.open('/data/mc_disk', O_CREAT | O_RDWR);
    p.write(disk, 64 * 1024);
    const mfd = p.memfd_create('mybuf');
    p.ftruncate(mfd, 8192);
    p.mmap(0x10000000, 16384, RW, MAP_SHARED | MAP_FIXED, shm, 8192);
    p.mmap(0x10010000, 8192, PROT_READ, MAP_PRIVATE | MAP_FIXED, disk, 4096);
    p.mmap(0x10020000, 8192, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
    p.mmap(0x10030000, 8192, RW, MAP_SHARED | MAP_FIXED, mfd, 0);
    p.mmap(0x10040000, 8192, PROT_READ, MAP_SHARED | MAP_FIXED, p.open('/data/mc_disk', O_RDONLY), 0);
    p.unlink('/dev/shm/mc_maps');
    const shmInode = p.fdt.fds[shm]!.inode;
    const diskInode = m.vm.files.lookup('/data/mc_disk')!;
    const mfdInode = p.fdt.fds[mfd]!.inode;
    expect(shmInode.mount.dev).toMatch(/^00:[0-9a-f]{2}$/);
    expect(diskInode.mount.dev).toBe('08:01');
    expect(mfdInode.mount.dev).toBe('00:01');
    const line = (range: string, perms: string, off: string, dev: string, ino: number, name: string) =>
      `${`${range} ${perms} ${off} ${dev} ${ino}`.padEnd(72)} ${name}`;
    const lines = m.readFile(`/proc/${p.pid}/maps`).split('\n');
    // 6.18, the same calls:
    // 10000000-10004000 rw-s 00002000 00:1b 12                                 /dev/shm/mc_maps (deleted)
    // 10010000-10012000 r--p 00001000 fe:00 4251873                            /tmp/kt/mc_disk
    // 10020000-10022000 rw-s 00000000 00:01 27                                 /dev/zero (deleted)
    // 10030000-10032000 rw-s 00000000 00:01 26                                 /memfd:mybuf (deleted)
    // 10040000-10042000 r--s 00000000 fe:00 4251873                            /tmp/kt/mc_disk
    expect(lines.slice(0, 5)).toEqual([
      line(
        '10000000-10004000',
        'rw-s',
        '00002000',
        shmInode.mount.dev,
        shmInode.ino,
        '/dev/shm/mc_maps (deleted)',
      ),
      line('10010000-10012000', 'r--p', '00001000', '08:01', diskInode.ino, '/data/mc_disk'),
      expect.stringMatching(/^10020000-10022000 rw-s 00000000 00:01 \d+ +\/dev\/zero \(deleted\)$/),
      line('10030000-10032000', 'rw-s', '00000000', '00:01', mfdInode.ino, '/memfd:mybuf (deleted)'),
      line('10040000-10042000', 'r--s', '00000000', '08:01', diskInode.ino, '/data/mc_disk'),
    ]);
    for (const l of lines.slice(0, 5)) expect(l.indexOf('/')).toBe(73);
    p.unlink('/data/mc_disk');
    const after = m.readFile(`/proc/${p.pid}/maps`).split('\n');
    expect(after[1].endsWith(' /data/mc_disk (deleted)')).toBe(true);
    expect(after[4].endsWith(' /data/mc_disk (deleted)')).toBe(true);
    // Inode numbers are the files' own: the two disk mappings share one, the others differ.
    expect(new Set([shmInode.ino, diskInode.ino, mfdInode.ino]).size).toBe(3);
    expect(m.invariantViolations()).toEqual([]);
  });
});

/** 32 MiB of a file mapped with `advice` and touched, then 64 MiB of cache, then pressure. */
function reclaimAround(advice: 'none' | 'random' | 'sequential' | 'noreuse'): {
  m: Machine;
  mapped: number;
  rotated: number;
} {
  const m = Machine.boot({ memory: '256M', early: NO_EARLY });
  const p = m.spawn();
  cleanFile(p, '/data/mapped', 32 * MiB);
  cleanFile(p, '/data/other', 64 * MiB);
  const fd = p.open('/data/mapped', O_RDONLY);
  if (advice === 'noreuse') p.fadvise(fd, 0, 0, POSIX_FADV_NOREUSE);
  p.mmap(A, 32 * MiB, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
  if (advice === 'random') p.madvise(A, 32 * MiB, MADV_RANDOM);
  if (advice === 'sequential') p.madvise(A, 32 * MiB, MADV_SEQUENTIAL);
  p.touch(A, 32 * MiB);
  expect(meminfo(m, 'Mapped')).toBe(32 * 1024);
  // Pressure for about 25 MiB; the mapped file is the oldest cache.
  const hog = p.mmap(0, 130 * MiB, RW, MAP_PRIVATE | MAP_ANONYMOUS);
  p.touch(hog, 130 * MiB, { write: true });
  expect(p.exited).toBe(false);
  return {
    m,
    mapped: meminfo(m, 'Mapped'),
    rotated: vmstat(m, 'pgscan_direct') - vmstat(m, 'pgsteal_direct'),
  };
}

describe('madvise() on file mappings', () => {
  it('MADV_REMOVE on tmpfs frees the pages behind the range, from every mapping (6.18)', () => {
    const { m, p } = boot();
    const fd = p.open('/dev/shm/r', O_CREAT | O_RDWR);
    p.ftruncate(fd, MiB);
    p.mmap(A, MiB, RW, MAP_SHARED | MAP_FIXED, fd, 0);
    p.touch(A, MiB, { write: true });
    const other = m.spawn();
    const ofd = other.open('/dev/shm/r', O_RDWR);
    other.mmap(B, MiB, RW, MAP_SHARED | MAP_FIXED, ofd, 0);
    other.touch(B, MiB);
    expect(meminfo(m, 'Shmem')).toBe(1024);
    p.madvise(A + 64 * PG, 64 * PG, MADV_REMOVE);
    expect(meminfo(m, 'Shmem')).toBe(768);
    expect(pte(m, other, B + 64 * PG)).toBeNull();
    expect(pte(m, other, B + 127 * PG)).toBeNull();
    expect(pte(m, other, B + 128 * PG)).not.toBeNull();
    expect(status(m, other, 'RssShmem')).toBe(768);
    // A hole now: SEEK_HOLE finds it, and a read fault fills it with a new zeroed page.
    expect(p.lseek(fd, 0, SEEK_HOLE)).toBe(64 * PG);
    expect(p.lseek(fd, 64 * PG, SEEK_DATA)).toBe(128 * PG);
    other.touch(B + 64 * PG, 1);
    expect(meminfo(m, 'Shmem')).toBe(772);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('MADV_PAGEOUT drops clean page cache mapped only here; not pages mapped twice, not dirty ones', () => {
    const { m, p } = boot();
    cleanFile(p, '/data/f', MiB);
    const as = mapping(m, '/data/f');
    const fd = p.open('/data/f', O_RDWR);
    p.mmap(A, MiB, RW, MAP_SHARED | MAP_FIXED, fd, 0);
    p.touch(A, MiB);
    p.touch(A, 16 * PG, { write: true });
    const child = p.fork();
    child.touch(A + 128 * PG, 16 * PG);
    p.madvise(A, MiB, MADV_PAGEOUT);
    // 16 dirty pages wait for writeback; 16 are mapped by the child too; the rest are gone.
    expect(as.nrpages).toBe(32);
    expect(filemap_get_folio(as, 0)).toBeGreaterThanOrEqual(0);
    expect(filemap_get_folio(as, 128)).toBeGreaterThanOrEqual(0);
    expect(filemap_get_folio(as, 64)).toBe(-1);
    expect(meminfo(m, 'Dirty')).toBe(64);
    expect(pte(m, p, A + 64 * PG)).toBeNull();
    expect(pte(m, p, A + 128 * PG)).not.toBeNull();
    // Touching a dropped page again reads it back in: a major fault.
    const maj = vmstat(m, 'pgmajfault');
    p.touch(A + 64 * PG, 1);
    expect(vmstat(m, 'pgmajfault')).toBe(maj + 1);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('pages in use through a mapping outlast unmapped cache under reclaim, unless it is MADV_RANDOM', () => {
    // Referenced through its PTEs, the mapping is kept (rotated); unmapped cache goes instead.
    const normal = reclaimAround('none');
    expect(normal.mapped).toBe(32 * 1024);
    expect(normal.rotated).toBeGreaterThan(0);
    // Without recency its accesses do not count: it is reclaimed like unmapped cache.
    const random = reclaimAround('random');
    expect(random.mapped).toBeLessThan(16 * 1024);
    expect(random.rotated).toBeLessThan(normal.rotated);
    expect(normal.m.invariantViolations()).toEqual([]);
    expect(random.m.invariantViolations()).toEqual([]);
  });

  it('MADV_SEQUENTIAL mappings and POSIX_FADV_NOREUSE files do not keep their pages from reclaim either', () => {
    for (const advice of ['sequential', 'noreuse'] as const) {
      const r = reclaimAround(advice);
      expect(r.mapped).toBeLessThan(16 * 1024);
      expect(r.rotated).toBeLessThan(1024);
      expect(r.m.invariantViolations()).toEqual([]);
    }
  });

  it('unmapping a MADV_RANDOM mapping does not count its accesses: a later read does not activate the pages', () => {
    const run = (advice: number) => {
      const { m, p } = boot();
      cleanFile(p, '/data/f', 16 * MiB);
      const fd = p.open('/data/f', O_RDONLY);
      p.mmap(A, 16 * MiB, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
      p.madvise(A, 16 * MiB, advice);
      p.touch(A, 16 * MiB);
      p.munmap(A, 16 * MiB); // young PTEs: folio_mark_accessed() where the VMA has recency
      p.pread(fd, 16 * MiB, 0); // the second access activates
      return { m, active: meminfo(m, 'Active(file)') };
    };
    const normal = run(MADV_NORMAL);
    expect(normal.active).toBe(16 * 1024);
    const random = run(MADV_RANDOM);
    expect(random.active).toBe(0);
    expect(normal.m.invariantViolations()).toEqual([]);
    expect(random.m.invariantViolations()).toEqual([]);
  });

  it('MADV_DONTNEED on a shared mapping unmaps but keeps the page cache; a new touch maps the same page (6.18)', () => {
    const { m, p } = boot();
    cleanFile(p, '/data/f', MiB);
    const fd = p.open('/data/f', O_RDWR);
    p.mmap(A, MiB, RW, MAP_SHARED | MAP_FIXED, fd, 0);
    p.touch(A, MiB);
    p.touch(A, 4 * PG, { write: true });
    const pfn = pte(m, p, A + 10 * PG)!.pfn;
    const cached = meminfo(m, 'Cached');
    p.madvise(A, MiB, MADV_DONTNEED);
    expect(status(m, p, 'RssFile')).toBe(0);
    expect(meminfo(m, 'Mapped')).toBe(0);
    expect(meminfo(m, 'Cached')).toBe(cached);
    expect(meminfo(m, 'Dirty')).toBe(16);
    const maj = vmstat(m, 'pgmajfault');
    p.touch(A + 10 * PG, 1);
    expect(pte(m, p, A + 10 * PG)?.pfn).toBe(pfn);
    expect(vmstat(m, 'pgmajfault')).toBe(maj);
    // Shared memory too: the pages stay with the file.
    const s = p.memfd_create('s');
    p.ftruncate(s, MiB);
    p.mmap(B, MiB, RW, MAP_SHARED | MAP_FIXED, s, 0);
    p.touch(B, MiB, { write: true });
    p.madvise(B, MiB, MADV_DONTNEED);
    expect(meminfo(m, 'Shmem')).toBe(1024);
    expect(status(m, p, 'RssShmem')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('mlock() of file mappings', () => {
  it('moves the pages to Unevictable and Mlocked; munlock gives them back to the file LRU (6.18)', () => {
    const { m, p } = boot();
    cleanFile(p, '/data/f', MiB);
    const fd = p.open('/data/f', O_RDONLY);
    const fileLru = () => meminfo(m, 'Active(file)') + meminfo(m, 'Inactive(file)');
    const lru = fileLru();
    p.mmap(A, MiB, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
    p.mlock(A, MiB);
    expect(meminfo(m, 'Unevictable')).toBe(1024);
    expect(meminfo(m, 'Mlocked')).toBe(1024);
    expect(fileLru()).toBe(lru - 1024);
    expect(status(m, p, 'RssFile')).toBe(1024);
    m.writeFile('/proc/sys/vm/drop_caches', '1');
    expect(mapping(m, '/data/f').nrpages).toBe(256);
    p.munlock(A, MiB);
    expect(meminfo(m, 'Unevictable')).toBe(0);
    expect(meminfo(m, 'Mlocked')).toBe(0);
    expect(fileLru()).toBe(lru);
    // MAP_LOCKED reads a cold file in and locks it.
    coldFile(p, '/data/cold', MiB);
    const cfd = p.open('/data/cold', O_RDONLY);
    p.mmap(B, MiB, PROT_READ, MAP_SHARED | MAP_LOCKED | MAP_FIXED, cfd, 0);
    expect(mapping(m, '/data/cold').nrpages).toBe(256);
    expect(meminfo(m, 'Mlocked')).toBe(1024);
    expect(status(m, p, 'RssFile')).toBe(2048);
    p.munmap(B, MiB);
    expect(meminfo(m, 'Mlocked')).toBe(0);
    expect(meminfo(m, 'Unevictable')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('exit', () => {
  it('frees what only the process held: copies, shared memory, memfds, unlinked files; named files stay cached', () => {
    const { m, p } = boot();
    cleanFile(p, '/data/named', MiB);
    const q = m.spawn({ uid: 1000 });
    const named = q.open('/data/named', O_RDONLY);
    q.mmap(A, MiB, PROT_READ, MAP_SHARED | MAP_FIXED, named, 0);
    q.touch(A, MiB);
    q.mmap(B, MiB, RW, MAP_PRIVATE | MAP_FIXED, named, 0);
    q.touch(B, 64 * PG, { write: true });
    q.mmap(C, MiB, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
    q.touch(C, MiB, { write: true });
    const mfd = q.memfd_create('q');
    q.write(mfd, 2 * MiB);
    const gone = q.open('/dev/shm/gone', O_CREAT | O_RDWR);
    q.write(gone, MiB);
    q.unlink('/dev/shm/gone');
    expect(meminfo(m, 'Shmem')).toBe(1024 + 2048 + 1024);
    expect(meminfo(m, 'AnonPages')).toBe(256);
    expect(meminfo(m, 'Mapped')).toBeGreaterThan(0);
    q.exit();
    expect(meminfo(m, 'Shmem')).toBe(0);
    expect(meminfo(m, 'AnonPages')).toBe(0);
    expect(meminfo(m, 'Mapped')).toBe(0);
    expect(meminfo(m, 'Cached')).toBe(1024);
    expect([...m.mm.page_cache.all()]).toEqual([mapping(m, '/data/named')]);
    expect(m.process(q.pid)).toBeUndefined();
    expect(m.invariantViolations()).toEqual([]);
  });
});
