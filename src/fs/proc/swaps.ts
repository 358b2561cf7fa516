/**
 * /proc/swaps (mm/swapfile.c swap_show(); mode 0444): a header, then one line per swap device —
 * its path padded to 40 columns, "file" or "partition", size and used in KiB (usable pages,
 * the header page excluded) and priority. Without swap only the header.
 */
import type { MM } from '../../mm/mm.ts';

export function proc_swaps(mm: MM): string {
  let out = 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n';
  const si = mm.swap;
  if (!si) return out;
  const bytes = si.total * 4;
  const inuse = si.inuse_pages * 4;
  const len = si.name.length;
  out += `${si.name}${' '.repeat(len < 40 ? 40 - len : 1)}file\t\t${bytes}\t${bytes < 10000000 ? '\t' : ''}${inuse}\t${inuse < 10000000 ? '\t' : ''}${si.prio}\n`;
  return out;
}
