/**
 * The invariant checker (the model's CONFIG_DEBUG_VM): walks every frame and every list and
 * reports each way the state disagrees with itself. Returns a list of violations; empty means
 * consistent.
 */
import { cma_check } from './cma.ts';
import { hugetlb_check } from './hugetlb.ts';
import type { MM } from './mm.ts';
import {
  MAX_FOLIO_ORDER,
  MAX_PAGE_ORDER,
  MIGRATE_CMA,
  MIGRATE_HIGHATOMIC,
  MIGRATE_ISOLATE,
  MIGRATE_TYPES,
  migratetype_is_mergeable,
  NR_PAGE_ORDERS,
  NR_PCP_LISTS,
  pageblock_nr_pages,
  pageblock_order,
} from './mmzone.ts';
import { pindex_to_order } from './page_alloc/pcp.ts';
import { PG_buddy, PG_head, PG_reserved, PG_tail, PGI_alloc, PGI_nopage, PGI_pcp } from './page-flags.ts';
import { get_pfnblock_migratetype, PB_migrate_isolate, PB_migratetype_mask } from './pageblock.ts';
import { NR_FREE_CMA_PAGES, NR_FREE_PAGES, NR_FREE_PAGES_BLOCKS } from './vmstat_items.ts';

const MAX_REPORTS = 50;
const HEAD_BITS = PG_buddy | PGI_alloc | PGI_pcp;

export function check_invariants(mm: MM): string[] {
  const errors: string[] = [];
  const report = (msg: string): void => {
    if (errors.length < MAX_REPORTS) errors.push(msg);
  };
  const f = mm.frames;
  const flags = f.flags;
  const orders = f.order;
  const nz = mm.zones.length;
  // Per zone tallies from the frame walk: free (non-isolated), pcp, allocated, reserved pages.
  const freePages = new Float64Array(nz);
  const freeCma = new Float64Array(nz);
  const freeHighatomic = new Float64Array(nz);
  const freeBlocks = new Float64Array(nz);
  const pcpPages = new Float64Array(nz);
  const allocPages = new Float64Array(nz);
  const reservedPages = new Float64Array(nz);
  // RAM not yet initialised (deferred_init=lazy), counted against the node's highest zone.
  const deferredPages = new Float64Array(nz);
  const deferredZone = mm.nodes.map((n) =>
    n.first_deferred_pfn === Number.POSITIVE_INFINITY ? undefined : mm.page_zone(n.first_deferred_pfn - 1),
  );
  let buddyHeads = 0;
  let pcpHeads = 0;

  for (let pfn = 0; pfn < f.nr_frames; ) {
    const fl = flags[pfn];
    if (fl & PGI_nopage) {
      if (fl !== PGI_nopage) report(`pfn ${pfn}: hole frame has flags 0x${fl.toString(16)}`);
      const dz = mm.pfn_online(pfn) ? deferredZone.find((z) => z?.zone_spans_pfn(pfn)) : undefined;
      if (dz && pfn >= mm.nodes[dz.nid].first_deferred_pfn) deferredPages[dz.id]++;
      pfn++;
      continue;
    }
    const zone = mm.page_zone(pfn);
    if (!zone?.zone_spans_pfn(pfn)) {
      report(`pfn ${pfn}: RAM frame outside every zone`);
      pfn++;
      continue;
    }
    const zi = zone.id;
    if (fl & PG_reserved) {
      if (fl & HEAD_BITS) report(`pfn ${pfn}: reserved frame also free or allocated (0x${fl.toString(16)})`);
      reservedPages[zi]++;
      pfn++;
      continue;
    }
    const kind = fl & HEAD_BITS;
    if (kind !== PG_buddy && kind !== PGI_alloc && kind !== PGI_pcp) {
      report(
        kind === 0
          ? `pfn ${pfn}: frame belongs to no block`
          : `pfn ${pfn}: frame heads two kinds of block (0x${fl.toString(16)})`,
      );
      pfn++;
      continue;
    }
    const order = orders[pfn];
    const nr = 2 ** order;
    // alloc_contig_range(__GFP_COMP) makes compound pages beyond the buddy's orders.
    const max_order = kind === PGI_alloc && fl & PG_head ? MAX_FOLIO_ORDER : MAX_PAGE_ORDER;
    if (order > max_order || pfn % nr !== 0)
      report(`pfn ${pfn}: block of order ${order} misaligned or too large`);
    if (!zone.zone_spans_pfn(pfn + nr - 1))
      report(`pfn ${pfn}: order-${order} block crosses the end of zone ${zone.name}`);
    for (let p = pfn + 1; p < pfn + nr && p < f.nr_frames; p++) {
      const t = flags[p];
      if (t & (HEAD_BITS | PGI_nopage | PG_reserved)) {
        report(`pfn ${p}: inside the order-${order} block at ${pfn} but flags 0x${t.toString(16)}`);
        break;
      }
      if (kind === PGI_alloc && (t & PG_tail) === 0 && fl & PG_head) {
        report(`pfn ${p}: tail of compound page ${pfn} lacks PG_tail`);
        break;
      }
    }
    if (kind === PG_buddy) {
      buddyHeads++;
      const mt = get_pfnblock_migratetype(mm, pfn);
      if (mt !== MIGRATE_ISOLATE) freePages[zi] += nr;
      if (mt === MIGRATE_CMA) freeCma[zi] += nr;
      if (mt === MIGRATE_HIGHATOMIC) freeHighatomic[zi] += nr;
      if (order >= pageblock_order && mt !== MIGRATE_ISOLATE) freeBlocks[zi] += nr;
      // Isolation splits a free buddy at pageblock boundaries: isolated and other pageblocks
      // never share one (so its pages are all on ISOLATE lists or none are).
      for (let pb = pfn + pageblock_nr_pages; pb < pfn + nr; pb += pageblock_nr_pages) {
        if ((get_pfnblock_migratetype(mm, pb) === MIGRATE_ISOLATE) !== (mt === MIGRATE_ISOLATE)) {
          report(`pfn ${pfn}: free order-${order} block spans isolated and non-isolated pageblocks`);
          break;
        }
      }
      // Merging is eager below pageblock order. Above it a retype (unreserving highatomic,
      // ending isolation) can leave two mergeable free buddies side by side, as in the kernel.
      if (order < pageblock_order) {
        const b = pfn ^ nr;
        if (
          b > pfn &&
          b < f.nr_frames &&
          flags[b] & PG_buddy &&
          orders[b] === order &&
          mm.pb_zone[b >>> pageblock_order] === mm.pb_zone[pfn >>> pageblock_order]
        ) {
          const bmt = get_pfnblock_migratetype(mm, b);
          const mergeable =
            order < pageblock_order ||
            bmt === mt ||
            (migratetype_is_mergeable(mt) && migratetype_is_mergeable(bmt));
          if (mergeable)
            report(`pfn ${pfn}: free order-${order} block and its free buddy ${b} were not merged`);
        }
      }
    } else if (kind === PGI_pcp) {
      pcpHeads++;
      pcpPages[zi] += nr;
    } else {
      allocPages[zi] += nr;
    }
    pfn += nr;
  }

  // Free lists: every entry a free head of the list's order, in a pageblock of the list's type.
  let listed = 0;
  for (const zone of mm.zones) {
    for (let order = 0; order < NR_PAGE_ORDERS; order++) {
      let blocks = 0;
      for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
        const list = zone.free_list(order, mt);
        const count = f.list_count[list];
        let n = 0;
        for (let p = f.list_first(list); p >= 0; p = f.list_next(p)) {
          if (++n > count) {
            report(`zone ${zone.name} free_list[${order}][${mt}] holds more entries than its count ${count}`);
            break;
          }
          if ((flags[p] & PG_buddy) === 0 || orders[p] !== order)
            report(`pfn ${p} on free_list[${order}][${mt}] is not a free order-${order} block`);
          else if (get_pfnblock_migratetype(mm, p) !== mt)
            report(
              `pfn ${p} on free_list[${order}][${mt}] sits in a pageblock of type ${get_pfnblock_migratetype(mm, p)}`,
            );
          if (mm.page_zone(p) !== zone)
            report(`pfn ${p} on a free list of zone ${zone.name} belongs to another zone`);
        }
        if (n < count) report(`zone ${zone.name} free_list[${order}][${mt}] count ${count} but ${n} entries`);
        blocks += n;
        listed += n;
      }
      if (blocks !== zone.nr_free[order])
        report(
          `zone ${zone.name} free_area[${order}].nr_free ${zone.nr_free[order]} but ${blocks} blocks listed`,
        );
    }
  }
  if (listed !== buddyHeads)
    report(`${buddyHeads} free blocks in the frame table but ${listed} on free lists`);

  // Per-cpu lists: entries are pcp heads of the list's order in this zone; counts add up.
  let pcpListed = 0;
  for (const zone of mm.zones) {
    const pcp = zone.pcp;
    for (let cpu = 0; cpu < mm.nr_cpus; cpu++) {
      let pages = 0;
      for (let i = 0; i < NR_PCP_LISTS; i++) {
        const list = pcp.list_base + cpu * NR_PCP_LISTS + i;
        const order = pindex_to_order(i);
        for (let p = f.list_first(list); p >= 0; p = f.list_next(p)) {
          if ((flags[p] & PGI_pcp) === 0 || orders[p] !== order)
            report(`pfn ${p} on cpu ${cpu} pcp list ${i} is not a pcp block of order ${order}`);
          if (mm.page_zone(p) !== zone)
            report(`pfn ${p} on a pcp list of zone ${zone.name} belongs to another zone`);
          pages += 1 << order;
          pcpListed++;
          if (pcpListed > pcpHeads + 1) break;
        }
      }
      if (pages !== pcp.count[cpu])
        report(`zone ${zone.name} cpu ${cpu} pcp count ${pcp.count[cpu]} but ${pages} pages listed`);
    }
  }
  if (pcpListed !== pcpHeads)
    report(`${pcpHeads} pcp blocks in the frame table but ${pcpListed} on pcp lists`);

  // Counters and conservation.
  for (const zone of mm.zones) {
    const zi = zone.id;
    if (zone.vm_stat[NR_FREE_PAGES] !== freePages[zi])
      report(
        `zone ${zone.name} NR_FREE_PAGES ${zone.vm_stat[NR_FREE_PAGES]} but ${freePages[zi]} free pages`,
      );
    if (zone.vm_stat[NR_FREE_CMA_PAGES] !== freeCma[zi])
      report(`zone ${zone.name} NR_FREE_CMA_PAGES ${zone.vm_stat[NR_FREE_CMA_PAGES]} but ${freeCma[zi]}`);
    if (zone.vm_stat[NR_FREE_PAGES_BLOCKS] !== freeBlocks[zi])
      report(
        `zone ${zone.name} NR_FREE_PAGES_BLOCKS ${zone.vm_stat[NR_FREE_PAGES_BLOCKS]} but ${freeBlocks[zi]}`,
      );
    if (zone.nr_free_highatomic !== freeHighatomic[zi])
      report(`zone ${zone.name} nr_free_highatomic ${zone.nr_free_highatomic} but ${freeHighatomic[zi]}`);
    const accounted = freePages[zi] + pcpPages[zi] + allocPages[zi] + reservedPages[zi] + deferredPages[zi];
    let isolatedFree = 0;
    if (accounted !== zone.present_pages) {
      // Free pages on isolated pageblocks are outside NR_FREE_PAGES; count them before judging.
      for (let o = 0; o < NR_PAGE_ORDERS; o++)
        isolatedFree +=
          f.list_count[zone.free_list(o, MIGRATE_ISOLATE)] > 0
            ? sumList(mm, zone.free_list(o, MIGRATE_ISOLATE)) << o
            : 0;
      if (accounted + isolatedFree !== zone.present_pages) {
        report(
          `zone ${zone.name}: free ${freePages[zi]} + isolated ${isolatedFree} + pcp ${pcpPages[zi]} + allocated ${allocPages[zi]} + reserved ${reservedPages[zi]} + deferred ${deferredPages[zi]} != present ${zone.present_pages}`,
        );
      }
    }
    if (zone.managed_pages !== zone.present_pages - reservedPages[zi] - deferredPages[zi])
      report(
        `zone ${zone.name} managed ${zone.managed_pages} but present ${zone.present_pages} - reserved ${reservedPages[zi]} - deferred ${deferredPages[zi]}`,
      );
    if (zone.nr_reserved_highatomic < 0) report(`zone ${zone.name} nr_reserved_highatomic is negative`);
  }
  const isolated = new Float64Array(nz);
  for (let pb = 0; pb < mm.pb_flags.length; pb++) {
    const mt = mm.pb_flags[pb] & PB_migratetype_mask;
    if (mt >= MIGRATE_ISOLATE || (mt === MIGRATE_CMA && !mm.config.CMA))
      report(`pageblock ${pb} has invalid type ${mt}`);
    if (mm.pb_flags[pb] & PB_migrate_isolate) {
      const z = mm.pb_zone[pb];
      if (z === 0) report(`pageblock ${pb} is isolated but in no zone`);
      else isolated[z - 1]++;
    }
  }
  for (const zone of mm.zones) {
    if (zone.nr_isolate_pageblock !== isolated[zone.id])
      report(
        `zone ${zone.name} nr_isolate_pageblock ${zone.nr_isolate_pageblock} but ${isolated[zone.id]} isolated pageblocks`,
      );
  }
  for (const v of hugetlb_check(mm)) report(v);
  for (const v of cma_check(mm)) report(v);
  return errors;
}

function sumList(mm: MM, list: number): number {
  return mm.frames.list_count[list];
}
