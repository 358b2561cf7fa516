/**
 * Faults on file-backed and shared memory (mm/memory.c do_fault(), do_read_fault(),
 * do_cow_fault(), do_shared_fault(), do_fault_around(), finish_fault(); mm/filemap.c
 * filemap_fault() and filemap_map_pages(); mm/shmem.c shmem_fault()).
 *
 * A read fault first maps whatever the page cache already holds around the address (fault
 * around, 16 pages by default), then reads the page in with mmap read-around; having waited for
 * the read, the fault is retried and the retry maps the window around it. A write fault on a
 * private mapping copies the file page into a new anonymous page; on a shared mapping it dirties
 * the page cache page. A fault past the end of the file is SIGBUS. tmpfs pages are allocated on
 * first fault (ENOSPC when the mount is full is SIGBUS too).
 */
import { errnos } from '../lib/errno.ts';
import {
  type AddressSpace,
  filemap_create_folio,
  filemap_get_folio,
  folio_mark_dirty,
  NR_FILE_MAPPED,
} from '../mm/filemap.ts';
import { mlock_folio } from '../mm/lru.ts';
import { PAGE_SIZE } from '../mm/mmzone.ts';
import { __free_pages } from '../mm/page_alloc/alloc_pages.ts';
import { PG_locked, PG_readahead, PG_uptodate, PG_workingset } from '../mm/page-flags.ts';
import { balance_dirty_pages } from '../mm/page-writeback.ts';
import {
  page_cache_async_ra,
  page_cache_ra_order,
  page_cache_sync_ra,
  type ReadaheadControl,
} from '../mm/readahead.ts';
import { shmem_get_folio } from '../mm/shmem.ts';
import { vm_event_index } from '../mm/vmstat_items.ts';
import type { OpenFile } from './files.ts';
import { add_new_anon_page, alloc_anon_folio, VM_FAULT_OOM, VM_FAULT_SIGBUS } from './memory.ts';
import { MM_FILEPAGES, MM_SHMEMPAGES, type MmStruct } from './mm_struct.ts';
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_PRESENT,
  _PAGE_RW,
  _PAGE_USER,
  PTRS_PER_TABLE,
} from './pgtable.ts';
import type { Vm } from './vm.ts';
import { VM_EXEC, VM_LOCKED, VM_RAND_READ, VM_SEQ_READ, VM_SHARED, VM_SPECIAL, VM_WRITE } from './vma.ts';

/** fault_around_bytes (debugfs) / PAGE_SIZE: 64 KiB. */
export const FAULT_AROUND_PAGES = 16;
/** MMAP_LOTSAMISS: after this many read misses, mmap read-around stops. */
const MMAP_LOTSAMISS = 100;

const PGMAJFAULT = vm_event_index('pgmajfault');
const PGPGIN = vm_event_index('pgpgin');

/** mm_counter_file(): tmpfs pages count as RssShmem, others as RssFile. */
export function mm_counter_file(as: AddressSpace): number {
  return as.shmem ? MM_SHMEMPAGES : MM_FILEPAGES;
}

/**
 * folio_add_file_rmap_pte() + the rss counter: one more PTE maps the page-cache page `pfn`
 * (nr_mapped when it is the first); in a VM_LOCKED VMA the page is mlocked (mlock_vma_folio).
 */
export function page_add_file_rmap(vm: Vm, mm: MmStruct, vma: number, pfn: number, as: AddressSpace): void {
  const f = vm.mm.frames;
  if (f.mapcount[pfn]++ === 0) vm.mm.nodes[vm.mm.page_zone(pfn)!.nid].vm_stat[NR_FILE_MAPPED]++;
  mm.rss[mm_counter_file(as)]++;
  if ((vm.vmas.vm_flags[vma] & (VM_LOCKED | VM_SPECIAL)) === VM_LOCKED) mlock_folio(vm.mm, pfn);
}

/** Set the PTE of slot `e` to map `pfn` (a page-cache page) with `bits`, and add the rmap. */
function set_pte_file(
  vm: Vm,
  mm: MmStruct,
  vma: number,
  table: number,
  i: number,
  pfn: number,
  bits: number,
  as: AddressSpace,
): void {
  vm.pt.set(table, i, pfn, _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | bits);
  page_add_file_rmap(vm, mm, vma, pfn, as);
}

/** The open file a file VMA maps. */
export function vma_file(vm: Vm, vma: number): OpenFile {
  return vm.files.file(vm.vmas.vm_file[vma]);
}

/**
 * A shared writable mapping of a file that writes back has its PTEs mapped read-only so the
 * first write is seen (vma_wants_writenotify: page_mkwrite / dirty accounting); tmpfs has
 * neither, so its shared writable PTEs are writable from the start.
 */
function vma_wants_writenotify(vm: Vm, vma: number, as: AddressSpace): boolean {
  return (vm.vmas.vm_flags[vma] & VM_SHARED) !== 0 && !as.shmem;
}

/**
 * kernel: mm/memory.c do_fault() for a missing PTE in a file VMA (or shared anonymous memory).
 * `table`/`i` is the PTE slot. Returns VM_FAULT_OK (0), VM_FAULT_OOM or VM_FAULT_SIGBUS.
 */
export function do_fault(
  vm: Vm,
  mm: MmStruct,
  vma: number,
  addr: number,
  write: boolean,
  table: number,
  i: number,
): number {
  const file = vma_file(vm, vma);
  const as = file.inode.mapping;
  const index = vm.vmas.linear_page_index(vma, addr);
  if (index >= Math.ceil(as.i_size / PAGE_SIZE)) return VM_FAULT_SIGBUS;
  const flags = vm.vmas.vm_flags[vma];
  if (!write) {
    // do_read_fault(): map what is cached around the address first.
    if (FAULT_AROUND_PAGES > 1) {
      do_fault_around(vm, mm, vma, index, table, i, file);
      if (vm.pt.bits[table * PTRS_PER_TABLE + i] !== 0) return 0;
    }
    fault_retry = false;
    const pfn = __do_fault(vm, mm, vma, file, index);
    if (pfn < 0) return -pfn;
    // filemap_fault() dropped the mmap lock to wait for a read (VM_FAULT_RETRY): the retried
    // fault (counted once) maps the fault-around window, this page now among it.
    if (fault_retry && FAULT_AROUND_PAGES > 1) {
      do_fault_around(vm, mm, vma, index, table, i, file);
      if (vm.pt.bits[table * PTRS_PER_TABLE + i] !== 0) return 0;
    }
    const rw = flags & VM_SHARED && flags & VM_WRITE && !vma_wants_writenotify(vm, vma, as) ? _PAGE_RW : 0;
    set_pte_file(vm, mm, vma, table, i, pfn, rw, as);
    return 0;
  }
  if (!(flags & VM_SHARED)) {
    // do_cow_fault(): the new anonymous page first, then the file page to copy into it.
    const anon = alloc_anon_folio(vm, mm, vma, false);
    if (anon < 0) return VM_FAULT_OOM;
    const pfn = __do_fault(vm, mm, vma, file, index);
    if (pfn < 0) {
      __free_pages(vm.mm, anon, 0, mm.cpu);
      return -pfn;
    }
    vm.mm.kernel_ns += vm.mm.cost.copy_page; // copy_mc_user_highpage()
    add_new_anon_page(vm, mm, vma, addr, anon);
    vm.pt.set(table, i, anon, _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_RW);
    return 0;
  }
  // do_shared_fault(): page_mkwrite, map it writable and dirty, then dirty the page.
  const pfn = __do_fault(vm, mm, vma, file, index);
  if (pfn < 0) return -pfn;
  set_pte_file(vm, mm, vma, table, i, pfn, _PAGE_RW | _PAGE_DIRTY, as);
  fault_dirty_shared_page(vm, as, pfn);
  return 0;
}

/**
 * Set by filemap_fault() when the kernel's would return VM_FAULT_RETRY: it released the mmap
 * lock (maybe_unlock_mmap_for_io) to read the page or to start async readahead.
 */
let fault_retry = false;

/** kernel: mm/memory.c fault_dirty_shared_page(): dirty the page, then balance dirty memory. */
export function fault_dirty_shared_page(vm: Vm, as: AddressSpace, pfn: number): void {
  folio_mark_dirty(vm.mm, as, pfn, vm.mm.now());
  if (!as.shmem) balance_dirty_pages(vm.mm, as);
}

/**
 * kernel: mm/memory.c __do_fault() → vma->vm_ops->fault (filemap_fault / shmem_fault)
 * The page-cache page for `index`, read in or allocated as needed: its pfn, or
 * -VM_FAULT_OOM / -VM_FAULT_SIGBUS.
 */
function __do_fault(vm: Vm, mm: MmStruct, vma: number, file: OpenFile, index: number): number {
  const as = file.inode.mapping;
  const sbinfo = file.inode.mount.sbinfo;
  if (sbinfo) {
    const pfn = shmem_get_folio(vm.mm, as, sbinfo, index, mm.nid, mm.cpu);
    if (pfn === -errnos.ENOSPC) return -VM_FAULT_SIGBUS;
    return pfn < 0 ? -VM_FAULT_OOM : pfn;
  }
  return filemap_fault(vm, mm, vma, file, index);
}

/**
 * kernel: mm/filemap.c filemap_fault()
 * A cached page is used as is (its readahead mark starts the next window); a missing one is a
 * major fault: mmap read-around (or sequential readahead for MADV_SEQUENTIAL, nothing extra for
 * MADV_RANDOM) reads it and its neighbours. Returns the pfn or -VM_FAULT_OOM.
 */
export function filemap_fault(vm: Vm, mm: MmStruct, vma: number, file: OpenFile, index: number): number {
  const as = file.inode.mapping;
  const ra = file.ra;
  const flags = vm.vmas.vm_flags[vma];
  const ractl: ReadaheadControl = { mm: vm.mm, mapping: as, ra, nid: mm.nid, cpu: mm.cpu, nr_read: 0 };
  let pfn = filemap_get_folio(as, index);
  if (pfn >= 0) {
    // do_async_mmap_readahead(), with the page locked so the readahead's reclaim spares it.
    if (!(flags & VM_RAND_READ) && ra.ra_pages) {
      if (file.mmap_miss) file.mmap_miss--;
      const f = vm.mm.frames;
      if (f.flags[pfn] & PG_readahead) {
        fault_retry = true;
        f.flags[pfn] |= PG_locked;
        page_cache_async_ra(ractl, pfn, index, ra.ra_pages);
        f.flags[pfn] &= ~PG_locked;
      }
    }
    return pfn;
  }
  vm.mm.vm_events[PGMAJFAULT]++;
  fault_retry = true;
  do_sync_mmap_readahead(ractl, file, flags, index, vm.vmas.vm_pgoff[vma], vma_pages(vm, vma));
  pfn = filemap_get_folio(as, index);
  if (pfn < 0) {
    // filemap_read_folio() of this page alone.
    pfn = filemap_create_folio(vm.mm, as, index, mm.nid, mm.cpu);
    if (pfn < 0) return -VM_FAULT_OOM;
    vm.mm.vm_events[PGPGIN] += 8;
  }
  return pfn;
}

function vma_pages(vm: Vm, vma: number): number {
  return (vm.vmas.vm_end[vma] - vm.vmas.vm_start[vma]) / PAGE_SIZE;
}

/** kernel: mm/filemap.c do_sync_mmap_readahead() (order-0 page cache, exec_folio_order() 0) */
function do_sync_mmap_readahead(
  ractl: ReadaheadControl,
  file: OpenFile,
  flags: number,
  index: number,
  vm_pgoff: number,
  nr_vma_pages: number,
): void {
  const ra = ractl.ra;
  if ((flags & (VM_RAND_READ | VM_EXEC)) === VM_RAND_READ || !ra.ra_pages) return;
  if (flags & VM_SEQ_READ) {
    page_cache_sync_ra(ractl, index, ra.ra_pages);
    return;
  }
  if (file.mmap_miss < MMAP_LOTSAMISS * 10) file.mmap_miss++;
  if (file.mmap_miss > MMAP_LOTSAMISS) return;
  if (flags & VM_EXEC) {
    ra.start = Math.max(index, vm_pgoff);
    ra.size = Math.min(ra.start + ra.ra_pages, vm_pgoff + nr_vma_pages) - ra.start;
    ra.async_size = 0;
  } else {
    ra.start = Math.max(0, index - Math.floor(ra.ra_pages / 2));
    ra.size = ra.ra_pages;
    ra.async_size = Math.floor(ra.ra_pages / 4);
  }
  ra.order = 0;
  page_cache_ra_order(ractl);
}

/**
 * kernel: mm/memory.c do_fault_around() + mm/filemap.c filemap_map_pages()
 * Map the cached, uptodate pages of the 16-page aligned window around the fault (clamped to the
 * VMA, the PTE table and the end of the file) whose PTEs are empty; pages still carrying a
 * readahead mark are left for the fault path. Each page found not in the workingset counts
 * against the file's mmap_miss.
 */
function do_fault_around(
  vm: Vm,
  mm: MmStruct,
  vma: number,
  index: number,
  table: number,
  i: number,
  file: OpenFile,
): void {
  const as = file.inode.mapping;
  const nr_pages = FAULT_AROUND_PAGES;
  const pte_off = i;
  const vma_off = index - vm.vmas.vm_pgoff[vma];
  const from_pte = Math.max(pte_off - (pte_off % nr_pages), pte_off - Math.min(pte_off, vma_off));
  const to_pte = Math.min(from_pte + nr_pages, PTRS_PER_TABLE, pte_off + vma_pages(vm, vma) - vma_off) - 1;
  const file_end = Math.ceil(as.i_size / PAGE_SIZE) - 1;
  const start_pgoff = index + from_pte - pte_off;
  const end_pgoff = Math.min(index + to_pte - pte_off, file_end);
  const f = vm.mm.frames;
  const pt = vm.pt;
  const rw =
    vm.vmas.vm_flags[vma] & VM_SHARED &&
    vm.vmas.vm_flags[vma] & VM_WRITE &&
    !vma_wants_writenotify(vm, vma, as)
      ? _PAGE_RW
      : 0;
  let found = 0;
  for (let pgoff = start_pgoff; pgoff <= end_pgoff; pgoff++) {
    const pfn = filemap_get_folio(as, pgoff);
    if (pfn < 0) continue;
    const fl = f.flags[pfn];
    if (!(fl & PG_uptodate) || fl & PG_readahead) continue;
    if (!(fl & PG_workingset)) found++;
    const slot = pte_off + (pgoff - index);
    if (pt.bits[table * PTRS_PER_TABLE + slot] !== 0) continue;
    set_pte_file(vm, mm, vma, table, slot, pfn, rw, as);
  }
  file.mmap_miss = found >= file.mmap_miss ? 0 : file.mmap_miss - found;
}
