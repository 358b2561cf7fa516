/**
 * mm/mmap.c and mm/vma.c: creating, merging, splitting and removing VMAs, finding free address
 * ranges, the VM accounting (total_vm, data_vm, locked_vm) and its limits, the commit charge of
 * VM_ACCOUNT mappings (util.ts), populating ranges (mm/gup.c), brk(), and tearing an address
 * space down. Callers (the syscalls in process.ts) validate user arguments first; these
 * functions return -errno as the kernel does.
 */

import { errnos } from '../lib/errno.ts';
import { PAGE_SIZE as PAGE } from '../mm/mmzone.ts';
import { hugetlb_vm_op_close, unmap_hugepage_range, vma_huge_page_size } from './hugetlb.ts';
import { khugepaged_enter_vma, khugepaged_exit } from './khugepaged.ts';
import { free_pgd_range, handle_mm_fault, VM_FAULT_OK, VM_FAULT_SIGBUS, zap_page_range } from './memory.ts';
import type { MmStruct } from './mm_struct.ts';
import { CAP_IPC_LOCK, RLIMIT_AS, RLIMIT_DATA, RLIMIT_MEMLOCK } from './uapi.ts';
import { security_vm_enough_memory_mm, vm_acct_memory, vm_unacct_memory } from './util.ts';
import { update_hiwater_rss, update_hiwater_vm, type Vm } from './vm.ts';
import {
  VM_ACCESS_FLAGS,
  VM_ACCOUNT,
  VM_CONTIG,
  VM_DATA_DEFAULT_FLAGS,
  VM_HUGETLB,
  VM_LOCKED,
  VM_LOCKED_MASK,
  VM_LOCKONFAULT,
  VM_NORESERVE,
  VM_SHARED,
  VM_SPECIAL,
  VM_STACK,
  VM_WRITE,
} from './vma.ts';

const ENOMEM = -errnos.ENOMEM;
/** A PMD maps 2 MiB. */
export const PMD_SIZE = 2 * 1024 * 1024;
const EFAULT = -errnos.EFAULT;
const EINVAL = -errnos.EINVAL;
/** CAP_IPC_LOCK (include/uapi/linux/capability.h): lock memory beyond RLIMIT_MEMLOCK. */

/**
 * What the memory syscalls read of the calling task (the kernel's `current`): its capabilities
 * and its resource limits (rlimit(), in bytes; RLIM_INFINITY is Infinity).
 */
export interface TaskContext {
  capable(cap: number): boolean;
  /** rlimit(): the soft limit (rlim_cur) of an RLIMIT_* resource. */
  rlimit(resource: number): number;
  /** rlimit_max(): the hard limit (rlim_max). */
  rlimit_max(resource: number): number;
}

/** is_data_mapping(): private writable, not a stack; counted in data_vm and RLIMIT_DATA. */
export function is_data_mapping(flags: number): boolean {
  return (flags & (VM_WRITE | VM_SHARED | VM_STACK)) === VM_WRITE;
}

/**
 * kernel: mm/mmap.c vm_stat_account()
 * Count `npages` (negative to uncount) of a mapping with `flags` in total_vm and data_vm. The
 * callers adjust locked_vm themselves, as in the kernel.
 */
export function vm_stat_account(mm: MmStruct, flags: number, npages: number): void {
  mm.total_vm += npages;
  if (is_data_mapping(flags)) mm.data_vm += npages;
}

/**
 * kernel: mm/vma.c accountable_mapping()
 * A private writable mapping without VM_NORESERVE is charged to vm_committed_as (hugetlb files,
 * which have their own reservations, are not).
 */
export function accountable_mapping(flags: number): boolean {
  // is_file_hugepages(): hugetlb mappings have their own reservations.
  if (flags & VM_HUGETLB) return false;
  return (flags & (VM_NORESERVE | VM_SHARED | VM_WRITE)) === VM_WRITE;
}

/**
 * kernel: mm/vma.c __mmap_prepare() (vms_gather_munmap_vmas() and the accounting) with, for
 * MAP_FIXED, vms_complete_munmap_vmas()
 * Make [addr, addr + len) ready for a new mapping with `flags`: an accountable mapping is charged
 * its pages less the VM_ACCOUNT pages it replaces (vms->nr_accounted, whose charge it takes over
 * instead of their being uncharged) — before anything is unmapped, so a refused MAP_FIXED leaves
 * the old mappings in place — and gets VM_ACCOUNT; then, with `fixed`, the old mappings go.
 * Returns the new mapping's flags, or -ENOMEM (commit refused, or vm.max_map_count reached while
 * splitting; nothing is charged then).
 */
export function __mmap_prepare(
  vm: Vm,
  mm: MmStruct,
  task: TaskContext,
  addr: number,
  len: number,
  flags: number,
  fixed: boolean,
): number {
  const end = addr + len;
  let charged = 0;
  let nr_accounted = 0;
  if (accountable_mapping(flags)) {
    mm.mt.iterate(addr, end, (s, e, id) => {
      if (vm.vmas.vm_flags[id] & VM_ACCOUNT) nr_accounted += (Math.min(e, end) - Math.max(s, addr)) / PAGE;
    });
    charged = len / PAGE - nr_accounted;
    if (charged && security_vm_enough_memory_mm(vm, mm, task, charged) < 0) return ENOMEM;
    flags |= VM_ACCOUNT;
  }
  if (fixed) {
    if (do_munmap(vm, mm, addr, end) < 0) {
      vm_unacct_memory(vm, charged);
      return ENOMEM;
    }
    // do_munmap() gave back the replaced VM_ACCOUNT pages; the new mapping keeps their charge.
    vm_acct_memory(vm, nr_accounted);
  }
  return flags;
}

/**
 * kernel: mm/mmap.c may_expand_vm()
 * Whether `npages` more pages of a mapping with `flags` fit RLIMIT_AS and, for a data mapping,
 * RLIMIT_DATA (with the kernel's Valgrind exception: a soft limit of 0 defers to the hard one).
 * ignore_rlimit_data is off.
 */
export function may_expand_vm(mm: MmStruct, flags: number, npages: number, task: TaskContext): boolean {
  if (mm.total_vm + npages > Math.floor(task.rlimit(RLIMIT_AS) / PAGE)) return false;
  if (is_data_mapping(flags) && mm.data_vm + npages > Math.floor(task.rlimit(RLIMIT_DATA) / PAGE)) {
    return (
      task.rlimit(RLIMIT_DATA) === 0 && mm.data_vm + npages <= Math.floor(task.rlimit_max(RLIMIT_DATA) / PAGE)
    );
  }
  return true;
}

/**
 * kernel: mm/mmap.c mlock_future_ok()
 * Whether `bytes` more of a mapping with `flags` may be locked: always unless VM_LOCKED; with
 * CAP_IPC_LOCK; else locked_vm plus the new pages must stay within RLIMIT_MEMLOCK (in pages).
 */
export function mlock_future_ok(mm: MmStruct, flags: number, bytes: number, task: TaskContext): boolean {
  if (!(flags & VM_LOCKED) || task.capable(CAP_IPC_LOCK)) return true;
  return Math.floor(bytes / PAGE) + mm.locked_vm <= Math.floor(task.rlimit(RLIMIT_MEMLOCK) / PAGE);
}

/** count_vma_pages_range(): pages of [start, end) that VMAs cover. */
export function count_vma_pages_range(mm: MmStruct, start: number, end: number): number {
  let pages = 0;
  mm.mt.iterate(start, end, (s, e) => {
    pages += (Math.min(e, end) - Math.max(s, start)) / PAGE;
  });
  return pages;
}

/** The first address at or above which user mappings may go when the top-down search fails. */
export const TASK_UNMAPPED_BASE = 2 ** 46 / 3 - ((2 ** 46 / 3) % PAGE);

/**
 * kernel: mm/mmap.c arch_get_unmapped_area_topdown()
 * `addr` if it is a usable free hint, else the highest free range of `len` below mmap_base,
 * else the lowest above TASK_UNMAPPED_BASE; -ENOMEM if none.
 */
export function get_unmapped_area(vm: Vm, mm: MmStruct, addr: number, len: number): number {
  const low = Math.max(PAGE, vm.sysctl.mmap_min_addr);
  if (len > mm.task_size - low) return ENOMEM;
  if (addr) {
    addr = Math.ceil(addr / PAGE) * PAGE;
    if (addr >= low && addr + len <= mm.task_size && range_is_free(mm, addr, len)) return addr;
  }
  let found = mm.mt.emptyAreaRev(low, mm.mmap_base, len, PAGE);
  if (found < 0) found = mm.mt.emptyArea(TASK_UNMAPPED_BASE, mm.task_size, len, PAGE);
  return found < 0 ? ENOMEM : found;
}

/**
 * kernel: mm/huge_memory.c __thp_get_unmapped_area() (anonymous: offset 0, size PMD_SIZE)
 * A free range of `len` bytes aligned to 2 MiB: ask for len + 2 MiB and align inside it. The
 * search is top-down, so an area already aligned is taken from its top (ret + size). Falls
 * back to an unaligned range when the padded one does not fit.
 */
export function thp_get_unmapped_area(vm: Vm, mm: MmStruct, len: number): number {
  const ret = get_unmapped_area(vm, mm, 0, len + PMD_SIZE);
  if (ret < 0) return get_unmapped_area(vm, mm, 0, len);
  const off_sub = (PMD_SIZE - (ret % PMD_SIZE)) % PMD_SIZE;
  return off_sub === 0 ? ret + PMD_SIZE : ret + off_sub;
}

/** No VMA intersects [addr, addr + len). */
export function range_is_free(mm: MmStruct, addr: number, len: number): boolean {
  return mm.mt.find(addr) < 0 || mm.mt.lastStart >= addr + len;
}

/**
 * is_mergeable_anon_vma(): two anon_vmas can end up in one VMA when they are the same or one side
 * has none yet (it then takes the other's).
 */
function anon_compatible(a: number, b: number): boolean {
  return a < 0 || b < 0 || a === b;
}

/**
 * can_vma_merge_after(): the range [start, …) with `flags`, anon_vma `av` and page offset `pgoff`
 * can extend `prev`, which ends at start: same flags, compatible anon_vma, contiguous offsets.
 */
function can_merge_prev(
  vm: Vm,
  prev: number,
  flags: number,
  av: number,
  pgoff: number,
  file: number,
): boolean {
  const v = vm.vmas;
  return (
    v.vm_flags[prev] === flags &&
    v.vm_file[prev] === file &&
    anon_compatible(v.anon_vma[prev], av) &&
    v.vm_pgoff[prev] + (v.vm_end[prev] - v.vm_start[prev]) / PAGE === pgoff
  );
}

/** can_vma_merge_before(): the range [start, end) (offset `pgoff`) can be prepended to `next`. */
function can_merge_next(
  vm: Vm,
  next: number,
  flags: number,
  av: number,
  pgoff: number,
  pages: number,
  file: number,
): boolean {
  const v = vm.vmas;
  return (
    v.vm_flags[next] === flags &&
    v.vm_file[next] === file &&
    anon_compatible(v.anon_vma[next], av) &&
    pgoff + pages === v.vm_pgoff[next]
  );
}

/** dup_anon_vma(): `vma` takes anon_vma `av` if it has none (so the pages it now covers are found). */
function dup_anon_vma(vm: Vm, vma: number, av: number): void {
  if (av < 0 || vm.vmas.anon_vma[vma] >= 0) return;
  vm.vmas.anon_vma[vma] = av;
  vm.anon.link(av, vma);
}

/** Set the bounds (and page offset) of `vma`, in the tree and the table. */
function vma_set_range(vm: Vm, mm: MmStruct, vma: number, start: number, end: number, pgoff: number): void {
  const v = vm.vmas;
  mm.mt.adjust(v.vm_start[vma], start, end);
  v.vm_start[vma] = start;
  v.vm_end[vma] = end;
  v.vm_pgoff[vma] = pgoff;
}

/**
 * kernel: mm/vma.c vma_merge_new_range()
 * The free range [start, end), to get `flags`, page offset `pgoff` and anon_vma `av` (-1 for
 * none), joins its neighbours where they are compatible: the VMA ending at `start`, the one
 * beginning at `end` (not with `just_expand`, brk's mode), or both when their anon_vmas agree too.
 * Returns the VMA now covering the range, or -1 if nothing merged (the caller maps a new VMA).
 * VM_SPECIAL mappings never merge. The caller does the accounting.
 */
export function vma_merge_new_range(
  vm: Vm,
  mm: MmStruct,
  start: number,
  end: number,
  flags: number,
  pgoff: number,
  av: number,
  just_expand = false,
  file = 0,
): number {
  // A MAP_CONTIG mapping's offsets index its own backing: it merges with nothing.
  if (flags & (VM_SPECIAL | VM_CONTIG)) return -1;
  const v = vm.vmas;
  const mt = mm.mt;
  let prev = mt.prev(start);
  if (prev >= 0 && !(mt.lastEnd === start && can_merge_prev(vm, prev, flags, av, pgoff, file))) prev = -1;
  let next = just_expand ? -1 : mt.next(end);
  if (
    next >= 0 &&
    !(mt.lastStart === end && can_merge_next(vm, next, flags, av, pgoff, (end - start) / PAGE, file))
  )
    next = -1;
  if (prev >= 0 && next >= 0 && !anon_compatible(v.anon_vma[prev], v.anon_vma[next])) next = -1;
  if (prev >= 0) {
    const newEnd = next >= 0 ? v.vm_end[next] : end;
    if (next >= 0) {
      dup_anon_vma(vm, prev, v.anon_vma[next]);
      remove_vma(vm, mm, next);
    }
    dup_anon_vma(vm, prev, av);
    vma_set_range(vm, mm, prev, v.vm_start[prev], newEnd, v.vm_pgoff[prev]);
    return prev;
  }
  if (next >= 0) {
    dup_anon_vma(vm, next, av);
    vma_set_range(vm, mm, next, start, v.vm_end[next], pgoff);
    return next;
  }
  return -1;
}

/**
 * kernel: mm/vma.c __mmap_region() with vma_merge_new_range() and __mmap_complete()
 * Map [addr, addr + len) with `flags` at page offset `pgoff` — of open file `file` (whose
 * reference the caller took and the mapping keeps; 0 for anonymous memory) — merging with an
 * adjacent compatible VMA where possible (then the file reference is dropped: the merged VMA
 * holds one). The range must be free and the commit charge made (__mmap_prepare()). A VM_LOCKED
 * mapping counts in locked_vm, except a VM_SPECIAL (or hugetlb) one: it loses VM_LOCKED and
 * VM_LOCKONFAULT instead. Returns the VMA that covers it.
 */
export function mmap_region(
  vm: Vm,
  mm: MmStruct,
  addr: number,
  len: number,
  flags: number,
  pgoff: number,
  file = 0,
): number {
  let vma = vma_merge_new_range(vm, mm, addr, addr + len, flags, pgoff, -1, false, file);
  if (vma >= 0 && file) vm.vmas.file_put(file);
  if (vma < 0) {
    vma = vm.vmas.alloc(mm.id, addr, addr + len, flags, pgoff);
    if (file) vm.vmas.set_file(vma, file, vm.files.file(file).inode.mapping.id);
    mm.mt.store(addr, addr + len, vma);
    mm.map_count++;
  }
  vm_stat_account(mm, flags, len / PAGE);
  if (flags & VM_LOCKED) {
    if (flags & (VM_SPECIAL | VM_HUGETLB)) vm.vmas.vm_flags[vma] &= ~VM_LOCKED_MASK;
    else mm.locked_vm += len / PAGE;
  }
  khugepaged_enter_vma(vm, mm, vma, vm.vmas.vm_flags[vma]);
  return vma;
}

/**
 * kernel: mm/vma.c vma_modify_flags() (vma_modify(): vma_merge_existing_range(), else split)
 * Give the part [start, end) of `vma` the flags `newflags`: merge it into the previous and/or
 * next VMA when it reaches their edge and is compatible with them (the rest of `vma` shrinks, or
 * `vma` disappears), else split `vma` at start and end. Returns the VMA now covering
 * [start, end) (with `newflags`; it may extend beyond the range after a merge), or -ENOMEM if a
 * split would pass vm.max_map_count (a split already made stays, as in the kernel). The caller
 * does the accounting and the page work.
 */
export function vma_modify_flags(
  vm: Vm,
  mm: MmStruct,
  vma: number,
  start: number,
  end: number,
  newflags: number,
): number {
  const v = vm.vmas;
  const mt = mm.mt;
  const vs = v.vm_start[vma];
  const ve = v.vm_end[vma];
  const av = v.anon_vma[vma];
  const pgoff = v.linear_page_index(vma, start);
  const left = start === vs;
  const right = end === ve;
  if (!(newflags & (VM_SPECIAL | VM_CONTIG)) && (left || right)) {
    let prev = left ? mt.prev(vs) : -1;
    const file = v.vm_file[vma];
    if (prev >= 0 && !(mt.lastEnd === vs && can_merge_prev(vm, prev, newflags, av, pgoff, file))) prev = -1;
    let next = right ? mt.next(ve) : -1;
    if (
      next >= 0 &&
      !(mt.lastStart === ve && can_merge_next(vm, next, newflags, av, pgoff, (end - start) / PAGE, file))
    )
      next = -1;
    if (prev >= 0 && next >= 0 && !anon_compatible(v.anon_vma[prev], v.anon_vma[next])) next = -1;
    // The anon_vmas are taken over before a VMA goes: its last VMA frees an anon_vma.
    if (prev >= 0) {
      // Extend prev over [start, end) (and next, if it merges too); vma shrinks or goes.
      let newEnd = end;
      dup_anon_vma(vm, prev, av);
      if (right) remove_vma(vm, mm, vma);
      else vma_set_range(vm, mm, vma, end, ve, v.vm_pgoff[vma] + (end - vs) / PAGE);
      if (next >= 0) {
        newEnd = v.vm_end[next];
        dup_anon_vma(vm, prev, v.anon_vma[next]);
        remove_vma(vm, mm, next);
      }
      vma_set_range(vm, mm, prev, v.vm_start[prev], newEnd, v.vm_pgoff[prev]);
      return prev;
    }
    if (next >= 0) {
      // Extend next down to start; vma shrinks or goes.
      dup_anon_vma(vm, next, av);
      if (left) remove_vma(vm, mm, vma);
      else vma_set_range(vm, mm, vma, vs, start, v.vm_pgoff[vma]);
      vma_set_range(vm, mm, next, start, v.vm_end[next], pgoff);
      return next;
    }
  }
  let target = vma;
  if (!left) {
    const r = split_vma(vm, mm, vma, start);
    if (r < 0) return r;
    target = r;
  }
  if (!right) {
    const r = split_vma(vm, mm, target, end);
    if (r < 0) return r;
  }
  v.vm_flags[target] = newflags;
  return target;
}

/** Take a VMA out of the tree and free it (remove_vma). */
function remove_vma(vm: Vm, mm: MmStruct, vma: number): void {
  const v = vm.vmas;
  mm.mt.erase(v.vm_start[vma]);
  mm.map_count--;
  if (v.anon_vma[vma] >= 0) vm.anon.unlink(v.anon_vma[vma], vma);
  v.release(vma);
}

/** kernel: mm/vma.c split_vma(): __split_vma() unless the address space is at max_map_count (-ENOMEM). */
export function split_vma(vm: Vm, mm: MmStruct, vma: number, addr: number): number {
  if (mm.map_count >= vm.sysctl.max_map_count) return ENOMEM;
  return __split_vma(vm, mm, vma, addr);
}

/**
 * kernel: mm/vma.c __split_vma()
 * Cut `vma` at `addr`: it keeps [start, addr) and a new VMA takes [addr, end) with its page
 * offset and anon_vma. No max_map_count check: munmap checks once, up front.
 */
export function __split_vma(vm: Vm, mm: MmStruct, vma: number, addr: number): number {
  const v = vm.vmas;
  const end = v.vm_end[vma];
  const tail = v.dup(vma);
  v.vm_start[tail] = addr;
  v.vm_pgoff[tail] = v.vm_pgoff[vma] + (addr - v.vm_start[vma]) / PAGE;
  if (v.anon_vma[tail] >= 0) vm.anon.link(v.anon_vma[tail], tail);
  mm.mt.adjust(v.vm_start[vma], v.vm_start[vma], addr);
  v.vm_end[vma] = addr;
  mm.mt.store(addr, end, tail);
  mm.map_count++;
  return tail;
}

/**
 * kernel: mm/vma.c do_vmi_munmap()
 * Unmap [start, end): split the VMAs straddling either end, zap their pages, free them, then the
 * page tables of the hole, and give back the commit charge of the VM_ACCOUNT ones
 * (vms_complete_munmap_vmas(): vm_unacct_memory(nr_accounted)). Returns 0, -ENOMEM (too many
 * VMAs to split) or -EINVAL (a hugetlb VMA split off its huge page size).
 */
export function do_munmap(vm: Vm, mm: MmStruct, start: number, end: number): number {
  const v = vm.vmas;
  const mt = mm.mt;
  let first = mt.find(start);
  if (first < 0 || mt.lastStart >= end) return 0;
  // Splitting both ends of one VMA adds a VMA; the kernel checks the limit before touching anything.
  if (v.vm_start[first] < start && v.vm_end[first] > end && mm.map_count >= vm.sysctl.max_map_count)
    return ENOMEM;
  // hugetlb_vm_op_split(): a hugetlb VMA splits only at its huge page size (-EINVAL).
  const lastVma = mt.walk(end - 1);
  if (
    (v.vm_start[first] < start && v.vm_flags[first] & VM_HUGETLB && start % vma_huge_page_size(vm, first)) ||
    (lastVma >= 0 &&
      v.vm_end[lastVma] > end &&
      v.vm_flags[lastVma] & VM_HUGETLB &&
      end % vma_huge_page_size(vm, lastVma))
  )
    return EINVAL;
  if (v.vm_start[first] < start) {
    const r = __split_vma(vm, mm, first, start);
    if (r < 0) return r;
    first = r;
  }
  const lastId = mt.walk(end - 1);
  if (lastId >= 0 && v.vm_end[lastId] > end) {
    const r = __split_vma(vm, mm, lastId, end);
    if (r < 0) return r;
  }
  const doomed: number[] = [];
  mt.iterate(start, end, (_s, _e, id) => {
    doomed.push(id);
  });
  // unmap_region() / vms_complete_munmap_vmas(): remember the peaks before they drop.
  update_hiwater_rss(vm, mm);
  update_hiwater_vm(vm, mm);
  let nr_accounted = 0;
  for (const vma of doomed) {
    const len = v.vm_end[vma] - v.vm_start[vma];
    if (v.vm_flags[vma] & VM_HUGETLB) {
      unmap_hugepage_range(vm, mm, vma, v.vm_start[vma], v.vm_end[vma]);
      hugetlb_vm_op_close(vm, mm, vma);
    } else zap_page_range(vm, mm, vma, v.vm_start[vma], v.vm_end[vma]);
    vm_stat_account(mm, v.vm_flags[vma], -len / PAGE);
    if (v.vm_flags[vma] & VM_LOCKED) mm.locked_vm -= len / PAGE;
    if (v.vm_flags[vma] & VM_ACCOUNT) nr_accounted += len / PAGE;
    remove_vma(vm, mm, vma);
  }
  vm_unacct_memory(vm, nr_accounted);
  const floor = mt.prev(start) >= 0 ? mt.lastEnd : 0;
  const ceiling = mt.next(end) >= 0 ? mt.lastStart : mm.task_size + PAGE;
  free_pgd_range(vm, mm, start, end, floor, ceiling);
  return 0;
}

/**
 * kernel: mm/gup.c populate_vma_page_range()
 * Fault in every page of [start, end) in `vma`: write faults for private writable mappings so
 * they get their own pages (breaking COW), read faults (FOLL_FORCE) otherwise, which map the zero
 * page. Returns the pages populated, or -errno when none could be: -EFAULT for a PROT_NONE VMA
 * (check_vma_flags(); measured on 6.18: mlock() of one fails with ENOMEM), -ENOMEM when memory
 * ran out. A VM_LOCKONFAULT VMA is not populated (all its pages count as done).
 */
export function populate_vma_page_range(
  vm: Vm,
  mm: MmStruct,
  vma: number,
  start: number,
  end: number,
): number {
  const flags = vm.vmas.vm_flags[vma];
  if (flags & VM_LOCKONFAULT) return (end - start) / PAGE;
  if (!(flags & VM_ACCESS_FLAGS)) return EFAULT;
  const write = (flags & (VM_WRITE | VM_SHARED)) === VM_WRITE;
  // GUP steps over a hugetlb page at once (one fault per huge page).
  const step = flags & VM_HUGETLB ? vma_huge_page_size(vm, vma) : PAGE;
  let n = 0;
  for (let addr = start; addr < end; addr += step) {
    const r = handle_mm_fault(vm, mm, vma, addr, write);
    if (r !== VM_FAULT_OK) return n > 0 ? n : r & VM_FAULT_SIGBUS ? EFAULT : ENOMEM;
    n += step / PAGE;
  }
  return n;
}

/**
 * kernel: mm/gup.c __mm_populate() (mm_populate() passes ignore_errors)
 * Populate [start, start + len) VMA by VMA, skipping holes and VM_IO/VM_PFNMAP mappings. Stops at
 * the first error unless `ignore_errors` (then it continues with the next VMA). Returns 0 or the
 * -errno of populate_vma_page_range().
 */
export function __mm_populate(
  vm: Vm,
  mm: MmStruct,
  start: number,
  len: number,
  ignore_errors: boolean,
): number {
  const end = start + len;
  const v = vm.vmas;
  let nstart = start;
  while (nstart < end) {
    const vma = mm.mt.find(nstart);
    if (vma < 0 || v.vm_start[vma] >= end) break;
    const nend = Math.min(end, v.vm_end[vma]);
    if (v.vm_flags[vma] & VM_SPECIAL) {
      nstart = nend;
      continue;
    }
    nstart = Math.max(nstart, v.vm_start[vma]);
    const r = populate_vma_page_range(vm, mm, vma, nstart, nend);
    if (r < 0) {
      if (!ignore_errors) return r;
      nstart = nend;
      continue;
    }
    // A shortfall (memory ran out midway) retries from the page that failed, as __get_user_pages
    // callers do; that retry then reports the error.
    nstart += r * PAGE;
  }
  return 0;
}

/**
 * kernel: mm/mmap.c do_brk_flags()
 * Extend the heap by [addr, addr + len): grow `brkvma` (the VMA ending at addr, if any, and only
 * that one: brk never merges with the next VMA) or map a new VMA with the data flags plus
 * mm.def_flags and VM_ACCOUNT, after charging the new pages (security_vm_enough_memory_mm()).
 * Returns 0 or -ENOMEM.
 */
function do_brk_flags(
  vm: Vm,
  mm: MmStruct,
  brkvma: number,
  addr: number,
  len: number,
  task: TaskContext,
): number {
  const flags = VM_DATA_DEFAULT_FLAGS | VM_ACCOUNT | mm.def_flags;
  if (!may_expand_vm(mm, flags, len / PAGE, task)) return ENOMEM;
  if (mm.map_count > vm.sysctl.max_map_count) return ENOMEM;
  if (security_vm_enough_memory_mm(vm, mm, task, len / PAGE) < 0) return ENOMEM;
  let vma = -1;
  if (brkvma >= 0 && vm.vmas.vm_end[brkvma] === addr)
    vma = vma_merge_new_range(vm, mm, addr, addr + len, flags, addr / PAGE, -1, true);
  if (vma < 0) {
    vma = vm.vmas.alloc(mm.id, addr, addr + len, flags, addr / PAGE);
    mm.mt.store(addr, addr + len, vma);
    mm.map_count++;
  }
  vm_stat_account(mm, flags, len / PAGE);
  if (flags & VM_LOCKED) mm.locked_vm += len / PAGE;
  khugepaged_enter_vma(vm, mm, vma, flags);
  return 0;
}

/**
 * kernel: mm/mmap.c SYSCALL_DEFINE1(brk)
 * Move the end of the heap to `brk` and return the new end, or the unchanged one when the move is
 * refused (the raw syscall reports failure only that way; glibc's brk() turns it into ENOMEM):
 * below start_brk (no CONFIG_COMPAT_BRK), past RLIMIT_DATA (counting only the heap: the model has
 * no data segment), into another mapping or within a page of it, past the address space or
 * RLIMIT_AS, or past RLIMIT_MEMLOCK after mlockall(MCL_FUTURE). Shrinking unmaps the pages above
 * the new end; growing maps zero-fill memory (populated under MCL_FUTURE). mm.brk keeps the exact
 * value asked for; the heap VMA ends at it rounded up to a page.
 */
export function sys_brk(vm: Vm, mm: MmStruct, brk: number, task: TaskContext): number {
  const origbrk = mm.brk;
  if (brk < mm.start_brk) return origbrk;
  if (brk - mm.start_brk > task.rlimit(RLIMIT_DATA)) return origbrk;
  const newbrk = page_align(brk);
  const oldbrk = page_align(mm.brk);
  if (oldbrk === newbrk) {
    mm.brk = brk;
    return brk;
  }
  if (brk <= mm.brk) {
    // Always allow shrinking, if a VMA lies in [newbrk, oldbrk).
    const vma = mm.mt.find(newbrk);
    if (vma < 0 || mm.mt.lastStart >= oldbrk) return origbrk;
    mm.brk = brk;
    if (do_munmap(vm, mm, newbrk, oldbrk) < 0) {
      mm.brk = origbrk;
      return origbrk;
    }
    return brk;
  }
  // check_brk_limits(): get_unmapped_area(MAP_FIXED) and mlock_future_ok().
  if (newbrk > mm.task_size) return origbrk;
  if (!mlock_future_ok(mm, mm.def_flags, newbrk - oldbrk, task)) return origbrk;
  // The next VMA must stay at least a page above the new end (vm_start_gap; no VM_GROWSDOWN here).
  const next = mm.mt.find(oldbrk);
  if (next >= 0 && newbrk + PAGE > mm.mt.lastStart) return origbrk;
  // vma_prev_limit(&vmi, start_brk): the VMA just below oldbrk, if it is not below start_brk.
  let brkvma = mm.mt.prev(oldbrk);
  if (brkvma >= 0 && mm.mt.lastEnd <= mm.start_brk) brkvma = -1;
  if (do_brk_flags(vm, mm, brkvma, oldbrk, newbrk - oldbrk, task) < 0) return origbrk;
  mm.brk = brk;
  if (mm.def_flags & VM_LOCKED) __mm_populate(vm, mm, oldbrk, newbrk - oldbrk, true);
  return brk;
}

/** PAGE_ALIGN() */
export function page_align(x: number): number {
  return Math.ceil(x / PAGE) * PAGE;
}

/**
 * kernel: mm/mmap.c exit_mmap()
 * Unmap everything, free every page table including the PGD, and forget the address space.
 */
export function exit_mmap(vm: Vm, mm: MmStruct): void {
  // mmput(): khugepaged_exit() before the teardown.
  khugepaged_exit(vm, mm);
  do_munmap(vm, mm, 0, mm.task_size + PAGE);
  vm.pt.release(mm.pgd, mm.cpu);
  mm.pgd = -1;
  vm.mms[mm.id] = undefined;
}
