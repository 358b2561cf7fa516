/**
 * Deferred struct page initialisation (mm/mm_init.c, CONFIG_DEFERRED_STRUCT_PAGE_INIT) with our
 * machines' `deferred_init=lazy`: the highest zone of each node starts with one 128 MiB section of
 * initialised memory (defer_init()); the rest joins the buddy allocator a section at a time when
 * an allocation fails the zone's watermark or finds no block (deferred_grow_zone(), called from
 * get_page_from_freelist()). Upstream kernels initialise everything in parallel at the end of boot
 * (page_alloc_init_late()), which the model does at boot: the `off` setting.
 *
 * An uninitialised pageblock belongs to no zone yet (pb_zone 0) and its frames are PGI_nopage: the
 * kernel's struct pages there are not initialised, so page_zone() does not name the zone and
 * /proc/pagetypeinfo does not count the block, as on the real machine. Growing also recomputes
 * the watermarks, lowmem reserves and pcp sizes from the new managed pages, as the real kernel's
 * /proc/zoneinfo shows it doing (docs/kernel-6.18-notes.md).
 */
import type { MM } from '../mm.ts';
import { PAGES_PER_SECTION, type PglistData, pageblock_order, type Zone } from '../mmzone.ts';
import { PG_reserved, PGI_nopage } from '../page-flags.ts';
import { __free_pages_memory } from './alloc_pages.ts';
import { setup_per_zone_lowmem_reserve, setup_per_zone_wmarks } from './watermark.ts';

/** The node's highest zone with pages: the only one that may have deferred pages. */
export function deferred_zone(pgdat: PglistData): Zone | undefined {
  for (let i = pgdat.node_zones.length - 1; i >= 0; i--)
    if (pgdat.node_zones[i].spanned_pages) return pgdat.node_zones[i];
  return undefined;
}

/**
 * kernel: mm/mm_init.c defer_init() over memmap_init()
 * Boot with `deferred_init=lazy`: the node's highest zone keeps its first section's worth of
 * RAM pages; from the first section boundary after them on, its RAM is left uninitialised
 * (pgdat->first_deferred_pfn). Called before memblock_free_all(), which skips those frames.
 */
export function defer_init(mm: MM, pgdat: PglistData): void {
  const zone = deferred_zone(pgdat);
  if (!zone) return;
  let initialised = 0;
  let first = Number.POSITIVE_INFINITY;
  for (const r of mm.ram) {
    const start = Math.max(r.start, zone.zone_start_pfn);
    const end = Math.min(r.end, zone.zone_end_pfn);
    if (start >= end) continue;
    // nr_initialised > PAGES_PER_SECTION at a section-aligned pfn.
    const past = start + Math.max(0, PAGES_PER_SECTION - initialised);
    const pfn = Math.ceil(past / PAGES_PER_SECTION) * PAGES_PER_SECTION;
    if (pfn < end) {
      first = pfn;
      break;
    }
    initialised += end - start;
  }
  if (first >= zone.zone_end_pfn) return;
  pgdat.first_deferred_pfn = first;
  const flags = mm.frames.flags;
  // Reserved pages were initialised by reserve_bootmem_region(): their blocks stay in the zone.
  for (let pfn = first; pfn < zone.zone_end_pfn; pfn += 1 << pageblock_order) {
    let reserved = false;
    for (let p = pfn; p < pfn + (1 << pageblock_order) && !reserved; p++)
      reserved = (flags[p] & PG_reserved) !== 0;
    if (!reserved) mm.pb_zone[pfn >>> pageblock_order] = 0;
  }
  for (const r of mm.ram) {
    const start = Math.max(r.start, first);
    const end = Math.min(r.end, zone.zone_end_pfn);
    // Reserved frames (the memmap, crash kernel, …) were initialised by reserve_bootmem_region().
    for (let pfn = start; pfn < end; pfn++) {
      if (flags[pfn] & PG_reserved) continue;
      flags[pfn] = PGI_nopage;
      pgdat.nr_deferred_pages++;
    }
  }
  // The real kernel counts them in totalram_pages from boot: /proc/meminfo's MemTotal (and
  // MemFree) include them while zoneinfo's managed and free pages do not (measured on 6.18.44).
  mm.totalram_pages += pgdat.nr_deferred_pages;
}

/** Pages not yet initialised on every node: /proc/meminfo counts them as free. */
export function nr_deferred_pages(mm: MM): number {
  let n = 0;
  for (const pgdat of mm.nodes) n += pgdat.nr_deferred_pages;
  return n;
}

/** The pfn is RAM not yet initialised (above pgdat->first_deferred_pfn, not reserved). */
export function deferred_page(mm: MM, pfn: number): boolean {
  const zone = mm.page_zone(pfn);
  return zone === undefined && mm.pfn_online(pfn) && (mm.frames.flags[pfn] & PGI_nopage) !== 0;
}

/**
 * kernel: mm/mm_init.c deferred_init_memmap_chunk()
 * Initialise [start, end) of `zone` and free its RAM that is not reserved, in naturally aligned
 * blocks of at most MAX_PAGE_ORDER. Returns the pages freed.
 */
function deferred_init_memmap_chunk(mm: MM, zone: Zone, start: number, end: number): number {
  const flags = mm.frames.flags;
  mm.kernel_ns += (end - start) * mm.cost.init_page;
  for (let pfn = start; pfn < end; pfn += 1 << pageblock_order)
    mm.pb_zone[pfn >>> pageblock_order] = zone.id + 1;
  let nr = 0;
  for (const r of mm.ram) {
    let pfn = Math.max(r.start, start);
    const stop = Math.min(r.end, end);
    // Only what defer_init() left uninitialised: memblock reservations (and CMA areas, which stay
    // reserved in memblock and were freed by cma_init_reserved_areas()) are not free memory here,
    // as for_each_free_mem_range() skips them.
    while (pfn < stop) {
      if (!(flags[pfn] & PGI_nopage)) {
        pfn++;
        continue;
      }
      let run = pfn;
      while (run < stop && flags[run] & PGI_nopage) run++;
      flags.fill(0, pfn, run);
      nr += run - pfn;
      __free_pages_memory(mm, pfn, run);
      pfn = run;
    }
  }
  return nr;
}

/**
 * Initialise the zone's deferred memory section by section up to `end` (a pfn): the state of a
 * machine whose kernel had grown that far (a snapshot's import). False if the zone is not
 * deferred. deferred_grow_zone() may take a section more when reservations leave one short.
 */
export function deferred_init_to(mm: MM, zone: Zone, end: number): boolean {
  const pgdat = mm.nodes[zone.nid];
  if (deferred_zone(pgdat) !== zone) return false;
  let nr = 0;
  let spfn = pgdat.first_deferred_pfn;
  const stop = Math.min(end, zone.zone_end_pfn);
  while (spfn < stop) {
    const epfn = Math.min(Math.ceil((spfn + 1) / PAGES_PER_SECTION) * PAGES_PER_SECTION, zone.zone_end_pfn);
    nr += deferred_init_memmap_chunk(mm, zone, spfn, epfn);
    spfn = epfn;
  }
  grown(mm, zone, nr, spfn < zone.zone_end_pfn ? spfn : Number.POSITIVE_INFINITY);
  return true;
}

/** `nr` pages of the zone were initialised, up to `next` (its new first_deferred_pfn). */
function grown(mm: MM, zone: Zone, nr: number, next: number): void {
  const pgdat = mm.nodes[zone.nid];
  // Already in totalram_pages (defer_init()); __free_pages_memory() counted them again.
  pgdat.nr_deferred_pages -= nr;
  mm.totalram_pages -= nr;
  pgdat.first_deferred_pfn = next;
  if (nr) {
    setup_per_zone_wmarks(mm);
    setup_per_zone_lowmem_reserve(mm);
  }
}

/**
 * kernel: mm/mm_init.c deferred_grow_zone()
 * Initialise sections of the zone's deferred memory until at least SECTION_ALIGN_UP(1 << order)
 * pages were freed. False if the zone has none left (or is not its node's highest).
 */
export function deferred_grow_zone(mm: MM, zone: Zone, order: number): boolean {
  const pgdat = mm.nodes[zone.nid];
  const first = pgdat.first_deferred_pfn;
  if (first === Number.POSITIVE_INFINITY || deferred_zone(pgdat) !== zone) return false;
  const needed = Math.ceil((1 << order) / PAGES_PER_SECTION) * PAGES_PER_SECTION;
  let nr = 0;
  let spfn = first;
  for (
    let epfn = Math.ceil((spfn + 1) / PAGES_PER_SECTION) * PAGES_PER_SECTION;
    nr < needed && spfn < zone.zone_end_pfn;
    spfn = epfn, epfn += PAGES_PER_SECTION
  ) {
    nr += deferred_init_memmap_chunk(mm, zone, spfn, Math.min(epfn, zone.zone_end_pfn));
  }
  grown(mm, zone, nr, nr && spfn < zone.zone_end_pfn ? spfn : Number.POSITIVE_INFINITY);
  return nr > 0;
}
