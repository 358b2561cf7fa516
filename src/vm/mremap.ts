/**
 * mm/mremap.c: mremap(), as refactored for 6.16–6.18 (struct vma_remap_struct).
 *
 * - Shrinking always happens in place: the tail is unmapped (it may span several VMAs).
 * - Growing happens in place when [addr, addr + old_len) ends at its VMA's end and the pages
 *   after it are free: the VMA is extended (vma_merge_extend(), which may also merge the next
 *   VMA). Otherwise, with MREMAP_MAYMOVE, the mapping moves to a new range (get_unmapped_area(),
 *   top down, no hint) and grows there; without it, ENOMEM.
 * - Moving (move_vma()): copy_vma() maps the new range with the old flags and, if the VMA has an
 *   anon_vma, the old page offset, so every anonymous page keeps its index (an unfaulted VMA takes
 *   the new address as offset, to merge more easily); move_page_tables() then moves the PTEs, or
 *   whole PTE tables (PMD entries) and PMD tables (PUD entries) where old and new addresses are
 *   aligned alike and the extent covers the table (CONFIG_HAVE_MOVE_PMD / _PUD on x86-64); the
 *   old range is unmapped (freeing the emptied tables). The pages themselves do not move; mlocked
 *   pages stay mlocked. MREMAP_FIXED unmaps the target first. Since 6.17 MREMAP_FIXED with equal
 *   sizes may move several VMAs at once, keeping the gaps between them (remap_move()).
 * - MREMAP_DONTUNMAP (equal sizes, needs MREMAP_MAYMOVE) moves the pages but leaves the old VMA
 *   mapped and empty; later accesses there fault in zero-fill memory.
 * - A locked VMA that grows is populated; locked_vm and total_vm follow the VMAs.
 * - hugetlb VMAs (align_hugetlb()): lengths round up to the huge page size; an unaligned address
 *   or new_address, or growth, is EINVAL; a move carries one leaf per huge page
 *   (move_hugetlb_page_tables()) and keeps the page offset (see docs/decisions.md).
 * - Commit charge (VM_ACCOUNT VMAs, vrm_calc_charge()): growing in place charges the growth;
 *   a move charges the size difference (vrm->delta) and unmaps the source without giving its
 *   charge back (unmap_source_vma() clears VM_ACCOUNT around the unmap), so the charge follows
 *   the pages; MREMAP_DONTUNMAP charges the whole new range, the old VMA keeping VM_ACCOUNT (6.18
 *   with the fix "mm/mremap: correctly account old mapping after MREMAP_DONTUNMAP remap";
 *   measured). Refused: ENOMEM. As in 6.18 (measured on our machines), a MREMAP_FIXED move that
 *   also shrinks charges the shrink again after unmapping the tail (vrm->delta is not reset), and
 *   a move whose page tables cannot all be moved keeps its charge: both leak into Committed_AS
 *   for good (counted in Vm.vm_committed_leaked).
 *
 * Errnos (6.18, measured): EINVAL for unknown flags, an unaligned address, new_size 0 or beyond
 * the address space, MREMAP_FIXED or MREMAP_DONTUNMAP without MREMAP_MAYMOVE, an unaligned or
 * overlapping new_address, MREMAP_DONTUNMAP with different sizes or on a VM_DONTEXPAND /
 * VM_PFNMAP VMA, and old_size 0 (duplicating a private mapping is refused); EFAULT if old_address
 * is not mapped, or the old range runs past its VMA when growing or moving, or the VMA is
 * VM_DONTEXPAND / VM_PFNMAP and would grow; ENOMEM when growing in place is impossible without
 * MREMAP_MAYMOVE, no free range exists, RLIMIT_AS / RLIMIT_DATA would be exceeded or
 * vm.max_map_count is near; EAGAIN past RLIMIT_MEMLOCK for a locked VMA; EPERM for an
 * MREMAP_FIXED target below vm.mmap_min_addr without CAP_SYS_RAWIO.
 *
 * Departures: the kernel's realignment of unaligned moves to reach PMD-level moves (6.10) is not
 * modelled. MREMAP_DONTUNMAP of a VM_LOCKED VMA: 6.18 clears VM_LOCKED on the whole source VMA
 * but leaves its remaining pages mlocked and its pages counted in locked_vm, which then never
 * drops back (measured: VmLck stays raised after both VMAs are unmapped). The model clears the
 * flags too but munlocks those pages and uncounts them, so locked_vm keeps matching the VMAs.
 */

import { errnos } from '../lib/errno.ts';
import { PAGE_SIZE as PAGE } from '../mm/mmzone.ts';
import { split_huge_pmd_range } from './huge_memory.ts';
import { fixup_hugetlb_reservations, move_hugetlb_page_tables, vma_huge_page_size } from './hugetlb.ts';
import { mlock_vma_pages_range } from './mlock.ts';
import type { MmStruct } from './mm_struct.ts';
import {
  __mm_populate,
  do_munmap,
  get_unmapped_area,
  may_expand_vm,
  mlock_future_ok,
  page_align,
  type TaskContext,
  vm_stat_account,
  vma_merge_new_range,
} from './mmap.ts';
import { _PAGE_TABLE, PTRS_PER_TABLE, pgd_index, pmd_index, pte_index, pud_index } from './pgtable.ts';
import { CAP_SYS_RAWIO, MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE } from './uapi.ts';
import { security_vm_enough_memory_mm, vm_acct_memory, vm_unacct_memory } from './util.ts';
import type { Vm } from './vm.ts';
import {
  VM_ACCOUNT,
  VM_CONTIG,
  VM_DONTEXPAND,
  VM_HUGETLB,
  VM_LOCKED,
  VM_LOCKED_MASK,
  VM_MAYSHARE,
  VM_PFNMAP,
  VM_SHARED,
} from './vma.ts';

const PMD_SIZE = PAGE * PTRS_PER_TABLE; // 2 MiB
const PUD_SIZE = PMD_SIZE * PTRS_PER_TABLE; // 1 GiB
const U64 = 2 ** 64;
const ENOMEM = -errnos.ENOMEM;
const EINVAL = -errnos.EINVAL;
const EFAULT = -errnos.EFAULT;
const EAGAIN = -errnos.EAGAIN;
const EPERM = -errnos.EPERM;

const MREMAP_NO_RESIZE = 0;
const MREMAP_SHRINK = 1;
const MREMAP_EXPAND = 2;

/** struct vma_remap_struct: one mremap() request as it is worked through. */
interface VmaRemap {
  addr: number;
  old_len: number;
  new_len: number;
  flags: number;
  new_addr: number;
  /** The VMA containing addr, or -1. */
  vma: number;
  delta: number;
  remap_type: number;
  /** A locked VMA grew: populate the new part afterwards. */
  populate_expand: boolean;
  /** If VM_ACCOUNT, the pages charged (vrm_calc_charge()). */
  charged: number;
}

/** MREMAP_FIXED or MREMAP_DONTUNMAP: the mapping moves to (or near) new_addr. */
function vrm_implies_new_addr(r: VmaRemap): boolean {
  return (r.flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) !== 0;
}

/**
 * kernel: mm/mremap.c get_extent()
 * Bytes from `old` to the next `size` boundary, clipped to the end of the move and to the next
 * boundary after `nw`: how much one entry at that level can move.
 */
function get_extent(size: number, old: number, old_end: number, nw: number): number {
  let extent = (Math.floor(old / size) + 1) * size - old;
  extent = Math.min(extent, old_end - old);
  return Math.min(extent, (Math.floor(nw / size) + 1) * size - nw);
}

/** The child table of entry `i` in table `parent`, allocated if missing; -1 if no memory. */
function table_alloc(vm: Vm, mm: MmStruct, parent: number, i: number): number {
  let child = vm.pt.child(parent, i);
  if (child < 0) {
    child = vm.pt.alloc(mm.id, mm.nid, mm.cpu);
    if (child < 0) return -1;
    vm.pt.set(parent, i, vm.pt.frame[child], _PAGE_TABLE);
  }
  return child;
}

/** Move entry `oi` of table `ot` to entry `ni` of table `nt` (which is none). */
function move_entry(vm: Vm, ot: number, oi: number, nt: number, ni: number): void {
  const pt = vm.pt;
  const e = ot * PTRS_PER_TABLE + oi;
  pt.set(nt, ni, pt.pfn[e], pt.bits[e]);
  pt.clear(ot, oi);
}

/**
 * kernel: mm/mremap.c move_page_tables()
 * Move the page-table entries of [old_addr, old_addr + len) to new_addr: a whole PMD table (one
 * PUD entry) where the extent is a naturally aligned 1 GiB on both sides and the target entry is
 * empty (move_normal_pud), likewise a whole PTE table for 2 MiB (move_normal_pmd), else PTE by
 * PTE (move_ptes), allocating target tables as needed. Entries keep their page and bits. Returns
 * the bytes moved: less than `len` if a table could not be allocated.
 */
function move_page_tables(vm: Vm, mm: MmStruct, old_addr: number, new_addr: number, len: number): number {
  const pt = vm.pt;
  const old_end = old_addr + len;
  // move_huge_pmd() is not modelled: huge PMDs are split and their PTEs moved.
  split_huge_pmd_range(vm, mm, -1, old_addr, old_end);
  let o = old_addr;
  let n = new_addr;
  while (o < old_end) {
    const ovpn = o / PAGE;
    const nvpn = n / PAGE;
    let extent = get_extent(PUD_SIZE, o, old_end, n);
    const opud = pt.child(mm.pgd, pgd_index(ovpn));
    const opmd = opud < 0 ? -1 : pt.child(opud, pud_index(ovpn));
    if (opmd < 0) {
      o += extent;
      n += extent;
      continue;
    }
    const npud = table_alloc(vm, mm, mm.pgd, pgd_index(nvpn));
    if (npud < 0) break;
    if (extent === PUD_SIZE && pt.child(npud, pud_index(nvpn)) < 0) {
      move_entry(vm, opud, pud_index(ovpn), npud, pud_index(nvpn));
      o += extent;
      n += extent;
      continue;
    }
    extent = get_extent(PMD_SIZE, o, old_end, n);
    const opte = pt.child(opmd, pmd_index(ovpn));
    if (opte < 0) {
      o += extent;
      n += extent;
      continue;
    }
    const npmd = table_alloc(vm, mm, npud, pud_index(nvpn));
    if (npmd < 0) break;
    if (extent === PMD_SIZE && pt.child(npmd, pmd_index(nvpn)) < 0) {
      move_entry(vm, opmd, pmd_index(ovpn), npmd, pmd_index(nvpn));
      o += extent;
      n += extent;
      continue;
    }
    const npte = table_alloc(vm, mm, npmd, pmd_index(nvpn));
    if (npte < 0) break;
    // move_ptes()
    for (let k = 0; k < extent / PAGE; k++) {
      const oi = pte_index(ovpn + k);
      if (pt.bits[opte * PTRS_PER_TABLE + oi] !== 0) move_entry(vm, opte, oi, npte, pte_index(nvpn + k));
    }
    o += extent;
    n += extent;
  }
  return o - old_addr;
}

/**
 * kernel: mm/vma.c copy_vma()
 * A VMA for [addr, addr + len) with `vma`'s flags and anon_vma at page offset `pgoff` (the new
 * address's own when `vma` has no anon_vma yet), merged with its new neighbours where possible.
 * Returns it. The range is free.
 */
function copy_vma(vm: Vm, mm: MmStruct, vma: number, addr: number, len: number, pgoff: number): number {
  const v = vm.vmas;
  const av = v.anon_vma[vma];
  // A hugetlb VMA keeps its offset: it indexes the reservation map and page cache.
  if (av < 0 && !(v.vm_flags[vma] & VM_HUGETLB)) pgoff = addr / PAGE;
  let nv = vma_merge_new_range(vm, mm, addr, addr + len, v.vm_flags[vma], pgoff, av);
  if (nv < 0) {
    nv = v.dup(vma);
    v.vm_start[nv] = addr;
    v.vm_end[nv] = addr + len;
    v.vm_pgoff[nv] = pgoff;
    if (av >= 0) vm.anon.link(av, nv);
    mm.mt.store(addr, addr + len, nv);
    mm.map_count++;
  }
  return nv;
}

/**
 * kernel: mm/mremap.c dontunmap_complete()
 * After an MREMAP_DONTUNMAP move the source VMA stays, empty, without VM_LOCKED/VM_LOCKONFAULT
 * (on its whole extent, unsplit), and without its anon_vma if all of it moved. (The model also
 * munlocks and uncounts what stays of a locked source; see the file comment.)
 */
function dontunmap_complete(vm: Vm, mm: MmStruct, r: VmaRemap, new_vma: number): void {
  const v = vm.vmas;
  const src = mm.mt.walk(r.addr);
  if (src < 0) return;
  if (v.vm_flags[src] & VM_LOCKED) {
    mm.locked_vm -= (v.vm_end[src] - v.vm_start[src]) / PAGE;
    v.vm_flags[src] &= ~VM_LOCKED_MASK;
    mlock_vma_pages_range(vm, mm, src, v.vm_start[src], v.vm_end[src]);
  }
  v.vm_flags[src] &= ~VM_LOCKED_MASK;
  const av = v.anon_vma[src];
  if (new_vma !== src && av >= 0 && r.addr === v.vm_start[src] && r.addr + r.old_len === v.vm_end[src]) {
    vm.anon.unlink(av, src);
    v.anon_vma[src] = -1;
  }
}

/**
 * kernel: mm/mremap.c vrm_calc_charge()
 * For a VM_ACCOUNT VMA, charge the pages this request adds: the whole new range with
 * MREMAP_DONTUNMAP (the old one stays), else the size difference. False if refused.
 */
function vrm_calc_charge(vm: Vm, mm: MmStruct, task: TaskContext, r: VmaRemap): boolean {
  if (!(vm.vmas.vm_flags[r.vma] & VM_ACCOUNT)) return true;
  const charged = (r.flags & MREMAP_DONTUNMAP ? r.new_len : r.delta) / PAGE;
  if (security_vm_enough_memory_mm(vm, mm, task, charged) < 0) return false;
  r.charged = charged;
  return true;
}

/** kernel: mm/mremap.c vrm_uncharge(): the request failed; give its charge back. */
function vrm_uncharge(vm: Vm, r: VmaRemap): void {
  if (!(vm.vmas.vm_flags[r.vma] & VM_ACCOUNT)) return;
  vm_unacct_memory(vm, r.charged);
  r.charged = 0;
}

/**
 * kernel: mm/mremap.c unmap_source_vma()
 * Unmap [addr, addr + len), the source of a move (or, when the move failed, its target), without
 * giving back the charge of a VM_ACCOUNT VMA unless the move was MREMAP_DONTUNMAP: VM_ACCOUNT is
 * cleared from the VMA for the unmap and set again on what remains of it on either side.
 */
function unmap_source_vma(vm: Vm, mm: MmStruct, r: VmaRemap, addr: number, len: number): void {
  const v = vm.vmas;
  const end = addr + len;
  const vma = mm.mt.walk(addr);
  const accountable_move = (v.vm_flags[vma] & VM_ACCOUNT) !== 0 && !(r.flags & MREMAP_DONTUNMAP);
  const vm_start = v.vm_start[vma];
  const vm_end = v.vm_end[vma];
  if (accountable_move) v.vm_flags[vma] &= ~VM_ACCOUNT;
  if (do_munmap(vm, mm, addr, end) < 0) {
    // OOM: unable to split the VMA, just get the accounts right (unreachable in the model:
    // move_vma() keeps three VMAs in hand). The source stays charged without VM_ACCOUNT.
    vm_acct_memory(vm, len / PAGE);
    vm.vm_committed_leaked += accountable_move ? (vm_end - vm_start) / PAGE : len / PAGE;
    return;
  }
  if (accountable_move) {
    if (vm_start < addr) v.vm_flags[mm.mt.walk(addr - PAGE)] |= VM_ACCOUNT;
    if (vm_end > end) v.vm_flags[mm.mt.walk(end)] |= VM_ACCOUNT;
  }
}

/**
 * kernel: mm/mremap.c move_vma() (prep_move_vma(), vrm_calc_charge(), copy_vma_and_data(),
 * unmap_source_vma())
 * Move [addr, addr + old_len) to [new_addr, new_addr + new_len). Returns new_addr or -errno; when
 * the page tables cannot all be moved they are moved back and the new VMA is unmapped.
 */
function move_vma(vm: Vm, mm: MmStruct, task: TaskContext, r: VmaRemap): number {
  if (mm.map_count >= vm.sysctl.max_map_count - 3) return ENOMEM;
  if (!vrm_calc_charge(vm, mm, task, r)) return ENOMEM;
  const v = vm.vmas;
  const flags = v.vm_flags[r.vma];
  const pgoff = v.linear_page_index(r.vma, r.addr);
  const new_vma = copy_vma(vm, mm, r.vma, r.new_addr, r.new_len, pgoff);
  let err = 0;
  let unmap_addr = r.addr;
  let unmap_len = r.old_len;
  // is_vm_hugetlb_page(): move_hugetlb_page_tables() moves one leaf per huge page.
  const hugetlb = (flags & VM_HUGETLB) !== 0;
  const moved = hugetlb
    ? move_hugetlb_page_tables(vm, mm, r.vma, r.addr, r.new_addr, r.old_len)
    : move_page_tables(vm, mm, r.addr, r.new_addr, r.old_len);
  if (moved < r.old_len) {
    if (hugetlb) move_hugetlb_page_tables(vm, mm, new_vma, r.new_addr, r.addr, moved);
    else move_page_tables(vm, mm, r.new_addr, r.addr, moved);
    err = ENOMEM;
    unmap_addr = r.new_addr;
    unmap_len = r.new_len;
  } else if (hugetlb) fixup_hugetlb_reservations(vm, new_vma);
  // vrm_stat_account(): the new VMA's pages; unmapping takes the old ones off.
  vm_stat_account(mm, flags, r.new_len / PAGE);
  if (flags & VM_LOCKED) mm.locked_vm += r.new_len / PAGE;
  // What the kernel charged beyond the pages added stays charged for good: after a shrink (the
  // size difference again), or all of it when the move failed.
  if (flags & VM_ACCOUNT && !(r.flags & MREMAP_DONTUNMAP))
    vm.vm_committed_leaked += err ? r.charged : r.charged - (r.new_len - r.old_len) / PAGE;
  if (!err && r.flags & MREMAP_DONTUNMAP) dontunmap_complete(vm, mm, r, new_vma);
  else unmap_source_vma(vm, mm, r, unmap_addr, unmap_len);
  return err || r.new_addr;
}

/**
 * kernel: mm/mremap.c vrm_set_new_addr()
 * Where the mapping goes: exactly new_addr with MREMAP_FIXED (after the checks of
 * get_unmapped_area(MAP_FIXED) and security_mmap_addr()), else a free range, new_addr being a
 * hint for MREMAP_DONTUNMAP.
 */
function vrm_set_new_addr(vm: Vm, mm: MmStruct, task: TaskContext, r: VmaRemap): number {
  if (r.flags & MREMAP_FIXED) {
    if (r.new_addr + r.new_len > mm.task_size) return ENOMEM;
    if (r.new_addr < vm.sysctl.mmap_min_addr && !task.capable(CAP_SYS_RAWIO)) return EPERM;
    return 0;
  }
  const res = get_unmapped_area(vm, mm, vrm_implies_new_addr(r) ? r.new_addr : 0, r.new_len);
  if (res < 0) return res;
  r.new_addr = res;
  return 0;
}

/**
 * kernel: mm/mremap.c check_prep_vma()
 * Checks on the VMA for this request; classifies it as no resize, shrink or expand. Returns 0 or
 * -errno.
 */
function check_prep_vma(vm: Vm, mm: MmStruct, task: TaskContext, r: VmaRemap): number {
  const v = vm.vmas;
  const vma = r.vma;
  if (vma < 0) return EFAULT;
  // align_hugetlb(): lengths rounded up to the huge page size, addresses aligned to it, and no
  // growth (the reservation code cannot split a reservation): else EINVAL.
  if (v.vm_flags[vma] & VM_HUGETLB) {
    const size = vma_huge_page_size(vm, vma);
    r.old_len = Math.ceil(r.old_len / size) * size;
    r.new_len = Math.ceil(r.new_len / size) * size;
    if (r.addr % size || r.new_addr % size || r.new_len > r.old_len) return EINVAL;
  }
  r.delta = Math.abs(r.old_len - r.new_len);
  r.remap_type = r.delta === 0 ? MREMAP_NO_RESIZE : r.old_len > r.new_len ? MREMAP_SHRINK : MREMAP_EXPAND;
  if (!vrm_implies_new_addr(r)) r.new_addr = r.addr;
  // Only expanding or moving needs the checks below.
  if (r.remap_type !== MREMAP_EXPAND && !vrm_implies_new_addr(r)) return 0;
  const flags = v.vm_flags[vma];
  // Duplicating a private mapping (old_size 0) makes no sense and is refused.
  if (!r.old_len && !(flags & (VM_SHARED | VM_MAYSHARE))) return EINVAL;
  if (r.flags & MREMAP_DONTUNMAP && flags & (VM_DONTEXPAND | VM_PFNMAP | VM_CONTIG)) return EINVAL;
  // A shrink may cross VMA boundaries (the tail is unmapped); what stays may not.
  const old_len = r.remap_type === MREMAP_SHRINK ? r.new_len : r.old_len;
  if (old_len > v.vm_end[vma] - r.addr) return EFAULT;
  if (r.new_len === old_len) return 0;
  if (flags & VM_LOCKED) r.populate_expand = true;
  // VM_CONTIG: MAP_CONTIG mappings never grow (the POC's VM_DONTEXPAND; kept by every policy).
  if (flags & (VM_DONTEXPAND | VM_PFNMAP | VM_CONTIG)) return EFAULT;
  if (!mlock_future_ok(mm, flags, r.delta, task)) return EAGAIN;
  if (!may_expand_vm(mm, flags, r.delta / PAGE, task)) return ENOMEM;
  return 0;
}

/**
 * kernel: mm/mremap.c mremap_to()
 * Move (and shrink) to new_addr: MREMAP_FIXED unmaps the target first. Returns the new address or
 * -errno.
 */
function mremap_to(vm: Vm, mm: MmStruct, task: TaskContext, r: VmaRemap): number {
  if (r.flags & MREMAP_FIXED) {
    const err = do_munmap(vm, mm, r.new_addr, r.new_addr + r.new_len);
    if (err < 0) return err;
    r.vma = mm.mt.walk(r.addr);
    if (r.vma < 0) return EFAULT;
  }
  if (r.remap_type === MREMAP_SHRINK) {
    const err = do_munmap(vm, mm, r.addr + r.new_len, r.addr + r.old_len);
    if (err < 0) return err;
    r.old_len = r.new_len;
    r.vma = mm.mt.walk(r.addr);
  }
  if (r.flags & MREMAP_DONTUNMAP && !may_expand_vm(mm, vm.vmas.vm_flags[r.vma], r.old_len / PAGE, task))
    return ENOMEM;
  const err = vrm_set_new_addr(vm, mm, task, r);
  if (err < 0) return err;
  return move_vma(vm, mm, task, r);
}

/**
 * kernel: mm/mremap.c expand_vma()
 * Grow in place if the range ends at its VMA's end and the space after the VMA is free
 * (vma_expandable(), expand_vma_in_place()); else move, if allowed.
 */
function expand_vma(vm: Vm, mm: MmStruct, task: TaskContext, r: VmaRemap): number {
  const v = vm.vmas;
  const vma = r.vma;
  const vend = v.vm_end[vma];
  const end = vend + r.delta;
  if (
    vend - r.addr === r.old_len &&
    end <= mm.task_size &&
    (mm.mt.find(vend) < 0 || mm.mt.lastStart >= end)
  ) {
    const flags = v.vm_flags[vma];
    const pgoff = v.vm_pgoff[vma] + (vend - v.vm_start[vma]) / PAGE;
    // expand_vma_in_place()
    if (!vrm_calc_charge(vm, mm, task, r)) return ENOMEM;
    if (vma_merge_new_range(vm, mm, vend, end, flags, pgoff, v.anon_vma[vma]) < 0) {
      vrm_uncharge(vm, r);
      return ENOMEM;
    }
    vm_stat_account(mm, flags, r.delta / PAGE);
    if (flags & VM_LOCKED) mm.locked_vm += r.delta / PAGE;
    return r.addr;
  }
  if (!(r.flags & MREMAP_MAYMOVE)) return ENOMEM;
  const err = vrm_set_new_addr(vm, mm, task, r);
  if (err < 0) return err;
  return move_vma(vm, mm, task, r);
}

/**
 * kernel: mm/mremap.c remap_move()
 * MREMAP_FIXED with old_size == new_size: move every VMA of [addr, addr + old_len) (split at the
 * ends), each at the same distance from the previous one as before. The range must start in a
 * VMA (EFAULT). Returns the new address of the first.
 */
function remap_move(vm: Vm, mm: MmStruct, task: TaskContext, r: VmaRemap): number {
  const v = vm.vmas;
  const start = r.addr;
  const end = r.addr + r.old_len;
  let target = r.new_addr;
  let res = EFAULT;
  let seen = false;
  let last_end = 0;
  let cursor = start;
  for (;;) {
    const vma = mm.mt.find(cursor);
    if (vma < 0 || v.vm_start[vma] >= end) break;
    if (!seen && start < v.vm_start[vma]) return EFAULT;
    const addr = Math.max(v.vm_start[vma], start);
    const len = Math.min(end, v.vm_end[vma]) - addr;
    const offset = seen ? v.vm_start[vma] - last_end : 0;
    last_end = v.vm_end[vma];
    const sub: VmaRemap = {
      ...r,
      vma,
      addr,
      new_addr: target + offset,
      old_len: len,
      new_len: len,
      populate_expand: false,
      charged: 0,
    };
    let rv = check_prep_vma(vm, mm, task, sub);
    if (!rv) rv = mremap_to(vm, mm, task, sub);
    if (rv < 0) return rv;
    if (!seen) res = rv;
    seen = true;
    target = rv + len;
    cursor = addr + len;
  }
  return res;
}

/**
 * kernel: mm/mremap.c do_mremap() (SYSCALL_DEFINE5(mremap), check_mremap_params(), mremap_at())
 * Resize and/or move the mapping at addr. Returns the (new) address or -errno (see the file
 * comment).
 */
export function sys_mremap(
  vm: Vm,
  mm: MmStruct,
  task: TaskContext,
  addr: number,
  old_len: number,
  new_len: number,
  flags: number,
  new_addr: number,
): number {
  const r: VmaRemap = {
    addr,
    old_len: page_align(old_len) % U64,
    new_len: page_align(new_len) % U64,
    flags,
    new_addr,
    vma: -1,
    delta: 0,
    remap_type: MREMAP_NO_RESIZE,
    populate_expand: false,
    charged: 0,
  };
  // check_mremap_params()
  if (flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP)) return EINVAL;
  if (addr % PAGE) return EINVAL;
  if (!r.new_len) return EINVAL;
  if (r.new_len > mm.task_size) return EINVAL;
  if (vrm_implies_new_addr(r)) {
    if (new_addr > mm.task_size - r.new_len) return EINVAL;
    if (new_addr % PAGE) return EINVAL;
    if (!(flags & MREMAP_MAYMOVE)) return EINVAL;
    if (flags & MREMAP_DONTUNMAP && r.old_len !== r.new_len) return EINVAL;
    if (addr + r.old_len > new_addr && new_addr + r.new_len > addr) return EINVAL;
    // Worst case both VMAs split in three: stay 4 maps below the limit.
    if (mm.map_count + 2 >= vm.sysctl.max_map_count - 3) return ENOMEM;
  }
  // vrm_move_only()
  if (flags & MREMAP_FIXED && r.old_len === r.new_len) return remap_move(vm, mm, task, r);
  r.vma = mm.mt.walk(addr);
  const err = check_prep_vma(vm, mm, task, r);
  if (err < 0) return err;
  let res: number;
  if (vrm_implies_new_addr(r)) res = mremap_to(vm, mm, task, r);
  else if (r.remap_type === MREMAP_NO_RESIZE) res = addr;
  else if (r.remap_type === MREMAP_SHRINK) {
    const e = do_munmap(vm, mm, addr + r.new_len, addr + r.old_len);
    res = e < 0 ? e : addr;
  } else res = expand_vma(vm, mm, task, r);
  // A locked VMA grew: populate what was added.
  if (res >= 0 && r.populate_expand) __mm_populate(vm, mm, res + r.old_len, r.new_len - r.old_len, true);
  return res;
}
