/**
 * Registers every /proc and /sys file the machine has.
 */
import { ErrnoError } from '../lib/errno.ts';
import { compact_node } from '../mm/compaction.ts';
import type { MM } from '../mm/mm.ts';
import { drop_caches } from '../mm/shrinker.ts';
import { vm_memory_committed } from '../vm/util.ts';
import type { Vm } from '../vm/vm.ts';
import { extfrag_index, unusable_index } from './debugfs/extfrag.ts';
import { register_hugetlb_files } from './hugetlb.ts';
import { proc_pid_dir, type TaskTable } from './proc/base.ts';
import { buddyinfo } from './proc/buddyinfo.ts';
import { meminfo } from './proc/meminfo.ts';
import { get_max_dump_pfn, kpage_read } from './proc/page.ts';
import { pagetypeinfo } from './proc/pagetypeinfo.ts';
import { slabinfo } from './proc/slabinfo.ts';
import { proc_swaps } from './proc/swaps.ts';
import { vmallocinfo } from './proc/vmallocinfo.ts';
import { vmstat } from './proc/vmstat.ts';
import { zoneinfo } from './proc/zoneinfo.ts';
import { ctl_int, errno_code, proc_dointvec_minmax } from './sysctl/proc_dointvec.ts';
import { register_vm_sysctls } from './sysctl/vm.ts';
import { register_vm_tables } from './sysctl/vm_tables.ts';
import { register_cma_sysfs } from './sysfs/cma_sysfs.ts';
import { register_thp_sysfs } from './sysfs/transparent_hugepage.ts';
import type { Vfs } from './vfs.ts';

/** Register the machine's /proc files and /proc/sys/vm sysctls, with the modes Linux gives them. */
export function registerFiles(vfs: Vfs, mm: MM): void {
  vfs.register('/proc/buddyinfo', { mode: 0o444, read: () => buddyinfo(mm) });
  // Root only: walking the free lists holds the zone lock (mm/vmstat.c init_mm_internals).
  vfs.register('/proc/pagetypeinfo', { mode: 0o400, read: () => pagetypeinfo(mm) });
  vfs.register('/proc/zoneinfo', { mode: 0o444, read: () => zoneinfo(mm) });
  vfs.register('/proc/vmstat', { mode: 0o444, read: () => vmstat(mm) });
  vfs.register('/proc/meminfo', { mode: 0o444, read: () => meminfo(mm) });
  if (mm.config.TRANSPARENT_HUGEPAGE) register_thp_sysfs(vfs, mm);
  vfs.register('/proc/swaps', { mode: 0o444, read: () => proc_swaps(mm) });
  // Root only: SLUB's slabinfo has no write method (mm/slab_common.c SLABINFO_RIGHTS).
  vfs.register('/proc/slabinfo', { mode: 0o400, read: () => slabinfo(mm) });
  // Root only (mm/vmalloc.c proc_vmalloc_init): it shows kernel addresses.
  vfs.register('/proc/vmallocinfo', { mode: 0o400, read: () => vmallocinfo(mm) });
  register_vm_sysctls(vfs, mm);
  register_drop_caches(vfs, mm);
  register_extfrag(vfs, mm);
  register_hugetlb_files(vfs, mm);
  if (mm.config.CMA) register_cma_sysfs(vfs, mm);
  if (mm.config.NUMA) register_node_compact(vfs, mm);
}

/**
 * kernel: mm/compaction.c compact_store(): /sys/devices/system/node/nodeN/compact, write-only
 * (0200; reading fails with EACCES even for root, as sysfs has no show method for it). Any write
 * compacts every zone of the node, as compact_memory does for all nodes.
 */
function register_node_compact(vfs: Vfs, mm: MM): void {
  for (const pgdat of mm.nodes) {
    const path = `/sys/devices/system/node/node${pgdat.node_id}/compact`;
    vfs.register(path, {
      mode: 0o200,
      read: () => {
        throw new ErrnoError('EACCES', 'open', path);
      },
      write: () => {
        compact_node(mm, pgdat, false);
      },
    });
  }
}

/**
 * kernel: mm/vmstat.c extfrag_debug_init(): debugfs extfrag/extfrag_index and unusable_index
 * (0444), under /sys/kernel/debug, which only root may enter (debugfs's root is 0700).
 */
function register_extfrag(vfs: Vfs, mm: MM): void {
  for (const [name, show] of [
    ['extfrag_index', extfrag_index],
    ['unusable_index', unusable_index],
  ] as const) {
    const path = `/sys/kernel/debug/extfrag/${name}`;
    vfs.register(path, {
      mode: 0o444,
      open: (cred) => {
        if (cred.uid !== 0) throw new ErrnoError('EACCES', 'open', path);
      },
      read: () => show(mm),
    });
  }
}

/**
 * Register the files of the address-space side, once the machine has its Vm and process table:
 * /proc/kpageflags and /proc/kpagecount (mode 0400, fs/proc/page.c), the /proc/<pid>/
 * directories of live processes, the vm sysctls kept in Vm.sysctl (src/fs/sysctl/vm_tables.ts),
 * and /proc/meminfo again, now with CommitLimit following vm.overcommit_ratio/_kbytes and
 * Committed_AS counting vm_committed_as.
 */
export function registerVmFiles(vfs: Vfs, vm: Vm, tasks: TaskTable): void {
  const mm = vm.mm;
  const kpage = (path: string, op: 'flags' | 'count'): void => {
    vfs.register(path, {
      mode: 0o400,
      size: () => get_max_dump_pfn(mm) * 8,
      readBytes: (offset, length) => kpage_read(mm, path, offset, length, op),
    });
  };
  kpage('/proc/kpageflags', 'flags');
  kpage('/proc/kpagecount', 'count');
  vfs.register('/proc/meminfo', {
    mode: 0o444,
    read: () => meminfo(mm, vm.sysctl, vm_memory_committed(vm)),
  });
  register_vm_tables(vfs, vm);
  vfs.mount('/proc/', proc_pid_dir(vm, tasks));
}

/**
 * kernel: fs/drop_caches.c drop_caches_table[]: vm.drop_caches, mode 0200 (write-only, even for
 * root), an int in 1..4 (proc_dointvec_minmax) handed to drop_caches() (src/mm/shrinker.ts).
 */
function register_drop_caches(vfs: Vfs, mm: MM): void {
  const path = '/proc/sys/vm/drop_caches';
  const sysctl = { drop_caches: 0 };
  const table = ctl_int('drop_caches', sysctl, 'drop_caches', 1, 4);
  vfs.register(path, {
    mode: 0o200,
    read: () => {
      throw new ErrnoError('EACCES', 'open', path);
    },
    write: (text) => {
      const rc = proc_dointvec_minmax(table, true, text);
      if (rc.err) throw new ErrnoError(errno_code(rc.err), 'write', path);
      drop_caches(mm, sysctl.drop_caches);
    },
  });
}
