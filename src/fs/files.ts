/**
 * Registers every /proc and /sys file the machine has.
 */
import type { MM } from '../mm/mm.ts';
import { buddyinfo } from './proc/buddyinfo.ts';
import { meminfo } from './proc/meminfo.ts';
import { pagetypeinfo } from './proc/pagetypeinfo.ts';
import { vmstat } from './proc/vmstat.ts';
import { zoneinfo } from './proc/zoneinfo.ts';
import { register_vm_sysctls } from './sysctl/vm.ts';
import type { Vfs } from './vfs.ts';

/** Register the machine's /proc files and /proc/sys/vm sysctls, with the modes Linux gives them. */
export function registerFiles(vfs: Vfs, mm: MM): void {
  vfs.register('/proc/buddyinfo', { mode: 0o444, read: () => buddyinfo(mm) });
  // Root only: walking the free lists holds the zone lock (mm/vmstat.c init_mm_internals).
  vfs.register('/proc/pagetypeinfo', { mode: 0o400, read: () => pagetypeinfo(mm) });
  vfs.register('/proc/zoneinfo', { mode: 0o444, read: () => zoneinfo(mm) });
  vfs.register('/proc/vmstat', { mode: 0o444, read: () => vmstat(mm) });
  vfs.register('/proc/meminfo', { mode: 0o444, read: () => meminfo(mm) });
  register_vm_sysctls(vfs, mm);
}
