/**
 * mm/mprotect.c: mprotect(). New access flags for the VMAs of a range (split and merged by
 * vma_modify_flags), then new permissions for the PTEs already there (change_protection).
 *
 * PTEs follow the kernel: removing write permission write-protects every PTE; making a private
 * mapping writable leaves PTEs read-only (the next write fault makes them writable, do_wp_page)
 * except where the kernel's MM_CP_TRY_CHANGE_WRITABLE upgrades them at once: exclusive anonymous
 * pages. The kernel knows exclusivity from PageAnonExclusive, which fork clears and only a later
 * write fault sets again; the model has no such bit and takes "mapped once" instead (as do_wp_page
 * here does), so right after a child exits a page the kernel would still fault on once is made
 * writable directly. PROT_NONE turns PTEs into PROT_NONE entries that keep their page.
 *
 * Errnos (6.18, measured): EINVAL for an unaligned start, prot bits beyond
 * PROT_READ|WRITE|EXEC|SEM, PROT_GROWSUP, and PROT_GROWSDOWN on a VMA that does not grow down;
 * ENOMEM if the range wraps or is not fully mapped (VMAs before the first hole keep their new
 * protection), or if a split passes vm.max_map_count or a private mapping turning writable passes
 * RLIMIT_DATA or is refused its commit charge (vm.overcommit_memory); EACCES for a permission the
 * VMA may not have (VM_MAY*; anonymous mappings may have all, so this needs file mappings or
 * memory-deny-write-execute, neither modelled). Length 0 does nothing.
 */

import { errnos } from '../lib/errno.ts';
import { PAGE_SIZE as PAGE } from '../mm/mmzone.ts';
import { PG_anon } from '../mm/page-flags.ts';
import { split_huge_pmd_range } from './huge_memory.ts';
import { hugetlb_change_protection, vma_huge_page_size } from './hugetlb.ts';
import { walk_pte_range } from './memory.ts';
import type { MmStruct } from './mm_struct.ts';
import {
  may_expand_vm,
  page_align,
  populate_vma_page_range,
  type TaskContext,
  vm_stat_account,
  vma_modify_flags,
} from './mmap.ts';
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_PRESENT,
  _PAGE_PROTNONE,
  _PAGE_RW,
  _PAGE_SOFT_DIRTY,
  _PAGE_SPECIAL,
  _PAGE_USER,
  PTRS_PER_TABLE,
} from './pgtable.ts';
import { PROT_EXEC, PROT_GROWSDOWN, PROT_GROWSUP, PROT_READ, PROT_SEM, PROT_WRITE } from './uapi.ts';
import { security_vm_enough_memory_mm, vm_unacct_memory } from './util.ts';
import type { Vm } from './vm.ts';
import {
  VM_ACCESS_FLAGS,
  VM_ACCOUNT,
  VM_EXEC,
  VM_GROWSDOWN,
  VM_HUGETLB,
  VM_LOCKED,
  VM_NORESERVE,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
} from './vma.ts';

const U64 = 2 ** 64;
const ENOMEM = -errnos.ENOMEM;
const EINVAL = -errnos.EINVAL;
const EACCES = -errnos.EACCES;

/** calc_vm_prot_bits(): PROT_* to VM_READ/WRITE/EXEC (PROT_SEM maps to nothing). */
export function calc_vm_prot_bits(prot: number): number {
  return (
    (prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0) | (prot & PROT_EXEC ? VM_EXEC : 0)
  );
}

/**
 * kernel: mm/mprotect.c change_protection() / change_pte_range()
 * Rewrite the PTEs of [start, end) for `vma`'s (new) flags, keeping each entry's page and its
 * accessed, dirty and soft-dirty bits: PROT_NONE entries for an inaccessible VMA, else present
 * read-only entries, writable only for exclusive anonymous pages of a private writable VMA
 * (MM_CP_TRY_CHANGE_WRITABLE / can_change_pte_writable()). In a shared writable VMA a tmpfs
 * page is writable at once (its vm_page_prot allows writes: no write notification), a disk
 * file's only if its PTE is already dirty. Returns the entries changed.
 */
export function change_protection(vm: Vm, mm: MmStruct, vma: number, start: number, end: number): number {
  const flags = vm.vmas.vm_flags[vma];
  if (flags & VM_HUGETLB) return hugetlb_change_protection(vm, mm, vma, start, end);
  const shared_writable = (flags & (VM_WRITE | VM_SHARED)) === (VM_WRITE | VM_SHARED);
  const cp = {
    none: !(flags & VM_ACCESS_FLAGS),
    try_writable: (flags & (VM_WRITE | VM_SHARED)) === VM_WRITE,
    shared:
      shared_writable && vm.vmas.vm_file[vma]
        ? vm.files.file(vm.vmas.vm_file[vma]).inode.mapping.shmem
          ? SHARED_RW
          : SHARED_RW_IF_DIRTY
        : 0,
    pages: 0,
  };
  // change_pmd_range(): huge PMDs are split to PTEs first (the model does not change_huge_pmd()).
  split_huge_pmd_range(vm, mm, vma, start, end);
  walk_pte_range(vm, mm, start, end, change_pte, cp);
  return cp.pages;
}

const SHARED_RW = 1;
const SHARED_RW_IF_DIRTY = 2;

// kernel: mm/mprotect.c change_pte_range(), one entry
function change_pte(
  vm: Vm,
  _mm: MmStruct,
  table: number,
  i: number,
  cp: { none: boolean; try_writable: boolean; shared: number; pages: number },
): void {
  const pt = vm.pt;
  const e = table * PTRS_PER_TABLE + i;
  const bits = pt.bits[e];
  // pte_modify() keeps the special bit: the entry still has no page behind it for the MM.
  let nb = bits & (_PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_SOFT_DIRTY | _PAGE_SPECIAL);
  if (cp.none) nb |= _PAGE_PROTNONE;
  else {
    nb |= _PAGE_PRESENT | _PAGE_USER;
    const pfn = pt.pfn[e];
    const f = vm.mm.frames;
    if (bits & _PAGE_SPECIAL) {
      // A VM_PFNMAP mapping's vm_page_prot: writable when shared and writable (no writenotify).
      if (cp.shared) nb |= _PAGE_RW;
    } else if (cp.try_writable && pfn !== vm.mm.zero_pfn && f.flags[pfn] & PG_anon && f.mapcount[pfn] === 1)
      nb |= _PAGE_RW;
    else if (cp.shared === SHARED_RW || (cp.shared === SHARED_RW_IF_DIRTY && bits & _PAGE_DIRTY))
      nb |= _PAGE_RW;
  }
  if (nb !== bits) {
    pt.bits[e] = nb;
    cp.pages++;
  }
}

/**
 * kernel: mm/mprotect.c mprotect_fixup()
 * Give [start, end) of `vma` the flags `newflags`. A private mapping turning writable is checked
 * against RLIMIT_DATA and, unless it is VM_ACCOUNT already (or shared, hugetlb, VM_NORESERVE),
 * charged its pages (security_vm_enough_memory_mm(); refused: -ENOMEM) and made VM_ACCOUNT; an
 * anonymous one turning read-only before it ever had an anonymous page (no anon_vma) loses
 * VM_ACCOUNT and gives the charge back — otherwise the charge stays. A locked private mapping
 * turning writable is faulted in at once (COW broken) to spare later faults. Returns the VMA now
 * covering the range, or -ENOMEM (the charge is undone).
 */
export function mprotect_fixup(
  vm: Vm,
  mm: MmStruct,
  task: TaskContext,
  vma: number,
  start: number,
  end: number,
  newflags: number,
): number {
  const v = vm.vmas;
  const oldflags = v.vm_flags[vma];
  const nrpages = (end - start) / PAGE;
  let charged = 0;
  if (newflags === oldflags) return vma;
  // hugetlb_vm_op_split(): a hugetlb VMA splits only at its huge page size.
  if (oldflags & VM_HUGETLB) {
    const hsz = vma_huge_page_size(vm, vma);
    if ((start !== v.vm_start[vma] && start % hsz) || (end !== v.vm_end[vma] && end % hsz)) return EINVAL;
  }
  if (newflags & VM_WRITE) {
    // Check space limits when the area turns into data.
    if (!may_expand_vm(mm, newflags, nrpages, task) && may_expand_vm(mm, oldflags, nrpages, task))
      return ENOMEM;
    if (!(oldflags & (VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE))) {
      charged = nrpages;
      if (security_vm_enough_memory_mm(vm, mm, task, charged) < 0) return ENOMEM;
      newflags |= VM_ACCOUNT;
    }
  } else if (oldflags & VM_ACCOUNT && !v.vm_file[vma] && v.anon_vma[vma] < 0) {
    newflags &= ~VM_ACCOUNT;
  }
  const r = vma_modify_flags(vm, mm, vma, start, end, newflags);
  if (r < 0) {
    vm_unacct_memory(vm, charged);
    return r;
  }
  change_protection(vm, mm, r, start, end);
  if (oldflags & VM_ACCOUNT && !(newflags & VM_ACCOUNT)) vm_unacct_memory(vm, nrpages);
  if ((oldflags & (VM_WRITE | VM_SHARED | VM_LOCKED)) === VM_LOCKED && newflags & VM_WRITE)
    populate_vma_page_range(vm, mm, r, start, end);
  vm_stat_account(mm, oldflags, -nrpages);
  vm_stat_account(mm, newflags, nrpages);
  return r;
}

/**
 * kernel: mm/mprotect.c do_mprotect_pkey() (SYSCALL_DEFINE3(mprotect))
 * Set the protection of [start, start + len) to `prot`. Returns 0 or -errno (see the file
 * comment).
 */
export function sys_mprotect(
  vm: Vm,
  mm: MmStruct,
  task: TaskContext,
  start: number,
  len: number,
  prot: number,
): number {
  const grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
  prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP);
  if (grows === (PROT_GROWSDOWN | PROT_GROWSUP)) return EINVAL;
  if (start % PAGE) return EINVAL;
  if (!len) return 0;
  len = page_align(len) % U64;
  const end = start + len;
  if (end <= start || end >= U64) return ENOMEM;
  // arch_validate_prot()
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM)) return EINVAL;
  const v = vm.vmas;
  let vma = mm.mt.find(start);
  if (vma < 0 || v.vm_start[vma] >= end) return ENOMEM;
  if (grows & PROT_GROWSDOWN) {
    start = v.vm_start[vma];
    if (!(v.vm_flags[vma] & VM_GROWSDOWN)) return EINVAL;
  } else {
    if (v.vm_start[vma] > start) return ENOMEM;
    // x86-64 has no VM_GROWSUP.
    if (grows & PROT_GROWSUP) return EINVAL;
  }
  const newprot = calc_vm_prot_bits(prot);
  let nstart = start;
  let tmp = v.vm_start[vma];
  let error = 0;
  while (vma >= 0 && v.vm_start[vma] < end) {
    if (v.vm_start[vma] !== tmp) {
      error = ENOMEM;
      break;
    }
    // Each call passes all of r/w/x; what is not passed is cleared.
    const newflags = newprot | (v.vm_flags[vma] & ~VM_ACCESS_FLAGS);
    // newflags >> 4 shifts VM_MAY* into place of VM_*.
    if (newflags & ~(newflags >>> 4) & VM_ACCESS_FLAGS) {
      error = EACCES;
      break;
    }
    tmp = Math.min(v.vm_end[vma], end);
    const r = mprotect_fixup(vm, mm, task, vma, nstart, tmp, newflags);
    if (r < 0) {
      error = r;
      break;
    }
    tmp = v.vm_end[r];
    nstart = tmp;
    vma = mm.mt.find(tmp);
  }
  if (!error && tmp < end) error = ENOMEM;
  return error;
}
