/**
 * The page allocator's bulk entry point (mm/page_alloc.c alloc_pages_bulk_noprof()): up to
 * `nr_pages` order-0 pages taken straight off one zone's per-cpu list, for callers that want many
 * pages and no contiguity (vmalloc's vm_area_alloc_pages(), the network page_pool's refill).
 *
 * It differs from calling __alloc_pages() in a loop in ways that matter for fragmentation and
 * for the counters: one zone is chosen up front (the first of the zonelist whose low watermark
 * still holds after `nr_pages` more are taken), the per-cpu list is refilled by rmqueue_bulk()
 * without ALLOC_NOFRAGMENT (the fast path would set it), no other node is tried, and there is no
 * slow path: a bulk request that gets nothing at all falls back to one __alloc_pages() call.
 */
import { __GFP_ACCOUNT, __GFP_THISNODE, gfp_migratetype, gfp_zone } from '../gfp.ts';
import { ALLOC_WMARK_LOW, ALLOC_WMARK_MASK } from '../internal.ts';
import type { MM } from '../mm.ts';
import type { Zone } from '../mmzone.ts';
import { PGALLOC_DMA } from '../vmstat_items.ts';
import { __alloc_pages } from './alloc_pages.ts';
import { rmqueue_pcplist } from './pcp.ts';
import { gfp_to_alloc_flags_cma, prep_new_page, zone_statistics } from './rmqueue.ts';
import { zone_watermark_fast } from './watermark.ts';

/** The `failed:` exit: one page from the regular allocator (fast path, then slow path). */
function bulk_failed(
  mm: MM,
  gfp: number,
  nid: number,
  page_array: Int32Array,
  start: number,
  cpu: number,
): number {
  const pfn = __alloc_pages(mm, gfp, 0, nid, cpu);
  if (pfn < 0) return 0;
  page_array[start] = pfn;
  return 1;
}

/**
 * kernel: mm/page_alloc.c alloc_pages_bulk_noprof() (alloc_pages_bulk_node() without a nodemask)
 * Fill page_array[start .. start + nr_pages) with order-0 pfns, allocated on `cpu` preferring
 * node `nid`. Returns how many slots were filled, in order from `start`: possibly fewer than
 * asked for, 0 only if even the single-page fallback failed.
 *
 * As 6.18: __GFP_ACCOUNT requests (memcg kmem accounting is on) and requests for one page go to
 * the single-page allocator; the zone is the first from the preferred one, on the preferred node
 * only (on a NUMA machine), whose low watermark plus `nr_pages` passes zone_watermark_fast() with
 * the preferred zone's lowmem reserve; pages come from __rmqueue_pcplist() with ALLOC_WMARK_LOW
 * (no ALLOC_NOFRAGMENT); pgalloc and the NUMA counters are counted once for the batch. The
 * kernel's bulk path fires no mm_page_alloc tracepoint, and neither does this one. Unlike
 * rmqueue_pcplist(), __rmqueue_pcplist() does not halve pcp->free_count, so it is restored.
 */
export function alloc_pages_bulk(
  mm: MM,
  gfp: number,
  nid: number,
  nr_pages: number,
  page_array: Int32Array,
  start: number,
  cpu: number,
): number {
  if (nr_pages <= 0) return 0;
  if (gfp & __GFP_ACCOUNT || nr_pages === 1) return bulk_failed(mm, gfp, nid, page_array, start, cpu);

  // prepare_alloc_pages()
  const highest_zoneidx = gfp_zone(gfp);
  if (highest_zoneidx < 0) throw new RangeError(`invalid GFP zone modifiers in 0x${gfp.toString(16)}`);
  const node = mm.nodes[nid];
  const zonelist = gfp & __GFP_THISNODE ? node.zonelist_nofallback : node.zonelist_fallback;
  const mt = gfp_migratetype(gfp);
  const alloc_flags = gfp_to_alloc_flags_cma(mm, gfp, ALLOC_WMARK_LOW);
  let preferred_index = -1;
  for (let i = 0; i < zonelist.length; i++) {
    if (mm.zones[zonelist[i]].zone_idx <= highest_zoneidx) {
      preferred_index = i;
      break;
    }
  }
  if (preferred_index < 0) return 0;
  const preferred = mm.zones[zonelist[preferred_index]];

  // Find an allowed local zone that meets the low watermark.
  let zone: Zone | null = null;
  for (let i = preferred_index; i < zonelist.length; i++) {
    const z = mm.zones[zonelist[i]];
    if (z.zone_idx > highest_zoneidx) continue;
    if (mm.nodes.length > 1 && z !== preferred && z.nid !== preferred.nid)
      return bulk_failed(mm, gfp, nid, page_array, start, cpu);
    const mark = z.wmark_pages(alloc_flags & ALLOC_WMARK_MASK) + nr_pages;
    if (zone_watermark_fast(mm, z, 0, mark, preferred.zone_idx, alloc_flags)) {
      zone = z;
      break;
    }
  }
  if (zone === null) return bulk_failed(mm, gfp, nid, page_array, start, cpu);

  // Attempt the batch allocation.
  const free_count = zone.pcp.free_count[cpu];
  let nr = 0;
  while (nr < nr_pages) {
    const pfn = rmqueue_pcplist(mm, zone, cpu, 0, mt, alloc_flags);
    if (pfn < 0) break;
    prep_new_page(mm, pfn, 0, gfp);
    page_array[start + nr++] = pfn;
  }
  zone.pcp.free_count[cpu] = free_count;
  if (nr === 0) return bulk_failed(mm, gfp, nid, page_array, start, cpu);
  mm.vm_events[PGALLOC_DMA + zone.zone_idx] += nr;
  zone_statistics(mm, preferred, zone, cpu, nr);
  return nr;
}
