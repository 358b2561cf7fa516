/**
 * A frame image: what every physical page of a real machine was doing at one instant (from a
 * snapshot's kpageflags, or estimated from its /proc counts), and the rebuilding of a booted
 * Machine into that state.
 *
 * The rebuild keeps the model's own rules: pages are taken off and put back on the buddy lists
 * with the model's functions, so free blocks merge as the kernel's would and every counter
 * follows. Movable pages get synthetic owners that behave as the real ones do (docs/import.md):
 *  - anonymous pages and anonymous THPs are mapped by one process, "snapshot", so they migrate
 *    through rmap and swap out if there is swap;
 *  - page-cache pages belong to one file on the root disk (clean, or dirty as they were);
 *  - shmem/tmpfs pages belong to one tmpfs file in /dev/shm;
 *  - hugetlb pages join their pool.
 * Kernel pages (slab, page tables, anything the kernel allocated without an LRU) stay allocated
 * with no owner: unmovable, as they are to compaction and alloc_contig_range().
 */
import { type AddressSpace, filemap_add_folio, folio_mark_dirty } from '../mm/filemap.ts';
import { HPAGE_PMD_ORDER } from '../mm/huge_memory.ts';
import { alloc_hugetlb_folio, hugetlb_adopt_folio } from '../mm/hugetlb.ts';
import type { MM } from '../mm/mm.ts';
import {
  MAX_PAGE_ORDER,
  MIGRATE_MOVABLE,
  MIGRATE_PCPTYPES,
  MIGRATE_TYPES,
  NR_PCP_LISTS,
  pageblock_order,
} from '../mm/mmzone.ts';
import { free_one_page } from '../mm/page_alloc/alloc_pages.ts';
import { deferred_init_to } from '../mm/page_alloc/deferred.ts';
import { __del_page_from_free_list, account_freepages } from '../mm/page_alloc/freelist.ts';
import { drain_all_pages, order_to_pindex } from '../mm/page_alloc/pcp.ts';
import {
  PG_active,
  PG_head,
  PG_hugetlb,
  PG_referenced,
  PG_tail,
  PG_uptodate,
  PGI_alloc,
  PGI_pcp,
} from '../mm/page-flags.ts';
import { get_pfnblock_migratetype, set_pageblock_migratetype } from '../mm/pageblock.ts';
import { map_anon_folio_pmd, pmd_table } from '../vm/huge_memory.ts';
import { add_new_anon_page, anon_vma_prepare, pte_table_alloc } from '../vm/memory.ts';
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_PRESENT,
  _PAGE_RW,
  _PAGE_USER,
  pte_index,
} from '../vm/pgtable.ts';
import type { Process } from '../vm/process.ts';
import {
  MADV_NOHUGEPAGE,
  MAP_ANONYMOUS,
  MAP_NORESERVE,
  MAP_PRIVATE,
  O_CREAT,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from '../vm/uapi.ts';
import type { Machine } from './machine.ts';

/** What a page was doing: one byte per pfn of FrameImage.classes. */
export const PC_UNKNOWN = 0; // not in the image: the model's boot state stays
export const PC_FREE = 1;
export const PC_KERNEL = 2; // slab, vmalloc, kernel stacks, pipe buffers, …: unmovable
export const PC_PGTABLE = 3; // page tables: unmovable; the synthetic process's tables go here first
export const PC_ANON = 4;
export const PC_THP = 5; // an anonymous PMD-sized folio, every page of it (heads PMD-aligned)
export const PC_FILE = 6;
export const PC_FILE_DIRTY = 7;
export const PC_SHMEM = 8;
export const PC_HUGETLB = 9; // every page of a hugetlb folio (FrameImage.hugetlb lists the heads)
export const PC_RESERVED = 10;
export const PC_PCP = 11; // free, parked on a CPU's per-cpu list: not merged, not in buddyinfo
export const PC_NAMES = [
  'unknown',
  'free',
  'kernel',
  'pgtable',
  'anon',
  'thp',
  'file',
  'file_dirty',
  'shmem',
  'hugetlb',
  'reserved',
  'pcp',
] as const;
export type PageClassName = (typeof PC_NAMES)[number];
const NR_PC = PC_NAMES.length;

export interface FrameImage {
  /** Per pfn, a PC_* class; pfns past its end are PC_UNKNOWN. */
  classes: Uint8Array;
  /** Per pageblock (pfn >> pageblock_order), the migratetype it gets; 255 leaves it as it is. */
  pageblock_mt: Uint8Array;
  /** The hugetlb folios: head pfn, order, and whether a task held it (not on the pool's free list). */
  hugetlb: { pfn: number; order: number; in_use: boolean }[];
  /** Per zone id, the pfn up to which a lazily initialised zone must have grown. */
  grow_to?: Map<number, number>;
  /**
   * Per zone id and CPU, the per-cpu lists' state: how many PC_PCP pages they held (dealt out in
   * pfn order) and their auto-tuned `high` (how much freed memory they may hold back from merging).
   */
  pcp?: Map<number, { count: number; high: number }[]>;
  /** Per pfn, the LRU age of an anonymous or file page: AGE_ACTIVE | AGE_REFERENCED (absent: inactive). */
  age?: Uint8Array;
}

/** FrameImage.age bits: on the active list; referenced since it was last scanned. */
export const AGE_ACTIVE = 1;
export const AGE_REFERENCED = 2;

export interface ImageReport {
  /** Pages of each class in the image, and how many of them the model now holds in that state. */
  classes: Record<PageClassName, { image: number; installed: number }>;
  /** Pages the model's own boot had allocated where the image says something else, by image class. */
  boot_conflicts: Partial<Record<PageClassName, number>>;
  /** Page tables the synthetic process needed beyond the image's page-table and kernel pages (taken from free pages). */
  pgtables_from_free: number;
  /** What was left out, one line each. */
  notes: string[];
}

/** Per pfn during the rebuild: the model's own (allocated at boot), the importer's, or placed. */
const MODEL = 0;
const HELD = 1;
const PLACED = 2;
const PMD_NR = 1 << HPAGE_PMD_ORDER;
const PMD_BYTES = PMD_NR * 4096;
/** Paths of the synthetic files (docs/import.md). */
export const IMPORT_PAGE_CACHE_FILE = '/mapcontig-snapshot/page-cache';
export const IMPORT_SHMEM_FILE = '/dev/shm/mapcontig-snapshot-shmem';

/** What the image holds of each owner, counted before anything moves. */
interface Plan {
  /** Heads of the anonymous THPs (PMD-aligned runs of PC_THP). */
  thps: number[];
  /** Anonymous order-0 pages (PC_ANON, and PC_THP pages outside a whole run). */
  anon: number;
  file: number;
  shmem: number;
}

/** The synthetic owners, made while the model still has free memory for their kernel objects. */
interface Owners {
  process: Process | null;
  /** Where the THPs are mapped, then the order-0 pages. */
  start: number;
  page_cache: AddressSpace | null;
  shmem: AddressSpace | null;
}

/**
 * Rebuild `machine` (freshly booted, nothing run on it yet) into the image's state. Simulated
 * time does not move, and the vm events the rebuilding counted are cleared.
 */
export function installFrameImage(machine: Machine, image: FrameImage): ImageReport {
  return machine.instantly(() => install(machine, image));
}

function install(machine: Machine, image: FrameImage): ImageReport {
  const mm = machine.mm;
  const n = Math.min(image.classes.length, mm.frames.nr_frames);
  const cls = image.classes;
  const counts = new Float64Array(NR_PC);
  for (let pfn = 0; pfn < n; pfn++) counts[cls[pfn]]++;

  growZones(mm, image);
  const plan = planOwners(image, n);
  const owners = makeOwners(machine, plan);
  // Every free page becomes the importer's: allocated, order 0, owned by nobody.
  drain_all_pages(mm, null);
  const state = new Uint8Array(mm.frames.nr_frames);
  holdAllFree(mm, state);
  // No watermark or lowmem reserve may stop the rebuilding's own allocations (page tables) from
  // near-empty lists, and none may grow a lazily initialised zone past the image's extent.
  const saved = mm.zones.map((z) => Float64Array.from(z._watermark));
  const reserve = mm.zones.map((z) => Float64Array.from(z.lowmem_reserve));
  for (const z of mm.zones) {
    z._watermark.fill(0);
    z.lowmem_reserve.fill(0);
  }
  const deferred = mm.nodes.map((n) => n.first_deferred_pfn);
  for (const n of mm.nodes) n.first_deferred_pfn = Number.POSITIVE_INFINITY;
  setPageblockTypes(mm, image, n);

  const installed = new Float64Array(NR_PC);
  const pgtables_from_free = installAnon(machine, image, owners, plan, state, n, installed);
  drain_all_pages(mm, null);
  holdAllFree(mm, state); // the page-table pages the process did not need
  installFiles(machine, image, owners, state, n, installed);
  const notes = installHugetlb(mm, image, state, installed);
  // Page-table allocations may have stolen or claimed pageblocks: type them again while the
  // buddy lists are empty, then free what was free.
  setPageblockTypes(mm, image, n);
  installed[PC_FREE] = freeHeld(mm, image, state, n);
  installed[PC_PCP] = parkPcp(mm, image, state, n);

  // Kernel pages stay allocated, owned by nobody (or became the process's page tables), and
  // reserved ones held or reserved by the model: unmovable either way.
  for (const c of [PC_KERNEL, PC_PGTABLE, PC_RESERVED]) installed[c] = counts[c];
  const boot_conflicts: ImageReport['boot_conflicts'] = {};
  for (let pfn = 0; pfn < n; pfn++) {
    const c = cls[pfn];
    // What the model allocated at boot where the image has something else.
    if (
      state[pfn] === MODEL &&
      c !== PC_UNKNOWN &&
      c !== PC_KERNEL &&
      c !== PC_RESERVED &&
      c !== PC_PGTABLE
    ) {
      const name = PC_NAMES[c];
      boot_conflicts[name] = (boot_conflicts[name] ?? 0) + 1;
    }
  }
  mm.nodes.forEach((n, i) => {
    n.first_deferred_pfn = deferred[i];
  });
  mm.zones.forEach((z, i) => {
    z._watermark.set(saved[i]);
    z.lowmem_reserve.set(reserve[i]);
    z.watermark_boost = 0;
    z.flags = 0;
  });
  mm.vm_events.fill(0);
  mm.kernel_ns = 0;
  mm.kthreads.cpu_ns = 0;
  const classes = Object.fromEntries(
    PC_NAMES.map((k, i) => [k, { image: counts[i], installed: installed[i] }]),
  ) as ImageReport['classes'];
  return { classes, boot_conflicts, pgtables_from_free, notes };
}

/** deferred_grow_zone() until each lazily initialised zone reaches the image's extent. */
function growZones(mm: MM, image: FrameImage): void {
  if (!image.grow_to) return;
  for (const [id, end] of image.grow_to) deferred_init_to(mm, mm.zones[id], end);
}

function planOwners(image: FrameImage, n: number): Plan {
  const cls = image.classes;
  const plan: Plan = { thps: [], anon: 0, file: 0, shmem: 0 };
  for (let pfn = 0; pfn < n; pfn++) {
    const c = cls[pfn];
    if (
      c === PC_THP &&
      !(pfn & (PMD_NR - 1)) &&
      pfn + PMD_NR <= n &&
      cls.subarray(pfn, pfn + PMD_NR).every((x) => x === PC_THP)
    ) {
      plan.thps.push(pfn);
      pfn += PMD_NR - 1;
    } else if (c === PC_ANON || c === PC_THP) plan.anon++;
    else if (c === PC_FILE || c === PC_FILE_DIRTY) plan.file++;
    else if (c === PC_SHMEM) plan.shmem++;
  }
  return plan;
}

/** The process and files that will own the movable pages (their VMAs, inodes, dentries). */
function makeOwners(machine: Machine, plan: Plan): Owners {
  const owners: Owners = { process: null, start: 0, page_cache: null, shmem: null };
  const files = machine.vm.files;
  if (plan.thps.length || plan.anon || plan.file || plan.shmem) owners.process = machine.spawn({});
  const p = owners.process;
  if (!p) return owners;
  if (plan.thps.length || plan.anon) {
    const thpBytes = plan.thps.length * PMD_BYTES;
    const anonBytes = Math.ceil(plan.anon / PMD_NR) * PMD_BYTES;
    const base = p.mmap(
      0,
      thpBytes + anonBytes + PMD_BYTES,
      PROT_READ | PROT_WRITE,
      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
    );
    owners.start = Math.ceil(base / PMD_BYTES) * PMD_BYTES;
    // Order-0 pages stay order 0: khugepaged does not collapse them behind the import's back.
    if (anonBytes) p.madvise(owners.start + thpBytes, anonBytes, MADV_NOHUGEPAGE);
  }
  const open = (path: string, pages: number): AddressSpace | null => {
    if (!pages) return null;
    p.close(p.open(path, O_CREAT | O_RDWR, 0o600));
    const as = files.lookup(path)!.mapping;
    as.i_size = pages * 4096;
    return as;
  };
  owners.page_cache = open(IMPORT_PAGE_CACHE_FILE, plan.file);
  owners.shmem = open(IMPORT_SHMEM_FILE, plan.shmem);
  const sb = owners.shmem?.sbinfo;
  if (sb) sb.max_blocks = Math.max(sb.max_blocks, sb.used_blocks + plan.shmem);
  return owners;
}

/** Take every block off every buddy list: each of its pages becomes an allocated order-0 page. */
function holdAllFree(mm: MM, state: Uint8Array): void {
  const f = mm.frames;
  for (const zone of mm.zones) {
    if (!zone.managed_pages) continue;
    for (let order = 0; order <= MAX_PAGE_ORDER; order++) {
      for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
        const sentinel = f.nr_frames + zone.free_list(order, mt);
        for (let pfn = f.next[sentinel]; pfn !== sentinel; pfn = f.next[sentinel]) {
          __del_page_from_free_list(mm, pfn, zone, order, mt);
          account_freepages(zone, -(1 << order), mt);
          const end = pfn + (1 << order);
          for (let p = pfn; p < end; p++) {
            f.flags[p] |= PGI_alloc;
            f.order[p] = 0;
            state[p] = HELD;
          }
        }
      }
    }
  }
}

function setPageblockTypes(mm: MM, image: FrameImage, n: number): void {
  const last = Math.min((n - 1) >>> pageblock_order, image.pageblock_mt.length - 1);
  for (let pb = 0; pb <= last; pb++) {
    const mt = image.pageblock_mt[pb];
    if (mt !== 255 && mm.pb_zone[pb]) set_pageblock_migratetype(mm, pb << pageblock_order, mt);
  }
}

/** Give a held block back to the buddy allocator (it merges with its free buddies). */
function release(mm: MM, pfn: number, order: number, state: Uint8Array): void {
  const f = mm.frames;
  for (let p = pfn; p < pfn + (1 << order); p++) f.flags[p] &= ~PGI_alloc;
  f.order[pfn] = 0;
  state.fill(PLACED, pfn, pfn + (1 << order));
  free_one_page(mm, mm.page_zone(pfn)!, pfn, order, 0);
}

/** Turn held pages into one allocated page of `order` for an owner (compound above order 0). */
function take(mm: MM, pfn: number, order: number, state: Uint8Array): void {
  const f = mm.frames;
  const end = pfn + (1 << order);
  state.fill(PLACED, pfn, end);
  for (let p = pfn + 1; p < end; p++) f.flags[p] = (f.flags[p] & ~PGI_alloc) | PG_tail;
  f.flags[pfn] |= PGI_alloc | PG_uptodate | (order ? PG_head : 0);
  f.order[pfn] = order;
}

/** The page's LRU age from the image, before it joins its LRU list. */
function setAge(mm: MM, image: FrameImage, pfn: number): void {
  const a = image.age?.[pfn] ?? 0;
  if (a & AGE_ACTIVE) mm.frames.flags[pfn] |= PG_active;
  if (a & AGE_REFERENCED) mm.frames.flags[pfn] |= PG_referenced;
}

function allHeld(state: Uint8Array, pfn: number, nr: number): boolean {
  for (let p = pfn; p < pfn + nr; p++) if (state[p] !== HELD) return false;
  return true;
}

/**
 * The anonymous pages, mapped by the synthetic process: the THPs first (one PMD each, with its
 * deposited table), then the order-0 pages, 512 to a PTE table. The page tables come from the
 * image's page-table pages, then its kernel pages, and only then its free pages (returned: how
 * many).
 */
function installAnon(
  machine: Machine,
  image: FrameImage,
  owners: Owners,
  plan: Plan,
  state: Uint8Array,
  n: number,
  installed: Float64Array,
): number {
  const p = owners.process;
  if (!p || !(plan.thps.length || plan.anon)) return 0;
  const mm = machine.mm;
  const vm = machine.vm;
  const pmm = p.mm;
  const cls = image.classes;
  const thps = plan.thps.filter((head) => allHeld(state, head, PMD_NR));
  const inThp = new Set(thps);
  let anon = 0;
  for (let pfn = 0; pfn < n; pfn++) {
    const c = cls[pfn];
    if (c === PC_THP && inThp.has(pfn)) pfn += PMD_NR - 1;
    else if ((c === PC_ANON || c === PC_THP) && state[pfn] === HELD) anon++;
  }
  // PTE tables, deposits, a PMD table per GiB, a PUD table per 512 GiB: released to the buddy
  // lists for the page-table allocations to find, with room for the per-cpu lists' batches
  // (pages on a pcp list pass no watermark check: the buddy lists must never run dry).
  const ptes = Math.ceil(anon / PMD_NR);
  const span = plan.thps.length + Math.ceil(plan.anon / PMD_NR) + 1;
  const need = ptes + thps.length + Math.ceil(span / 512) + Math.ceil(span / 512 / 512) + 2 + 4 * PMD_NR;
  let given = 0;
  let fromFree = 0;
  for (const want of [PC_PGTABLE, PC_KERNEL, PC_FREE]) {
    for (let pfn = 0; pfn < n && given < need; pfn++) {
      if (cls[pfn] !== want || state[pfn] !== HELD) continue;
      release(mm, pfn, 0, state);
      given++;
      if (want === PC_FREE) fromFree++;
    }
  }

  let addr = owners.start;
  const vma = pmm.mt.find(addr);
  anon_vma_prepare(vm, vma);
  for (const head of thps) {
    const pmd = pmd_table(vm, pmm, addr / 4096, true);
    const pgtable = pmd < 0 ? -1 : vm.pt.alloc(pmm.id, pmm.nid, pmm.cpu);
    if (pgtable < 0) throw new Error('import: no page left for the synthetic process page tables');
    take(mm, head, HPAGE_PMD_ORDER, state);
    setAge(mm, image, head);
    map_anon_folio_pmd(vm, pmm, vma, addr, pmd, head, pgtable);
    installed[PC_THP] += PMD_NR;
    addr += PMD_BYTES;
  }
  const vma0 = pmm.mt.find(addr);
  anon_vma_prepare(vm, vma0);
  const bits = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_RW;
  for (let pfn = 0; pfn < n; pfn++) {
    const c = cls[pfn];
    if ((c !== PC_ANON && c !== PC_THP) || state[pfn] !== HELD) continue;
    const vpn = addr / 4096;
    const table = pte_table_alloc(vm, pmm, vpn);
    if (table < 0) throw new Error('import: no page left for the synthetic process page tables');
    take(mm, pfn, 0, state);
    setAge(mm, image, pfn);
    vm.pt.set(table, pte_index(vpn), pfn, bits);
    add_new_anon_page(vm, pmm, vma0, addr, pfn);
    installed[PC_ANON]++;
    addr += 4096;
  }
  return fromFree;
}

/** Page-cache pages join the synthetic disk file, shmem pages the tmpfs one, in pfn order. */
function installFiles(
  machine: Machine,
  image: FrameImage,
  owners: Owners,
  state: Uint8Array,
  n: number,
  installed: Float64Array,
): void {
  const mm = machine.mm;
  const cls = image.classes;
  let fi = 0;
  let si = 0;
  for (let pfn = 0; pfn < n; pfn++) {
    const c = cls[pfn];
    if (state[pfn] !== HELD || (c !== PC_FILE && c !== PC_FILE_DIRTY && c !== PC_SHMEM)) continue;
    take(mm, pfn, 0, state);
    setAge(mm, image, pfn);
    if (c === PC_SHMEM) {
      filemap_add_folio(mm, owners.shmem!, pfn, si++);
      owners.shmem!.sbinfo!.used_blocks++;
    } else {
      filemap_add_folio(mm, owners.page_cache!, pfn, fi++);
      if (c === PC_FILE_DIRTY) folio_mark_dirty(mm, owners.page_cache!, pfn, machine.now);
    }
    installed[c]++;
  }
  // tmpfs pages are charged to the commit count as they are allocated (VM_NORESERVE files).
  if (si) owners.shmem!.acct_blocks?.shmem_acct(si);
}

/** hugetlb folios join the pool of their size; those a task held are taken off its free list. */
function installHugetlb(mm: MM, image: FrameImage, state: Uint8Array, installed: Float64Array): string[] {
  const left = new Set<number>();
  for (const h of image.hugetlb) {
    const nr = 1 << h.order;
    if (!allHeld(state, h.pfn, nr)) {
      left.add(h.pfn);
      continue;
    }
    const hs = mm.hugetlb.hstates.find((s) => s.order === h.order) ?? mm.hugetlb.hugetlb_add_hstate(h.order);
    take(mm, h.pfn, h.order, state);
    for (let p = h.pfn; p < h.pfn + nr; p++) mm.frames.flags[p] |= PG_hugetlb;
    hugetlb_adopt_folio(mm, hs, h.pfn);
    installed[PC_HUGETLB] += nr;
  }
  for (const h of image.hugetlb) {
    if (!h.in_use || left.has(h.pfn)) continue;
    const hs = mm.hugetlb.hstates.find((s) => s.order === h.order)!;
    alloc_hugetlb_folio(mm, hs, true, mm.page_zone(h.pfn)!.nid);
  }
  return left.size
    ? [
        `${left.size} hugetlb folios overlap the model's boot allocations and were left out (first at pfn ${[...left][0]})`,
      ]
    : [];
}

/**
 * The per-cpu lists as the image has them: each CPU's auto-tuned `high`, and each zone's per-cpu
 * pages, in pfn order, onto its CPUs' lists as the image counts them (order 0, or order 9 for a
 * whole pageblock of them; the list of their pageblock's type), `high` raised where they need it.
 * Pages beyond the counts go to the buddy lists. Returns how many were parked.
 */
function parkPcp(mm: MM, image: FrameImage, state: Uint8Array, n: number): number {
  const f = mm.frames;
  let parked = 0;
  for (const zone of mm.zones) {
    if (!zone.managed_pages) continue;
    const lists = image.pcp?.get(zone.id) ?? [];
    const counts = lists.map((l) => l.count);
    const pcp = zone.pcp;
    lists.forEach((l, c) => {
      if (c < mm.nr_cpus) pcp.high[c] = Math.max(l.high, 0);
    });
    let cpu = 0;
    let left = counts[0] ?? 0;
    const end = Math.min(n, zone.zone_end_pfn);
    for (let pfn = zone.zone_start_pfn; pfn < end; pfn++) {
      if (image.classes[pfn] !== PC_PCP || state[pfn] !== HELD) continue;
      while (left === 0 && cpu < counts.length - 1 && cpu < mm.nr_cpus - 1) left = counts[++cpu];
      if (left === 0) {
        release(mm, pfn, 0, state);
        continue;
      }
      // A whole pageblock of them is one order-9 page (the pcp lists' THP order).
      const order =
        !(pfn & (PMD_NR - 1)) && left >= PMD_NR && pfn + PMD_NR <= end && allPcp(image, state, pfn)
          ? HPAGE_PMD_ORDER
          : 0;
      const nr = 1 << order;
      state.fill(PLACED, pfn, pfn + nr);
      for (let p = pfn + 1; p < pfn + nr; p++) f.flags[p] &= ~PGI_alloc;
      f.flags[pfn] = (f.flags[pfn] & ~PGI_alloc) | PGI_pcp;
      f.order[pfn] = order;
      // HIGHATOMIC and CMA pageblocks' pages ride on the MOVABLE list, as __free_pages() puts them.
      let mt = get_pfnblock_migratetype(mm, pfn);
      if (mt >= MIGRATE_PCPTYPES) mt = MIGRATE_MOVABLE;
      f.list_add(pfn, pcp.list_base + cpu * NR_PCP_LISTS + order_to_pindex(mt, order));
      pcp.count[cpu] += nr;
      if (pcp.high[cpu] < pcp.count[cpu]) pcp.high[cpu] = pcp.count[cpu];
      left -= nr;
      parked += nr;
      pfn += nr - 1;
    }
  }
  return parked;
}

function allPcp(image: FrameImage, state: Uint8Array, pfn: number): boolean {
  for (let p = pfn; p < pfn + PMD_NR; p++) if (image.classes[p] !== PC_PCP || state[p] !== HELD) return false;
  return true;
}

/** Free in the image, or not in it at all (the model's boot state: it was free). */
function freeClass(cls: Uint8Array, pfn: number): boolean {
  return cls[pfn] === PC_FREE || cls[pfn] === PC_UNKNOWN;
}

/**
 * Free the held pages the image says are free or does not know, as naturally aligned blocks
 * (they merge). Returns how many of them the image says are free.
 */
function freeHeld(mm: MM, image: FrameImage, state: Uint8Array, n: number): number {
  const cls = image.classes;
  let freed = 0;
  let pfn = 0;
  while (pfn < n) {
    if (state[pfn] !== HELD || !freeClass(cls, pfn)) {
      pfn++;
      continue;
    }
    const zone = mm.page_zone(pfn);
    let end = pfn;
    while (end < n && state[end] === HELD && freeClass(cls, end) && mm.page_zone(end) === zone) {
      if (cls[end] === PC_FREE) freed++;
      end++;
    }
    while (pfn < end) {
      let order = Math.min(MAX_PAGE_ORDER, 31 - Math.clz32(end - pfn));
      while (pfn & ((1 << order) - 1)) order--;
      release(mm, pfn, order, state);
      pfn += 1 << order;
    }
  }
  return freed;
}
