/**
 * The writeback sysctls of /proc/sys/vm (mm/page-writeback.c vm_page_writeback_sysctls, Linux
 * 6.18), over mm.dirty. A ratio and its byte form exclude each other: a successful write of one
 * zeroes the other. dirty_bytes has a floor of two pages; a byte value whose page count exceeds
 * UINT_MAX is refused with ERANGE and the old value kept. A new nonzero
 * dirty_writeback_centisecs wakes the flusher at once. (laptop_mode and dirtytime_expire_seconds
 * are not modelled.)
 */
import { errnos } from '../../lib/errno.ts';
import type { MM } from '../../mm/mm.ts';
import { PAGE_SIZE } from '../../mm/mmzone.ts';
import { wb_wakeup } from '../../mm/page-writeback.ts';
import {
  type CtlULongTable,
  ctl_int,
  ctl_ulong,
  type ProcIo,
  proc_dointvec,
  proc_dointvec_minmax,
  proc_doulongvec_minmax,
} from './proc_dointvec.ts';
import type { VmSysctl } from './vm.ts';

const ERANGE = -errnos.ERANGE;
const UINT_MAX = 0xffffffff;

/**
 * A *_bytes handler: proc_doulongvec_minmax with `min`, ERANGE beyond UINT_MAX pages (restoring
 * the old value), and on a successful write `after` (which zeroes the ratio).
 */
function bytes_handler(t: CtlULongTable, obj: { [k: string]: number }, key: string, after: () => void) {
  return (write: boolean, buffer?: string): ProcIo => {
    const old = obj[key];
    const rc = proc_doulongvec_minmax(t, write, buffer);
    if (rc.err || !write) return rc;
    if (Math.ceil(obj[key] / PAGE_SIZE) > UINT_MAX) {
      obj[key] = old;
      return { err: ERANGE, len: rc.len, out: '' };
    }
    after();
    return rc;
  };
}

export function writeback_sysctl_table(mm: MM): VmSysctl[] {
  const s = mm.dirty;
  const entry = (
    table: { procname: string },
    proc_handler: (write: boolean, buffer?: string) => ProcIo,
  ): VmSysctl => ({ procname: table.procname, proc_handler });
  const bg_ratio = ctl_int('dirty_background_ratio', s, 'dirty_background_ratio', 0, 100);
  const bg_bytes = { ...ctl_ulong('dirty_background_bytes', s, 'dirty_background_bytes'), extra1: 1n };
  const ratio = ctl_int('dirty_ratio', s, 'dirty_ratio', 0, 100);
  const bytes = {
    ...ctl_ulong('dirty_bytes', s, 'dirty_bytes'),
    extra1: BigInt(2 * PAGE_SIZE),
  };
  const writeback = ctl_int('dirty_writeback_centisecs', s, 'dirty_writeback_centisecs');
  const expire = ctl_int('dirty_expire_centisecs', s, 'dirty_expire_centisecs', 0);
  const dirty = s as unknown as { [k: string]: number };
  return [
    // dirty_background_ratio_handler()
    entry(bg_ratio, (write, buffer) => {
      const rc = proc_dointvec_minmax(bg_ratio, write, buffer);
      if (rc.err === 0 && write) s.dirty_background_bytes = 0;
      return rc;
    }),
    // dirty_background_bytes_handler()
    entry(
      bg_bytes,
      bytes_handler(bg_bytes, dirty, 'dirty_background_bytes', () => {
        s.dirty_background_ratio = 0;
      }),
    ),
    // dirty_ratio_handler(): only a changed value zeroes dirty_bytes.
    entry(ratio, (write, buffer) => {
      const old = s.dirty_ratio;
      const rc = proc_dointvec_minmax(ratio, write, buffer);
      if (rc.err === 0 && write && s.dirty_ratio !== old) s.dirty_bytes = 0;
      return rc;
    }),
    // dirty_bytes_handler(): only a changed value zeroes dirty_ratio.
    entry(bytes, (write, buffer) => {
      const old = s.dirty_bytes;
      return bytes_handler(bytes, dirty, 'dirty_bytes', () => {
        if (s.dirty_bytes !== old) s.dirty_ratio = 0;
      })(write, buffer);
    }),
    // dirty_writeback_centisecs_handler()
    entry(writeback, (write, buffer) => {
      const old = s.dirty_writeback_centisecs;
      const rc = proc_dointvec(writeback, write, buffer);
      if (!rc.err && write && s.dirty_writeback_centisecs && s.dirty_writeback_centisecs !== old)
        wb_wakeup(mm);
      return rc;
    }),
    entry(expire, (write, buffer) => proc_dointvec_minmax(expire, write, buffer)),
  ];
}
