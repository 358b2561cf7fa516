/**
 * The compaction sysctls of /proc/sys/vm (mm/compaction.c vm_compaction[], Linux 6.18), over
 * mm.compaction:
 *
 * - compact_memory (0200, write-only even for root): proc_dointvec, then anything but 1 stored is
 *   -EINVAL, else every zone of every node is compacted (compact_nodes()). The check is on the
 *   stored value, so after a 1 even an empty write compacts again (measured on 6.18.44).
 * - compaction_proactiveness (0..100, default 20): a nonzero write asks each node's kcompactd for
 *   a proactive round at once (proactive_compact_trigger and a wake-up).
 * - extfrag_threshold (0..1000, default 500): proc_dointvec_minmax.
 * - compact_unevictable_allowed (0..1, default 1): proc_dointvec_minmax_warn_RT_change(), which
 *   warns only on PREEMPT_RT kernels.
 */
import { compact_nodes, wake_up_kcompactd } from '../../mm/compaction.ts';
import type { MM } from '../../mm/mm.ts';
import {
  type CtlTable,
  ctl_int,
  EINVAL,
  type ProcIo,
  proc_dointvec,
  proc_dointvec_minmax,
} from './proc_dointvec.ts';
import type { VmSysctl } from './vm.ts';

/** kernel: mm/compaction.c sysctl_compaction_handler(): the entry for /proc/sys/vm/compact_memory. */
function sysctl_compaction_handler(mm: MM, table: CtlTable, write: boolean, buffer?: string): ProcIo {
  const ret = proc_dointvec(table, write, buffer);
  if (ret.err) return ret;
  if (mm.compaction.compact_memory !== 1) return { err: EINVAL, len: ret.len, out: '' };
  if (write) compact_nodes(mm);
  return ret;
}

/**
 * kernel: mm/compaction.c compaction_proactiveness_sysctl_handler()
 * After a write of a nonzero value, each node not already triggered gets
 * proactive_compact_trigger and a kcompactd wake-up.
 */
function compaction_proactiveness_sysctl_handler(
  mm: MM,
  table: CtlTable,
  write: boolean,
  buffer?: string,
): ProcIo {
  const rc = proc_dointvec_minmax(table, write, buffer);
  if (rc.err) return rc;
  if (write && mm.compaction.compaction_proactiveness) {
    for (const pgdat of mm.nodes) {
      if (pgdat.proactive_compact_trigger) continue;
      pgdat.proactive_compact_trigger = true;
      mm.trace.mm_compaction_wakeup_kcompactd?.(pgdat.node_id, -1, pgdat.nr_zones - 1);
      wake_up_kcompactd(mm, pgdat);
    }
  }
  return rc;
}

/**
 * kernel: mm/compaction.c vm_compaction[]
 * The entries with their modes, bounds and handlers, bound to one machine.
 */
export function compaction_sysctl_table(mm: MM): VmSysctl[] {
  const s = mm.compaction;
  const entry = (
    table: CtlTable,
    mode: number,
    handler: (mm: MM, table: CtlTable, write: boolean, buffer?: string) => ProcIo,
  ): VmSysctl => ({
    procname: table.procname,
    mode,
    proc_handler: (write, buffer) => handler(mm, table, write, buffer),
  });
  const minmax = (_mm: MM, table: CtlTable, write: boolean, buffer?: string): ProcIo =>
    proc_dointvec_minmax(table, write, buffer);
  return [
    entry(ctl_int('compact_memory', s, 'compact_memory'), 0o200, sysctl_compaction_handler),
    entry(
      ctl_int('compaction_proactiveness', s, 'compaction_proactiveness', 0, 100),
      0o644,
      compaction_proactiveness_sysctl_handler,
    ),
    entry(ctl_int('extfrag_threshold', s, 'extfrag_threshold', 0, 1000), 0o644, minmax),
    // proc_dointvec_minmax_warn_RT_change(): no PREEMPT_RT, so plain proc_dointvec_minmax().
    entry(ctl_int('compact_unevictable_allowed', s, 'compact_unevictable_allowed', 0, 1), 0o644, minmax),
  ];
}
