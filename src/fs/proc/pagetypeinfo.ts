/**
 * /proc/pagetypeinfo (mm/vmstat.c pagetypeinfo_show; mode 0400): per node with memory, the
 * pageblock geometry, the free blocks on every (zone, migratetype, order) free list, and how many
 * pageblocks of each migratetype every populated zone has. The CMA type exists only with
 * CONFIG_CMA; Isolate always (CONFIG_MEMORY_ISOLATION). Mixed-block counts need PAGE_OWNER, which
 * the model does not have, so that section is never printed.
 */
import type { MM } from '../../mm/mm.ts';
import {
  MIGRATE_CMA,
  MIGRATE_TYPES,
  migratetype_names,
  NR_PAGE_ORDERS,
  type PglistData,
  pageblock_nr_pages,
  pageblock_order,
  type Zone,
} from '../../mm/mmzone.ts';
import { get_pfnblock_migratetype } from '../../mm/pageblock.ts';
import { lu_w, s_lw, s_w } from '../seq_file.ts';

/** The list walk stops here, as the kernel's does (it holds the zone lock while counting). */
const FREE_COUNT_CAP = 100000;

/**
 * The model's migratetypes in the kernel's enum order for this config: without CONFIG_CMA there
 * is no MIGRATE_CMA and Isolate follows HighAtomic (the model always keeps a CMA slot, empty).
 */
export function migratetypes(mm: MM): number[] {
  const types: number[] = [];
  for (let mt = 0; mt < MIGRATE_TYPES; mt++) if (mt !== MIGRATE_CMA || mm.config.CMA) types.push(mt);
  return types;
}

// kernel: mm/vmstat.c pagetypeinfo_showfree_print()
function pagetypeinfo_showfree_print(mm: MM, node: PglistData, zone: Zone, types: number[]): string {
  const count = mm.frames.list_count;
  let out = '';
  for (const mt of types) {
    out += `Node ${s_w(String(node.node_id), 4)}, zone ${s_w(zone.name, 8)}, type ${s_w(migratetype_names[mt], 12)} `;
    for (let order = 0; order < NR_PAGE_ORDERS; order++) {
      const n = count[zone.free_list(order, mt)];
      out += n >= FREE_COUNT_CAP ? `>${lu_w(FREE_COUNT_CAP, 6)} ` : `${lu_w(n, 6)} `;
    }
    out += '\n';
  }
  return out;
}

// kernel: mm/vmstat.c pagetypeinfo_showfree()
function pagetypeinfo_showfree(mm: MM, node: PglistData, types: number[]): string {
  let out = `${s_lw('Free pages count per migrate type at order', 43)} `;
  for (let order = 0; order < NR_PAGE_ORDERS; order++) out += `${lu_w(order, 6)} `;
  out += '\n';
  for (const zone of node.node_zones) {
    if (zone.populated_zone()) out += pagetypeinfo_showfree_print(mm, node, zone, types);
  }
  return out;
}

/**
 * kernel: mm/vmstat.c pagetypeinfo_showblockcount_print()
 * Steps from zone_start_pfn (not block aligned: DMA starts at pfn 1) by pageblock_nr_pages,
 * skipping pfns without an online struct page (subsections with no RAM, like the PCI hole) and
 * pfns of another zone; an isolated block counts as Isolate.
 */
export function pageblock_counts(mm: MM, zone: Zone): number[] {
  const count = new Array<number>(MIGRATE_TYPES).fill(0);
  const end = zone.zone_end_pfn;
  for (let pfn = zone.zone_start_pfn; pfn < end; pfn += pageblock_nr_pages) {
    if (!mm.pfn_online(pfn)) continue;
    if (mm.pb_zone[pfn >>> pageblock_order] !== zone.id + 1) continue;
    count[get_pfnblock_migratetype(mm, pfn)]++;
  }
  return count;
}

// kernel: mm/vmstat.c pagetypeinfo_showblockcount()
function pagetypeinfo_showblockcount(mm: MM, node: PglistData, types: number[]): string {
  let out = `\n${s_lw('Number of blocks type ', 23)}`;
  for (const mt of types) out += `${s_w(migratetype_names[mt], 12)} `;
  out += '\n';
  for (const zone of node.node_zones) {
    if (!zone.populated_zone()) continue;
    const count = pageblock_counts(mm, zone);
    out += `Node ${node.node_id}, zone ${s_w(zone.name, 8)} `;
    for (const mt of types) out += `${lu_w(count[mt], 12)} `;
    out += '\n';
  }
  return out;
}

/**
 * kernel: mm/vmstat.c pagetypeinfo_show()
 * One section per node with memory; each repeats the pageblock header.
 */
export function pagetypeinfo(mm: MM): string {
  const types = migratetypes(mm);
  let out = '';
  for (const node of mm.nodes) {
    if (!node.node_present_pages) continue; // memoryless node: !node_state(nid, N_MEMORY)
    out += `Page block order: ${pageblock_order}\n`;
    out += `Pages per block:  ${pageblock_nr_pages}\n`;
    out += '\n';
    out += pagetypeinfo_showfree(mm, node, types);
    out += pagetypeinfo_showblockcount(mm, node, types);
  }
  return out;
}
