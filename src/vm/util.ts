/**
 * mm/util.c: the overcommit policy. Every charge of address space that may later need memory
 * (private writable mappings, the heap, a fork's copies) goes through vm_acct_memory() into
 * vm_committed_as (Committed_AS in /proc/meminfo), and __vm_enough_memory() decides under
 * vm.overcommit_memory whether it may be made:
 *
 * - OVERCOMMIT_GUESS (0, the default): refuse only a single request larger than all RAM and swap
 *   (pages > totalram_pages() + total_swap_pages), however much is committed already;
 * - OVERCOMMIT_ALWAYS (1): never refuse;
 * - OVERCOMMIT_NEVER (2): refuse when Committed_AS, this request included, would reach
 *   vm_commit_limit() less admin_reserve_kbytes (unless the task has CAP_SYS_ADMIN) and less the
 *   user reserve, min(total_vm / 32, user_reserve_kbytes) of the requesting address space.
 *
 * The charge is made first and undone on refusal, as in the kernel; a refusal logs
 * `__vm_enough_memory: pid: …, comm: …, bytes: … not enough memory for the allocation` (checked
 * on 6.18; the kernel rate-limits it, the model logs every one).
 *
 * Departure: the kernel's vm_committed_as is a per-cpu counter whose checks read an approximate
 * sum (off by up to vm_committed_as_batch per CPU; mm_compute_batch() makes the batch small under
 * OVERCOMMIT_NEVER); the model keeps one exact count, which is what /proc/meminfo prints
 * (percpu_counter_sum_positive()) on the real machine too.
 */
import { errnos } from '../lib/errno.ts';
import { hugetlb_total_pages } from '../mm/hugetlb.ts';
import type { MM } from '../mm/mm.ts';
import { PAGE_SHIFT } from '../mm/mmzone.ts';
import { total_swap_pages } from '../mm/swapfile.ts';
import type { MmStruct } from './mm_struct.ts';
import { CAP_SYS_ADMIN } from './uapi.ts';
import type { Vm } from './vm.ts';

/** vm.overcommit_memory values (include/uapi/linux/mman.h). */
export const OVERCOMMIT_GUESS = 0;
export const OVERCOMMIT_ALWAYS = 1;
export const OVERCOMMIT_NEVER = 2;

/** vm.overcommit_ratio default (mm/util.c sysctl_overcommit_ratio). */
export const SYSCTL_OVERCOMMIT_RATIO = 50;

/** The overcommit sysctls vm_commit_limit() depends on (Vm.sysctl holds the machine's). */
export interface OvercommitSysctls {
  overcommit_ratio: number;
  overcommit_kbytes: number;
}

/** The defaults, for callers without a Vm (a bare MM's /proc/meminfo). */
export const DEFAULT_OVERCOMMIT: OvercommitSysctls = {
  overcommit_ratio: SYSCTL_OVERCOMMIT_RATIO,
  overcommit_kbytes: 0,
};

const ENOMEM = -errnos.ENOMEM;

/** kernel: mm/hugetlb.c hugetlb_total_pages(): pages in hugetlb pools (NR_HUGETLB counts those in use). */
export { hugetlb_total_pages };

/**
 * kernel: mm/util.c vm_commit_limit()
 * The commit limit OVERCOMMIT_NEVER enforces and /proc/meminfo prints as CommitLimit:
 * overcommit_kbytes in pages if set, else (totalram - hugetlb) * overcommit_ratio / 100; plus
 * swap. 6171021 pages on the real machine with the default ratio 50 give 3085510 pages, printed
 * as 12342040 kB.
 */
export function vm_commit_limit(mm: MM, sysctl: OvercommitSysctls = DEFAULT_OVERCOMMIT): number {
  const allowed = sysctl.overcommit_kbytes
    ? Math.floor(sysctl.overcommit_kbytes / 2 ** (PAGE_SHIFT - 10))
    : Math.floor(((mm.totalram_pages - hugetlb_total_pages(mm)) * sysctl.overcommit_ratio) / 100);
  return allowed + total_swap_pages(mm);
}

/** kernel: include/linux/mman.h vm_acct_memory(): charge `pages` to vm_committed_as. */
export function vm_acct_memory(vm: Vm, pages: number): void {
  vm.vm_committed_as += pages;
}

/** kernel: include/linux/mman.h vm_unacct_memory(): give `pages` back. */
export function vm_unacct_memory(vm: Vm, pages: number): void {
  vm.vm_committed_as -= pages;
}

/**
 * kernel: mm/util.c vm_memory_committed()
 * Committed pages as /proc/meminfo shows them (percpu_counter_sum_positive(): never below 0).
 */
export function vm_memory_committed(vm: Vm): number {
  return Math.max(0, vm.vm_committed_as);
}

/**
 * kernel: mm/util.c __vm_enough_memory()
 * Charge `pages` and check the charge against the overcommit policy (see the file comment) for
 * address space `mm` (null: no user reserve) of a task with or without CAP_SYS_ADMIN. Returns 0
 * with the charge kept, or -ENOMEM with it undone and the failure logged.
 */
export function __vm_enough_memory(
  vm: Vm,
  mm: MmStruct | null,
  pages: number,
  cap_sys_admin: boolean,
): number {
  const sysctl = vm.sysctl;
  vm_acct_memory(vm, pages);
  // Sometimes we want to use more memory than we have.
  if (sysctl.overcommit_memory === OVERCOMMIT_ALWAYS) return 0;
  if (sysctl.overcommit_memory === OVERCOMMIT_GUESS) {
    if (pages <= vm.mm.totalram_pages + total_swap_pages(vm.mm)) return 0;
  } else {
    let allowed = vm_commit_limit(vm.mm, sysctl);
    // Reserve some for root.
    if (!cap_sys_admin) allowed -= Math.floor(sysctl.admin_reserve_kbytes / 2 ** (PAGE_SHIFT - 10));
    // Don't let a single process grow so big a user can't recover.
    if (mm) {
      const reserve = Math.floor(sysctl.user_reserve_kbytes / 2 ** (PAGE_SHIFT - 10));
      allowed -= Math.min(Math.floor(mm.total_vm / 32), reserve);
    }
    if (vm_memory_committed(vm) < allowed) return 0;
  }
  // The caller is the task owning `mm` (current->mm), or the forking parent.
  const task = mm ? vm.tasks[mm.id] : undefined;
  vm.mm.klog.push(
    `__vm_enough_memory: pid: ${task?.pid ?? 0}, comm: ${task?.comm ?? 'kernel'}, bytes: ${pages * 2 ** PAGE_SHIFT} not enough memory for the allocation`,
  );
  vm_unacct_memory(vm, pages);
  return ENOMEM;
}

/**
 * kernel: security/security.c security_vm_enough_memory_mm() with the capability LSM's
 * security/commoncap.c cap_vm_enough_memory() as the only hook
 * __vm_enough_memory() for `pages` more of `mm`, with cap_sys_admin = whether `task` (current)
 * has CAP_SYS_ADMIN.
 */
export function security_vm_enough_memory_mm(
  vm: Vm,
  mm: MmStruct,
  task: { capable(cap: number): boolean },
  pages: number,
): number {
  return __vm_enough_memory(vm, mm, pages, task.capable(CAP_SYS_ADMIN));
}
