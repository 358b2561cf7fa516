/**
 * /proc/slabinfo (mm/slab_common.c slab_show; mode 0400, as SLUB gives it no write method):
 * "slabinfo - version: 2.1", the column header, then one line per cache on slab_caches, newest
 * first, with SLUB's zero tunables and sharedavail:
 *
 *   %-17s %6lu %6lu %6u %4u %4d : tunables %4u %4u %4u : slabdata %6lu %6lu %6lu
 *   name  active_objs num_objs objsize objperslab pagesperslab  limit batchcount sharedfactor
 *   active_slabs num_slabs sharedavail
 */
import type { MM } from '../../mm/mm.ts';
import { get_slabinfo } from '../../mm/slab.ts';
import { lu_w, s_lw } from '../seq_file.ts';

// kernel: mm/slab_common.c print_slabinfo_header()
function print_slabinfo_header(): string {
  return (
    'slabinfo - version: 2.1\n' +
    '# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>' +
    ' : tunables <limit> <batchcount> <sharedfactor>' +
    ' : slabdata <active_slabs> <num_slabs> <sharedavail>\n'
  );
}

// kernel: mm/slab_common.c slab_start() / slab_show() -> cache_show()
/** The text of /proc/slabinfo. */
export function slabinfo(mm: MM): string {
  let out = print_slabinfo_header();
  const caches = mm.slab.slab_caches;
  for (let i = caches.length - 1; i >= 0; i--) {
    const s = caches[i];
    const info = get_slabinfo(s);
    out +=
      `${s_lw(s.name, 17)} ${lu_w(info.active_objs, 6)} ${lu_w(info.num_objs, 6)} ${lu_w(s.size, 6)}` +
      ` ${lu_w(info.objects_per_slab, 4)} ${lu_w(1 << info.cache_order, 4)}` +
      ` : tunables ${lu_w(0, 4)} ${lu_w(0, 4)} ${lu_w(0, 4)}` +
      ` : slabdata ${lu_w(info.active_slabs, 6)} ${lu_w(info.num_slabs, 6)} ${lu_w(0, 6)}\n`;
  }
  return out;
}
