/**
 * The /proc/<pid>/ directories (fs/proc/base.c tgid_base_stuff), resolved on every lookup, so a
 * process's files appear when it is spawned or forked and are gone (ENOENT) once it exits. The
 * model has no zombies: an exited process is reaped at once.
 *
 * | file    | mode | kernel                                      |
 * |---------|------|---------------------------------------------|
 * | status  | 0444 | proc_pid_status()                           |
 * | statm   | 0444 | proc_pid_statm()                            |
 * | maps    | 0444 | proc_pid_maps_operations, ptrace read check |
 * | pagemap | 0400 | proc_pagemap_operations, ptrace read check  |
 * | contig  | 0400 | mapcontig's MAP_CONTIG segments (contiginfo.ts), as pagemap |
 *
 * The files belong to the task's user (task_dump_owner()). maps and pagemap are opened through
 * proc_mem_open(PTRACE_MODE_READ): a reader with other user or group ids than the task's needs
 * CAP_SYS_PTRACE (root passes), else EACCES. pagemap shows PFNs only to readers holding
 * CAP_SYS_ADMIN (pass the reading Process as the Cred to read with its capabilities).
 */
import { ErrnoError } from '../../lib/errno.ts';
import type { Process } from '../../vm/process.ts';
import { CAP_SYS_ADMIN, CAP_SYS_PTRACE } from '../../vm/uapi.ts';
import { update_hiwater_rss, update_hiwater_vm, type Vm } from '../../vm/vm.ts';
import { type Cred, capable, type DynamicDir, type FileOps } from '../vfs.ts';
import { proc_pid_status } from './array.ts';
import { proc_pid_contig } from './contiginfo.ts';
import { pagemap_read, proc_pid_maps, proc_pid_statm } from './task_mmu.ts';

/** CAP_SYS_ADMIN: see PFNs in pagemap. */

/** The machine's process table, as the /proc/<pid>/ files see it. */
export interface TaskTable {
  /** The live process with this pid. */
  process(pid: number): Process | undefined;
  /** Every live pid. */
  pids(): Iterable<number>;
  /** The parent's pid (fork), or 0 for a process spawned from outside the model. */
  ppid(pid: number): number;
}

const PID_FILES = ['contig', 'maps', 'pagemap', 'statm', 'status'] as const;

/**
 * kernel: kernel/ptrace.c __ptrace_may_access() for PTRACE_MODE_READ_FSCREDS
 * The same user and group as the task, or CAP_SYS_PTRACE (root holds it).
 */
function ptrace_may_access(cred: Cred, p: Process): boolean {
  if (cred.uid === 0 || capable(cred, CAP_SYS_PTRACE)) return true;
  return cred.uid === p.uid && cred.gid === p.gid;
}

/** The session id: the pid of the spawned ancestor. */
function task_session(tasks: TaskTable, pid: number): number {
  let sid = pid;
  for (let up = tasks.ppid(pid); up !== 0; up = tasks.ppid(up)) sid = up;
  return sid;
}

/** The name a process shows (SpawnOptions.name where the model has it). */
function comm(p: Process): string {
  return (p as { name?: string }).name ?? 'proc';
}

/** The FileOps of /proc/<pid>/<name>, or undefined. */
function pid_file(vm: Vm, tasks: TaskTable, p: Process, name: string, path: string): FileOps | undefined {
  const owner = { uid: p.uid, gid: p.gid };
  const mem_open = (cred: Cred): void => {
    if (!ptrace_may_access(cred, p)) throw new ErrnoError('EACCES', 'open', path);
  };
  switch (name) {
    case 'status':
      return {
        mode: 0o444,
        ...owner,
        read: () => {
          // Peaks the vm code has not recorded yet (it does not call update_hiwater_* on unmap).
          update_hiwater_rss(vm, p.mm);
          update_hiwater_vm(vm, p.mm);
          return proc_pid_status(vm, {
            pid: p.pid,
            ppid: tasks.ppid(p.pid),
            sid: task_session(tasks, p.pid),
            name: comm(p),
            uid: p.uid,
            gid: p.gid,
            caps: p.caps,
            mm: p.mm,
          });
        },
      };
    case 'statm':
      return { mode: 0o444, ...owner, read: () => proc_pid_statm(vm, p.mm) };
    case 'maps':
      return { mode: 0o444, ...owner, open: mem_open, read: () => proc_pid_maps(vm, p.mm) };
    case 'contig':
      return {
        mode: 0o400,
        ...owner,
        open: mem_open,
        read: (cred) => proc_pid_contig(vm, p.mm, capable(cred, CAP_SYS_ADMIN)),
      };
    case 'pagemap':
      return {
        mode: 0o400,
        ...owner,
        open: mem_open,
        size: () => (p.mm.task_size / 4096) * 8,
        readBytes: (offset, length, cred) =>
          pagemap_read(vm, p.mm, path, offset, length, { show_pfn: capable(cred, CAP_SYS_ADMIN) }),
      };
    default:
      return undefined;
  }
}

/** The /proc/<pid>/ directories of the machine's live processes, to mount at /proc/. */
export function proc_pid_dir(vm: Vm, tasks: TaskTable): DynamicDir {
  return {
    lookup(path) {
      const m = /^\/proc\/([1-9]\d*)\/([a-z]+)$/.exec(path);
      if (!m) return undefined;
      const p = tasks.process(Number(m[1]));
      if (!p || p.exited) return undefined;
      return pid_file(vm, tasks, p, m[2], path);
    },
    list() {
      const out: string[] = [];
      for (const pid of tasks.pids()) for (const f of PID_FILES) out.push(`/proc/${pid}/${f}`);
      return out;
    },
  };
}
