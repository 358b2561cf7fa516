/**
 * /proc/<pid>/status (fs/proc/array.c proc_pid_status(), Linux 6.18 on x86-64, mode 0444), with
 * every line the real kernel prints, in its order and format.
 *
 * The memory lines (task_mem) are the model's. The task has no other state in the model, so the
 * rest is filled as a simple single-threaded process shows it on our machines:
 * - Name: the process's name (SpawnOptions.name where the model has it, else 'proc');
 * - Umask 0022; State "S (sleeping)" (the model's processes run only inside their syscalls);
 * - PPid: the parent for a fork child, 0 for a process spawned from outside the model; NSpgid
 *   and NSsid: the pid of the spawned ancestor (a session leader); Ngid 0, TracerPid 0;
 * - Uid and Gid: the process's uid and gid four times (real, effective, saved, filesystem);
 *   FDSize 64 (a new file table), no supplementary groups;
 * - CapPrm and CapEff: the full set (CAP_LAST_CAP = 40) for root holding the default root
 *   capabilities, else the capabilities the process holds; CapBnd the full set; CapInh, CapAmb 0;
 * - SigQ: 0 of RLIMIT_SIGPENDING = max_threads / 2, max_threads = totalram / 32 (fork_init with
 *   16 KiB kernel stacks); no pending, blocked, ignored or caught signals; Threads 1;
 * - no seccomp, "vulnerable" / "always enabled" speculation lines (what our VMs print);
 * - Cpus_allowed: every CPU, Mems_allowed: every node with memory (%*pb over nr_cpu_ids and
 *   MAX_NUMNODES = 1024 bits with CONFIG_NODES_SHIFT = 10, 1 bit without CONFIG_NUMA);
 * - no context switches.
 */
import type { MM } from '../../mm/mm.ts';
import type { MmStruct } from '../../vm/mm_struct.ts';
import { CAP_IPC_LOCK, CAP_SYS_ADMIN, CAP_SYS_RAWIO } from '../../vm/uapi.ts';
import type { Vm } from '../../vm/vm.ts';
import { task_mem } from './task_mmu.ts';

/** CAP_LAST_CAP (CAP_CHECKPOINT_RESTORE) in 6.18. */
const CAP_LAST_CAP = 40;
const CAP_FULL_SET = (1n << BigInt(CAP_LAST_CAP + 1)) - 1n;
/** THREAD_SIZE / PAGE_SIZE on x86-64 without KASAN (16 KiB stacks). */
const THREAD_PAGES = 4;
/** MIN_THREADS and MAX_THREADS (FUTEX_TID_MASK) of kernel/fork.c set_max_threads(). */
const MIN_THREADS = 20;
const MAX_THREADS = 0x3fffffff;

/** What /proc/<pid>/status needs to know about a task. */
export interface TaskInfo {
  pid: number;
  ppid: number;
  /** Session (and process group) id. */
  sid: number;
  name: string;
  uid: number;
  gid: number;
  caps: ReadonlySet<number>;
  mm: MmStruct;
}

/**
 * kernel: lib/vsprintf.c bitmap_string() ("%*pb"): 32-bit chunks in hex, most significant
 * first, separated by commas; the first chunk as wide as its bits need, the others 8 digits.
 */
export function bitmap_string(bits: ReadonlySet<number>, nbits: number): string {
  const chunks: string[] = [];
  let chunksz = nbits % 32 || 32;
  for (let i = Math.ceil(nbits / 32) * 32 - 32; i >= 0; i -= 32) {
    let val = 0;
    for (let b = 0; b < chunksz; b++) if (bits.has(i + b)) val += 2 ** b;
    chunks.push(val.toString(16).padStart(Math.ceil(chunksz / 4), '0'));
    chunksz = 32;
  }
  return chunks.join(',');
}

/** kernel: lib/vsprintf.c bitmap_list_string() ("%*pbl"): ranges like 0-3,8. */
export function bitmap_list_string(bits: ReadonlySet<number>): string {
  const sorted = [...bits].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    out.push(j > i ? `${sorted[i]}-${sorted[j]}` : `${sorted[i]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** The capability mask of a task as CapPrm/CapEff show it (see the file comment). */
function cap_mask(t: TaskInfo): bigint {
  const c = t.caps;
  if (t.uid === 0 && c.has(CAP_IPC_LOCK) && c.has(CAP_SYS_ADMIN) && c.has(CAP_SYS_RAWIO)) return CAP_FULL_SET;
  let m = 0n;
  for (const cap of c) if (cap >= 0 && cap <= CAP_LAST_CAP) m |= 1n << BigInt(cap);
  return m;
}

/** kernel: kernel/fork.c set_max_threads(): how many tasks memory allows. */
function max_threads(mm: MM): number {
  const threads = Math.floor(mm.totalram_pages / (8 * THREAD_PAGES));
  return Math.min(Math.max(threads, MIN_THREADS), MAX_THREADS);
}

/** kernel: fs/proc/array.c proc_pid_status() */
export function proc_pid_status(vm: Vm, t: TaskInfo): string {
  const mm = vm.mm;
  const cap = (v: bigint): string => v.toString(16).padStart(16, '0');
  const sig = '0000000000000000';
  const ids = (v: number): string => `${v}\t${v}\t${v}\t${v}`;
  const cpus = new Set<number>();
  for (let c = 0; c < mm.nr_cpus; c++) cpus.add(c);
  const mems = new Set<number>();
  for (const node of mm.nodes) {
    if (node.node_zones.some((z) => z.populated_zone())) mems.add(node.node_id);
  }
  const max_numnodes = mm.config.NUMA ? 1024 : 1;
  const mask = cap_mask(t);
  return (
    // task_state() ("Name" first, by proc_task_name(); seq_escape_str escapes nothing here)
    `Name:\t${t.name.slice(0, 15)}\n` +
    'Umask:\t0022\n' +
    'State:\tS (sleeping)\n' +
    `Tgid:\t${t.pid}\n` +
    'Ngid:\t0\n' +
    `Pid:\t${t.pid}\n` +
    `PPid:\t${t.ppid}\n` +
    'TracerPid:\t0\n' +
    `Uid:\t${ids(t.uid)}\n` +
    `Gid:\t${ids(t.gid)}\n` +
    'FDSize:\t64\n' +
    // No supplementary groups; the kernel's trailing space stays.
    'Groups:\t \n' +
    `NStgid:\t${t.pid}\n` +
    `NSpid:\t${t.pid}\n` +
    `NSpgid:\t${t.sid}\n` +
    `NSsid:\t${t.sid}\n` +
    'Kthread:\t0\n' +
    task_mem(vm, t.mm) +
    // task_core_dumping(), task_thp_status(), task_untag_mask()
    'CoreDumping:\t0\n' +
    `THP_enabled:\t${mm.config.TRANSPARENT_HUGEPAGE ? 1 : 0}\n` +
    'untag_mask:\t0xffffffffffffffff\n' +
    // task_sig()
    'Threads:\t1\n' +
    `SigQ:\t0/${Math.floor(max_threads(mm) / 2)}\n` +
    `SigPnd:\t${sig}\nShdPnd:\t${sig}\nSigBlk:\t${sig}\nSigIgn:\t${sig}\nSigCgt:\t${sig}\n` +
    // task_cap()
    `CapInh:\t${cap(0n)}\nCapPrm:\t${cap(mask)}\nCapEff:\t${cap(mask)}\n` +
    `CapBnd:\t${cap(CAP_FULL_SET)}\nCapAmb:\t${cap(0n)}\n` +
    // task_seccomp()
    'NoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\n' +
    'Speculation_Store_Bypass:\tvulnerable\nSpeculationIndirectBranch:\talways enabled\n' +
    // task_cpus_allowed(), cpuset_task_status_allowed()
    `Cpus_allowed:\t${bitmap_string(cpus, mm.nr_cpus)}\n` +
    `Cpus_allowed_list:\t${bitmap_list_string(cpus)}\n` +
    `Mems_allowed:\t${bitmap_string(mems, max_numnodes)}\n` +
    `Mems_allowed_list:\t${bitmap_list_string(mems)}\n` +
    // task_context_switch_counts()
    'voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n'
  );
}
