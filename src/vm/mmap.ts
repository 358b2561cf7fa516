/**
 * mm/mmap.c and mm/vma.c: creating, merging, splitting and removing VMAs, finding free address
 * ranges, and tearing an address space down. Callers (the syscalls in process.ts) validate user
 * arguments first; these functions return -errno as the kernel does.
 */
import { errnos } from '../lib/errno.ts';
import { free_pgd_range, handle_mm_fault, VM_FAULT_OK, zap_page_range } from './memory.ts';
import type { MmStruct } from './mm_struct.ts';
import type { Vm } from './vm.ts';
import { VM_LOCKED, VM_WRITE } from './vma.ts';

const PAGE = 4096;
const ENOMEM = -errnos.ENOMEM;

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

/** No VMA intersects [addr, addr + len). */
export function range_is_free(mm: MmStruct, addr: number, len: number): boolean {
  return mm.mt.find(addr) < 0 || mm.mt.lastStart >= addr + len;
}

/** Whether `b` can extend `a` (a ends where b starts): same flags, same anon_vma or none, contiguous offsets. */
function can_merge(vm: Vm, a: number, b: number): boolean {
  const v = vm.vmas;
  if (v.vm_flags[a] !== v.vm_flags[b]) return false;
  const aa = v.anon_vma[a];
  const ab = v.anon_vma[b];
  if (aa >= 0 && ab >= 0 && aa !== ab) return false;
  return v.vm_pgoff[a] + (v.vm_end[a] - v.vm_start[a]) / PAGE === v.vm_pgoff[b];
}

/**
 * kernel: mm/vma.c __mmap_region() with vma_merge_new_range()
 * Map [addr, addr + len) with `flags` at page offset `pgoff`, merging with an adjacent compatible
 * VMA where possible. The range must be free. Returns the VMA that covers it.
 */
export function mmap_region(
  vm: Vm,
  mm: MmStruct,
  addr: number,
  len: number,
  flags: number,
  pgoff: number,
): number {
  const v = vm.vmas;
  const end = addr + len;
  const vma = v.alloc(mm.id, addr, end, flags, pgoff);
  let result = vma;
  const prev = mm.mt.prev(addr);
  if (prev >= 0 && mm.mt.lastEnd === addr && can_merge(vm, prev, vma)) {
    mm.mt.adjust(v.vm_start[prev], v.vm_start[prev], end);
    v.vm_end[prev] = end;
    v.release(vma);
    result = prev;
  } else {
    mm.mt.store(addr, end, vma);
    mm.map_count++;
  }
  const next = mm.mt.next(end);
  if (next >= 0 && mm.mt.lastStart === end && can_merge(vm, result, next)) {
    // The merged VMA absorbs its right neighbour and, if it had none, its anon_vma.
    const nextEnd = v.vm_end[next];
    if (v.anon_vma[result] < 0 && v.anon_vma[next] >= 0) {
      v.anon_vma[result] = v.anon_vma[next];
      vm.anon.link(v.anon_vma[next], result);
    }
    remove_vma(vm, mm, next);
    mm.mt.adjust(v.vm_start[result], v.vm_start[result], nextEnd);
    v.vm_end[result] = nextEnd;
  }
  mm.total_vm += len / PAGE;
  if (flags & VM_LOCKED) mm.locked_vm += len / PAGE;
  return result;
}

/** Take a VMA out of the tree and free it (remove_vma). */
function remove_vma(vm: Vm, mm: MmStruct, vma: number): void {
  const v = vm.vmas;
  mm.mt.erase(v.vm_start[vma]);
  mm.map_count--;
  if (v.anon_vma[vma] >= 0) vm.anon.unlink(v.anon_vma[vma], vma);
  v.release(vma);
}

/**
 * kernel: mm/vma.c __split_vma()
 * Cut `vma` at `addr`: it keeps [start, addr) and a new VMA takes [addr, end) with its page
 * offset and anon_vma. -ENOMEM past max_map_count.
 */
export function split_vma(vm: Vm, mm: MmStruct, vma: number, addr: number): number {
  if (mm.map_count >= vm.sysctl.max_map_count) return ENOMEM;
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
 * page tables of the hole. Returns 0 or -ENOMEM (too many VMAs to split).
 */
export function do_munmap(vm: Vm, mm: MmStruct, start: number, end: number): number {
  const v = vm.vmas;
  const mt = mm.mt;
  let first = mt.find(start);
  if (first < 0 || mt.lastStart >= end) return 0;
  // Splitting both ends of one VMA adds a VMA; the kernel checks the limit before touching anything.
  if (v.vm_start[first] < start && v.vm_end[first] > end && mm.map_count >= vm.sysctl.max_map_count)
    return ENOMEM;
  if (v.vm_start[first] < start) {
    const r = split_vma(vm, mm, first, start);
    if (r < 0) return r;
    first = r;
  }
  const lastId = mt.walk(end - 1);
  if (lastId >= 0 && v.vm_end[lastId] > end) {
    const r = split_vma(vm, mm, lastId, end);
    if (r < 0) return r;
  }
  const doomed: number[] = [];
  mt.iterate(start, end, (_s, _e, id) => {
    doomed.push(id);
  });
  for (const vma of doomed) {
    const len = v.vm_end[vma] - v.vm_start[vma];
    zap_page_range(vm, mm, v.vm_start[vma], v.vm_end[vma]);
    mm.total_vm -= len / PAGE;
    if (v.vm_flags[vma] & VM_LOCKED) mm.locked_vm -= len / PAGE;
    remove_vma(vm, mm, vma);
  }
  const floor = mt.prev(start) >= 0 ? mt.lastEnd : 0;
  const ceiling = mt.next(end) >= 0 ? mt.lastStart : mm.task_size + PAGE;
  free_pgd_range(vm, mm, start, end, floor, ceiling);
  return 0;
}

/**
 * kernel: mm/gup.c populate_vma_page_range() via mm_populate()
 * Fault in every page of [start, end) in `vma`: write faults for private writable mappings so
 * they get their own pages, read faults otherwise. Stops at the first failure (as the kernel,
 * which then leaves the rest to later faults); returns the pages populated.
 */
export function populate_vma_page_range(
  vm: Vm,
  mm: MmStruct,
  vma: number,
  start: number,
  end: number,
): number {
  const write = (vm.vmas.vm_flags[vma] & VM_WRITE) !== 0;
  let n = 0;
  for (let addr = start; addr < end; addr += PAGE) {
    if (handle_mm_fault(vm, mm, vma, addr, write) !== VM_FAULT_OK) break;
    n++;
  }
  return n;
}

/**
 * kernel: mm/mmap.c exit_mmap()
 * Unmap everything, free every page table including the PGD, and forget the address space.
 */
export function exit_mmap(vm: Vm, mm: MmStruct): void {
  do_munmap(vm, mm, 0, mm.task_size + PAGE);
  vm.pt.release(mm.pgd, mm.cpu);
  mm.pgd = -1;
  vm.mms[mm.id] = undefined;
}
