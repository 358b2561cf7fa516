/**
 * The x86-64 direct map (arch/x86/mm/init.c, init_64.c): how init_mem_mapping() maps all RAM at
 * boot with 4 KiB, 2 MiB and 1 GiB pages, counted per level as direct_pages_count[], which
 * /proc/meminfo prints as DirectMap4k/2M/1G. It is replayed on a small model of the page tables
 * (one map entry per touched PUD and PMD; no per-page state except inside 4 KiB-mapped PMDs).
 *
 * The counts are the kernel's, quirks included: adjust_range_page_size_mask() maps a whole
 * 1 GiB (or 2 MiB) page when the surrounding region is all RAM even if the range asked for is
 * smaller, and when memory_map_top_down() later maps the rest of that page the walkers count the
 * existing leaf again (`if (!after_bootmem) pages++`). On the 24 GiB machine this gives 4K 512,
 * 2M 511, 1G 25 (26 GiB for 24 GiB of RAM); the real kernel then splits one 1 GiB and 13 2 MiB
 * pages (KFENCE, rodata, ...), giving 7168 / 1010 / 24 as its meminfo shows. Those later splits
 * are modelled only through the direct_map_level{2,3}_splits vm events.
 */
import type { MM } from '../../mm/mm.ts';
import { vm_event_index } from '../../mm/vmstat_items.ts';

/** In pfns: a PMD (2 MiB) and a PUD (1 GiB) page, and the ISA range (1 MiB). */
const PMD_PFNS = 512;
const PUD_PFNS = 512 * 512;
const ISA_END_PFN = 256;
/** page_size_mask bits (1 << PG_LEVEL_2M, 1 << PG_LEVEL_1G). */
const PG_2M = 1 << 2;
const PG_1G = 1 << 3;
/** probe_page_size_mask(): PSE and GBPAGES, as every x86-64 CPU we model has. */
const page_size_mask = PG_2M | PG_1G;

const LEAF = 0;
type PteTable = Uint8Array;
type PmdTable = Map<number, PteTable | typeof LEAF>;

/** Pages of the direct map per level, as direct_pages_count[PG_LEVEL_4K/2M/1G]. */
export interface DirectPagesCount {
  k4: number;
  m2: number;
  g1: number;
}

interface MapRange {
  start: number;
  end: number;
  mask: number;
}

class DirectMapBuilder {
  readonly pud = new Map<number, PmdTable | typeof LEAF>();
  readonly count: DirectPagesCount = { k4: 0, m2: 0, g1: 0 };

  constructor(private readonly ram: ReadonlyArray<{ readonly start: number; readonly end: number }>) {}

  // kernel: mm/memblock.c memblock_is_region_memory()
  is_region_memory(start: number, end: number): boolean {
    for (const r of this.ram) if (start >= r.start && start < r.end) return end <= r.end;
    return false;
  }

  // kernel: arch/x86/mm/init_64.c phys_pte_init()
  phys_pte_init(pte: PteTable, pfn: number, end: number): void {
    const pmd_end = (Math.floor(pfn / PMD_PFNS) + 1) * PMD_PFNS;
    for (; pfn < end && pfn < pmd_end; pfn++) {
      // An existing pte is re-used but counted again before bootmem.
      pte[pfn % PMD_PFNS] = 1;
      this.count.k4++;
    }
  }

  // kernel: arch/x86/mm/init_64.c phys_pmd_init()
  phys_pmd_init(pmd: PmdTable, pfn: number, end: number, mask: number): void {
    const pud_end = (Math.floor(pfn / PUD_PFNS) + 1) * PUD_PFNS;
    while (pfn < end && pfn < pud_end) {
      const idx = Math.floor(pfn / PMD_PFNS);
      const next = (idx + 1) * PMD_PFNS;
      const entry = pmd.get(idx);
      if (entry !== undefined) {
        if (entry !== LEAF) {
          this.phys_pte_init(entry, pfn, end);
          pfn = next;
          continue;
        }
        if (mask & PG_2M) {
          this.count.m2++;
          pfn = next;
          continue;
        }
      }
      if (mask & PG_2M) {
        this.count.m2++;
        pmd.set(idx, LEAF);
      } else {
        const pte = new Uint8Array(PMD_PFNS);
        this.phys_pte_init(pte, pfn, end);
        pmd.set(idx, pte);
      }
      pfn = next;
    }
  }

  // kernel: arch/x86/mm/init_64.c phys_pud_init() (via kernel_physical_mapping_init)
  phys_pud_init(pfn: number, end: number, mask: number): void {
    while (pfn < end) {
      const idx = Math.floor(pfn / PUD_PFNS);
      const next = (idx + 1) * PUD_PFNS;
      const entry = this.pud.get(idx);
      if (entry !== undefined) {
        if (entry !== LEAF) {
          this.phys_pmd_init(entry, pfn, end, mask);
          pfn = next;
          continue;
        }
        if (mask & PG_1G) {
          this.count.g1++;
          pfn = next;
          continue;
        }
      }
      if (mask & PG_1G) {
        this.count.g1++;
        this.pud.set(idx, LEAF);
      } else {
        const pmd: PmdTable = new Map();
        this.phys_pmd_init(pmd, pfn, end, mask);
        this.pud.set(idx, pmd);
      }
      pfn = next;
    }
  }

  /**
   * kernel: arch/x86/mm/init.c split_mem_range() + adjust_range_page_size_mask()
   * A 4K head up to 2 MiB alignment, 2M up to 1 GiB alignment, 1G, a 2M tail, a 4K tail; a
   * small-page range is promoted when its whole 2 MiB (1 GiB) page is RAM; equal neighbours merge.
   */
  split_mem_range(start: number, limit: number): MapRange[] {
    const mr: MapRange[] = [];
    const save = (s: number, e: number, mask: number): void => {
      if (s < e) mr.push({ start: s, end: e, mask });
    };
    const round_up = (v: number, a: number): number => Math.ceil(v / a) * a;
    const round_down = (v: number, a: number): number => Math.floor(v / a) * a;
    let pfn = start;
    let end_pfn = Math.min(round_up(pfn, PMD_PFNS), limit);
    if (start < end_pfn) {
      save(start, end_pfn, 0);
      pfn = end_pfn;
    }
    let start_pfn = round_up(pfn, PMD_PFNS);
    end_pfn = Math.min(round_up(pfn, PUD_PFNS), round_down(limit, PMD_PFNS));
    if (start_pfn < end_pfn) {
      save(start_pfn, end_pfn, page_size_mask & PG_2M);
      pfn = end_pfn;
    }
    start_pfn = round_up(pfn, PUD_PFNS);
    end_pfn = round_down(limit, PUD_PFNS);
    if (start_pfn < end_pfn) {
      save(start_pfn, end_pfn, page_size_mask & (PG_2M | PG_1G));
      pfn = end_pfn;
    }
    start_pfn = round_up(pfn, PMD_PFNS);
    end_pfn = round_down(limit, PMD_PFNS);
    if (start_pfn < end_pfn) {
      save(start_pfn, end_pfn, page_size_mask & PG_2M);
      pfn = end_pfn;
    }
    save(pfn, limit, 0);

    for (const r of mr) {
      if (page_size_mask & PG_2M && !(r.mask & PG_2M)) {
        if (this.is_region_memory(round_down(r.start, PMD_PFNS), round_up(r.end, PMD_PFNS))) r.mask |= PG_2M;
      }
      if (page_size_mask & PG_1G && !(r.mask & PG_1G)) {
        if (this.is_region_memory(round_down(r.start, PUD_PFNS), round_up(r.end, PUD_PFNS))) r.mask |= PG_1G;
      }
    }
    for (let i = 0; mr.length > 1 && i < mr.length - 1; i++) {
      if (mr[i].end !== mr[i + 1].start || mr[i].mask !== mr[i + 1].mask) continue;
      mr[i + 1].start = mr[i].start;
      mr.splice(i, 1);
      i--;
    }
    return mr;
  }

  // kernel: arch/x86/mm/init.c init_memory_mapping()
  init_memory_mapping(start: number, end: number): void {
    for (const r of this.split_mem_range(start, end)) this.phys_pud_init(r.start, r.end, r.mask);
  }

  // kernel: arch/x86/mm/init.c init_range_memory_mapping()
  init_range_memory_mapping(r_start: number, r_end: number): number {
    let mapped = 0;
    for (const r of this.ram) {
      const start = Math.min(Math.max(r.start, r_start), r_end);
      const end = Math.min(Math.max(r.end, r_start), r_end);
      if (start >= end) continue;
      this.init_memory_mapping(start, end);
      mapped += end - start;
    }
    return mapped;
  }

  /**
   * kernel: arch/x86/mm/init.c memory_map_top_down()
   * From the highest free 2 MiB block down, in steps that grow 256-fold (2 MiB, 512 MiB,
   * 128 GiB) once the memory mapped so far can hold the next step's page tables.
   */
  memory_map_top_down(map_start: number, map_end: number): void {
    const real_end = this.top_pmd_block(map_start, map_end);
    let step = PMD_PFNS;
    let last_start = real_end;
    let mapped = 0;
    while (last_start > map_start) {
      let start: number;
      if (last_start > step) {
        start = Math.floor((last_start - 1) / step) * step;
        if (start < map_start) start = map_start;
      } else {
        start = map_start;
      }
      mapped += this.init_range_memory_mapping(start, last_start);
      last_start = start;
      if (mapped >= step) step <<= 8; // get_new_step_size()
    }
    if (real_end < map_end) this.init_range_memory_mapping(real_end, map_end);
  }

  /**
   * The end of memblock_phys_alloc_range(PMD_SIZE, PMD_SIZE, map_start, map_end): the highest
   * 2 MiB-aligned block of RAM (the boot reservations the model has are made after this point,
   * or sit low).
   */
  private top_pmd_block(map_start: number, map_end: number): number {
    for (let i = this.ram.length - 1; i >= 0; i--) {
      const r = this.ram[i];
      const end = Math.floor(Math.min(r.end, map_end) / PMD_PFNS) * PMD_PFNS;
      if (end - PMD_PFNS >= Math.max(r.start, map_start)) return end;
    }
    return map_start;
  }
}

/**
 * kernel: arch/x86/mm/init.c init_mem_mapping()
 * The ISA range first (always, with 4 KiB pages), then all RAM top-down.
 */
export function init_mem_mapping(mm: MM): DirectPagesCount {
  const dm = new DirectMapBuilder(mm.ram);
  dm.init_memory_mapping(0, ISA_END_PFN);
  dm.memory_map_top_down(ISA_END_PFN, mm.max_pfn);
  return dm.count;
}

const LEVEL2_SPLITS = vm_event_index('direct_map_level2_splits');
const LEVEL3_SPLITS = vm_event_index('direct_map_level3_splits');

/**
 * kernel: arch/x86/mm/pat/set_memory.c split_page_count()
 * The boot mapping less the splits counted since: a 2 MiB split adds 512 4 KiB pages, a 1 GiB
 * split 512 2 MiB pages. (Collapses are not modelled.)
 */
export function direct_pages_count(mm: MM): DirectPagesCount {
  const boot = init_mem_mapping(mm);
  const l2 = mm.vm_events[LEVEL2_SPLITS];
  const l3 = mm.vm_events[LEVEL3_SPLITS];
  return { k4: boot.k4 + 512 * l2, m2: boot.m2 - l2 + 512 * l3, g1: boot.g1 - l3 };
}
