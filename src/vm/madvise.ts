/**
 * mm/madvise.c: madvise() on anonymous, shared and file mappings.
 *
 * - MADV_DONTNEED (and MADV_DONTNEED_LOCKED, which also works on VM_LOCKED VMAs): zap the pages;
 *   later accesses fault in zero-fill memory. With CONFIG_PT_RECLAIM (our kernel has it) every
 *   PTE table whose 2 MiB the range covers within one VMA is freed too.
 * - MADV_FREE (anonymous VMAs only; EINVAL on shared or file mappings): clean every exclusive
 *   page (PTE dirty and accessed bits, PG_dirty, its swap copy) and make it lazily freeable: off
 *   the anonymous LRU onto the inactive file list with PG_swapbacked cleared (pglazyfree);
 *   reclaim discards it while it stays clean (pglazyfreed). Swap entries in the range are freed.
 * - MADV_COLD: deactivate exclusive pages (active to inactive list, pgdeactivate) and clear their
 *   accessed bits. MADV_PAGEOUT: reclaim exclusive pages now (reclaim_pages(), a page-cache page
 *   only if the caller could write the file). Without swap, which our machines lack, an
 *   anonymous page cannot be written out: shrink_folio_list() activates it instead (pgactivate;
 *   measured on 6.18); with swap it goes to swap.
 * - MADV_REMOVE punches a hole in the file behind a shared writable mapping; MADV_WILLNEED reads
 *   a file range ahead.
 * - Flags only: MADV_DONTFORK / MADV_DOFORK (VM_DONTCOPY), MADV_WIPEONFORK / MADV_KEEPONFORK,
 *   MADV_HUGEPAGE / MADV_NOHUGEPAGE (VM_HUGEPAGE / VM_NOHUGEPAGE; MADV_HUGEPAGE registers the
 *   address space with khugepaged),
 *   MADV_NORMAL / MADV_RANDOM / MADV_SEQUENTIAL, MADV_DONTDUMP / MADV_DODUMP. These split and
 *   merge VMAs; running out of vm.max_map_count gives EAGAIN, as in the kernel.
 * - MADV_WILLNEED does nothing for anonymous memory (no swap readahead). MADV_POPULATE_READ / WRITE
 *   fault the range in (EINVAL where the access is not allowed, ENOMEM at a hole or when memory
 *   runs out).
 * - Not modelled (ENOSYS): KSM (MADV_MERGEABLE / UNMERGEABLE), MADV_COLLAPSE, guard regions
 *   (MADV_GUARD_INSTALL / REMOVE), and the memory-failure injections MADV_HWPOISON /
 *   MADV_SOFT_OFFLINE (EPERM first without CAP_SYS_ADMIN, as in the kernel).
 *
 * Errnos (6.18, measured): EINVAL for unknown advice, an unaligned start or a wrapping range
 * (checked in that order, before anything else); length 0 does nothing; holes in the range give
 * ENOMEM after the advice was applied to every mapped part; EINVAL for MADV_DONTNEED, MADV_FREE,
 * MADV_COLD and MADV_PAGEOUT on a VM_LOCKED VMA (stopping there) and for MADV_REMOVE (needs a
 * shared file mapping).
 */

import { errnos } from '../lib/errno.ts';
import { lru_deactivate, lru_lazyfree } from '../mm/lru.ts';
import { PAGE_SIZE as PAGE } from '../mm/mmzone.ts';
import { PG_anon, PG_dirty, PG_lru, PG_referenced, PG_swapcache, PG_unevictable } from '../mm/page-flags.ts';
import { force_page_cache_ra } from '../mm/readahead.ts';
import {
  delete_from_swap_cache,
  folio_swap_slot,
  free_swap_and_cache,
  SWAP_HAS_CACHE,
} from '../mm/swapfile.ts';
import { truncate_inode_pages } from '../mm/truncate.ts';
import { reclaim_pages } from '../mm/vmscan.ts';
import { node_stat_index, vm_event_index } from '../mm/vmstat_items.ts';
import type { FileCred } from './files.ts';
import { split_thps_in_range } from './huge_memory.ts';
import { unmap_hugepage_range, vma_huge_page_size } from './hugetlb.ts';
import { khugepaged_enter_vma } from './khugepaged.ts';
import {
  contig_held,
  handle_mm_fault,
  VM_FAULT_OK,
  walk_pte_range,
  zap_page_range_single,
} from './memory.ts';
import { MM_SWAPENTS, type MmStruct } from './mm_struct.ts';
import { page_align, type TaskContext, vma_modify_flags } from './mmap.ts';
import { _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_SWP_ENTRY, PTRS_PER_TABLE } from './pgtable.ts';
import { unmap_mapping_pages } from './read_write.ts';
import {
  CAP_FOWNER,
  CAP_SYS_ADMIN,
  MADV_COLD,
  MADV_COLLAPSE,
  MADV_DODUMP,
  MADV_DOFORK,
  MADV_DONTDUMP,
  MADV_DONTFORK,
  MADV_DONTNEED,
  MADV_DONTNEED_LOCKED,
  MADV_FREE,
  MADV_GUARD_INSTALL,
  MADV_GUARD_REMOVE,
  MADV_HUGEPAGE,
  MADV_HWPOISON,
  MADV_KEEPONFORK,
  MADV_MERGEABLE,
  MADV_NOHUGEPAGE,
  MADV_NORMAL,
  MADV_PAGEOUT,
  MADV_POPULATE_READ,
  MADV_POPULATE_WRITE,
  MADV_RANDOM,
  MADV_REMOVE,
  MADV_SEQUENTIAL,
  MADV_SOFT_OFFLINE,
  MADV_UNMERGEABLE,
  MADV_WILLNEED,
  MADV_WIPEONFORK,
} from './uapi.ts';
import type { Vm } from './vm.ts';
import {
  VM_DONTCOPY,
  VM_DONTDUMP,
  VM_HUGEPAGE,
  VM_HUGETLB,
  VM_IO,
  VM_LOCKED,
  VM_MAYWRITE,
  VM_NOHUGEPAGE,
  VM_PFNMAP,
  VM_RAND_READ,
  VM_READ,
  VM_SEQ_READ,
  VM_SHARED,
  VM_SPECIAL,
  VM_WIPEONFORK,
  VM_WRITE,
} from './vma.ts';

const U64 = 2 ** 64;
const ENOMEM = -errnos.ENOMEM;
const EINVAL = -errnos.EINVAL;
const EACCES = -errnos.EACCES;
const EAGAIN = -errnos.EAGAIN;
const EPERM = -errnos.EPERM;
const ENOSYS = -errnos.ENOSYS;
const _PGACTIVATE = vm_event_index('pgactivate');
const _PGLAZYFREED = vm_event_index('pglazyfreed');
const _NR_VMSCAN_IMMEDIATE = node_stat_index('nr_vmscan_immediate_reclaim');

/** kernel: mm/madvise.c madvise_behavior_valid() (CONFIG_KSM, CONFIG_TRANSPARENT_HUGEPAGE, CONFIG_MEMORY_FAILURE) */
export function madvise_behavior_valid(behavior: number): boolean {
  return (
    (behavior >= MADV_NORMAL && behavior <= MADV_DONTNEED) ||
    (behavior >= MADV_FREE && behavior <= MADV_COLLAPSE) ||
    (behavior >= MADV_HWPOISON && behavior <= MADV_GUARD_REMOVE)
  );
}

/** Valid advice the model does not implement (ENOSYS). */
function madvise_unmodelled(behavior: number): boolean {
  return (
    behavior === MADV_MERGEABLE ||
    behavior === MADV_UNMERGEABLE ||
    behavior === MADV_COLLAPSE ||
    behavior === MADV_GUARD_INSTALL ||
    behavior === MADV_GUARD_REMOVE
  );
}

/**
 * kernel: mm/madvise.c madvise_free_pte_range()
 * MADV_FREE for the pages of [start, end): skip the zero page and dirty pages another process
 * maps too; clean the rest and queue them as lazyfree.
 */
function madvise_free_pte_range(vm: Vm, mm: MmStruct, start: number, end: number): void {
  // Large folios in the range are split (as madvise_free_pte_range() does for partial ones).
  split_thps_in_range(vm, mm, -1, start, end);
  walk_pte_range(vm, mm, start, end, madvise_free_pte, null, true);
}

function madvise_free_pte(vm: Vm, mm: MmStruct, table: number, i: number): void {
  const pt = vm.pt;
  const f = vm.mm.frames;
  const e = table * PTRS_PER_TABLE + i;
  const pfn = pt.pfn[e];
  if (pt.bits[e] & _PAGE_SWP_ENTRY) {
    // A swapped-out page is simply forgotten (free_swap_and_cache_nr()).
    pt.clear(table, i);
    mm.rss[MM_SWAPENTS]--;
    free_swap_and_cache(vm.mm, pfn, mm.cpu);
    return;
  }
  if (pfn === vm.mm.zero_pfn) return;
  if (f.flags[pfn] & (PG_swapcache | PG_dirty)) {
    // A page others map too keeps its state; a swap copy is dropped (folio_free_swap), or the
    // page is skipped while swap entries elsewhere still need it.
    if (f.mapcount[pfn] > 1) return;
    if (f.flags[pfn] & PG_swapcache) {
      if ((vm.mm.swap!.swap_map[folio_swap_slot(vm.mm, pfn)] & ~SWAP_HAS_CACHE) !== 0) return;
      delete_from_swap_cache(vm.mm, pfn);
    }
    f.flags[pfn] &= ~PG_dirty;
  }
  pt.bits[e] &= ~(_PAGE_ACCESSED | _PAGE_DIRTY);
  lru_lazyfree(vm.mm, pfn);
}

/**
 * kernel: mm/madvise.c madvise_cold_or_pageout_pte_range()
 * MADV_COLD / MADV_PAGEOUT for the pages of [start, end) that only this mapping maps and that sit
 * on an LRU list: clear their accessed bit and PG_referenced, then deactivate (cold) or reclaim
 * (pageout) them.
 */
function madvise_cold_or_pageout_pte_range(
  vm: Vm,
  mm: MmStruct,
  _vma: number,
  start: number,
  end: number,
  pageout: boolean,
  anon_only = false,
): void {
  split_thps_in_range(vm, mm, _vma, start, end);
  if (!pageout) {
    walk_pte_range(vm, mm, start, end, madvise_cold_pte, null);
    return;
  }
  // The pages are collected during the walk and reclaimed after it (reclaim_pages()).
  const pages: number[] = [];
  walk_pte_range(vm, mm, start, end, anon_only ? madvise_pageout_anon_pte : madvise_pageout_pte, pages);
  reclaim_pages(vm.mm, pages, mm.cpu);
}

/**
 * kernel: mm/madvise.c can_do_file_pageout()
 * MADV_PAGEOUT reclaims page cache only of a file the caller owns (or CAP_FOWNER) or could open
 * for writing; otherwise only the mapping's anonymous pages (pageout_anon_only_filter), lest it
 * become a side channel on files shared with others.
 */
function can_do_file_pageout(vm: Vm, vma: number, task: FileCred): boolean {
  const inode = vm.files.file(vm.vmas.vm_file[vma]).inode;
  return task.uid === inode.uid || task.capable(CAP_FOWNER) || vm.files.permission(inode, 2, task);
}

function madvise_pageout_anon_pte(vm: Vm, mm: MmStruct, table: number, i: number, pages: number[]): void {
  if (vm.mm.frames.flags[vm.pt.pfn[table * PTRS_PER_TABLE + i]] & PG_anon)
    madvise_pageout_pte(vm, mm, table, i, pages);
}

function madvise_cold_pte(vm: Vm, _mm: MmStruct, table: number, i: number): void {
  const pfn = isolate_exclusive_lru_pte(vm, table, i);
  if (pfn >= 0) lru_deactivate(vm.mm, pfn);
}

function madvise_pageout_pte(vm: Vm, _mm: MmStruct, table: number, i: number, pages: number[]): void {
  const pfn = isolate_exclusive_lru_pte(vm, table, i);
  if (pfn >= 0 && !(vm.mm.frames.flags[pfn] & PG_unevictable)) pages.push(pfn);
}

/** The page an entry maps if it is an LRU page only this PTE maps, after clearing its referenced bits; else -1. */
function isolate_exclusive_lru_pte(vm: Vm, table: number, i: number): number {
  const pt = vm.pt;
  const f = vm.mm.frames;
  const e = table * PTRS_PER_TABLE + i;
  const pfn = pt.pfn[e];
  if (pfn === vm.mm.zero_pfn || !(f.flags[pfn] & PG_lru) || f.mapcount[pfn] !== 1) return -1;
  pt.bits[e] &= ~_PAGE_ACCESSED;
  f.flags[pfn] &= ~PG_referenced;
  return pfn;
}

const CONTIG_HELD_REFUSES = new Set([
  MADV_FREE,
  MADV_DONTNEED,
  MADV_DONTNEED_LOCKED,
  MADV_COLD,
  MADV_PAGEOUT,
  MADV_DOFORK,
  MADV_WIPEONFORK,
  MADV_HUGEPAGE,
]);

/**
 * kernel: mm/madvise.c madvise_vma_behavior()
 * Apply `behavior` to [start, end) of `vma`. Returns the VMA now covering the range (after a flag
 * change that split or merged), or -errno.
 */
function madvise_vma_behavior(
  vm: Vm,
  mm: MmStruct,
  task: FileCred,
  vma: number,
  start: number,
  end: number,
  behavior: number,
): number {
  const flags = vm.vmas.vm_flags[vma];
  let new_flags = flags;
  // A MAP_CONTIG mapping that holds its pages refuses advice that would drop, age, collapse or
  // fork them (as a VM_PFNMAP mapping does): its pages stay where they are until munmap.
  if (contig_held(vm, vma) && CONTIG_HELD_REFUSES.has(behavior)) return EINVAL;
  switch (behavior) {
    case MADV_REMOVE:
      // madvise_remove(): punch a hole in the shared file behind the range.
      if (flags & VM_LOCKED || !vm.vmas.vm_file[vma]) return EINVAL;
      if ((flags & (VM_SHARED | VM_MAYWRITE)) !== (VM_SHARED | VM_MAYWRITE)) return EACCES;
      // vfs_fallocate(): only regular files (and block devices) punch holes.
      if (vm.files.file(vm.vmas.vm_file[vma]).f_op) return -errnos.ENODEV;
      madvise_remove(vm, vma, start, end);
      return vma;
    case MADV_WILLNEED:
      // madvise_willneed(): a file is read ahead (vfs_fadvise WILLNEED; tmpfs ignores it);
      // anonymous memory only has swap entries to read ahead, and there is no swap.
      // (A device or dma-buf has no backing device: generic_fadvise() does nothing.)
      if (vm.vmas.vm_file[vma] && !vm.files.file(vm.vmas.vm_file[vma]).f_op)
        madvise_willneed_file(vm, mm, vma, start, end);
      return vma;
    case MADV_COLD:
    case MADV_PAGEOUT:
      // can_madv_lru_vma()
      if (flags & (VM_LOCKED | VM_PFNMAP | VM_HUGETLB)) return EINVAL;
      madvise_cold_or_pageout_pte_range(
        vm,
        mm,
        vma,
        start,
        end,
        behavior === MADV_PAGEOUT,
        behavior === MADV_PAGEOUT && vm.vmas.vm_file[vma] !== 0 && !can_do_file_pageout(vm, vma, task),
      );
      return vma;
    case MADV_FREE:
    case MADV_DONTNEED:
    case MADV_DONTNEED_LOCKED:
      // madvise_dontneed_free_valid_vma(): hugetlb takes only MADV_DONTNEED(_LOCKED) from a huge
      // page boundary, its end rounded down to one (whole huge pages are zapped).
      if (flags & VM_HUGETLB) {
        const hsz = vma_huge_page_size(vm, vma);
        if (behavior === MADV_FREE || start % hsz) return EINVAL;
        end -= end % hsz;
        if (start < end) unmap_hugepage_range(vm, mm, vma, start, end);
        return vma;
      }
      if (flags & (VM_PFNMAP | (behavior === MADV_DONTNEED_LOCKED ? 0 : VM_LOCKED))) return EINVAL;
      // madvise_free_single_vma(): anonymous VMAs only (shared memory has a file behind it).
      if (behavior === MADV_FREE && vm.vmas.vm_file[vma]) return EINVAL;
      if (behavior === MADV_FREE) madvise_free_pte_range(vm, mm, start, end);
      else zap_page_range_single(vm, mm, vma, start, end);
      return vma;
    case MADV_NORMAL:
      new_flags &= ~(VM_RAND_READ | VM_SEQ_READ);
      break;
    case MADV_SEQUENTIAL:
      new_flags = (new_flags & ~VM_RAND_READ) | VM_SEQ_READ;
      break;
    case MADV_RANDOM:
      new_flags = (new_flags & ~VM_SEQ_READ) | VM_RAND_READ;
      break;
    case MADV_DONTFORK:
      new_flags |= VM_DONTCOPY;
      break;
    case MADV_DOFORK:
      if (new_flags & VM_IO) return EINVAL;
      new_flags &= ~VM_DONTCOPY;
      break;
    case MADV_WIPEONFORK:
      // Anonymous private memory only.
      if (new_flags & VM_SHARED) return EINVAL;
      new_flags |= VM_WIPEONFORK;
      break;
    case MADV_KEEPONFORK:
      new_flags &= ~VM_WIPEONFORK;
      break;
    case MADV_DONTDUMP:
      new_flags |= VM_DONTDUMP;
      break;
    case MADV_DODUMP:
      if (new_flags & VM_SPECIAL) return EINVAL;
      new_flags &= ~VM_DONTDUMP;
      break;
    case MADV_HUGEPAGE:
      // hugepage_madvise(): the address space may now have THP work for khugepaged.
      new_flags = (new_flags & ~VM_NOHUGEPAGE) | VM_HUGEPAGE;
      khugepaged_enter_vma(vm, mm, vma, new_flags);
      break;
    case MADV_NOHUGEPAGE:
      new_flags = (new_flags & ~VM_HUGEPAGE) | VM_NOHUGEPAGE;
      break;
    default:
      return EINVAL;
  }
  // madvise_update_vma(); ENOMEM from it becomes EAGAIN.
  if (new_flags === flags) return vma;
  const r = vma_modify_flags(vm, mm, vma, start, end, new_flags);
  return r === ENOMEM ? EAGAIN : r;
}

/** The file pages [first, last) of `vma`'s range [start, end). */
function file_range(vm: Vm, vma: number, start: number, end: number): { first: number; last: number } {
  const v = vm.vmas;
  return { first: v.linear_page_index(vma, start), last: v.linear_page_index(vma, end) };
}

/**
 * kernel: mm/madvise.c madvise_remove() → vfs_fallocate(FALLOC_FL_PUNCH_HOLE)
 * The file's pages behind [start, end) leave every mapping and the page cache (their tmpfs
 * blocks are returned). Private copies of them in other mappings stay.
 */
function madvise_remove(vm: Vm, vma: number, start: number, end: number): void {
  const file = vm.files.file(vm.vmas.vm_file[vma]);
  const { first, last } = file_range(vm, vma, start, end);
  unmap_mapping_pages(vm, file.inode.mapping.id, first, last, false);
  truncate_inode_pages(vm.mm, file.inode.mapping, first, 0, last);
}

/** kernel: mm/madvise.c madvise_willneed() → vfs_fadvise(POSIX_FADV_WILLNEED) for a file VMA. */
function madvise_willneed_file(vm: Vm, mm: MmStruct, vma: number, start: number, end: number): void {
  const file = vm.files.file(vm.vmas.vm_file[vma]);
  const as = file.inode.mapping;
  if (as.shmem) return;
  const { first, last } = file_range(vm, vma, start, end);
  const stop = Math.min(last, Math.ceil(as.i_size / PAGE));
  const ractl = { mm: vm.mm, mapping: as, ra: file.ra, nid: mm.nid, cpu: mm.cpu, nr_read: 0 };
  if (stop > first) force_page_cache_ra(ractl, first, stop - first);
}

/**
 * kernel: mm/madvise.c madvise_walk_vmas()
 * Visit the VMAs of [start, end), skipping holes but returning -ENOMEM at the end if there were
 * any; the first error from a VMA stops the walk.
 */
function madvise_walk_vmas(
  vm: Vm,
  mm: MmStruct,
  task: FileCred,
  start: number,
  end: number,
  behavior: number,
): number {
  const v = vm.vmas;
  let unmapped_error = 0;
  let vma = mm.mt.find(start);
  for (;;) {
    if (vma < 0) return ENOMEM;
    if (start < v.vm_start[vma]) {
      unmapped_error = ENOMEM;
      start = v.vm_start[vma];
      if (start >= end) break;
    }
    const tmp = Math.min(v.vm_end[vma], end);
    const r = madvise_vma_behavior(vm, mm, task, vma, start, tmp, behavior);
    if (r < 0) return r;
    start = Math.max(tmp, v.vm_end[r]);
    if (start >= end) break;
    vma = mm.mt.find(v.vm_end[r]);
  }
  return unmapped_error;
}

/**
 * kernel: mm/madvise.c madvise_populate() / mm/gup.c faultin_page_range()
 * Fault in [start, end) for reading or writing. -ENOMEM at the first hole or when memory runs
 * out, -EINVAL at a VMA that does not allow the access (or VM_IO/VM_PFNMAP); pages populated
 * before stay.
 */
function madvise_populate(vm: Vm, mm: MmStruct, start: number, end: number, write: boolean): number {
  const v = vm.vmas;
  for (let addr = start; addr < end; ) {
    const vma = mm.mt.walk(addr);
    if (vma < 0) return ENOMEM;
    const flags = v.vm_flags[vma];
    if (flags & (VM_IO | VM_PFNMAP) || !(flags & (write ? VM_WRITE : VM_READ))) return EINVAL;
    const vend = Math.min(end, v.vm_end[vma]);
    for (; addr < vend; addr += PAGE) {
      if (handle_mm_fault(vm, mm, vma, addr, write) !== VM_FAULT_OK) return ENOMEM;
    }
  }
  return 0;
}

/**
 * kernel: mm/madvise.c do_madvise() (SYSCALL_DEFINE3(madvise))
 * Apply `behavior` to [start, start + len_in). Returns 0 or -errno (see the file comment).
 */
export function sys_madvise(
  vm: Vm,
  mm: MmStruct,
  task: TaskContext & FileCred,
  start: number,
  len_in: number,
  behavior: number,
): number {
  // is_valid_madvise()
  if (!madvise_behavior_valid(behavior)) return EINVAL;
  if (start % PAGE) return EINVAL;
  const len = page_align(len_in) % U64;
  if (len_in && !len) return EINVAL;
  const end = start + len;
  if (end >= U64) return EINVAL;
  if (end === start) return 0;
  if (behavior === MADV_HWPOISON || behavior === MADV_SOFT_OFFLINE)
    return task.capable(CAP_SYS_ADMIN) ? ENOSYS : EPERM;
  if (madvise_unmodelled(behavior)) return ENOSYS;
  if (behavior === MADV_POPULATE_READ || behavior === MADV_POPULATE_WRITE)
    return madvise_populate(vm, mm, start, end, behavior === MADV_POPULATE_WRITE);
  return madvise_walk_vmas(vm, mm, task, start, end, behavior);
}
