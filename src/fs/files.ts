/**
 * Registers every /proc and /sys file the machine has.
 */
import type { MM } from '../mm/mm.ts';
import { buddyinfo } from './proc/buddyinfo.ts';
import type { Vfs } from './vfs.ts';

export function registerFiles(vfs: Vfs, mm: MM): void {
  vfs.register('/proc/buddyinfo', { mode: 0o444, read: () => buddyinfo(mm) });
}
