/**
 * debugfs extfrag/ (mm/vmstat.c extfrag_debug_init, CONFIG_DEBUG_FS and CONFIG_COMPACTION):
 * /sys/kernel/debug/extfrag/extfrag_index and unusable_index, one line per populated zone of each
 * node, an index per order 0..10 with three decimals (the kernel prints index / 1000 and
 * index % 1000): "Node 0, zone   Normal " then "%2d.%03d " (extfrag_index, -1.000 where an
 * allocation of that order would succeed) or "%d.%03d " (unusable_index) per order.
 */
import {
  __fragmentation_index,
  type ContigPageInfo,
  fill_contig_page_info,
  unusable_free_index,
} from '../../mm/compaction.ts';
import type { MM } from '../../mm/mm.ts';
import { NR_PAGE_ORDERS } from '../../mm/mmzone.ts';

const info: ContigPageInfo = { free_pages: 0, free_blocks_total: 0, free_blocks_suitable: 0 };

/** seq_printf("%<width>d.%03d ", index / 1000, index % 1000) with C's truncating division. */
function thousandths(index: number, width: number): string {
  const whole = Math.trunc(index / 1000);
  const frac = Math.abs(index % 1000);
  return `${String(whole).padStart(width)}.${String(frac).padStart(3, '0')} `;
}

/**
 * kernel: mm/vmstat.c walk_zones_in_node(assert_populated = true) over every online node
 * (frag_start); a node without memory has no populated zone, so unusable_show()'s N_MEMORY check
 * changes nothing.
 */
function show(mm: MM, index: (order: number) => string): string {
  let out = '';
  for (const pgdat of mm.nodes) {
    for (const zone of pgdat.node_zones) {
      if (!zone.populated_zone()) continue;
      out += `Node ${pgdat.node_id}, zone ${zone.name.padStart(8)} `;
      for (let order = 0; order < NR_PAGE_ORDERS; order++) {
        fill_contig_page_info(zone, order, info);
        out += index(order);
      }
      out += '\n';
    }
  }
  return out;
}

// kernel: mm/vmstat.c extfrag_show() -> extfrag_show_print()
/** The text of /sys/kernel/debug/extfrag/extfrag_index. */
export function extfrag_index(mm: MM): string {
  return show(mm, (order) => thousandths(__fragmentation_index(order, info), 2));
}

// kernel: mm/vmstat.c unusable_show() -> unusable_show_print()
/** The text of /sys/kernel/debug/extfrag/unusable_index. */
export function unusable_index(mm: MM): string {
  return show(mm, (order) => thousandths(unusable_free_index(order, info), 1));
}
