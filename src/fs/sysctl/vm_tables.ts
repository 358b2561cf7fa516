/**
 * The /proc/sys/vm entries of the address-space side (Linux 6.18), with the kernel's handlers:
 *
 * | entry                | kernel table                        | handler                          |
 * |----------------------|-------------------------------------|----------------------------------|
 * | max_map_count        | mm/mmap.c mmap_table                | proc_dointvec_minmax, min 0      |
 * | overcommit_memory    | mm/util.c util_table                | overcommit_policy_handler, 0..2  |
 * | overcommit_ratio     | mm/util.c util_table                | overcommit_ratio_handler         |
 * | overcommit_kbytes    | mm/util.c util_table                | overcommit_kbytes_handler        |
 * | user_reserve_kbytes  | mm/util.c util_table                | proc_doulongvec_minmax           |
 * | admin_reserve_kbytes | mm/util.c util_table                | proc_doulongvec_minmax           |
 * | swappiness           | mm/vmscan.c vmscan_sysctl_table     | proc_dointvec_minmax, 0..200     |
 * | min_unmapped_ratio   | mm/page_alloc.c (CONFIG_NUMA)       | ..._sysctl_handler, 0..100       |
 * | mmap_min_addr        | security/min_addr.c                 | mmap_min_addr_handler            |
 *
 * Values live in `Vm.sysctl` (src/vm/vm.ts) where the syscalls read them. Two behaviours the
 * live kernel confirms: a successful write to overcommit_ratio (even an empty one) sets
 * overcommit_kbytes to 0 and vice versa; a write to mmap_min_addr without CAP_SYS_RAWIO is
 * EPERM before anything is parsed.
 *
 * The overcommit sysctls take effect at the next charge (__vm_enough_memory(), src/vm/util.ts).
 *
 * Not modelled: vm.stat_interval (the vmstat worker's period is fixed at boot to 1 s).
 */
import { ErrnoError } from '../../lib/errno.ts';
import { global_zone_page_state } from '../../mm/vmstat.ts';
import { NR_FREE_PAGES } from '../../mm/vmstat_items.ts';
import { CAP_SYS_RAWIO } from '../../vm/uapi.ts';
import type { Vm } from '../../vm/vm.ts';
import { type Cred, capable, type Vfs } from '../vfs.ts';
import {
  type CtlTable,
  type CtlULongTable,
  ctl_int,
  ctl_ulong,
  errno_code,
  type ProcIo,
  proc_dointvec,
  proc_dointvec_minmax,
  proc_doulongvec_minmax,
} from './proc_dointvec.ts';

/** CAP_SYS_RAWIO: needed to write vm.mmap_min_addr. */
/** CONFIG_LSM_MMAP_MIN_ADDR on our machines (and x86-64 distributions). */
export const CONFIG_LSM_MMAP_MIN_ADDR = 65536;
const EPERM = -1;
const SZ_8K = 8192;
const SZ_128K = 131072;

/** One /proc/sys/vm entry: its name and handler (`write` false reads; `out` is the text). */
export interface VmTableEntry {
  procname: string;
  proc_handler(write: boolean, buffer: string, cred: Cred): ProcIo;
}

// kernel: security/min_addr.c update_mmap_min_addr() (CONFIG_LSM_MMAP_MIN_ADDR set)
function update_mmap_min_addr(vm: Vm): void {
  const s = vm.sysctl;
  s.mmap_min_addr = Math.max(s.dac_mmap_min_addr, CONFIG_LSM_MMAP_MIN_ADDR);
}

/**
 * kernel: mm/page_alloc.c setup_min_unmapped_ratio()
 * Each node's min_unmapped_pages: the ratio's percent of its zones' managed pages.
 */
export function setup_min_unmapped_ratio(vm: Vm): void {
  const ratio = vm.sysctl.min_unmapped_ratio;
  for (const node of vm.mm.nodes) {
    let pages = 0;
    for (const zone of node.node_zones) pages += Math.floor((zone.managed_pages * ratio) / 100);
    vm.min_unmapped_pages[node.node_id] = pages;
  }
}

/**
 * kernel: mm/util.c init_user_reserve() and init_admin_reserve() (subsys_initcalls)
 * 1/32 of the free memory, capped at 128 MiB and 8 MiB.
 */
export function init_reserves(vm: Vm): void {
  const free_kbytes = global_zone_page_state(vm.mm, NR_FREE_PAGES) * 4;
  vm.sysctl.user_reserve_kbytes = Math.min(Math.floor(free_kbytes / 32), SZ_128K);
  vm.sysctl.admin_reserve_kbytes = Math.min(Math.floor(free_kbytes / 32), SZ_8K);
}

/** The entries, bound to one machine's Vm, in the order above. */
export function vm_sysctl_tables(vm: Vm): VmTableEntry[] {
  const s = vm.sysctl;
  const int = (t: CtlTable, h: (t: CtlTable, write: boolean, buffer: string) => ProcIo): VmTableEntry => ({
    procname: t.procname,
    proc_handler: (write, buffer) => h(t, write, buffer),
  });
  const ulong = (
    t: CtlULongTable,
    h: (t: CtlULongTable, write: boolean, buffer: string, cred: Cred) => ProcIo,
  ): VmTableEntry => ({
    procname: t.procname,
    proc_handler: (write, buffer, cred) => h(t, write, buffer, cred),
  });
  const entries: VmTableEntry[] = [
    int(ctl_int('max_map_count', s, 'max_map_count', 0), proc_dointvec_minmax),
    // kernel: mm/util.c overcommit_policy_handler(): parse into a temporary, then switch.
    int(ctl_int('overcommit_memory', s, 'overcommit_memory', 0, 2), (t, write, buffer) => {
      if (!write) return proc_dointvec_minmax(t, false);
      const tmp = { new_policy: -1 };
      const rc = proc_dointvec_minmax(ctl_int('overcommit_memory', tmp, 'new_policy', 0, 2), true, buffer);
      if (rc.err || tmp.new_policy === -1) return rc;
      // mm_compute_batch() and sync_overcommit_as(): the model's vm_committed_as is exact, not percpu.
      s.overcommit_memory = tmp.new_policy;
      return rc;
    }),
    // kernel: mm/util.c overcommit_ratio_handler()
    int(ctl_int('overcommit_ratio', s, 'overcommit_ratio'), (t, write, buffer) => {
      const rc = proc_dointvec(t, write, buffer);
      if (rc.err === 0 && write) s.overcommit_kbytes = 0;
      return rc;
    }),
    // kernel: mm/util.c overcommit_kbytes_handler()
    ulong(ctl_ulong('overcommit_kbytes', s, 'overcommit_kbytes'), (t, write, buffer) => {
      const rc = proc_doulongvec_minmax(t, write, buffer);
      if (rc.err === 0 && write) s.overcommit_ratio = 0;
      return rc;
    }),
    ulong(ctl_ulong('user_reserve_kbytes', s, 'user_reserve_kbytes'), (t, w, b) =>
      proc_doulongvec_minmax(t, w, b),
    ),
    ulong(ctl_ulong('admin_reserve_kbytes', s, 'admin_reserve_kbytes'), (t, w, b) =>
      proc_doulongvec_minmax(t, w, b),
    ),
    int(ctl_int('swappiness', vm.mm.reclaim, 'swappiness', 0, 200), proc_dointvec_minmax),
  ];
  if (vm.mm.config.NUMA) {
    // kernel: mm/page_alloc.c sysctl_min_unmapped_ratio_sysctl_handler(): recomputes on reads too.
    entries.push(
      int(ctl_int('min_unmapped_ratio', s, 'min_unmapped_ratio', 0, 100), (t, write, buffer) => {
        const rc = proc_dointvec_minmax(t, write, buffer);
        if (rc.err) return rc;
        setup_min_unmapped_ratio(vm);
        return rc;
      }),
    );
  }
  // kernel: security/min_addr.c mmap_min_addr_handler()
  entries.push(
    ulong(ctl_ulong('mmap_min_addr', s, 'dac_mmap_min_addr'), (t, write, buffer, cred) => {
      if (write && !capable(cred, CAP_SYS_RAWIO)) return { err: EPERM, len: 0, out: '' };
      const rc = proc_doulongvec_minmax(t, write, buffer);
      update_mmap_min_addr(vm);
      return rc;
    }),
  );
  return entries;
}

/**
 * The boot-time values of the sysctls kept in vm.sysctl (init_user_reserve(),
 * init_admin_reserve(), setup_min_unmapped_ratio(), init_mmap_min_addr()): once at boot, before
 * register_vm_tables(), which only registers files (a cloned machine registers them again).
 */
export function vm_tables_init(vm: Vm): void {
  init_reserves(vm);
  setup_min_unmapped_ratio(vm);
  update_mmap_min_addr(vm);
}

/** Register /proc/sys/vm/<name> (mode 0644) for every entry of vm_sysctl_tables(). */
export function register_vm_tables(vfs: Vfs, vm: Vm): void {
  for (const e of vm_sysctl_tables(vm)) {
    const path = `/proc/sys/vm/${e.procname}`;
    vfs.register(path, {
      mode: 0o644,
      read: (cred) => e.proc_handler(false, '', cred).out,
      write: (text, cred) => {
        const rc = e.proc_handler(true, text, cred);
        if (rc.err) throw new ErrnoError(errno_code(rc.err), 'write', path);
      },
    });
  }
}
