/**
 * The page allocator's /proc/sys/vm entries (mm/page_alloc.c page_alloc_sysctl_table, Linux
 * 6.18): min_free_kbytes, watermark_boost_factor, watermark_scale_factor, defrag_mode,
 * percpu_pagelist_high_fraction and lowmem_reserve_ratio, with the kernel's handlers, so a write
 * parses as Linux parses it (proc_dointvec.ts) and then recomputes what the kernel recomputes.
 * Mode 0644: anyone may read, only root may write.
 */

import { ErrnoError } from '../../lib/errno.ts';
import type { MM } from '../../mm/mm.ts';
import { MAX_NR_ZONES } from '../../mm/mmzone.ts';
import {
  MIN_PERCPU_PAGELIST_HIGH_FRACTION,
  zone_set_pageset_high_and_batch,
} from '../../mm/page_alloc/pcp.ts';
import { setup_per_zone_lowmem_reserve, setup_per_zone_wmarks } from '../../mm/page_alloc/watermark.ts';
import type { Vfs } from '../vfs.ts';
import { compaction_sysctl_table } from './compaction.ts';
import {
  type CtlTable,
  ctl_int,
  ctl_int_vec,
  EINVAL,
  errno_code,
  type ProcIo,
  proc_dointvec_minmax,
} from './proc_dointvec.ts';
import { writeback_sysctl_table } from './writeback.ts';

/** One entry: its table and its proc_handler (write = false reads, with `out` the text). */
export interface VmSysctl {
  procname: string;
  /** Permission bits (default 0644); without read bits even root cannot read it (EACCES). */
  mode?: number;
  proc_handler(write: boolean, buffer?: string): ProcIo;
}

/**
 * kernel: mm/page_alloc.c min_free_kbytes_sysctl_handler()
 * Any accepted write becomes the user's value (later automatic recomputation keeps it) and the
 * watermarks, totalreserve_pages and pcp high limits follow. lowmem_reserve does not depend on
 * min_free_kbytes, so it is not recomputed.
 */
function min_free_kbytes_sysctl_handler(mm: MM, table: CtlTable, write: boolean, buffer?: string): ProcIo {
  const rc = proc_dointvec_minmax(table, write, buffer);
  if (rc.err) return rc;
  if (write) {
    mm.sysctl.user_min_free_kbytes = mm.sysctl.min_free_kbytes;
    setup_per_zone_wmarks(mm);
  }
  return rc;
}

// kernel: mm/page_alloc.c watermark_scale_factor_sysctl_handler()
function watermark_scale_factor_sysctl_handler(
  mm: MM,
  table: CtlTable,
  write: boolean,
  buffer?: string,
): ProcIo {
  const rc = proc_dointvec_minmax(table, write, buffer);
  if (rc.err) return rc;
  if (write) setup_per_zone_wmarks(mm);
  return rc;
}

/**
 * kernel: mm/page_alloc.c lowmem_reserve_ratio_sysctl_handler()
 * Ignores the parse result (so every write "succeeds", even `abc`), turns ratios below 1 into 0,
 * and recomputes the reserves, on reads too.
 */
function lowmem_reserve_ratio_sysctl_handler(
  mm: MM,
  table: CtlTable,
  write: boolean,
  buffer?: string,
): ProcIo {
  const rc = proc_dointvec_minmax(table, write, buffer);
  const ratio = mm.sysctl.lowmem_reserve_ratio;
  for (let i = 0; i < MAX_NR_ZONES; i++) if (ratio[i] < 1) ratio[i] = 0;
  setup_per_zone_lowmem_reserve(mm);
  return { err: 0, len: rc.len, out: rc.out };
}

/**
 * kernel: mm/page_alloc.c percpu_pagelist_high_fraction_sysctl_handler()
 * 0 (auto-tuned pcp high) or at least 8; a value 1..7 is stored, then rolled back with -EINVAL.
 * A real change resizes the pcp lists of every populated zone.
 */
function percpu_pagelist_high_fraction_sysctl_handler(
  mm: MM,
  table: CtlTable,
  write: boolean,
  buffer?: string,
): ProcIo {
  const old = mm.sysctl.percpu_pagelist_high_fraction;
  const ret = proc_dointvec_minmax(table, write, buffer);
  if (!write || ret.err < 0) return ret;
  const fraction = mm.sysctl.percpu_pagelist_high_fraction;
  if (fraction && fraction < MIN_PERCPU_PAGELIST_HIGH_FRACTION) {
    mm.sysctl.percpu_pagelist_high_fraction = old;
    return { err: EINVAL, len: ret.len, out: '' };
  }
  if (fraction === old) return ret;
  for (const zone of mm.zones) if (zone.populated_zone()) zone_set_pageset_high_and_batch(mm, zone);
  return ret;
}

/**
 * kernel: mm/page_alloc.c page_alloc_sysctl_table[]
 * The entries with their bounds (extra1/extra2) and handlers, bound to one machine.
 */
export function page_alloc_sysctl_table(mm: MM): VmSysctl[] {
  const s = mm.sysctl;
  const entry = (
    table: CtlTable,
    handler: (mm: MM, table: CtlTable, write: boolean, buffer?: string) => ProcIo,
  ): VmSysctl => ({
    procname: table.procname,
    proc_handler: (write, buffer) => handler(mm, table, write, buffer),
  });
  const minmax = (_mm: MM, table: CtlTable, write: boolean, buffer?: string): ProcIo =>
    proc_dointvec_minmax(table, write, buffer);
  return [
    entry(ctl_int('min_free_kbytes', s, 'min_free_kbytes', 0), min_free_kbytes_sysctl_handler),
    entry(ctl_int('watermark_boost_factor', s, 'watermark_boost_factor', 0), minmax),
    entry(
      ctl_int('watermark_scale_factor', s, 'watermark_scale_factor', 1, 3000),
      watermark_scale_factor_sysctl_handler,
    ),
    entry(ctl_int('defrag_mode', s, 'defrag_mode', 0, 1), minmax),
    entry(
      ctl_int('percpu_pagelist_high_fraction', s, 'percpu_pagelist_high_fraction', 0),
      percpu_pagelist_high_fraction_sysctl_handler,
    ),
    entry(ctl_int_vec('lowmem_reserve_ratio', s.lowmem_reserve_ratio), lowmem_reserve_ratio_sysctl_handler),
  ];
}

/**
 * Register /proc/sys/vm/<name> for every entry of page_alloc_sysctl_table(),
 * writeback_sysctl_table() and compaction_sysctl_table().
 */
export function register_vm_sysctls(vfs: Vfs, mm: MM): void {
  for (const e of [
    ...page_alloc_sysctl_table(mm),
    ...writeback_sysctl_table(mm),
    ...compaction_sysctl_table(mm),
  ]) {
    const path = `/proc/sys/vm/${e.procname}`;
    const mode = e.mode ?? 0o644;
    vfs.register(path, {
      mode,
      read: () => {
        // proc_sys_permission() checks the mode bits for root too.
        if (!(mode & 0o444)) throw new ErrnoError('EACCES', 'open', path);
        return e.proc_handler(false).out;
      },
      write: (text) => {
        const rc = e.proc_handler(true, text);
        if (rc.err) throw new ErrnoError(errno_code(rc.err), 'write', path);
      },
    });
  }
}
