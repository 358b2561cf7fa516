/**
 * struct mm_struct: one address space. Its VMAs are indexed by a maple tree; its page tables
 * hang off `pgd`.
 */
import { MapleTree } from './maple_tree.ts';

/** RSS counters (enum mm_counter). */
export const MM_FILEPAGES = 0;
export const MM_ANONPAGES = 1;
export const MM_SWAPENTS = 2;
export const MM_SHMEMPAGES = 3;

/** x86-64 with 4-level paging: user space ends at 2^47 - 4096 (TASK_SIZE_MAX). */
export const TASK_SIZE = 2 ** 47 - 4096;
/**
 * mmap_base() without randomisation (as under `setarch -R`): the stack gap is the 8 MiB stack
 * rlimit plus the guard gap, raised to the 128 MiB minimum, below TASK_SIZE.
 */
export const DEFAULT_MMAP_BASE = TASK_SIZE - 128 * 2 ** 20;
/**
 * Where a new process's heap starts (mm->start_brk): right after the image of a small PIE loaded
 * at ELF_ET_DYN_BASE (0x555555554000) without randomisation, as `setarch -R cat /proc/self/maps`
 * shows on our 6.18 machines ([heap] at 0x555555560000). The model maps no executable there;
 * brk() cannot go below this address.
 */
export const DEFAULT_START_BRK = 0x555555560000;

export class MmStruct {
  readonly mt = new MapleTree();
  /** Table slot of the PGD. */
  pgd = -1;
  map_count = 0;
  /** Pages mapped, locked (VM_LOCKED) and pinned. */
  total_vm = 0;
  locked_vm = 0;
  pinned_vm = 0;
  /** Pages of private writable mappings (is_data_mapping), counted against RLIMIT_DATA. */
  data_vm = 0;
  /** The heap: brk() moves `brk` (exact, not page aligned) up from `start_brk`. */
  start_brk = DEFAULT_START_BRK;
  brk = DEFAULT_START_BRK;
  readonly rss = new Float64Array(4);
  mmap_base = DEFAULT_MMAP_BASE;
  task_size = TASK_SIZE;
  /** mm->def_flags: VM_LOCKED (and VM_LOCKONFAULT) after mlockall(MCL_FUTURE), for new mappings. */
  def_flags = 0;
  /** mm->hugetlb_usage: base pages mapped by hugetlb leaves (vm/hugetlb.ts). */
  hugetlb_usage = 0;

  constructor(
    readonly id: number,
    /** The node and CPU its faults allocate from (the task's). */
    public nid: number,
    public cpu: number,
  ) {}
}
