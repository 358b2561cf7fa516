/**
 * /proc/buddyinfo (mm/vmstat.c frag_show_print): per populated zone, the free blocks at each
 * order over all migratetypes, "%6lu " each, every line ending in a space.
 */
import type { MM } from '../../mm/mm.ts';
import { NR_PAGE_ORDERS } from '../../mm/mmzone.ts';

// kernel: mm/vmstat.c frag_show() -> walk_zones_in_node(assert_populated = true) frag_show_print()
/** The text of /proc/buddyinfo. */
export function buddyinfo(mm: MM): string {
  let out = '';
  for (const zone of mm.zones) {
    if (!zone.populated_zone()) continue;
    out += `Node ${zone.nid}, zone ${zone.name.padStart(8)} `;
    for (let o = 0; o < NR_PAGE_ORDERS; o++) out += `${String(zone.nr_free[o]).padStart(6)} `;
    out += '\n';
  }
  return out;
}
