/**
 * The OOM killer (mm/oom_kill.c): when reclaim cannot free enough, pick the task whose death frees
 * the most memory (oom_badness: resident pages, swap entries and page tables, biased by
 * oom_score_adj) and kill it; its memory is reaped and the allocation retries.
 */
import { __GFP_FS, gfp_flags_string } from '../mm/gfp.ts';
import { vm_event_index } from '../mm/vmstat_items.ts';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS, type MmStruct } from './mm_struct.ts';
import type { Vm } from './vm.ts';

export const OOM_SCORE_ADJ_MIN = -1000;
export const OOM_SCORE_ADJ_MAX = 1000;
const OOM_KILL = vm_event_index('oom_kill');

/** What the OOM killer needs to know of the task owning an address space. */
export interface OomTask {
  pid: number;
  comm: string;
  uid: number;
  oom_score_adj: number;
  /** The task holds CAP_SYS_ADMIN (the overcommit checks charged on its behalf look at it). */
  cap_sys_admin: boolean;
  /** Deliver SIGKILL: the task's memory is reaped (now, or when its current fault unwinds). */
  kill(): void;
}

/**
 * kernel: mm/oom_kill.c oom_badness()
 * RSS + swap entries + page-table pages, plus oom_score_adj thousandths of all memory; -Infinity
 * for an unkillable task (oom_score_adj -1000).
 */
export function oom_badness(vm: Vm, mm: MmStruct, task: OomTask, totalpages: number): number {
  if (task.oom_score_adj === OOM_SCORE_ADJ_MIN) return Number.NEGATIVE_INFINITY;
  const rss = mm.rss[MM_FILEPAGES] + mm.rss[MM_ANONPAGES] + mm.rss[MM_SHMEMPAGES];
  const points = rss + mm.rss[MM_SWAPENTS] + vm.pt.owned(mm.id);
  // adj *= totalpages / 1000, in the kernel's integer order.
  return points + task.oom_score_adj * Math.floor(totalpages / 1000);
}

/**
 * kernel: mm/oom_kill.c out_of_memory()
 * Returns whether the allocation should retry: true after killing another task; false when
 * the victim is the allocating task itself (its fault fails and it dies) or nothing can be
 * killed. Allocations without __GFP_FS do not kill (the OOM killer does not compensate for
 * IO-less reclaim) but report progress, as the kernel does.
 */
export function out_of_memory(vm: Vm, gfp: number, order: number): boolean {
  if (!(gfp & __GFP_FS)) return true;
  const totalpages = vm.mm.totalram_pages;
  let victim: MmStruct | undefined;
  let victimTask: OomTask | undefined;
  let best = Number.NEGATIVE_INFINITY;
  for (const mm of vm.mms) {
    const task = mm && vm.tasks[mm.id];
    if (!mm || !task) continue;
    const points = oom_badness(vm, mm, task, totalpages);
    if (points === Number.NEGATIVE_INFINITY || points < best) continue;
    best = points;
    victim = mm;
    victimTask = task;
  }
  const current = vm.current >= 0 ? vm.tasks[vm.current] : undefined;
  vm.mm.klog.push(
    `${current?.comm ?? 'kernel'} invoked oom-killer: gfp_mask=0x${gfp.toString(16)}(${gfp_flags_string(gfp)}), order=${order}, oom_score_adj=${current?.oom_score_adj ?? 0}`,
  );
  if (!victim || !victimTask) {
    vm.mm.klog.push('Out of memory and no killable processes...');
    return false;
  }
  const kB = (pages: number): number => pages * 4;
  vm.mm.klog.push(
    `Out of memory: Killed process ${victimTask.pid} (${victimTask.comm}) total-vm:${kB(victim.total_vm)}kB, ` +
      `anon-rss:${kB(victim.rss[MM_ANONPAGES])}kB, file-rss:${kB(victim.rss[MM_FILEPAGES])}kB, ` +
      `shmem-rss:${kB(victim.rss[MM_SHMEMPAGES])}kB, UID:${victimTask.uid} pgtables:${kB(vm.pt.owned(victim.id))}kB ` +
      `oom_score_adj:${victimTask.oom_score_adj}`,
  );
  vm.mm.vm_events[OOM_KILL]++;
  const self = victim.id === vm.current;
  victimTask.kill();
  return !self;
}
