/**
 * dup_mmap() (mm/mmap.c since 6.16, kernel/fork.c before) and mm/memory.c copy_page_range(): a
 * child address space with a copy of every VMA but those marked VM_DONTCOPY (MADV_DONTFORK),
 * each VM_ACCOUNT copy charged to vm_committed_as first (refused: fork fails), sharing the
 * parent's anonymous pages copy-on-write: both sides' PTEs lose write permission, each page's
 * mapcount counts both, and the first write on either side copies (do_wp_page). VM_WIPEONFORK
 * VMAs (MADV_WIPEONFORK) come over empty, but charged. Memory locks are not inherited, nor is
 * mlockall(MCL_FUTURE) (mm->def_flags keeps only VM_INIT_DEF_MASK); the heap bounds are.
 *
 * Simplification: the child's VMA joins the parent's anon_vma instead of getting its own child
 * anon_vma; the reverse map finds the same PTEs either way.
 */
import { PG_anon } from '../mm/page-flags.ts';
import { swap_duplicate } from '../mm/swapfile.ts';
import { page_add_file_rmap } from './filemap_fault.ts';
import { copy_huge_pmd, huge_pmd_entry } from './huge_memory.ts';
import { copy_hugetlb_page_range } from './hugetlb.ts';
import { khugepaged_fork } from './khugepaged.ts';
import { pte_table_alloc, walk_pte_table } from './memory.ts';
import { MM_ANONPAGES, MM_SWAPENTS, type MmStruct } from './mm_struct.ts';
import { exit_mmap, type TaskContext, vm_stat_account } from './mmap.ts';
import { _PAGE_RW, _PAGE_SPECIAL, _PAGE_SWP_ENTRY, PTRS_PER_TABLE, pte_index } from './pgtable.ts';
import { security_vm_enough_memory_mm } from './util.ts';
import type { Vm } from './vm.ts';
import {
  VM_ACCOUNT,
  VM_CONTIG,
  VM_DONTCOPY,
  VM_HUGETLB,
  VM_LOCKED,
  VM_LOCKONFAULT,
  VM_MAYWRITE,
  VM_MIXEDMAP,
  VM_PFNMAP,
  VM_SHARED,
  VM_WIPEONFORK,
} from './vma.ts';

const PMD_PAGES = PTRS_PER_TABLE;

/**
 * kernel: mm/mmap.c dup_mmap()
 * The child's address space, or null (fork fails ENOMEM) if the commit charge of a VM_ACCOUNT
 * VMA is refused — charged, as in the kernel ("sic"), against the parent's mm, for `task`, the
 * forking parent — or memory for the page tables ran out. On failure what was copied is
 * torn down again (exit_mmap(), which gives its charge back).
 */
export function dup_mmap(
  vm: Vm,
  parent: MmStruct,
  cpu: number,
  nid: number,
  task: TaskContext,
): MmStruct | null {
  const child = vm.mm_alloc(nid, cpu);
  if (!child) return null;
  child.mmap_base = parent.mmap_base;
  child.task_size = parent.task_size;
  child.start_brk = parent.start_brk;
  child.brk = parent.brk;
  khugepaged_fork(vm, child, parent);
  const v = vm.vmas;
  const vmas: number[] = [];
  parent.mt.iterate(0, Number.POSITIVE_INFINITY, (_s, _e, id) => {
    vmas.push(id);
  });
  for (const vma of vmas) {
    const len = (v.vm_end[vma] - v.vm_start[vma]) / 4096;
    if (v.vm_flags[vma] & VM_DONTCOPY) continue;
    if (v.vm_flags[vma] & VM_ACCOUNT && security_vm_enough_memory_mm(vm, parent, task, len) < 0) {
      exit_mmap(vm, child);
      return null;
    }
    const copy = v.dup(vma, child.id);
    // The child's copy is an ordinary mapping: MAP_CONTIG's pages stay the parent's (RFC POC 1/3).
    v.vm_flags[copy] &= ~(VM_LOCKED | VM_LOCKONFAULT | VM_CONTIG);
    const wipe = (v.vm_flags[copy] & VM_WIPEONFORK) !== 0;
    // VM_WIPEONFORK gets a clean slate: no anon_vma until its first fault, no pages copied.
    if (wipe) v.anon_vma[copy] = -1;
    else if (v.anon_vma[copy] >= 0) vm.anon.link(v.anon_vma[copy], copy);
    child.mt.store(v.vm_start[copy], v.vm_end[copy], copy);
    child.map_count++;
    vm_stat_account(child, v.vm_flags[copy], len);
    if (v.vm_flags[vma] & VM_HUGETLB) {
      // vma_needs_copy() is true for hugetlb: its pages are never refilled from a file.
      if (!copy_hugetlb_page_range(vm, child, parent, vma, copy)) {
        exit_mmap(vm, child);
        return null;
      }
      continue;
    }
    // vma_needs_copy(): PTEs without anonymous pages behind them are refilled by faults, except
    // a VM_PFNMAP/VM_MIXEDMAP mapping's, which only its driver could refill.
    const needs_copy = v.anon_vma[vma] >= 0 || (v.vm_flags[vma] & (VM_PFNMAP | VM_MIXEDMAP)) !== 0;
    if (!wipe && needs_copy && !copy_page_range(vm, child, parent, vma, copy)) {
      exit_mmap(vm, child);
      return null;
    }
  }
  return child;
}

/** Copy the PTEs of one VMA into the child, write-protecting private writable pages on both sides. */
function copy_page_range(vm: Vm, dst: MmStruct, src: MmStruct, vma: number, dst_vma: number): boolean {
  const v = vm.vmas;
  const pt = vm.pt;
  const f = vm.mm.frames;
  // is_cow_mapping(): private and may be written.
  const cow = (v.vm_flags[vma] & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
  let vpn = v.vm_start[vma] / 4096;
  const last = v.vm_end[vma] / 4096;
  while (vpn < last) {
    const next = Math.min(last, (Math.floor(vpn / PMD_PAGES) + 1) * PMD_PAGES);
    // copy_pmd_range(): a huge PMD is shared whole (copy_huge_pmd); a pinned THP is split first.
    if (pt.deposit.size) {
      const he = huge_pmd_entry(vm, src, vpn);
      if (he >= 0 && copy_huge_pmd(vm, dst, src, vma, he, cow, vpn)) {
        vpn = next;
        continue;
      }
      if (he >= 0 && huge_pmd_entry(vm, src, vpn) >= 0) return false;
    }
    const stable = walk_pte_table(vm, src, vpn);
    if (stable >= 0 && pt.used[stable] > 0) {
      const dtable = pte_table_alloc(vm, dst, vpn);
      if (dtable < 0) return false;
      for (; vpn < next; vpn++) {
        const i = pte_index(vpn);
        const e = stable * PTRS_PER_TABLE + i;
        let bits = pt.bits[e];
        if (bits === 0) continue;
        const pfn = pt.pfn[e];
        if (bits & _PAGE_SWP_ENTRY) {
          // copy_nonpresent_pte(): both sides refer to the swap slot.
          swap_duplicate(vm.mm, pfn);
          dst.rss[MM_SWAPENTS]++;
        } else if (pfn !== vm.mm.zero_pfn) {
          if (cow && bits & _PAGE_RW) {
            bits &= ~_PAGE_RW;
            pt.bits[e] = bits;
          }
          // copy_present_ptes(): vm_normal_page() is NULL for a special PTE, which is copied
          // as it is (a VM_PFNMAP mapping is always copied: vma_needs_copy()).
          if (bits & _PAGE_SPECIAL) {
            // nothing to count: no mapcount, no RSS
          } else if (f.flags[pfn] & PG_anon) {
            f.mapcount[pfn]++;
            dst.rss[MM_ANONPAGES]++;
          } else page_add_file_rmap(vm, dst, dst_vma, pfn, vm.mm.page_cache.of(f.mapping[pfn]));
        }
        pt.set(dtable, i, pfn, bits);
      }
    }
    vpn = next;
  }
  return true;
}
