/**
 * mm/mlock.c: mlock(), mlock2(), munlock(), mlockall() and munlockall().
 *
 * Locking sets VM_LOCKED (with VM_LOCKONFAULT for MLOCK_ONFAULT / MCL_ONFAULT) on the VMAs of the
 * range, splitting and merging them (vma_modify_flags). The pages already mapped there become
 * PG_mlocked and move to the unevictable list; then the rest of the range is faulted in (not for
 * on-fault locking), and every page faulted into a locked VMA later is born mlocked. Unlocking
 * clears the flags and returns each page to its evictable list unless another VM_LOCKED VMA still
 * maps it. mm.locked_vm counts the pages of VM_LOCKED VMAs against RLIMIT_MEMLOCK.
 *
 * Errnos as in 6.18 (and measured on our machines): EPERM when RLIMIT_MEMLOCK is 0 without
 * CAP_IPC_LOCK; ENOMEM past the limit (pages already locked in the range are not counted twice)
 * or when the range is not fully mapped (the mapped part before the first hole is locked, the
 * rest not); EINVAL for bad flags or a range that wraps; EAGAIN (ENOMEM from the page allocator)
 * and ENOMEM (a PROT_NONE VMA: the range is locked, but cannot be faulted in) from populating.
 * mlock() rounds the start down and the end up to pages; no alignment is required.
 */

import { errnos } from '../lib/errno.ts';
import { mlock_folio } from '../mm/lru.ts';
import { PAGE_SIZE as PAGE } from '../mm/mmzone.ts';
import { split_thps_in_range } from './huge_memory.ts';
import { contig_held, munlock_vma_folio, walk_pte_range } from './memory.ts';
import type { MmStruct } from './mm_struct.ts';
import { __mm_populate, page_align, type TaskContext, vma_modify_flags } from './mmap.ts';
import { PTRS_PER_TABLE } from './pgtable.ts';
import { CAP_IPC_LOCK, MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT, MLOCK_ONFAULT, RLIMIT_MEMLOCK } from './uapi.ts';
import type { Vm } from './vm.ts';
import { VM_HUGETLB, VM_LOCKED, VM_LOCKED_MASK, VM_LOCKONFAULT, VM_SPECIAL } from './vma.ts';

/** Addresses and lengths are unsigned longs: a range reaching 2^64 wraps. */
const U64 = 2 ** 64;
const ENOMEM = -errnos.ENOMEM;
const EINVAL = -errnos.EINVAL;
const EPERM = -errnos.EPERM;
const EAGAIN = -errnos.EAGAIN;
const EFAULT = -errnos.EFAULT;

// kernel: mm/mlock.c can_do_mlock()
export function can_do_mlock(task: TaskContext): boolean {
  return task.capable(CAP_IPC_LOCK) || task.rlimit(RLIMIT_MEMLOCK) !== 0;
}

/**
 * kernel: mm/mlock.c mlock_vma_pages_range() / mlock_pte_range()
 * `vma`'s VM_LOCKED just changed: mlock (now locked) or munlock every page mapped in
 * [start, end) — present or PROT_NONE entries, never the zero page.
 */
export function mlock_vma_pages_range(vm: Vm, mm: MmStruct, vma: number, start: number, end: number): void {
  const locked = (vm.vmas.vm_flags[vma] & VM_LOCKED) !== 0;
  split_thps_in_range(vm, mm, vma, start, end);
  walk_pte_range(vm, mm, start, end, locked ? mlock_pte : munlock_pte, null);
}

function mlock_pte(vm: Vm, _mm: MmStruct, table: number, i: number): void {
  const pfn = vm.pt.pfn[table * PTRS_PER_TABLE + i];
  if (pfn !== vm.mm.zero_pfn) mlock_folio(vm.mm, pfn);
}

function munlock_pte(vm: Vm, _mm: MmStruct, table: number, i: number): void {
  const pfn = vm.pt.pfn[table * PTRS_PER_TABLE + i];
  if (pfn !== vm.mm.zero_pfn) munlock_vma_folio(vm, pfn);
}

/**
 * kernel: mm/mlock.c mlock_fixup()
 * Give [start, end) of `vma` the lock flags in `newflags`. VM_SPECIAL and hugetlb VMAs are left
 * alone (never locked, not counted), and so is a MAP_CONTIG mapping that holds its pages: it
 * stays locked until munmap. Returns the VMA now covering the range, or -ENOMEM.
 */
export function mlock_fixup(
  vm: Vm,
  mm: MmStruct,
  vma: number,
  start: number,
  end: number,
  newflags: number,
): number {
  const oldflags = vm.vmas.vm_flags[vma];
  if (newflags === oldflags || oldflags & (VM_SPECIAL | VM_HUGETLB) || contig_held(vm, vma)) return vma;
  const r = vma_modify_flags(vm, mm, vma, start, end, newflags);
  if (r < 0) return r;
  let nr_pages = (end - start) / PAGE;
  if (!(newflags & VM_LOCKED)) nr_pages = -nr_pages;
  else if (oldflags & VM_LOCKED) nr_pages = 0;
  mm.locked_vm += nr_pages;
  // Locked before and after (only VM_LOCKONFAULT changed): mlocking twice would be wrong.
  if (!(newflags & VM_LOCKED && oldflags & VM_LOCKED)) mlock_vma_pages_range(vm, mm, r, start, end);
  return r;
}

/**
 * kernel: mm/mlock.c apply_vma_lock_flags()
 * Set the lock flags of [start, start + len) (page aligned) to `flags` (0 to unlock), VMA by VMA.
 * -ENOMEM if start is in a hole or a hole follows (the VMAs before it keep their new flags),
 * -EINVAL if the range wraps.
 */
export function apply_vma_lock_flags(
  vm: Vm,
  mm: MmStruct,
  start: number,
  len: number,
  flags: number,
): number {
  const end = start + len;
  if (end >= U64) return EINVAL;
  if (end === start) return 0;
  const v = vm.vmas;
  let vma = mm.mt.walk(start);
  if (vma < 0) return ENOMEM;
  let nstart = start;
  let tmp = v.vm_start[vma];
  while (vma >= 0 && v.vm_start[vma] < end) {
    if (v.vm_start[vma] !== tmp) return ENOMEM;
    const newflags = (v.vm_flags[vma] & ~VM_LOCKED_MASK) | flags;
    tmp = Math.min(v.vm_end[vma], end);
    const r = mlock_fixup(vm, mm, vma, nstart, tmp, newflags);
    if (r < 0) return r;
    tmp = v.vm_end[r];
    nstart = tmp;
    vma = mm.mt.find(tmp);
  }
  return tmp < end ? ENOMEM : 0;
}

/**
 * kernel: mm/mlock.c count_mm_mlocked_page_nr()
 * Pages of [start, start + len) already in VM_LOCKED VMAs, which a new mlock() does not count
 * again against RLIMIT_MEMLOCK.
 */
export function count_mm_mlocked_page_nr(vm: Vm, mm: MmStruct, start: number, len: number): number {
  const end = Math.min(start + len, U64);
  let count = 0;
  mm.mt.iterate(start, end, (s, e, vma) => {
    if (vm.vmas.vm_flags[vma] & VM_LOCKED) count += (Math.min(e, end) - Math.max(s, start)) / PAGE;
  });
  return count;
}

/**
 * kernel: mm/mlock.c do_mlock() (SYSCALL_DEFINE2(mlock), SYSCALL_DEFINE3(mlock2))
 * Lock [start, start + len) with `flags` (VM_LOCKED, maybe VM_LOCKONFAULT) and fault it in.
 * Returns 0 or -errno (see the file comment).
 */
export function do_mlock(
  vm: Vm,
  mm: MmStruct,
  task: TaskContext,
  start: number,
  len: number,
  flags: number,
): number {
  if (!can_do_mlock(task)) return EPERM;
  len = page_align(len + (start % PAGE)) % U64; // PAGE_ALIGN() of a length near 2^64 wraps to 0
  start -= start % PAGE;
  const capable = task.capable(CAP_IPC_LOCK);
  const lock_limit = Math.floor(task.rlimit(RLIMIT_MEMLOCK) / PAGE);
  let locked = len / PAGE + mm.locked_vm;
  if (locked > lock_limit && !capable) locked -= count_mm_mlocked_page_nr(vm, mm, start, len);
  let error = ENOMEM;
  if (locked <= lock_limit || capable) error = apply_vma_lock_flags(vm, mm, start, len, flags);
  if (error) return error;
  const r = __mm_populate(vm, mm, start, len, false);
  // __mlock_posix_error_return()
  if (r === EFAULT) return ENOMEM;
  if (r === ENOMEM) return EAGAIN;
  return r;
}

/**
 * kernel: mm/mlock.c SYSCALL_DEFINE3(mlock2)
 * mlock() with MLOCK_ONFAULT: lock only what is (or will be) faulted in.
 */
export function sys_mlock2(
  vm: Vm,
  mm: MmStruct,
  task: TaskContext,
  start: number,
  len: number,
  flags: number,
): number {
  if (flags & ~MLOCK_ONFAULT) return EINVAL;
  return do_mlock(vm, mm, task, start, len, flags & MLOCK_ONFAULT ? VM_LOCKED | VM_LOCKONFAULT : VM_LOCKED);
}

/** kernel: mm/mlock.c SYSCALL_DEFINE2(munlock) */
export function sys_munlock(vm: Vm, mm: MmStruct, start: number, len: number): number {
  len = page_align(len + (start % PAGE)) % U64; // PAGE_ALIGN() of a length near 2^64 wraps to 0
  start -= start % PAGE;
  return apply_vma_lock_flags(vm, mm, start, len, 0);
}

/**
 * kernel: mm/mlock.c apply_mlockall_flags()
 * MCL_FUTURE sets mm.def_flags (new mappings and heap growth come locked); MCL_CURRENT locks every
 * VMA (errors ignored); 0 (munlockall) clears both. Calls do not stack: mlockall() without
 * MCL_FUTURE clears an earlier MCL_FUTURE.
 */
function apply_mlockall_flags(vm: Vm, mm: MmStruct, flags: number): number {
  mm.def_flags &= ~VM_LOCKED_MASK;
  if (flags & MCL_FUTURE) {
    mm.def_flags |= VM_LOCKED;
    if (flags & MCL_ONFAULT) mm.def_flags |= VM_LOCKONFAULT;
    if (!(flags & MCL_CURRENT)) return 0;
  }
  let to_add = 0;
  if (flags & MCL_CURRENT) {
    to_add |= VM_LOCKED;
    if (flags & MCL_ONFAULT) to_add |= VM_LOCKONFAULT;
  }
  const v = vm.vmas;
  for (let vma = mm.mt.find(0); vma >= 0; ) {
    const newflags = (v.vm_flags[vma] & ~VM_LOCKED_MASK) | to_add;
    const r = mlock_fixup(vm, mm, vma, v.vm_start[vma], v.vm_end[vma], newflags);
    vma = mm.mt.find(v.vm_end[r < 0 ? vma : r]);
  }
  return 0;
}

/**
 * kernel: mm/mlock.c SYSCALL_DEFINE1(mlockall)
 * EINVAL for no flags, unknown flags or MCL_ONFAULT alone; EPERM when RLIMIT_MEMLOCK is 0 without
 * CAP_IPC_LOCK; ENOMEM for MCL_CURRENT when the whole address space (total_vm) exceeds the
 * limit. MCL_CURRENT then faults everything in, ignoring errors.
 */
export function sys_mlockall(vm: Vm, mm: MmStruct, task: TaskContext, flags: number): number {
  if (!flags || flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) || flags === MCL_ONFAULT) return EINVAL;
  if (!can_do_mlock(task)) return EPERM;
  const lock_limit = Math.floor(task.rlimit(RLIMIT_MEMLOCK) / PAGE);
  let ret = ENOMEM;
  if (!(flags & MCL_CURRENT) || mm.total_vm <= lock_limit || task.capable(CAP_IPC_LOCK))
    ret = apply_mlockall_flags(vm, mm, flags);
  if (!ret && flags & MCL_CURRENT) __mm_populate(vm, mm, 0, mm.task_size, true);
  return ret;
}

/** kernel: mm/mlock.c SYSCALL_DEFINE0(munlockall) */
export function sys_munlockall(vm: Vm, mm: MmStruct): number {
  return apply_mlockall_flags(vm, mm, 0);
}
